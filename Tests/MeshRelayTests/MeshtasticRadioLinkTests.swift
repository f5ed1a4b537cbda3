import Foundation
import KiezboxCore
import KiezboxTestSupport
import Logging
import MeshRelay
import SensorDrivers
import SwiftProtobuf
import Synchronization
import Testing

/// The radio link against the simulated radio over real byte streams: a pseudo-terminal opened by the production
/// serial port, and TCP on 127.0.0.1.
@Suite("Meshtastic radio link")
struct MeshtasticRadioLinkTests {
    static let quiet = Logger(label: "test.meshtastic") { _ in SwiftLogNoOpLogHandler() }
    static let ownNumber: UInt32 = 0x4B1E_0001

    /// Reconnects quickly: a real-time backoff is a hang guard, kept short.
    static var fastOptions: MeshtasticLinkOptions {
        var options = MeshtasticLinkOptions()
        options.initialReconnectDelay = .milliseconds(100)
        options.maximumReconnectDelay = .milliseconds(400)
        options.readPollInterval = .milliseconds(50)
        options.answerTimeout = .seconds(60)
        return options
    }

    /// The box's radio and, on the same air, a phone and a pilot box that have announced themselves.
    struct Mesh {
        let channel: SimulatedMeshChannel
        let radio: SimulatedMeshtasticRadio
        let phone: SimulatedMeshPhone
        let pilot: SimulatedPilotBox

        init(dutyCycleLimit: Duration = MeshtasticAirtime.bandAllowancePerHour, clock: some KiezboxClock = LiveClock()) {
            self.channel = SimulatedMeshChannel(dutyCycleLimit: dutyCycleLimit, clock: clock)
            self.radio = SimulatedMeshtasticRadio(nodeNumber: MeshtasticRadioLinkTests.ownNumber, longName: "Kiezbox Reuter", shortName: "KBR", channel: self.channel)
            self.phone = SimulatedMeshPhone(nodeNumber: 0xA11C_E001, longName: "Alice", shortName: "ALI", channel: self.channel)
            self.pilot = SimulatedPilotBox(nodeNumber: 0x9170_0007, boxID: 7, districtID: 3, channel: self.channel)
            self.phone.announce()
            self.pilot.announce()
        }
    }

    /// Runs `body` with a link running against `endpoint`, then stops it.
    func withLink<T>(
        _ endpoint: MeshtasticEndpoint, clock: some KiezboxClock = LiveClock(), options: MeshtasticLinkOptions = fastOptions,
        _ body: (MeshtasticRadioLink) async throws -> T
    ) async throws -> T {
        let link = MeshtasticRadioLink(endpoint: endpoint, clock: clock, logger: Self.quiet, options: options)
        let running = Task { await link.run() }
        defer { running.cancel() }
        let result = try await body(link)
        running.cancel()
        await running.value
        return result
    }

    func ready(_ link: MeshtasticRadioLink) async throws -> MeshtasticRadioInfo {
        try await eventually("the link to be ready", timeout: .seconds(60)) { link.radioInfo.flatMap { link.state.isReady ? $0 : nil } }
    }

    /// Every radio's handshake answer checked the same way.
    func expectHandshake(_ info: MeshtasticRadioInfo, _ link: MeshtasticRadioLink) {
        #expect(info.myNodeNumber == Self.ownNumber)
        #expect(info.userID == "!4b1e0001")
        #expect(info.firmwareVersion == "2.5.20.4c97351")
        #expect(info.hardwareModel == .heltecV3)
        #expect(info.hardwareModelName == "HELTECV3")
        #expect(info.channels.map(\.description) == ["0:LongFast", "1:kiezbox"])
        #expect(info.channels.map(\.role) == [.primary, .secondary])
        #expect(info.longName == "Kiezbox Reuter" && info.shortName == "KBR")
        #expect(info.region == .eu868 && info.hopLimit == 3)
        let nodes = Dictionary(uniqueKeysWithValues: link.nodes().map { ($0.number, $0) })
        #expect(nodes[0xA11C_E001]?.longName == "Alice")
        #expect(nodes[0x9170_0007]?.shortName == "KB7")
        #expect(nodes[Self.ownNumber]?.longName == "Kiezbox Reuter")
    }

    @Test("handshake on a real serial line: radio info and node database; the debug log between frames is skipped and counted")
    func handshakeOnSerial() async throws {
        let mesh = Mesh()
        let line = try SimulatedMeshtasticSerialLine(radio: mesh.radio)
        try await self.withLink(.serial(path: line.path)) { link in
            let info = try await link.waitUntilReady()
            self.expectHandshake(info, link)
            let statistics = link.statistics
            #expect(statistics.handshakes == 1)
            #expect(statistics.skippedBytes > 300, "the radio's log lines: \(statistics)")
            #expect(statistics.rejectedFrames == 0, "\(statistics)")
            #expect(statistics.framesIn >= 15, "\(statistics)")
        }
        await line.unplug()
    }

    @Test("handshake over TCP: the same radio info and node database, no log text on the stream")
    func handshakeOnTCP() async throws {
        let mesh = Mesh()
        let server = SimulatedMeshtasticTCPServer(radio: mesh.radio)
        let port = try server.start()
        try await self.withLink(.tcp(host: "127.0.0.1", port: port)) { link in
            let info = try await link.waitUntilReady()
            self.expectHandshake(info, link)
            #expect(link.statistics.skippedBytes == 0, "\(link.statistics)")
        }
        await server.stop()
    }

    @Test("a direct message is acknowledged by the destination; a broadcast only implicitly, by our own radio")
    func acknowledgements() async throws {
        let mesh = Mesh()
        let server = SimulatedMeshtasticTCPServer(radio: mesh.radio)
        let port = try server.start()
        try await self.withLink(.tcp(host: "127.0.0.1", port: port)) { link in
            _ = try await link.waitUntilReady()
            let direct = try await link.send(portnum: .textMessageApp, payload: Array("hi Alice".utf8), to: 0xA11C_E001, channel: 0)
            #expect(direct == .acknowledged)
            let broadcast = try await link.send(portnum: .kiezboxControlApp, payload: [0x22, 0x00], channel: 1)
            #expect(broadcast == .implicitlyAcknowledged)
            let unknown = try await link.send(portnum: .textMessageApp, payload: Array("anyone?".utf8), to: 0x0BAD_0BAD, channel: 0)
            #expect(unknown == .refused(.maxRetransmit))
            // The phone's radio got the message, from our node number, with the hop limit of the radio's config.
            let sent = try #require(mesh.channel.transmissions.first { $0.sender == Self.ownNumber })
            #expect(sent.packet.from == Self.ownNumber && sent.packet.to == 0xA11C_E001 && sent.packet.hopLimit == 3)
            #expect(sent.receivers.contains(0xA11C_E001))
            let statistics = link.statistics
            #expect(statistics.acknowledged == 1 && statistics.implicitlyAcknowledged == 1)
            #expect(statistics.refused == [.maxRetransmit: 1])
            #expect(statistics.packetsSent == 3)
        }
        await server.stop()
    }

    @Test("past the simulated duty-cycle limit the radio refuses with DUTY_CYCLE_LIMIT and says when to try again")
    func dutyCycleLimit() async throws {
        // About 0.4 s per packet on LONG_FAST: the limit is passed after a few.
        let mesh = Mesh(dutyCycleLimit: .seconds(1))
        let server = SimulatedMeshtasticTCPServer(radio: mesh.radio)
        let port = try server.start()
        try await self.withLink(.tcp(host: "127.0.0.1", port: port)) { link in
            _ = try await link.waitUntilReady()
            var outcomes: [MeshtasticSendOutcome] = []
            for index in 0..<8 {
                outcomes.append(try await link.send(portnum: .textMessageApp, payload: Array("status \(index)".utf8), channel: 1))
            }
            let accepted = outcomes.prefix { $0 == .implicitlyAcknowledged }.count
            print("Duty cycle: \(accepted) packets fit 1 s, airtime used \(mesh.channel.airtimeUsed(by: Self.ownNumber))")
            #expect(accepted >= 2 && accepted < 8, "\(outcomes)")
            #expect(outcomes.dropFirst(accepted).allSatisfy { $0 == .refused(.dutyCycleLimit) }, "\(outcomes)")
            #expect(mesh.channel.transmissions.filter { $0.sender == Self.ownNumber }.count == accepted)
            let notice = try await eventually("the radio's notification") { link.statistics.lastNotification }
            #expect(notice.hasPrefix("Duty cycle limit exceeded. You can send again in "), "\(notice)")
            #expect(notice.hasSuffix(" mins"), "\(notice)")
            #expect(link.statistics.refused[.dutyCycleLimit] == 8 - accepted)
        }
        await server.stop()
    }

    @Test("a payload above 233 bytes is refused before anything is sent; a raw client hears TOO_LARGE from the radio")
    func payloadTooLarge() async throws {
        let mesh = Mesh()
        let server = SimulatedMeshtasticTCPServer(radio: mesh.radio)
        let port = try server.start()
        try await self.withLink(.tcp(host: "127.0.0.1", port: port)) { link in
            _ = try await link.waitUntilReady()
            await #expect(throws: MeshtasticSendError.payloadTooLarge(234)) {
                _ = try await link.send(portnum: .privateApp, payload: [UInt8](repeating: 7, count: 234), channel: 1)
            }
            #expect(mesh.radio.packetsFromClient.isEmpty)
            #expect(try await link.send(portnum: .privateApp, payload: [UInt8](repeating: 7, count: 233), channel: 1) == .implicitlyAcknowledged)
        }
        await server.stop()
        // The radio's own check, for clients that do not make it (the link never lets such a packet out).
        mesh.radio.clientConnected()
        let oversized = Meshtastic_ToRadio.with {
            $0.packet = .with {
                $0.to = MeshtasticRadioLink.broadcast
                $0.id = 77
                $0.wantAck = true
                $0.decoded = .with {
                    $0.portnum = .privateApp
                    $0.payload = Data(repeating: 1, count: 240)
                }
            }
        }
        mesh.radio.receive(try MeshtasticFraming.frame(oversized))
        var decoder = MeshtasticFromRadioDecoder()
        decoder.append(mesh.radio.takeOutput(withLogText: false))
        var answers: [Meshtastic_Routing.Error] = []
        while let frame = decoder.next() {
            if case .packet(let packet) = frame.message.payloadVariant, packet.decoded.requestID == 77 {
                answers.append(try Meshtastic_Routing(serializedBytes: packet.decoded.payload).errorReason)
            }
        }
        #expect(answers == [.tooLarge])
    }

    @Test("a heartbeat every 300 s on the link's clock, each answered with a QueueStatus")
    func heartbeats() async throws {
        let clock = ManualClock()
        let mesh = Mesh()
        let server = SimulatedMeshtasticTCPServer(radio: mesh.radio)
        let port = try server.start()
        try await self.withLink(.tcp(host: "127.0.0.1", port: port), clock: clock) { link in
            _ = try await link.waitUntilReady()
            #expect(mesh.radio.heartbeatCount == 0)
            clock.advance(by: .seconds(299))
            for beat in 1...3 {
                clock.advance(by: .seconds(1))
                try await eventually("heartbeat \(beat) at the radio") { mesh.radio.heartbeatCount == beat ? true : nil }
                try await eventually("QueueStatus \(beat)") { link.statistics.queueStatusReceived >= beat ? true : nil }
                clock.advance(by: .seconds(299))
            }
            #expect(link.statistics.heartbeatsSent == 3)
            #expect(link.statistics.queueFree == 16)
            #expect(mesh.radio.heartbeatCount == 3)
        }
        await server.stop()
    }

    @Test("a reboot in the middle: rebooted, a new handshake, and packets flow again (serial)")
    func rebootOnSerial() async throws {
        let mesh = Mesh()
        let line = try SimulatedMeshtasticSerialLine(radio: mesh.radio)
        try await self.withLink(.serial(path: line.path)) { link in
            _ = try await link.waitUntilReady()
            #expect(try await link.send(portnum: .textMessageApp, payload: Array("before".utf8), channel: 0) == .implicitlyAcknowledged)
            mesh.radio.reboot()
            try await eventually("the reboot seen") { link.statistics.radioReboots == 1 ? true : nil }
            try await eventually("a second handshake") { link.statistics.handshakes == 2 && link.state.isReady ? true : nil }
            #expect(mesh.radio.wantConfigCount == 2)
            #expect(link.radioInfo?.rebootCount == 1)
            #expect(try await link.send(portnum: .textMessageApp, payload: Array("after".utf8), channel: 0) == .implicitlyAcknowledged)
            var packets = link.packets.makeAsyncIterator()
            mesh.phone.sendText("still there?")
            let packet = try #require(await packets.next())
            #expect(packet.from == 0xA11C_E001 && String(decoding: packet.payload, as: UTF8.self) == "still there?")
            #expect(link.statistics.reconnects == 0, "serial keeps the line through a reboot")
        }
        await line.unplug()
    }

    @Test("a reboot of meshtasticd's radio drops the TCP connection; the link reconnects and handshakes again")
    func rebootOnTCP() async throws {
        let mesh = Mesh()
        let server = SimulatedMeshtasticTCPServer(radio: mesh.radio)
        let port = try server.start()
        try await self.withLink(.tcp(host: "127.0.0.1", port: port)) { link in
            _ = try await link.waitUntilReady()
            mesh.radio.reboot()
            try await eventually("a second handshake") { link.statistics.handshakes >= 2 && link.state.isReady ? true : nil }
            #expect(server.connectionCount == 2)
            #expect(try await link.send(portnum: .textMessageApp, payload: Array("after".utf8), channel: 0) == .implicitlyAcknowledged)
        }
        await server.stop()
    }

    @Test("the cable pulled and plugged in again (a new tty behind the same by-id name): the link reconnects")
    func cablePulled() async throws {
        let mesh = Mesh()
        let line = try SimulatedMeshtasticSerialLine(radio: mesh.radio)
        try await self.withLink(.serial(path: line.path)) { link in
            _ = try await link.waitUntilReady()
            await line.unplug()
            try await eventually("the link to notice") { if case .disconnected = link.state { true } else { nil } }
            await #expect(throws: MeshtasticSendError.notConnected) {
                _ = try await link.send(portnum: .textMessageApp, payload: [1], channel: 0)
            }
            // While unplugged, attempts fail (no such port) and back off.
            try await eventually("failed attempts") { link.statistics.connectFailures >= 1 ? true : nil }
            try line.plugIn()
            try await eventually("ready again") { link.statistics.handshakes == 2 && link.state.isReady ? true : nil }
            #expect(link.statistics.reconnects == 1)
            #expect(try await link.send(portnum: .textMessageApp, payload: Array("back".utf8), channel: 0) == .implicitlyAcknowledged)
        }
        await line.unplug()
    }

    @Test("the cable pulled while a process started meanwhile still runs: the link notices all the same")
    func cablePulledWhileAnotherProcessRuns() async throws {
        let mesh = Mesh()
        let line = try SimulatedMeshtasticSerialLine(radio: mesh.radio)
        // A process spawned now (as other tests spawn daemons at any time) must not inherit the line's master:
        // while it held it, closing the master here would never hang the port up.
        var pid: pid_t = 0
        var argv: [UnsafeMutablePointer<CChar>?] = ["/bin/sleep", "60"].map { (argument: String) in strdup(argument) } + [nil]
        defer { argv.forEach { free($0) } }
        try #require(posix_spawn(&pid, "/bin/sleep", nil, nil, &argv, environ) == 0)
        defer {
            kill(pid, SIGKILL)
            waitpid(pid, nil, 0)
        }
        try await self.withLink(.serial(path: line.path)) { link in
            _ = try await link.waitUntilReady()
            await line.unplug()
            try await eventually("the link to notice", timeout: .seconds(20)) { if case .disconnected = link.state { true } else { nil } }
        }
    }

    @Test("meshtasticd not running: refused attempts back off, and the link connects once it starts; a stop and restart heals too")
    func serverNotRunning() async throws {
        let mesh = Mesh()
        // An address of its own, so no other test's listener can take the port while it is free.
        let server = SimulatedMeshtasticTCPServer(radio: mesh.radio, host: "127.77.0.1")
        let port = try server.start()
        await server.stop()
        try await self.withLink(.tcp(host: "127.77.0.1", port: port)) { link in
            try await eventually("refused attempts") { link.statistics.connectFailures >= 3 ? true : nil }
            guard case .disconnected(let reason) = link.state else {
                Issue.record("expected disconnected, got \(link.state)")
                return
            }
            #expect(reason.contains("refused"), "\(reason)")
            try server.start()
            _ = try await self.ready(link)
            await server.stop()
            try await eventually("the stop noticed") { link.state.isReady ? nil : true }
            try server.start()
            try await eventually("ready after the restart") { link.statistics.handshakes == 2 && link.state.isReady ? true : nil }
        }
        await server.stop()
    }

    @Test("the pilot box's KiezboxMessage and the phone's text and position arrive on `packets`; the node database learns them")
    func packetsFromTheMesh() async throws {
        let mesh = Mesh()
        let server = SimulatedMeshtasticTCPServer(radio: mesh.radio)
        let port = try server.start()
        try await self.withLink(.tcp(host: "127.0.0.1", port: port)) { link in
            _ = try await link.waitUntilReady()
            var packets = link.packets.makeAsyncIterator()
            mesh.pilot.sendUpdate(unixTime: 1_790_000_000, temperatureOutside: -2500)
            mesh.pilot.sendPosition(latitude: 52.5429, longitude: 13.3494, altitude: 38)
            mesh.phone.sendText("Wasser im Keller, Reuterstr. 12")
            mesh.phone.sendPosition(latitude: 52.4876, longitude: 13.4245)
            // A packet on a channel our radio cannot decrypt is counted, not delivered.
            mesh.radio.inject(.with {
                $0.from = 0x0E0E_0E0E
                $0.to = MeshtasticRadioLink.broadcast
                $0.id = 5
                $0.encrypted = Data([1, 2, 3, 4])
            })
            var received: [MeshtasticReceivedPacket] = []
            for _ in 0..<4 { received.append(try #require(await packets.next())) }
            let update = received[0]
            #expect(update.from == 0x9170_0007 && update.portnum == .kiezboxControlApp && update.channel == 1)
            #expect(update.rxRSSI == -97 && update.rxSNR == 6.25 && update.rxTime != nil && update.hopsAway == 0)
            let message = try Meshtastic_KiezboxMessage(serializedBytes: update.payload)
            #expect(message.update.meta.boxID == 7 && message.update.core.values.tempOut == -2500)
            #expect(received[1].portnum == .positionApp && received[2].portnum == .textMessageApp)
            #expect(String(decoding: received[2].payload, as: UTF8.self) == "Wasser im Keller, Reuterstr. 12")
            let nodes = Dictionary(uniqueKeysWithValues: link.nodes().map { ($0.number, $0) })
            let pilot = try #require(nodes[0x9170_0007])
            #expect(pilot.latitude == 52.5429 && pilot.longitude == 13.3494 && pilot.altitude == 38)
            #expect(pilot.rssi == -97 && pilot.lastHeard != nil)
            #expect(nodes[0xA11C_E001]?.latitude == 52.4876)
            try await eventually("the encrypted packet counted") { link.statistics.encryptedPackets == 1 ? true : nil }
            #expect(link.statistics.packetsReceived >= 5)
        }
        await server.stop()
    }

    @Test("a radio that stops answering: the handshake times out on the link's clock and the link tries again")
    func handshakeTimeout() async throws {
        let clock = ManualClock()
        let mesh = Mesh()
        let server = SimulatedMeshtasticTCPServer(radio: mesh.radio)
        let port = try server.start()
        var options = Self.fastOptions
        options.initialReconnectDelay = .seconds(1)
        let silent = SilentTransport()
        let link = MeshtasticRadioLink(endpoint: .tcp(host: "127.0.0.1", port: port), clock: clock, logger: Self.quiet, options: options) {
            () async throws(MeshtasticTransportError) -> any MeshtasticTransport in
            silent
        }
        let running = Task { await link.run() }
        try await eventually("handshaking") { link.state == .handshaking && silent.written.count > 0 ? true : nil }
        clock.advance(by: options.handshakeTimeout)
        // The backoff that follows sleeps on the manual clock: the link stays disconnected.
        let reason = try await eventually("the timeout") { () -> String? in
            if case .disconnected(let reason) = link.state { reason } else { nil }
        }
        #expect(link.statistics.handshakeTimeouts == 1)
        #expect(reason.contains("no config_complete_id"), "\(reason)")
        running.cancel()
        await running.value
        await server.stop()
    }
}

/// A byte stream that takes every write and never answers: a device that is no Meshtastic radio.
final class SilentTransport: MeshtasticTransport {
    private let bytes = Mutex<[UInt8]>([])
    var name: String { "silent" }
    var written: [UInt8] { self.bytes.withLock { $0 } }
    func read(maxCount: Int, timeout: Duration) async throws(MeshtasticTransportError) -> [UInt8] {
        try? await Task.sleep(for: .milliseconds(5))
        return []
    }
    func write(_ bytes: [UInt8]) async throws(MeshtasticTransportError) { self.bytes.withLock { $0 += bytes } }
    func close() {}
}
