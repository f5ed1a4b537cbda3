import Foundation
import KiezboxCore
import MeshRelay
import Testing

@testable import KiezboxAgent

@Suite("Meshtastic configuration")
struct MeshtasticConfigurationTests {
    /// The [box] table and the [meshtastic] header take five lines: the body starts on line 6.
    static let header = "[box]\nid = \"b\"\ndistrict = \"d\"\n\n[meshtastic]\n"
    static let pilot = "pilot_box_id = 12\npilot_district_id = 3\n"

    func parse(_ body: String) throws(ConfigurationError) -> MeshtasticSettings? {
        try KiezboxConfiguration.parse(Self.header + body, file: "k.toml").uplinks.meshtastic
    }

    @Test("a radio on USB with the defaults: channel 1, everything sent and accepted, control not obeyed, half the allowance")
    func defaults() throws {
        let settings = try #require(try self.parse("port = \"/dev/ttyUSB0\"\n" + Self.pilot))
        #expect(settings.endpoint == .serial(path: "/dev/ttyUSB0"))
        #expect(settings.channelIndex == 1 && settings.channelName == nil)
        #expect(settings.sendTelemetry && settings.sendPilotUpdates)
        #expect(settings.statusInterval == .seconds(1800))
        #expect(settings.pilotBoxID == 12 && settings.pilotDistrictID == 3)
        #expect(settings.acceptPilotReadings && settings.pilotEmergenciesToBulletin)
        #expect(!settings.obeyPilotControl)
        #expect(settings.relayAnnouncements && settings.relayHelpRequests)
        #expect(settings.airtimeShare == 0.5)
        #expect(try KiezboxConfiguration.parse(Self.header.replacingOccurrences(of: "[meshtastic]\n", with: ""), file: "k.toml").uplinks.meshtastic == nil)
    }

    @Test(
        "host with and without a port (4403 by default), IPv6 in brackets",
        arguments: [
            ("127.0.0.1:4403", MeshtasticEndpoint.tcp(host: "127.0.0.1", port: 4403)), ("meshtasticd.local", .tcp(host: "meshtasticd.local", port: 4403)),
            ("192.168.4.1:14403", .tcp(host: "192.168.4.1", port: 14403)), ("[::1]:4403", .tcp(host: "::1", port: 4403)), ("[fd00::5]", .tcp(host: "fd00::5", port: 4403)),
        ]
    )
    func hosts(text: String, endpoint: MeshtasticEndpoint) throws {
        let settings = try #require(try self.parse("host = \"\(text)\"\nsend_pilot_updates = false\n"))
        #expect(settings.endpoint == endpoint)
        #expect(settings.pilotBoxID == nil)
    }

    @Test("every choice can be set")
    func choices() throws {
        let settings = try #require(try self.parse("""
            host = "127.0.0.1"
            channel = 2
            channel_name = "kiezbox"
            send_telemetry = false
            send_pilot_updates = true
            status_interval = "1h"
            pilot_box_id = 0
            pilot_district_id = 255
            accept_pilot_readings = false
            pilot_emergencies_to_bulletin = false
            obey_pilot_control = true
            relay_announcements = false
            relay_help_requests = false
            airtime_share = 0.8
            """))
        #expect(settings.channelIndex == 2 && settings.channelName == "kiezbox")
        #expect(!settings.sendTelemetry && settings.sendPilotUpdates)
        #expect(settings.statusInterval == .seconds(3600))
        #expect(settings.pilotBoxID == 0 && settings.pilotDistrictID == 255)
        #expect(!settings.acceptPilotReadings && !settings.pilotEmergenciesToBulletin && settings.obeyPilotControl)
        #expect(!settings.relayAnnouncements && !settings.relayHelpRequests)
        #expect(settings.airtimeShare == 0.8)
    }

    @Test(
        "mistakes are named with their line",
        arguments: [
            ("send_telemetry = true\n", "meshtastic", "missing port or host", nil),
            ("port = \"/dev/ttyUSB0\"\nhost = \"127.0.0.1\"\n" + pilot, "meshtastic.host", "not both", 2),
            ("port = \"ttyUSB0\"\n" + pilot, "meshtastic.port", "device path", 1),
            ("host = \"127.0.0.1:99999\"\n" + pilot, "meshtastic.host", "not a number from 1 to 65535", 1),
            ("host = \"::1:4403\"\n" + pilot, "meshtastic.host", "IPv6 address in brackets", 1),
            ("port = \"/dev/ttyUSB0\"\npilot_box_id = 12\n", "meshtastic.pilot_district_id", "send_pilot_updates needs", nil),
            ("port = \"/dev/ttyUSB0\"\n" + pilot + "pilot_box_id_x = 1\n", "meshtastic.pilot_box_id_x", "unknown key; did you mean 'pilot_box_id'?", 4),
            ("port = \"/dev/ttyUSB0\"\npilot_box_id = 256\npilot_district_id = 3\n", "meshtastic.pilot_box_id", "expected 0 to 255", 2),
            ("port = \"/dev/ttyUSB0\"\n" + pilot + "channel = 8\n", "meshtastic.channel", "expected 0 to 7", 4),
            ("port = \"/dev/ttyUSB0\"\n" + pilot + "channel_name = \"kiezbox-berlin\"\n", "meshtastic.channel_name", "at most 11 bytes", 4),
            ("port = \"/dev/ttyUSB0\"\n" + pilot + "airtime_share = 0\n", "meshtastic.airtime_share", "above 0", 4),
            ("port = \"/dev/ttyUSB0\"\n" + pilot + "airtime_share = 1.5\n", "meshtastic.airtime_share", "expected 0.0 to 1.0", 4),
            ("port = \"/dev/ttyUSB0\"\n" + pilot + "status_interval = \"10s\"\n", "meshtastic.status_interval", "at least", 4),
            ("port = \"/dev/ttyUSB0\"\n" + pilot + "obey_pilot_control = \"yes\"\n", "meshtastic.obey_pilot_control", "true or false", 4),
        ] as [(String, String, String, Int?)]
    )
    func errors(body: String, key: String, message: String, line: Int?) throws {
        do {
            _ = try self.parse(body)
            Issue.record("accepted: \(body)")
        } catch {
            #expect(error.key == key, "\(error)")
            #expect(error.message.contains(message), "\(error)")
            if let line { #expect(error.line == 5 + line, "\(error)") }
        }
    }
}
