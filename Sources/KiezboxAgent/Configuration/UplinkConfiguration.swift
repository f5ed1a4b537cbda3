import KiezboxCore
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
    var relay = RelaySettings(batchSize: 500, maximumBackfillRate: 500, maximumBackoff: .seconds(300))

    static let keys = ["mqtt", "sensor_community", "opensensemap", "relay"]

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
