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
                await self.periodicCommit()
            }
        }
        await self.flush()
        self.logger.info("store flushed on shutdown")
    }

    /// A commit on the flush interval. It runs in a task of its own, outside the service's cancellation: a
    /// shutdown that begins meanwhile lets it finish (GRDB would otherwise abandon the write with a
    /// CancellationError) and then flushes what is left.
    func periodicCommit() async {
        await Task { await self.flush() }.value
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
