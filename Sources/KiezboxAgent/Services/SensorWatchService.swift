import KiezboxCore
import Logging
import SensorDrivers
import ServiceLifecycle

/// Keeps the watching drivers (rain gauge, mains-fail input) watching their lines for as long as the daemon
/// runs; a watch that fails is started again after a backoff, like a failing sensor in the sampler.
struct SensorWatchService<C: KiezboxClock>: Service {
    let sensors: [ScheduledSensor]
    let clock: C
    let backoff: RetryBackoff
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                for sensor in self.sensors {
                    guard let driver = sensor.driver as? any WatchingSensorDriver else { continue }
                    group.addTask { await self.keepWatching(sensor.id, driver) }
                }
            }
        }
    }

    private func keepWatching(_ id: String, _ driver: any WatchingSensorDriver) async {
        var failures = 0
        while !Task.isCancelled {
            do {
                try await driver.watch()
                failures = 0
                return
            } catch {
                if Task.isCancelled { return }
                failures += 1
                let delay = self.backoff.delay(afterFailures: failures)
                self.logger.warning(
                    "watch failed; retrying", metadata: ["sensor": "\(id)", "error": "\(error)", "retry_in": "\(format(delay))"]
                )
                do { try await self.clock.sleep(for: delay) } catch { return }
            }
        }
    }
}
