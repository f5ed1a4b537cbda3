import EmergencyPortal
import Foundation
import KiezboxCore
import MeshRelay
import ReadingStore

extension LoRaWANBoxState {
    /// What the LoRaWAN uplink sends beside the readings, from the same snapshot the portal shows: the mode,
    /// mains and battery, open help requests by category, and the phones seen on the portal in the last hour.
    init(_ snapshot: PortalSnapshot) {
        let power = snapshot.power
        var requests: [BulletinCategory: Int] = [:]
        for count in snapshot.bulletinCounts where count.kind == .request {
            requests[count.category ?? .other, default: 0] += count.count
        }
        let status = BoxStatus(
            mode: snapshot.mode, mainsPresent: power.mainsPresent ?? false, onBattery: power.mainsPresent == false,
            helpRequestsOpen: requests.values.contains { $0 > 0 }
        )
        let summary =
            snapshot.mode == .crisis
            ? CrisisSummary(
                status: status, batteryLevel: power.batteryPercent, batteryVoltage: power.batteryVolts,
                phonesConnected: snapshot.clientCount, openHelpRequests: requests
            ) : nil
        self.init(status: status, crisisSummary: summary)
    }
}
