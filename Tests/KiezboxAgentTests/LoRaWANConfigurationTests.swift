import KiezboxCore
import MeshRelay
import ReadingStore
import Testing

@testable import KiezboxAgent

@Suite("LoRaWAN configuration")
struct LoRaWANConfigurationTests {
    static let keys = """
        dev_eui = "70B3D57ED0012345"
        join_eui = "00:00:00:00:00:00:00:00"
        app_key = "2B7E1516 28AED2A6 ABF71588 09CF4F3C"
        """

    func parse(_ body: String) throws(ConfigurationError) -> LoRaWANSettings? {
        try KiezboxConfiguration.parse("[box]\nid = \"b\"\ndistrict = \"d\"\n\n[lorawan]\n" + body, file: "k.toml").uplinks.loRaWAN
    }

    @Test("keys in the console's spellings, with defaults for everything else")
    func defaults() throws {
        let settings = try #require(try self.parse("port = \"/dev/ttyUSB0\"\n" + Self.keys))
        #expect(settings.port == "/dev/ttyUSB0")
        #expect(settings.modem == nil)
        #expect(settings.keys.devEUI == [0x70, 0xB3, 0xD5, 0x7E, 0xD0, 0x01, 0x23, 0x45])
        #expect(settings.keys.joinEUI == [UInt8](repeating: 0, count: 8))
        #expect(settings.keys.appKey.first == 0x2B && settings.keys.appKey.last == 0x3C)
        #expect(settings.dataRate == nil)
        #expect(settings.payload == .compact)
        #expect(settings.reportInterval == .seconds(600))
        #expect(settings.fairUse == LoRaWANFairUse(uplinkAirtimePerDay: .seconds(30), downlinksPerDay: 10, crisisReserve: 0.25))
    }

    @Test("every choice can be set")
    func choices() throws {
        let settings = try #require(try self.parse("""
            port = "/dev/ttyAMA0"
            modem = "rak3172"
            baud_rate = 115200
            data_rate = 5
            payload_format = "cayenne-lpp"
            report_interval = "15m"
            crisis_summary_interval = "1h"
            airtime_per_day = "20s"
            downlinks_per_day = 5
            crisis_reserve = 0.5
            """ + "\n" + Self.keys))
        #expect(settings.modem == .rak3172)
        #expect(settings.baudRate == 115_200)
        #expect(settings.dataRate == 5)
        #expect(settings.payload == .cayenneLPP)
        #expect(settings.reportInterval == .seconds(900))
        #expect(settings.crisisSummaryInterval == .seconds(3600))
        #expect(settings.fairUse.uplinkAirtimePerDay == .seconds(20))
        #expect(settings.fairUse.downlinksPerDay == 5)
        #expect(settings.fairUse.crisisReserve == 0.5)
    }

    @Test(
        "mistakes are named with their line, and the AppKey is never repeated",
        arguments: [
            ("port = \"/dev/ttyUSB0\"\ndev_eui = \"70B3D57ED00123\"\njoin_eui = \"0000000000000000\"\napp_key = \"2B7E151628AED2A6ABF7158809CF4F3C\"\n",
             "lorawan.dev_eui", "expected 16 hex digits (8 bytes), found 14", 2),
            ("port = \"/dev/ttyUSB0\"\ndev_eui = \"70B3D57ED0012345\"\njoin_eui = \"0000000000000000\"\napp_key = \"2B7E151628AED2A6ABF7158809CF4F3X\"\n",
             "lorawan.app_key", "expected 32 hex digits", 4),
            ("port = \"/dev/ttyUSB0\"\ndev_eui = \"70B3D57ED0012345\"\njoin_eui = \"0000000000000000\"\n", "lorawan.app_key", "missing", nil),
            ("modem = \"rak\"\n", "lorawan.modem", "unknown modem 'rak'; known: auto, wio-e5, rak3172", 1),
            ("payload_format = \"json\"\n", "lorawan.payload_format", "known: compact, cayenne-lpp", 1),
            ("data_rate = 7\n", "lorawan.data_rate", "expected 0 to 5", 1),
            ("baud_rate = 9601\n", "lorawan.baud_rate", "unsupported baud rate 9601", 1),
            ("report_interval = \"10s\"\n", "lorawan.report_interval", "at least", 1),
            ("crisis_reserve = 1.5\n", "lorawan.crisis_reserve", "expected 0.0 to 0.9", 1),
            ("airtime_per_day = \"2h\"\n", "lorawan.airtime_per_day", "at most 1h", 1),
            ("app_eui = \"0000000000000000\"\n", "lorawan.app_eui", "unknown key", 1),
        ] as [(String, String, String, Int?)]
    )
    func errors(body: String, key: String, message: String, line: Int?) throws {
        let full = body.contains("port =") ? body : "port = \"/dev/ttyUSB0\"\n" + Self.keys + "\n" + body
        do {
            _ = try self.parse(full)
            Issue.record("accepted: \(full)")
        } catch {
            #expect(error.key == key, "\(error)")
            #expect(error.message.contains(message), "\(error)")
            // Five lines of [box] and the header come first; a body without a port gets port and keys (4 lines) before it.
            if let line { #expect(error.line == 5 + (body.contains("port =") ? line : line + 4), "\(error)") }
            #expect(!error.description.contains("2B7E151628AED2A6"), "the AppKey must not be repeated: \(error)")
        }
    }
}
