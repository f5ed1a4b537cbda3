import Foundation
import KiezboxCore
import KiezboxTestSupport
import MeshRelay
import SensorDrivers
import Synchronization
import Testing

@testable import KiezboxAgent

@Suite("kiezbox doctor: the Meshtastic radio")
struct DoctorMeshtasticTests {
    static let pilot = "pilot_box_id = 7\npilot_district_id = 3\n"

    func configuration(_ meshtastic: String, extra: String = "") throws -> KiezboxConfiguration {
        try KiezboxConfiguration.parse(DoctorTests.box + extra + "[meshtastic]\n" + meshtastic + Self.pilot, file: "k.toml")
    }

    func examine(_ meshtastic: String, timeout: Duration = .seconds(20), simulated: Bool = true, extra: String = "") async throws -> [DoctorFinding] {
        let configuration = try self.configuration(meshtastic, extra: extra)
        return await Doctor(configuration: configuration, buses: LinuxBuses(), simulated: simulated, answerTimeout: timeout).examine()
    }

    func radioFinding(_ findings: [DoctorFinding]) throws -> DoctorFinding {
        let radio = findings.filter { $0.sensor == "meshtastic" && $0.status != .ok && $0.status != .problem }
        #expect(radio.count == 1, "\(findings)")
        return try #require(radio.first, "no Meshtastic finding in \(findings)")
    }

    static func radio(on channel: SimulatedMeshChannel, channels: [MeshtasticChannel]? = nil) -> SimulatedMeshtasticRadio {
        var configuration = SimulatedMeshtasticRadio.Configuration(nodeNumber: 0x4B1E_0002, longName: "Kiezbox Wrangel", shortName: "KBW")
        if let channels { configuration.channels = channels }
        return SimulatedMeshtasticRadio(configuration, channel: channel)
    }

    @Test("meshtasticd over TCP: node number, firmware, hardware and channels; the configured channel is there; nothing went on air")
    func foundOverTCP() async throws {
        let channel = SimulatedMeshChannel()
        let server = SimulatedMeshtasticTCPServer(radio: Self.radio(on: channel))
        let port = try server.start()
        let radio = try self.radioFinding(try await self.examine("host = \"127.0.0.1:\(port)\"\nchannel_name = \"kiezbox\"\n"))
        await server.stop()
        #expect(radio.status == .found, "\(radio)")
        #expect(radio.chip == "HELTECV3")
        #expect(radio.place == "127.0.0.1:\(port)")
        #expect(radio.detail == "node !4b1e0002 \"Kiezbox Wrangel\", firmware 2.5.20.4c97351, HELTECV3, channels 0:LongFast, 1:kiezbox; channel 1 is there")
        #expect(radio.fix == nil)
        #expect(server.radio.packetsFromClient.isEmpty && channel.transmissions.isEmpty)
        #expect(server.radio.wantConfigCount == 1)
    }

    @Test("a radio on a real serial line whose channel 1 has another name: found, with the rename to do; its port is accounted for")
    func foundOnSerialWithOtherChannelName() async throws {
        let channel = SimulatedMeshChannel()
        let radio = Self.radio(on: channel, channels: [MeshtasticChannel(index: 0, name: "", role: .primary), MeshtasticChannel(index: 1, name: "Kiez", role: .secondary)])
        let line = try SimulatedMeshtasticSerialLine(radio: radio)
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-doctor-meshtastic-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: data) }
        // The simulated line hands the handshake over in 1–7-byte pieces with pauses between, as a USB-serial chip
        // does; on a loaded machine each pause can take many times its length, so the hang guard is generous.
        let findings = try await self.examine(
            "port = \"\(line.path)\"\nchannel_name = \"kiezbox\"\n", timeout: .seconds(120), simulated: false,
            extra: "[store]\ndata_dir = \"\(data)\"\n\n")
        await line.unplug()
        let finding = try self.radioFinding(findings)
        #expect(finding.status == .found, "\(finding)")
        #expect(finding.detail.contains("channels 0:(default), 1:Kiez"), "\(finding.detail)")
        #expect(finding.detail.hasSuffix("channel 1 is named \"Kiez\", not \"kiezbox\""), "\(finding.detail)")
        #expect(finding.fix?.contains("channel_name = \"Kiez\"") == true, "\(String(describing: finding.fix))")
        // Its device node is checked like a serial sensor's.
        let access = try #require(findings.first { $0.status == .ok && $0.place == line.path }, "\(findings)")
        #expect(access.sensor == "meshtastic")
        #expect(radio.packetsFromClient.isEmpty && channel.transmissions.isEmpty)
    }

    @Test("the configured channel index is not on the radio: wrong, with the channel to add")
    func channelMissing() async throws {
        let channel = SimulatedMeshChannel()
        let server = SimulatedMeshtasticTCPServer(radio: Self.radio(on: channel))
        let port = try server.start()
        let radio = try self.radioFinding(try await self.examine("host = \"127.0.0.1:\(port)\"\nchannel = 3\n"))
        await server.stop()
        #expect(radio.status == .wrong, "\(radio)")
        #expect(radio.detail.hasSuffix("; no channel 3"), "\(radio.detail)")
        #expect(radio.fix?.contains("add channel 3") == true, "\(String(describing: radio.fix))")
    }

    @Test("nothing listens on the TCP port: missing, meshtasticd to start")
    func nothingListening() async throws {
        // An address of its own, so no other test's listener can take the port once it is free.
        let server = SimulatedMeshtasticTCPServer(radio: Self.radio(on: SimulatedMeshChannel()), host: "127.77.0.2")
        let port = try server.start()
        await server.stop()
        let radio = try self.radioFinding(try await self.examine("host = \"127.77.0.2:\(port)\"\n"))
        #expect(radio.status == .missing, "\(radio)")
        #expect(radio.detail.contains("refused"), "\(radio.detail)")
        #expect(radio.fix?.contains("systemctl start meshtasticd") == true, "\(String(describing: radio.fix))")
    }

    @Test("no such serial port: missing, with the radio to plug in")
    func noSuchPort() async throws {
        let radio = try self.radioFinding(try await self.examine("port = \"/dev/ttyUSB-kiezbox-test-none\"\n"))
        #expect(radio.status == .missing, "\(radio)")
        #expect(radio.fix?.contains("plug the radio in") == true, "\(String(describing: radio.fix))")
    }

    @Test("a device that prints only text (a GPS, a console): missing, no Meshtastic frame, with the device and speed to check")
    func wrongDevice() async throws {
        let terminal = try PseudoTerminal()
        defer { terminal.closeMaster() }
        let pump = PseudoTerminalDevice(terminal: terminal, device: ChattyDevice(), splitsWrites: false)
        let pumping = Task { await pump.run() }
        let findings = try await self.examine("port = \"\(terminal.slavePath)\"\n", timeout: .seconds(3))
        pumping.cancel()
        await pumping.value
        let radio = try self.radioFinding(findings)
        #expect(radio.status == .missing, "\(radio)")
        #expect(radio.detail.hasPrefix("no answer to want_config: heard "), "\(radio.detail)")
        #expect(radio.detail.hasSuffix(" bytes, no Meshtastic frame"), "\(radio.detail)")
        #expect(radio.fix?.contains("115200") == true, "\(String(describing: radio.fix))")
        // What the doctor wrote: the wake-up and want_config, no packet.
        var decoder = MeshtasticToRadioDecoder()
        decoder.append(pump.receivedFromHost)
        var sent: [Meshtastic_ToRadio] = []
        while let frame = decoder.next() { sent.append(frame.message) }
        #expect(sent.count >= 1 && sent.allSatisfy { if case .wantConfigID = $0.payloadVariant { true } else { false } }, "\(sent)")
        #expect(pump.receivedFromHost.starts(with: MeshtasticFraming.wakeSequence))
    }
}

/// A serial device that prints a line of text every 50 ms and never answers.
final class ChattyDevice: SimulatedSerialDevice {
    private let last = Mutex<Duration?>(nil)
    func received(_ bytes: [UInt8], at time: Duration) -> [UInt8] { [] }
    func transmissions(upTo time: Duration) -> [UInt8] {
        self.last.withLock { last in
            guard last.map({ time - $0 >= .milliseconds(50) }) ?? true else { return [] }
            last = time
            return Array("$GPGGA,120001.00,5232.5740,N,01320.9640,E,1,08,1.0,38.0,M,,,*5B\r\n".utf8)
        }
    }
}
