import Crypto
import EmergencyPortal
import Foundation
import KiezboxCore
import KiezboxTestSupport
import Logging
import MeshRelay
import ReadingStore
import SwiftProtobuf
import Testing

@testable import KiezboxAgent

/// Two Kiezboxes, each with its own simulated Meshtastic radio (served on a real TCP socket, as meshtasticd
/// serves port 4403), on one simulated LoRa channel with a Kiezbox 2.0 pilot box and a stranger's radio. No MQTT:
/// everything between the boxes goes over LoRa alone.
@Suite("Meshtastic bridge: two boxes and a pilot box on one LoRa channel", .timeLimit(.minutes(3)))
struct MeshtasticBridgeTests {
    static let district = "xhain"

    /// One box: its store, desk, radio link, transmitter, bridge and status uplink.
    struct Box {
        let directory: String
        let store: ReadingStore
        let desk: AnnouncementDesk
        let radio: SimulatedMeshtasticRadio
        let server: SimulatedMeshtasticTCPServer
        let link: MeshtasticRadioLink
        let transmitter: MeshtasticTransmitter
        let bridge: MeshtasticBridgeService<LiveClock>
        let uplink: MeshtasticUplink

        init(
            _ boxID: String, node: UInt32, pilotID: UInt32, channel: SimulatedMeshChannel, keys: [AnnouncementKey],
            configure: (inout MeshtasticSettings) -> Void = { _ in }
        ) throws {
            let logger = Logger(label: boxID)
            self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-lora-\(UUID().uuidString)").path
            self.store = try ReadingStore(directory: self.directory)
            self.desk = AnnouncementDesk(keys: keys, district: MeshtasticBridgeTests.district, store: self.store, logger: logger)
            self.radio = SimulatedMeshtasticRadio(.init(nodeNumber: node, longName: "Kiezbox \(boxID)", shortName: "KB"), channel: channel)
            self.server = SimulatedMeshtasticTCPServer(radio: self.radio)
            let port = try self.server.start()
            var settings = MeshtasticSettings(
                endpoint: .tcp(host: "127.0.0.1", port: port), channelIndex: 1, channelName: "kiezbox", sendTelemetry: true,
                sendPilotUpdates: true, statusInterval: .seconds(1800), pilotBoxID: pilotID, pilotDistrictID: 3, acceptPilotReadings: true,
                pilotEmergenciesToBulletin: true, obeyPilotControl: false, relayAnnouncements: true, relayHelpRequests: true,
                airtimeShare: 0.5)
            configure(&settings)
            self.link = MeshtasticRadioLink(endpoint: settings.endpoint, clock: LiveClock(), logger: logger)
            self.transmitter = MeshtasticTransmitter(
                link: self.link, store: self.store, channel: settings.channelIndex, airtimeShare: settings.airtimeShare, clock: LiveClock(),
                logger: logger)
            var bridge = MeshtasticBridgeService(
                link: self.link, transmitter: self.transmitter, settings: settings, store: self.store, desk: self.desk,
                identity: BoxIdentity(district: MeshtasticBridgeTests.district, boxID: boxID, name: boxID), clock: LiveClock(), logger: logger)
            bridge.crisisCheckInterval = .milliseconds(200)
            bridge.linkRecordInterval = .milliseconds(200)
            self.bridge = bridge
            self.uplink = MeshtasticUplink(
                configuration: .init(pilotUpdate: try KiezboxPilotUpdateEncoder(boxID: Int(pilotID), districtID: 3)),
                transmitter: self.transmitter, mode: { [store] in (try? store.mode()) ?? .normal }, clock: LiveClock(), logger: logger)
        }
    }

    @Test("an announcement accepted by A reaches B over LoRa alone and is verified there; a forgery is refused on B")
    func announcementsAndPilotTraffic() async throws {
        let signer = AnnouncementSigner(keyID: "ba-xhain", privateKey: Curve25519.Signing.PrivateKey())
        let keys = [AnnouncementKey(keyID: "ba-xhain", issuer: "Bezirksamt", publicKey: signer.privateKey.publicKey)]
        let channel = SimulatedMeshChannel()
        let a = try Box("wrangelkiez-01", node: 0x0A0A_0001, pilotID: 201, channel: channel, keys: keys)
        let b = try Box("reichenberger-02", node: 0x0B0B_0002, pilotID: 202, channel: channel, keys: keys)
        let pilot = SimulatedPilotBox(nodeNumber: 0x1700_0017, boxID: 17, districtID: 3, channel: channel)
        let stranger = SimulatedMeshtasticRadio(.init(nodeNumber: 0xBAD0_0BAD, longName: "Stranger", shortName: "ST"), channel: channel)
        defer {
            for box in [a, b] { try? FileManager.default.removeItem(atPath: box.directory) }
        }
        let services = Task {
            try await withThrowingDiscardingTaskGroup { group in
                for box in [a, b] { group.addTask { try await box.bridge.run() } }
            }
        }
        defer { services.cancel() }
        _ = try await a.link.waitUntilReady()
        _ = try await b.link.waitUntilReady()

        // A is in crisis mode: what an authority posts there goes out over LoRa.
        try await a.store.setMode(.crisis)
        let now = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        let payload = AnnouncementPayload(
            id: "stromausfall-1", district: Self.district, issuedAt: now, expiresAt: now.addingTimeInterval(3600), severity: .severe,
            headline: ["de": "Stromausfall", "en": "Power cut", "tr": "Elektrik kesintisi"],
            body: [
                "de": "Trinkwasser und Strom zum Laden gibt es am Leuchtturm in der Wrangelstraße 10.",
                "en": "Drinking water and power for charging at the Leuchtturm, Wrangelstraße 10.",
                "tr": "İçme suyu ve şarj için elektrik Wrangelstraße 10'daki Leuchtturm'da.",
            ])
        let envelope = try signer.sign(payload).json()
        guard case .accepted(let accepted) = try await a.desk.accept(envelope, via: .api, now: now) else {
            Issue.record("box A did not accept the announcement")
            return
        }
        let shown = try await eventually("box B showing the announcement heard over LoRa") { try b.desk.current(at: Date()).first }
        #expect(shown == accepted.announcement)
        #expect(try b.desk.currentAccepted(at: Date()).map(\.source) == [.lora])
        #expect(try b.desk.currentAccepted(at: Date()).map(\.envelope) == [envelope])
        let fragments = channel.transmissions.filter { $0.sender == a.radio.nodeNumber && $0.packet.decoded.portnum == .privateApp }
        #expect(fragments.count == (try AnnouncementFragmenter.payloads(for: CompactAnnouncement(envelopeJSON: envelope))).count)
        // B may hear the last fragment before A has its acknowledgement and charged the ledger.
        let ledger = try await eventually("box A charging every fragment") { () throws -> [MeshtasticAirtimeEntry]? in
            let ledger = try a.store.meshtasticAirtime(since: .distantPast)
            return ledger.count == fragments.count ? ledger : nil
        }
        #expect(ledger.allSatisfy { $0.traffic == "crisis" && $0.port == 256 })
        print("announcement of \(envelope.count) bytes of JSON went over LoRa in \(fragments.count) fragments, "
            + "\(ledger.reduce(0) { $0 + $1.bytes }) bytes and \(ledger.reduce(Duration.zero) { $0 + $1.airtime }) on air")

        // The stranger sends a changed text under the authority's signature, in well-formed fragments.
        let genuine = try AnnouncementEnvelope(json: envelope)
        var altered = try AnnouncementPayload(json: genuine.payload)
        altered.id = "stromausfall-2"
        altered.body["de"] = "Evakuierung: alle sofort zum Görlitzer Park."
        let forged = try CompactAnnouncement(keyID: genuine.keyID, payload: altered.json(), signature: genuine.signature)
        for fragment in try AnnouncementFragmenter.payloads(for: forged) {
            stranger.transmit(portnum: .privateApp, payload: fragment, channel: 1)
        }
        try await eventually("box B refusing the forgery") { b.desk.rejectionCounts()[.forged] == 1 ? true : nil }
        #expect(try b.desk.current(at: Date()) == [accepted.announcement])

        // A pilot box: its position, an update, an emergency button and a control message from the admin tools.
        pilot.sendPosition(latitude: 52.4995, longitude: 13.4410)
        pilot.sendUpdate(unixTime: Int64(now.timeIntervalSince1970), temperatureOutside: -3_500)
        pilot.sendEmergency(type: .fire, button: 2, unixTime: Int64(now.timeIntervalSince1970))
        pilot.sendControl(mode: .emergency)
        let neighbour = try await eventually("box B listing the pilot box") { try b.store.neighbours().first { $0.identity.boxID == "kb2-d3-b17" } }
        #expect(neighbour.path == "meshtastic")
        #expect(neighbour.identity.position?.latitude == 52.4995)
        let reading = try await eventually("box B storing the pilot's reading") { () async throws -> StoredReading? in
            _ = try await b.store.flush()
            return try b.store.readings(sensor: "kb2-d3-b17-out").first
        }
        #expect(reading.reading.quantity == .temperature && reading.reading.value == -3.5)
        #expect(reading.reading.measuredAt == now)
        let emergency = try await eventually("box B posting the emergency") { try b.store.openBulletinPosts(at: Date()).first { $0.origin == "kb2-d3-b17" } }
        #expect(emergency.kind == .request && emergency.category == .fire)
        let control = try await eventually("box B recording the control message") { try b.store.pilotControls().first }
        #expect(!control.obeyed)
        #expect(try b.store.modeOverride() == nil)

        // A help request typed on A's portal reaches B's bulletin, with A as its origin.
        _ = try await a.store.addBulletinPost(
            kind: .request, category: .water, text: "Brauche 10 l Wasser, 3. OG", place: "Wrangelstr. 12", createdAt: Date(),
            expiresAt: Date().addingTimeInterval(3600))
        let relayed = try await eventually("box B showing A's help request") {
            try b.store.openBulletinPosts(at: Date()).first { $0.origin == "\(Self.district)/wrangelkiez-01" }
        }
        #expect(relayed.text == "Brauche 10 l Wasser, 3. OG" && relayed.place == "Wrangelstr. 12" && relayed.category == .water)

        // A's status as standard telemetry and as a Kiezbox 2.0 update: B reads the update like a pilot box's.
        _ = try await a.uplink.deliver([
            StoredReading(id: 1, reading: Reading(sensorID: "bme280", quantity: .temperature, value: 21.5, measuredAt: Date())),
            StoredReading(id: 2, reading: Reading(sensorID: "battery", quantity: .voltage, value: 12.6, measuredAt: Date())),
        ])
        await a.uplink.sendStatusIfDue()
        let telemetry = channel.transmissions.filter { $0.sender == a.radio.nodeNumber && $0.packet.decoded.portnum == .telemetryApp }
        #expect(!telemetry.isEmpty)
        let asPilot = try await eventually("box B hearing A as a Kiezbox 2.0 box") { try b.store.neighbours().first { $0.identity.boxID == "kb2-d3-b201" } }
        #expect(asPilot.mode == .crisis)
        let account = try a.store.meshtasticAccount(airtimeShare: 0.5, now: Date())
        #expect(account.airtimeByTraffic["routine"] ?? 0 > 0 && account.airtimeByTraffic["crisis"] ?? 0 > 0)
        #expect(account.airtimeUsedSeconds < account.airtimeLimitSeconds)
        let link = try #require(try await eventually("box A recording its link") { try a.store.meshtasticLink().flatMap { $0.state == "ready" ? $0 : nil } })
        #expect(link.nodeNumber == a.radio.nodeNumber && link.channels == ["0:LongFast", "1:kiezbox"])

        services.cancel()
        _ = await services.result
        for box in [a, b] { await box.server.stop() }
    }

    @Test("the share holds: routine status stops at its part, crisis traffic still goes; the radio's own duty-cycle NAK is not charged")
    func airtimeShare() async throws {
        // A radio whose firmware allows 5 s per hour, and a box allowed 2 % of the band (7.2 s, 4.32 s of it routine).
        let channel = SimulatedMeshChannel(dutyCycleLimit: .seconds(5))
        let box = try Box("wrangelkiez-01", node: 0x0A0A_0001, pilotID: 201, channel: channel, keys: []) { $0.airtimeShare = 0.02 }
        defer { try? FileManager.default.removeItem(atPath: box.directory) }
        let link = Task { await box.link.run() }
        defer { link.cancel() }
        _ = try await box.link.waitUntilReady()
        let payload = [UInt8](repeating: 0x42, count: 40)
        var routine: [MeshtasticTransmitter.Result] = []
        while routine.last.map({ $0.wasSent }) ?? true {
            routine.append(await box.transmitter.broadcast(.telemetryApp, payload: payload, as: .routine))
        }
        guard case .overBudget(let next) = routine.last else {
            Issue.record("expected the share to stop routine traffic, got \(String(describing: routine.last))")
            return
        }
        #expect(next != nil)
        let routineAirtime = try box.store.meshtasticAirtime(since: .distantPast).reduce(Duration.zero) { $0 + $1.airtime }
        #expect(routineAirtime <= .milliseconds(4320))
        // Crisis traffic has the rest of the share; the radio's firmware limit (5 s) then refuses with a NAK before the share is spent.
        let crisis = await box.transmitter.broadcast(.privateApp, payload: payload, as: .crisis)
        #expect(crisis.wasSent, "\(crisis)")
        var refused: MeshtasticTransmitter.Result?
        for _ in 0..<10 {
            let result = await box.transmitter.broadcast(.privateApp, payload: payload, as: .crisis)
            if case .refused = result {
                refused = result
                break
            }
        }
        #expect(refused == .refused(.dutyCycleLimit))
        let ledger = try box.store.meshtasticAirtime(since: .distantPast)
        #expect(ledger.count == channel.transmissions.count, "a refused packet is not on air and not charged")
        print("share of 7.2 s/h: \(routine.count - 1) routine packets of 40 B (\(routineAirtime)), then crisis; the radio's 5 s limit NAKed after \(ledger.count) packets")
    }

    @Test("control messages are obeyed only where configured, and then only for the mode")
    func obeyingControl() async throws {
        let channel = SimulatedMeshChannel()
        let box = try Box("wrangelkiez-01", node: 0x0A0A_0001, pilotID: 201, channel: channel, keys: []) { $0.obeyPilotControl = true }
        let pilot = SimulatedPilotBox(nodeNumber: 0x1700_0017, boxID: 17, districtID: 3, channel: channel)
        defer { try? FileManager.default.removeItem(atPath: box.directory) }
        let service = Task { try await box.bridge.run() }
        defer { service.cancel() }
        _ = try await box.link.waitUntilReady()
        pilot.sendControl(mode: .emergency)
        // The override is set first, then the message recorded as obeyed.
        let obeyed = try await eventually("the box obeying the pilot's crisis mode") { try box.store.pilotControls().first }
        #expect(obeyed.obeyed)
        #expect(try box.store.modeOverride() == .crisis)
        pilot.sendControl(mode: .normal)
        try await eventually("the box ending the pilot's crisis mode") { try box.store.pilotControls().count == 2 ? true : nil }
        #expect(try box.store.modeOverride() == nil)
    }

    @Test("as an uplink it acknowledges every reading at once and sends only the box's own newest values")
    func liveOnlyUplink() async throws {
        let channel = SimulatedMeshChannel()
        let box = try Box("wrangelkiez-01", node: 0x0A0A_0001, pilotID: 201, channel: channel, keys: [])
        defer { try? FileManager.default.removeItem(atPath: box.directory) }
        let link = Task { await box.link.run() }
        defer { link.cancel() }
        _ = try await box.link.waitUntilReady()
        let now = Date()
        let batch = [
            StoredReading(id: 1, reading: Reading(sensorID: "roof", quantity: .temperature, value: 20.0, measuredAt: now.addingTimeInterval(-60))),
            StoredReading(id: 2, reading: Reading(sensorID: "roof", quantity: .temperature, value: 21.0, measuredAt: now)),
            // A pilot box's reading the bridge stored: acknowledged, never sent back to the mesh as ours.
            StoredReading(id: 3, reading: Reading(sensorID: "kb2-d3-b17-out", quantity: .temperature, value: -9.0, measuredAt: now)),
            // Too old to describe the box now.
            StoredReading(id: 4, reading: Reading(sensorID: "balcony", quantity: .relativeHumidity, value: 55, measuredAt: now.addingTimeInterval(-7200))),
        ]
        #expect(try await box.uplink.deliver(batch) == [1, 2, 3, 4])
        await box.uplink.sendStatusIfDue()
        let telemetry = try channel.transmissions.filter { $0.packet.decoded.portnum == .telemetryApp }.map {
            try Meshtastic_Telemetry(serializedBytes: $0.packet.decoded.payload)
        }
        let environment = try #require(telemetry.first { $0.environmentMetrics.hasTemperature })
        #expect(environment.environmentMetrics.temperature == 21.0)
        #expect(!environment.environmentMetrics.hasRelativeHumidity)
        #expect(box.uplink.statistics.readingsSkipped == 1)
        // Not due again until the interval has passed.
        let sent = channel.transmissions.count
        await box.uplink.sendStatusIfDue()
        #expect(channel.transmissions.count == sent)
    }
}
