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

    /// The status goes out when the uplink connects (the uplink republishes it after every reconnect) and then
    /// every ``statusInterval`` with the latest battery voltage.
    private func publishOwnStatus() async {
        while !Task.isCancelled {
            let battery = (try? self.store.latest())?.first { $0.reading.quantity == .voltage }?.reading.value
            var wait = self.statusInterval
            do {
                try await self.uplink.publishStatus((try? self.store.mode()) ?? .normal, batteryVolts: battery)
            } catch {
                // Not connected yet, or the broker is away: the uplink publishes on reconnect; try again soon.
                wait = min(self.statusInterval, .seconds(5))
            }
            do { try await self.clock.sleep(for: wait) } catch { return }
        }
    }
}
