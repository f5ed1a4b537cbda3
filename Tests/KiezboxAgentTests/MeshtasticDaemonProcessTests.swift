import Foundation
import KiezboxCore
import KiezboxTestSupport
import MeshRelay
import ReadingStore
import SwiftProtobuf
import Testing

/// `kiezbox run` with `[meshtastic]` as a real process, its radio a simulated one served on TCP like meshtasticd's
/// port 4403, on a simulated LoRa channel with a Kiezbox 2.0 pilot box: what the mesh hears from the box, and what
/// `kiezbox status`, `/metrics`, the situation feed and the info page show of the mesh.
@Suite("kiezbox run with a Meshtastic radio as a real process (DaemonProcess)", .serialized, .timeLimit(.minutes(5)))
struct MeshtasticDaemonProcessTests {
    struct StatusJSON: Decodable {
        struct Meshtastic: Decodable {
            var account: Account
        }

        struct Account: Decodable {
            var airtimeUsedSeconds: Double
            var airtimeLimitSeconds: Double
            var packetsSent: Int
            var link: MeshtasticLinkRecord?
        }

        var meshtastic: Meshtastic?
    }

    func status(_ arguments: [String], in directory: String) async throws -> StatusJSON.Account? {
        let run = try await runProgram([kiezboxBinary, "status", "--json"] + arguments, in: directory)
        guard run.status == 0 else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(StatusJSON.self, from: Data(run.output.utf8)).meshtastic?.account
    }

    func fetch(_ url: String, in directory: String) async throws -> String {
        let run = try await runProgram(["/usr/bin/curl", "-sS", "--noproxy", "*", "--max-time", "20", url], in: directory)
        try #require(run.status == 0, "\(run.all)")
        return run.output
    }

    @Test("the box's status reaches the mesh as telemetry and a Kiezbox 2.0 update; the pilot box shows in status, feed and page")
    func daemonOnTheMesh() async throws {
        try requireProgram("/usr/bin/curl", package: "curl")
        let directory = try temporaryDirectory("kiezbox-meshtastic-process")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let channel = SimulatedMeshChannel()
        let radio = SimulatedMeshtasticRadio(.init(nodeNumber: 0x4B1E_0001, longName: "Kiezbox test-box", shortName: "KBT"), channel: channel)
        let server = SimulatedMeshtasticTCPServer(radio: radio)
        let radioPort = try server.start()
        let pilot = SimulatedPilotBox(nodeNumber: 0x1700_0017, boxID: 17, districtID: 3, channel: channel)
        let portalPort = try MosquittoBroker.freePort()
        let configuration = DaemonProcessTests.configuration + """

            [portal]
            listen = "127.0.0.1"
            port = \(portalPort)
            https_port = \(try MosquittoBroker.freePort())

            [meshtastic]
            host = "127.0.0.1:\(radioPort)"
            pilot_box_id = 42
            pilot_district_id = 3

            """
        try configuration.write(toFile: directory + "/kiezbox.toml", atomically: true, encoding: .utf8)
        let arguments = ["--config", directory + "/kiezbox.toml", "--data-dir", directory + "/data"]
        let daemon = try SpawnedDaemon([kiezboxBinary, "run"] + arguments, in: directory)
        defer {
            daemon.signal(SIGKILL)
            _ = reapedStatus(daemon.pid, blocking: true)
        }

        // The first status goes out as soon as the relay handed over the first readings; the link's state is
        // recorded for other processes every few seconds.
        let account = try await eventually("the box's status on the mesh (kiezbox status)") { () async throws -> StatusJSON.Account? in
            guard let account = try await self.status(arguments, in: directory), account.packetsSent >= 2, account.link?.state == "ready"
            else { return nil }
            return account
        }
        #expect(account.link?.nodeNumber == radio.nodeNumber, "\(account)")
        #expect(account.airtimeLimitSeconds == 180)
        #expect(account.airtimeUsedSeconds > 0 && account.airtimeUsedSeconds < account.airtimeLimitSeconds)
        let sent = channel.transmissions.filter { $0.sender == radio.nodeNumber }
        let telemetry = try sent.filter { $0.packet.decoded.portnum == .telemetryApp }.map { try Meshtastic_Telemetry(serializedBytes: $0.packet.decoded.payload) }
        let environment = try #require(telemetry.first { $0.environmentMetrics.hasTemperature }, "\(sent.map(\.packet.decoded.portnum))")
        #expect((-40...60).contains(environment.environmentMetrics.temperature))
        let update = try #require(sent.first { $0.packet.decoded.portnum == .kiezboxControlApp })
        let message = try Meshtastic_KiezboxMessage(serializedBytes: update.packet.decoded.payload)
        #expect(message.update.meta.boxID == 42 && message.update.meta.distID == 3)
        let sizes = try sent.map { transmission -> String in
            let dataLength = try transmission.packet.decoded.serializedData().count
            return "\(transmission.packet.decoded.portnum) \(MeshtasticAirtime.bytesOnAir(dataLength: dataLength)) B"
        }
        print("the box's status on the mesh: " + sizes.joined(separator: ", "))

        // A pilot box nearby: its position, an update, an emergency button.
        let now = Int64(Date().timeIntervalSince1970)
        pilot.sendPosition(latitude: 52.4995, longitude: 13.4410)
        pilot.sendUpdate(unixTime: now, temperatureOutside: 4_250)
        pilot.sendEmergency(type: .medical, button: 1, unixTime: now)
        let feed = try await eventually("the pilot box in the situation feed") { () async throws -> String? in
            let feed = try await self.fetch("http://127.0.0.1:\(portalPort)/api/v1/situation.geojson", in: directory)
            return feed.contains("kb2-d3-b17") && feed.contains("\"kind\":\"request\"") ? feed : nil
        }
        #expect(feed.contains("13.441"), "\(feed)")
        let page = try await self.fetch("http://127.0.0.1:\(portalPort)/", in: directory)
        #expect(page.contains("· kb2-d3-b17"), "\(page)")
        let text = try await runProgram([kiezboxBinary, "status"] + arguments, in: directory)
        #expect(text.output.contains("Meshtastic (last hour)") && text.output.contains("!4b1e0001"), "\(text.output)")
        #expect(text.output.contains("kb2-d3-b17") && text.output.contains("via meshtastic"), "\(text.output)")
        let metrics = try await self.fetch("http://127.0.0.1:\(portalPort)/metrics", in: directory)
        #expect(LoRaWANDaemonProcessTests.gauge("kiezbox_meshtastic_link_up", in: metrics) == 1, "\(metrics)")
        #expect((LoRaWANDaemonProcessTests.gauge("kiezbox_meshtastic_airtime_used_seconds", in: metrics) ?? 0) > 0, "\(metrics)")

        daemon.signal(SIGTERM)
        let exited = try await eventually("the daemon to stop") { reapedStatus(daemon.pid) }
        #expect(exited == 0, "\(daemon.stderr)")
        await server.stop()
    }

    @Test("a simulated kit with [meshtastic] on a serial port has a simulated radio, and hears a simulated pilot box")
    func simulatedRadio() async throws {
        let directory = try temporaryDirectory("kiezbox-meshtastic-simulated")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = DaemonProcessTests.configuration + """

            [meshtastic]
            port = "/dev/ttyUSB0"
            pilot_box_id = 42
            pilot_district_id = 3

            """
        try configuration.write(toFile: directory + "/kiezbox.toml", atomically: true, encoding: .utf8)
        let arguments = ["--config", directory + "/kiezbox.toml", "--data-dir", directory + "/data"]
        let doctor = try await runProgram([kiezboxBinary, "doctor"] + arguments, in: directory)
        #expect(doctor.output.contains("!4b1e5100"), "\(doctor.all)")
        let daemon = try SpawnedDaemon([kiezboxBinary, "run"] + arguments, in: directory)
        defer {
            daemon.signal(SIGKILL)
            _ = reapedStatus(daemon.pid, blocking: true)
        }
        let account = try await eventually("the simulated radio ready and the status sent") { () async throws -> StatusJSON.Account? in
            guard let account = try await self.status(arguments, in: directory), account.packetsSent >= 2, account.link?.state == "ready"
            else { return nil }
            return account
        }
        #expect(account.link?.endpoint == "/dev/ttyUSB0")
        let text = try await eventually("the simulated pilot box among the neighbours") { () async throws -> String? in
            let run = try await runProgram([kiezboxBinary, "status"] + arguments, in: directory)
            return run.output.contains("kb2-d2-b11") ? run.output : nil
        }
        #expect(text.contains("via meshtastic"), "\(text)")
        daemon.signal(SIGTERM)
        let exited = try await eventually("the daemon to stop") { reapedStatus(daemon.pid) }
        #expect(exited == 0, "\(daemon.stderr)")
    }
}
