import Foundation
import KiezboxCore
import Logging
import MeshRelay
import ReadingStore
import ServiceLifecycle

/// The box's place in its district: publishes this box's status (mode, battery) over MQTT and keeps the
/// other boxes' statuses, as they arrive on the district's status topics, in the store — where `kiezbox status`,
/// the portal and the situation feed read them.
struct NeighbourhoodService<C: KiezboxClock>: Service {
    let uplink: MQTTUplink
    let store: ReadingStore
    let clock: C
    let district: String
    /// How the statuses arrive, shown beside each neighbour ("mqtt://broker:1883").
    let path: String
    let logger: Logger
    var statusInterval: Duration = .seconds(60)
    /// How often the mode is looked at, so a change goes out at once rather than with the next status.
    var modeCheckInterval: Duration = .seconds(1)

    func run() async throws {
        let statuses = try self.uplink.subscribe(toDistrict: self.district)
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.recordNeighbours(statuses) }
                group.addTask { await self.publishOwnStatus() }
            }
        }
    }

    private func recordNeighbours(_ statuses: AsyncStream<StatusMessage>) async {
        for await status in statuses {
            let neighbour = NeighbourBox(
                identity: BoxIdentity(district: status.district, boxID: status.box, name: status.name, position: status.position),
                online: status.state == .online, mode: status.mode, batteryVolts: status.batteryVolts,
                lastSeen: self.clock.currentDate(), path: self.path
            )
            do {
                try await self.store.recordNeighbour(neighbour)
            } catch {
                self.logger.warning("could not record a neighbour", metadata: ["box": "\(status.box)", "error": "\(error)"])
            }
        }
    }

    /// The power model's latest estimate, unless it is over ten minutes old (the model is not running).
    private func power() -> StatusMessage.Power? {
        guard let record = try? self.store.batteryRecord(), self.clock.currentDate().timeIntervalSince(record.at) <= 600 else { return nil }
        return StatusMessage.Power(record.estimate, at: record.at)
    }

    /// The status goes out when the uplink connects (the uplink republishes it after every reconnect), within
    /// ``modeCheckInterval`` of a mode change (a crisis must not wait for the next minute), and every
    /// ``statusInterval`` with the latest battery voltage and power estimate.
    private func publishOwnStatus() async {
        var publishedMode: Mode?
        var nextAttempt = self.clock.currentDate()
        while !Task.isCancelled {
            let mode = (try? self.store.mode()) ?? .normal
            let now = self.clock.currentDate()
            if now >= nextAttempt || publishedMode != mode {
                let battery = (try? self.store.latest())?.first { $0.reading.quantity == .voltage }?.reading.value
                // Remembered also when it fails: the uplink publishes the mode it was last given on reconnect.
                publishedMode = mode
                do {
                    try await self.uplink.publishStatus(mode, batteryVolts: battery, power: self.power())
                    nextAttempt = now.addingTimeInterval(self.statusInterval.timeInterval)
                } catch {
                    // Not connected yet, or the broker is away: the uplink publishes on reconnect; try again soon.
                    nextAttempt = now.addingTimeInterval(min(self.statusInterval, .seconds(5)).timeInterval)
                }
            }
            do { try await self.clock.sleep(for: self.modeCheckInterval) } catch { return }
        }
    }
}
