import KiezboxCore
import MeshRelay
import ReadingStore
import SensorDrivers
import TOMLKit

/// `[mqtt]`: the broker the box sends its readings and status to, over the mesh.
struct MQTTSettings: Sendable, Hashable {
    var host: String
    var port: Int
    var clientID: String?
    var username: String?
    var password: String?
    /// TLS: the CA that signed the broker's certificate; TLS is on when this is set.
    var caFile: String?
    var certificateFile: String?
    var keyFile: String?
    var topicPrefix: String
    var keepAlive: Duration
}

/// `[sensor_community]`: live values to sensor.community.
struct SensorCommunitySettings: Sendable, Hashable {
    var endpoint: String
    /// The sensor id registered at devices.sensor.community ("raspi-000000001234abcd").
    var sensorID: String
    /// Readings older than this are not sent (the service takes no timestamps).
    var liveWindow: Duration
}

/// `[opensensemap]`: readings, backlog included, to an openSenseMap box.
struct OpenSenseMapSettings: Sendable, Hashable {
    var endpoint: String
    var boxID: String
    var accessToken: String?
    /// (Kiezbox sensor id, quantity) → the openSenseMap sensor id; written "climate.temperature" = "…".
    var sensorIDs: [SensorQuantity: String]

    struct SensorQuantity: Sendable, Hashable {
        var sensor: String
        var quantity: Quantity
    }
}

/// `[lorawan]`: a LoRaWAN modem (Wio-E5 or RAK3172) on a serial port, registered in The Things Network.
struct LoRaWANSettings: Sendable, Hashable {
    /// The modem's serial port ("/dev/ttyUSB0"); with `[simulation] enabled`, a simulated modem stands there.
    var port: String
    /// Nil: find out which dialect answers.
    var modem: LoRaWANModemKind?
    /// Nil: the modem's factory speed (Wio-E5 9600, RAK3172 115200).
    var baudRate: Int?
    var keys: LoRaWANKeys
    /// Nil: adaptive data rate (the network chooses); 0–5: a fixed EU868 data rate.
    var dataRate: Int?
    var payload: LoRaWANPayloadFormat
    var reportInterval: Duration
    var crisisSummaryInterval: Duration
    var fairUse: LoRaWANFairUse

    static let keys = [
        "port", "modem", "baud_rate", "dev_eui", "join_eui", "app_key", "data_rate", "payload_format", "report_interval",
        "crisis_summary_interval", "airtime_per_day", "downlinks_per_day", "crisis_reserve",
    ]

    static func parse(_ table: TOMLTableReader) throws(ConfigurationError) -> LoRaWANSettings {
        try table.rejectUnknownKeys(Self.keys)
        var modem: LoRaWANModemKind?
        let modemName = try table.string("modem") ?? "auto"
        if modemName != "auto" {
            guard let kind = LoRaWANModemKind(rawValue: modemName) else {
                throw table.error("modem", "unknown modem '\(modemName)'; known: auto, " + LoRaWANModemKind.allCases.map(\.rawValue).joined(separator: ", "))
            }
            modem = kind
        }
        let payloadName = try table.string("payload_format") ?? LoRaWANPayloadFormat.compact.rawValue
        guard let payload = LoRaWANPayloadFormat(rawValue: payloadName) else {
            throw table.error("payload_format", "unknown payload format '\(payloadName)'; known: " + LoRaWANPayloadFormat.allCases.map(\.rawValue).joined(separator: ", "))
        }
        let airtime = try table.duration("airtime_per_day", atLeast: .seconds(1)) ?? .seconds(30)
        if airtime > .seconds(3600) {
            throw table.error("airtime_per_day", "at most 1h (the 1 % duty cycle allows 864 s a day on one sub-band; TTN allows 30 s)")
        }
        return LoRaWANSettings(
            port: try table.requiredString("port"), modem: modem,
            baudRate: try Self.baudRate(table),
            keys: LoRaWANKeys(
                devEUI: try Self.hex(table, "dev_eui", bytes: 8), joinEUI: try Self.hex(table, "join_eui", bytes: 8),
                appKey: try Self.hex(table, "app_key", bytes: 16)
            ),
            dataRate: try table.int("data_rate", in: 0...5), payload: payload,
            reportInterval: try table.duration("report_interval", atLeast: .seconds(60)) ?? .seconds(600),
            crisisSummaryInterval: try table.duration("crisis_summary_interval", atLeast: .seconds(60)) ?? .seconds(1800),
            fairUse: LoRaWANFairUse(
                uplinkAirtimePerDay: airtime, downlinksPerDay: try table.int("downlinks_per_day", in: 0...1000) ?? 10,
                crisisReserve: try table.double("crisis_reserve", in: 0...0.9) ?? 0.25
            )
        )
    }

    private static func baudRate(_ table: TOMLTableReader) throws(ConfigurationError) -> Int? {
        guard let rate = try table.int("baud_rate") else { return nil }
        guard SerialBaudRate(rawValue: rate) != nil else {
            throw table.error("baud_rate", "unsupported baud rate \(rate); the Wio-E5 starts at 9600, the RAK3172 at 115200")
        }
        return rate
    }

    /// A key as TTN's console shows it: hex digits, optionally grouped by spaces, colons or dashes. The message
    /// never repeats the value (the AppKey is a secret).
    private static func hex(_ table: TOMLTableReader, _ key: String, bytes: Int) throws(ConfigurationError) -> [UInt8] {
        let text = try table.requiredString(key)
        let digits = text.filter { $0 != " " && $0 != ":" && $0 != "-" }
        guard digits.allSatisfy(\.isHexDigit) else {
            throw table.error(key, "expected \(bytes * 2) hex digits (0-9, A-F) as the TTN console shows them; found another character")
        }
        guard digits.count == bytes * 2, let result = Hex.decode(digits) else {
            throw table.error(key, "expected \(bytes * 2) hex digits (\(bytes) bytes), found \(digits.count)")
        }
        return result
    }
}

/// `[relay]`: how fast and how patiently readings are sent.
struct RelaySettings: Sendable, Hashable {
    var batchSize: Int
    var maximumBackfillRate: Double
    var maximumBackoff: Duration
}

/// Every uplink the configuration names.
struct UplinkConfiguration: Sendable, Hashable {
    var mqtt: MQTTSettings?
    var sensorCommunity: SensorCommunitySettings?
    var openSenseMap: OpenSenseMapSettings?
    var loRaWAN: LoRaWANSettings?
    var meshtastic: MeshtasticSettings?
    var relay = RelaySettings(batchSize: 500, maximumBackfillRate: 500, maximumBackoff: .seconds(300))

    static let keys = ["mqtt", "sensor_community", "opensensemap", "lorawan", "meshtastic", "relay"]

    static func parse(_ root: TOMLTableReader) throws(ConfigurationError) -> UplinkConfiguration {
        var uplinks = UplinkConfiguration()
        if let mqtt = try root.table("mqtt") {
            try mqtt.rejectUnknownKeys([
                "host", "port", "client_id", "username", "password", "ca_file", "cert_file", "key_file", "topic_prefix", "keepalive",
            ])
            let caFile = try mqtt.string("ca_file")
            let certificate = try mqtt.string("cert_file")
            let key = try mqtt.string("key_file")
            if (certificate == nil) != (key == nil) {
                throw mqtt.error(certificate == nil ? "cert_file" : "key_file", "missing; a client certificate needs both cert_file and key_file")
            }
            if certificate != nil && caFile == nil {
                throw mqtt.error("ca_file", "missing; a client certificate is only used over TLS, which needs the broker's CA (ca_file)")
            }
            let username = try mqtt.string("username")
            let password = try mqtt.string("password")
            if password != nil && username == nil { throw mqtt.error("username", "missing; a password needs a username") }
            uplinks.mqtt = MQTTSettings(
                host: try mqtt.requiredString("host"),
                port: try mqtt.int("port", in: 1...65535) ?? (caFile == nil ? 1883 : 8883),
                clientID: try mqtt.string("client_id"), username: username, password: password,
                caFile: caFile, certificateFile: certificate, keyFile: key,
                topicPrefix: try mqtt.string("topic_prefix") ?? "kiezbox/v1",
                keepAlive: try mqtt.duration("keepalive", atLeast: .seconds(5)) ?? .seconds(30)
            )
        }
        if let community = try root.table("sensor_community") {
            try community.rejectUnknownKeys(["endpoint", "sensor_id", "live_window"])
            uplinks.sensorCommunity = SensorCommunitySettings(
                endpoint: try community.string("endpoint") ?? "https://api.sensor.community/v1/push-sensor-data/",
                sensorID: try community.requiredString("sensor_id"),
                liveWindow: try community.duration("live_window", atLeast: .seconds(10)) ?? .seconds(300)
            )
        }
        if let osem = try root.table("opensensemap") {
            try osem.rejectUnknownKeys(["endpoint", "box_id", "access_token", "sensors"])
            var sensorIDs: [OpenSenseMapSettings.SensorQuantity: String] = [:]
            if let sensors = try osem.table("sensors") {
                for key in sensors.table.keys {
                    guard let id = try sensors.string(key) else { continue }
                    let parts = key.split(separator: ".").map(String.init)
                    guard parts.count == 2 else {
                        throw sensors.error(key, "expected \"<sensor id>.<quantity>\", e.g. \"climate.temperature\"")
                    }
                    guard let quantity = Quantity(rawValue: parts[1]) else {
                        throw sensors.error(
                            key, "unknown quantity '\(parts[1])'; known: " + Quantity.allCases.map(\.rawValue).joined(separator: ", ")
                        )
                    }
                    sensorIDs[OpenSenseMapSettings.SensorQuantity(sensor: parts[0], quantity: quantity)] = id
                }
            }
            uplinks.openSenseMap = OpenSenseMapSettings(
                endpoint: try osem.string("endpoint") ?? "https://api.opensensemap.org",
                boxID: try osem.requiredString("box_id"), accessToken: try osem.string("access_token"), sensorIDs: sensorIDs
            )
        }
        if let loRaWAN = try root.table("lorawan") {
            uplinks.loRaWAN = try LoRaWANSettings.parse(loRaWAN)
        }
        if let meshtastic = try root.table("meshtastic") {
            uplinks.meshtastic = try MeshtasticSettings.parse(meshtastic)
        }
        if let relay = try root.table("relay") {
            try relay.rejectUnknownKeys(["batch_size", "max_backfill_rate", "max_backoff"])
            uplinks.relay = RelaySettings(
                batchSize: try relay.int("batch_size", in: 1...10_000) ?? 500,
                maximumBackfillRate: try relay.double("max_backfill_rate", in: 0...1_000_000) ?? 500,
                maximumBackoff: try relay.duration("max_backoff", atLeast: .seconds(1)) ?? .seconds(300)
            )
        }
        return uplinks
    }
}
