import Crypto
import EmergencyPortal
import Foundation
import KiezboxCore
import KiezboxTestSupport
import Logging
import MeshRelay
import ReadingStore
import Testing

@testable import KiezboxAgent

/// Two boxes of one district on a real mosquitto: an announcement posted to box A reaches box B over the
/// retained district topic; a forgery published on the same topic is refused and counted by B.
@Suite("Announcement relay over MQTT", .timeLimit(.minutes(2)))
struct AnnouncementRelayTests {
    /// One box: its store, desk, uplink and relay service.
    struct Box {
        let directory: String
        let store: ReadingStore
        let desk: AnnouncementDesk
        let uplink: MQTTUplink
        let service: AnnouncementRelayService<LiveClock>

        init(_ boxID: String, port: Int, keys: [AnnouncementKey]) throws {
            self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-relay-\(UUID().uuidString)").path
            self.store = try ReadingStore(directory: self.directory)
            self.desk = AnnouncementDesk(keys: keys, district: "xhain", store: self.store, logger: Logger(label: boxID))
            self.uplink = try MQTTUplink(
                configuration: MQTTUplink.Configuration(
                    host: "127.0.0.1", port: port, acknowledgementTimeout: .seconds(10),
                    reconnectDelay: .init(initial: .milliseconds(100), maximum: .milliseconds(500))),
                sender: SenderIdentity(
                    box: BoxIdentity(district: "xhain", boxID: boxID, name: boxID), storeInstance: self.store.instanceID))
            self.service = AnnouncementRelayService(uplink: self.uplink, desk: self.desk, clock: LiveClock(), logger: Logger(label: boxID))
        }
    }

    @Test("A publishes what the API accepted, retained; B shows it; B refuses and counts a forgery on the topic")
    func relayBetweenBoxes() async throws {
        let signer = AnnouncementSigner(keyID: "ba-xhain", privateKey: Curve25519.Signing.PrivateKey())
        let keys = [AnnouncementKey(keyID: "ba-xhain", issuer: "Bezirksamt", publicKey: signer.privateKey.publicKey)]
        try await MosquittoBroker.with { broker in
            let a = try Box("wrangelkiez-01", port: broker.port, keys: keys)
            let b = try Box("reichenberger-02", port: broker.port, keys: keys)
            defer {
                try? FileManager.default.removeItem(atPath: a.directory)
                try? FileManager.default.removeItem(atPath: b.directory)
            }
            try await a.uplink.start()
            try await b.uplink.start()
            try await a.uplink.waitUntilConnected(timeout: .seconds(10))
            try await b.uplink.waitUntilConnected(timeout: .seconds(10))
            let services = Task {
                try await withThrowingDiscardingTaskGroup { group in
                    group.addTask { try await a.service.run() }
                    group.addTask { try await b.service.run() }
                }
            }

            let now = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
            let payload = AnnouncementPayload(
                id: "stromausfall-1", district: "xhain", issuedAt: now, expiresAt: now.addingTimeInterval(3600), severity: .severe,
                headline: ["de": "Stromausfall"], body: ["de": "Trinkwasser am Leuchtturm."])
            let envelope = try signer.sign(payload).json()
            guard case .accepted(let accepted) = try await a.desk.accept(envelope, via: .api, now: now) else {
                Issue.record("box A did not accept the announcement")
                return
            }

            let shown = try await eventually("box B showing the announcement") {
                try b.desk.current(at: Date()).first
            }
            #expect(shown == accepted.announcement)
            #expect(try b.desk.currentAccepted(at: Date()).map(\.source) == [.mesh])
            #expect(try b.desk.currentAccepted(at: Date()).map(\.envelope) == [envelope])

            // Retained, byte for byte: a box that connects later gets it too.
            let late = try await TestSubscriber.connected(port: broker.port, filter: "kiezbox/v1/xhain/announcements/+")
            let retained = try #require(try await late.waitForMessages(1).first)
            #expect(retained.topic == "kiezbox/v1/xhain/announcements/ba-xhain:stromausfall-1")
            #expect(retained.retain)
            #expect(retained.qos == .atLeastOnce)
            #expect(Data(retained.payload) == envelope)

            // An attacker with access to the broker publishes a changed text under the authority's signature.
            let genuine = try AnnouncementEnvelope(json: envelope)
            let altered = Data(String(decoding: genuine.payload, as: UTF8.self).replacingOccurrences(of: "Trinkwasser", with: "Evakuierung").utf8)
            let forged = AnnouncementEnvelope(keyID: genuine.keyID, payload: altered, signature: genuine.signature).json()
            try late.client.publish(
                topic: "kiezbox/v1/xhain/announcements/ba-xhain:stromausfall-2", payload: Array(forged), qos: .atLeastOnce, retain: true)
            try await eventually("box B counting the forgery") { b.desk.rejectionCounts()[.forged] == 1 ? true : nil }
            #expect(try b.desk.current(at: Date()) == [accepted.announcement])
            #expect(try b.store.rememberedAnnouncements().count == 1)
            await late.stop()

            services.cancel()
            _ = await services.result
            await a.uplink.stop()
            await b.uplink.stop()
        }
    }
}
