import KiezboxCore
import Logging
import ReadingStore
import ServiceLifecycle

/// Commits the store's buffered readings every flush interval, keeps the store within its size, and commits
/// whatever is left when the daemon shuts down.
///
/// Listed before the sampler in the service group, so it is shut down after it: the last readings the
/// sampler produced are in the final commit.
struct StoreFlushService<C: KiezboxClock>: Service {
    let store: ReadingStore
    let clock: C
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.clock.sleep(for: self.store.configuration.flushInterval)
                } catch {
                    break
                }
                await self.flush()
            }
        }
        await self.flush()
        self.logger.info("store flushed on shutdown")
    }

    private func flush() async {
        do {
            let committed = try await self.store.flush()
            if committed > 0 { self.logger.debug("committed readings", metadata: ["count": "\(committed)"]) }
            let retention = try await self.store.enforceRetention()
            if retention.droppedUndelivered > 0 {
                self.logger.warning(
                    "store full: dropped undelivered readings",
                    metadata: ["dropped": "\(retention.droppedUndelivered)", "deleted_delivered": "\(retention.deletedDelivered)"]
                )
            } else if retention.deletedDelivered > 0 {
                self.logger.info("retention removed delivered readings", metadata: ["count": "\(retention.deletedDelivered)"])
            }
        } catch {
            self.logger.error("store flush failed; readings stay buffered", metadata: ["error": "\(error)"])
        }
    }
}
