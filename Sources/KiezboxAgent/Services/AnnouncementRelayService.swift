import EmergencyPortal
import Foundation
import KiezboxCore
import Logging
import MeshRelay
import ServiceLifecycle

/// Carries signed announcements between the box and its district over MQTT: what arrives on the district's
/// announcement topics goes to the desk (which verifies it; forgeries are refused and counted there), and what
/// an authority posted to this box's API is published, retained and unchanged, for the neighbours.
///
/// Announcements that arrived over MQTT are not published again: the neighbours on the same broker have them.
/// Those that arrived over LoRa are: a box that hears the radio is the district's bridge for them.
struct AnnouncementRelayService<C: KiezboxClock>: Service {
    let uplink: MQTTUplink
    let desk: AnnouncementDesk
    let clock: C
    let logger: Logger

    func run() async throws {
        let received = try self.uplink.subscribe(toAnnouncementsIn: self.desk.district)
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.verify(received) }
                group.addTask { await self.publishPosted() }
            }
        }
    }

    private func verify(_ received: AsyncStream<[UInt8]>) async {
        for await payload in received {
            do {
                _ = try await self.desk.accept(Data(payload), via: .mesh, now: self.clock.currentDate())
            } catch {
                self.logger.warning("could not store an announcement from the mesh", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Publishes what the API accepted or LoRa brought: first the current ones accepted before this service ran
    /// (the broker may have been reset meanwhile; a copy the broker already has changes nothing), then each new
    /// one. The subscription comes first so nothing accepted in between is missed.
    private func publishPosted() async {
        let arrivals = self.desk.arrivals()
        do {
            for accepted in try self.desk.currentAccepted(at: self.clock.currentDate()) where Self.publishes(accepted.source) {
                await self.publish(accepted)
            }
        } catch {
            self.logger.warning("could not read the current announcements", metadata: ["error": "\(error)"])
        }
        for await accepted in arrivals where Self.publishes(accepted.source) {
            await self.publish(accepted)
        }
    }

    /// What goes to the broker: what an authority posted here, and what came over LoRa (the neighbours on the
    /// broker may not hear the radio). What came from the broker is there already.
    private static func publishes(_ source: AnnouncementSource) -> Bool { source != .mesh }

    private func publish(_ accepted: AcceptedAnnouncement) async {
        let remaining = accepted.announcement.expiresAt.timeIntervalSince(self.clock.currentDate())
        guard remaining > 0 else { return }
        do {
            try await self.uplink.publishAnnouncement(
                Array(accepted.envelope), named: accepted.topicName, expiry: .seconds(max(1, Int64(remaining.rounded(.up)))))
        } catch {
            // Not connected: libmosquitto sends it after reconnecting. Anything else: the neighbours miss it
            // until this box restarts or the authority posts again.
            self.logger.warning(
                "could not relay an announcement to the district",
                metadata: ["id": "\(accepted.announcement.id)", "error": "\(error)"])
        }
    }
}
