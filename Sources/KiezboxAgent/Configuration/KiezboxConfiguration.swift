import EmergencyPortal
import Foundation
import KiezboxCore
import Logging
import ReadingStore
import SensorDrivers
import TOMLKit

/// Where a sensor is connected.
enum SensorConnection: Sendable, Hashable, CustomStringConvertible {
    /// An I²C bus device ("/dev/i2c-1") and a 7-bit address.
    case i2c(bus: String, address: UInt8)
    /// A serial port ("/dev/serial0", "/dev/serial/by-id/…") at a baud rate.
    case serial(port: String, baudRate: Int)
    /// A GPIO chip (name, path, number or label such as "pinctrl-bcm2711") and a line offset.
    case gpio(chip: String, line: UInt32)
    /// A TCP service (gpsd).
    case network(host: String, port: Int)

    var description: String {
        switch self {
        case .i2c(let bus, let address): "\(bus) at \(hex(address))"
        case .serial(let port, let baudRate): "\(port) at \(baudRate) baud"
        case .gpio(let chip, let line): "\(chip) line \(line)"
        case .network(let host, let port): "\(host):\(port)"
        }
    }
}

/// Chip-specific settings; each applies to the chips named in its comment only.
struct ChipOptions: Sendable, Hashable {
    /// INA219/INA226: the shunt resistor, in ohms.
    var shuntOhms: Double?
    /// INA219/INA226: the largest current expected, in amperes (sets the resolution).
    var maximumCurrent: Double?
    /// Rain gauge: millimetres of rain per bucket tip.
    var millimetresPerTip: Double?
    /// Rain gauge and mains-fail: edges closer together than this are contact bounce.
    var debounce: Duration?
    /// Mains-fail: the line is low while mains is present.
    var activeLow: Bool?
}

/// One configured sensor: which chip, where it is connected, how often it is read.
struct SensorConfiguration: Sendable, Hashable {
    /// The resident's name for it, used in readings and topics: "climate", "pm-balcony".
    var id: String
    var chip: ChipModel
    var connection: SensorConnection
    var interval: Duration
    /// Added to every value of a quantity, to correct a chip the resident has compared with a reference.
    var offsets: [Quantity: Double]
    var options: ChipOptions
}

/// The whole configuration, parsed once into typed values; nothing else in the daemon sees raw TOML.
struct KiezboxConfiguration: Sendable {
    var identity: BoxIdentity
    var dataDirectory: String
    var store: ReadingStoreConfiguration
    var logLevel: Logger.Level
    /// Run on simulated chips instead of the hardware buses.
    var simulate: Bool
    var sensors: [SensorConfiguration]
    var uplinks = UplinkConfiguration()
    var portal = PortalConfiguration()
    var mode = ModeConfiguration()
    var wifi = EmergencyWiFiSettings()
    /// `[power]`: the battery the power model follows; nil: no model.
    var power: PowerConfiguration?
    var homeAssistant = HomeAssistantConfiguration()
    /// `[warnings]`: heat and heavy-rain warnings from the box's own sensors.
    var warnings = WarningsConfiguration()

    /// Where the daemon looks for its configuration when none is given.
    static let defaultPath = "/etc/kiezbox/kiezbox.toml"

    /// What a box runs with when there is no configuration file at all: a simulated kit, data in the current
    /// directory. `kiezbox config default` prints it as a starting point for a real one.
    static let embeddedDefault = """
        # Kiezbox configuration. Copy to /etc/kiezbox/kiezbox.toml and edit; check with `kiezbox config check FILE`.

        [box]
        id = "demo"                    # lowercase letters, digits and '-': part of MQTT topics
        district = "demo-kiez"         # the Kiez or Bezirk, same rules
        name = "Kiezbox demo (simulated sensors)"
        latitude = 52.4996             # WGS 84, where the box stands
        longitude = 13.4318

        [store]
        data_dir = "./kiezbox-data"    # a real box: /var/lib/kiezbox
        flush_interval = "10s"         # commit buffered readings this often (SD cards wear per commit)
        max_batch = 1000               # ...or as soon as this many wait
        max_size = "256 MiB"           # oldest delivered readings go first beyond this
        sync_every_commit = false      # true: fsync each commit; a power cut then costs at most flush_interval

        [log]
        level = "info"                 # trace, debug, info, notice, warning, error, critical

        [simulation]
        enabled = true                 # simulated chips instead of the hardware buses

        # The kit: one [[sensor]] per chip. Supported chips: bme280, sht3x, sht4x, scd30, scd4x, sps30,
        # sps30-uart, sds011, pms5003, ina219, ina226, gps, gpsd, rain-gauge, mains-fail.
        [[sensor]]
        id = "climate"                 # temperature, humidity, pressure
        chip = "bme280"
        bus = "/dev/i2c-1"
        address = 0x76
        interval = "10s"

        [[sensor]]
        id = "co2"
        chip = "scd4x"
        address = 0x62
        interval = "30s"

        [[sensor]]
        id = "particulates"            # PM2.5 and PM10; the fan runs only while measuring
        chip = "sds011"
        port = "/dev/ttyUSB0"
        interval = "1m"

        [[sensor]]
        id = "battery"                 # voltage, current and power of the battery lead
        chip = "ina219"
        address = 0x40
        shunt_ohms = 0.1
        max_current = 3.2
        interval = "10s"

        [[sensor]]
        id = "position"
        chip = "gps"
        port = "/dev/serial0"
        interval = "10m"

        [[sensor]]
        id = "rain"
        chip = "rain-gauge"
        gpio_chip = "gpiochip0"
        line = 17
        interval = "1m"

        [[sensor]]
        id = "mains"                   # 1 while mains power is present
        chip = "mains-fail"
        gpio_chip = "gpiochip0"
        line = 27
        interval = "10s"

        # The emergency portal (docs/portal.md): info page, bulletin, situation feed, /metrics.
        [portal]
        listen = "127.0.0.1"           # this computer only; a box: "0.0.0.0" (the default), so phones reach it
        port = 8080                    # a box: 80, or 8080 with the firewall forwarding port 80 (public_url)
        hostname = "kiez.box"          # the emergency Wi-Fi's DNS answers every name with the box's address
        https_port = 8443              # authorities' tokens only over HTTPS; `kiezbox status` shows the key's pin
        post_burst = 3                 # posts one phone may make at once, then posts_per_hour
        posts_per_hour = 6
        wifi_post_burst = 30           # posts all phones together may make at once, then wifi_posts_per_hour
        wifi_posts_per_hour = 120
        bulletin_max_posts = 5000      # the bulletin's own budget in the store; a full bulletin refuses posts
        bulletin_max_size = "8 MiB"    # at most half of [store] max_size; readings keep max_size minus this

        # Where neighbours find help when the box cannot help (shown with their distance from the box).
        [[help_point]]
        name = "Katastrophenschutz-Leuchtturm (example)"
        address = "Wrangelstraße 1, 10997 Berlin"
        offers = ["Erste Hilfe", "Trinkwasser", "Notruf"]
        latitude = 52.5013
        longitude = 13.4352

        """

    /// Parses `source`; `file` names it in errors.
    static func parse(_ source: String, file: String) throws(ConfigurationError) -> KiezboxConfiguration {
        let root = try TOMLTableReader.document(source, file: file)
        try root.rejectUnknownKeys(
            ["box", "store", "log", "simulation", "sensor"] + UplinkConfiguration.keys + PortalConfiguration.keys
                + ["mode", "wifi", "power", "home_assistant", "warnings"])

        guard let box = try root.table("box") else { throw root.error("box", "missing; a [box] table is required") }
        let identity = try parseIdentity(box)

        let storeTable = try root.table("store")
        try storeTable?.rejectUnknownKeys(["data_dir", "flush_interval", "max_batch", "max_size", "sync_every_commit"])
        let defaults = ReadingStoreConfiguration()
        var store = ReadingStoreConfiguration(
            flushInterval: try storeTable?.duration("flush_interval", atLeast: .milliseconds(10)) ?? defaults.flushInterval,
            maximumBatch: try storeTable?.int("max_batch", in: 1...1_000_000) ?? defaults.maximumBatch,
            maximumBytes: try storeTable?.byteCount("max_size", atLeast: 1 << 20) ?? defaults.maximumBytes,
            syncEveryCommit: try storeTable?.bool("sync_every_commit") ?? defaults.syncEveryCommit
        )
        let dataDirectory = try storeTable?.string("data_dir") ?? "/var/lib/kiezbox"

        let log = try root.table("log")
        try log?.rejectUnknownKeys(["level"])
        var logLevel = Logger.Level.info
        if let name = try log?.string("level") {
            guard let level = Logger.Level(rawValue: name) else {
                throw log!.error(
                    "level", "'\(name)' is not a log level; expected one of "
                        + Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
                )
            }
            logLevel = level
        }

        let simulation = try root.table("simulation")
        try simulation?.rejectUnknownKeys(["enabled"])
        let simulate = try simulation?.bool("enabled") ?? false

        var sensors: [SensorConfiguration] = []
        for table in try root.arrayOfTables("sensor") {
            let sensor = try parseSensor(table)
            if sensors.contains(where: { $0.id == sensor.id }) {
                throw table.error("id", "a second sensor is named '\(sensor.id)'; sensor ids must be unique")
            }
            if let other = sensors.first(where: { $0.connection.clashes(with: sensor.connection) }) {
                let key: String =
                    switch sensor.connection {
                    case .i2c: "address"
                    case .serial: "port"
                    case .gpio: "line"
                    case .network: "port"
                    }
                throw table.error(key, "sensor '\(other.id)' is already on \(other.connection); two sensors cannot share it")
            }
            sensors.append(sensor)
        }
        let uplinks = try UplinkConfiguration.parse(root)
        var portal = try PortalConfiguration.parse(root)
        store.bulletin = try portal.bulletinBudget(storeBytes: store.maximumBytes, in: root)
        let mode = try ModeConfiguration.parse(root)
        let wifi = try EmergencyWiFiSettings.parse(root)
        let power = try PowerConfiguration.parse(root, sensors: sensors)
        let homeAssistant = try HomeAssistantConfiguration.parse(root, mqttConfigured: uplinks.mqtt != nil)
        // The portal tells phones on the Wi-Fi by the box address they reached (`[wifi] address`, also by default).
        portal.settings.wifiAddress = wifi.address.description
        portal.settings.authorityAPIOnWiFi = wifi.authorityAPI
        return KiezboxConfiguration(
            identity: identity, dataDirectory: dataDirectory, store: store, logLevel: logLevel, simulate: simulate,
            sensors: sensors, uplinks: uplinks, portal: portal, mode: mode, wifi: wifi, power: power, homeAssistant: homeAssistant,
            warnings: try WarningsConfiguration.parse(root)
        )
    }

    /// Reads and parses the file at `path`.
    static func load(path: String) throws(ConfigurationError) -> KiezboxConfiguration {
        let source: String
        do {
            source = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(file: path, line: nil, column: nil, key: "", message: "cannot read the file: \(error.localizedDescription)")
        }
        return try parse(source, file: path)
    }

    /// The configuration `kiezbox run` uses: `--config FILE` if given, else /etc/kiezbox/kiezbox.toml if it
    /// exists, else the embedded default.
    static func resolve(explicitPath: String?) throws(ConfigurationError) -> (KiezboxConfiguration, source: String) {
        if let explicitPath { return (try load(path: explicitPath), explicitPath) }
        if FileManager.default.fileExists(atPath: defaultPath) { return (try load(path: defaultPath), defaultPath) }
        return (try parse(embeddedDefault, file: "<embedded default>"), "embedded default")
    }

    private static func parseIdentity(_ box: TOMLTableReader) throws(ConfigurationError) -> BoxIdentity {
        try box.rejectUnknownKeys(["id", "district", "name", "latitude", "longitude", "altitude"])
        let id = try box.requiredString("id")
        try requireTopicSafe(id, key: "id", in: box)
        let district = try box.requiredString("district")
        try requireTopicSafe(district, key: "district", in: box)
        let latitude = try box.double("latitude", in: -90...90)
        let longitude = try box.double("longitude", in: -180...180)
        let position: GeoPosition?
        switch (latitude, longitude) {
        case (let latitude?, let longitude?):
            position = GeoPosition(latitude: latitude, longitude: longitude, altitude: try box.double("altitude"))
        case (nil, nil):
            position = nil
        case (nil, _):
            throw box.error("latitude", "missing; latitude and longitude go together")
        case (_, nil):
            throw box.error("longitude", "missing; latitude and longitude go together")
        }
        return BoxIdentity(district: district, boxID: id, name: try box.string("name") ?? "Kiezbox \(id)", position: position)
    }

    /// Keys every sensor may have, then the keys of each kind of connection, then chip options.
    private static let commonSensorKeys = ["id", "chip", "interval", "offsets"]
    private static let connectionKeys: [ChipInterface: [String]] = [
        .i2c: ["bus", "address"], .serial: ["port", "baud"], .gpio: ["gpio_chip", "line"], .network: ["host", "port"],
    ]
    private static func optionKeys(for chip: ChipModel) -> [String] {
        switch chip {
        case .ina219, .ina226: ["shunt_ohms", "max_current"]
        case .rainGauge: ["mm_per_tip", "debounce"]
        case .mainsFail: ["active_low", "debounce"]
        default: []
        }
    }

    private static func parseSensor(_ table: TOMLTableReader) throws(ConfigurationError) -> SensorConfiguration {
        let id = try table.requiredString("id")
        try requireTopicSafe(id, key: "id", in: table)
        let chipName = try table.requiredString("chip")
        guard let chip = ChipModel(rawValue: chipName.lowercased()) else {
            throw table.error(
                "chip", "unknown chip '\(chipName)'; supported: " + ChipModel.allCases.map(\.rawValue).joined(separator: ", ")
            )
        }
        let connection = try parseConnection(of: chip, in: table, extraKeys: commonSensorKeys + optionKeys(for: chip))
        let interval = try table.duration("interval", atLeast: .seconds(1)) ?? chip.defaultInterval

        var offsets: [Quantity: Double] = [:]
        if let offsetsTable = try table.table("offsets") {
            try offsetsTable.rejectUnknownKeys(Quantity.allCases.map(\.rawValue))
            for key in offsetsTable.table.keys {
                if let quantity = Quantity(rawValue: key), let offset = try offsetsTable.double(key) {
                    offsets[quantity] = offset
                }
            }
        }
        let options = ChipOptions(
            shuntOhms: try table.double("shunt_ohms", in: 0.000_1...100),
            maximumCurrent: try table.double("max_current", in: 0.001...100),
            millimetresPerTip: try table.double("mm_per_tip", in: 0.01...10),
            debounce: try table.duration("debounce", atLeast: .milliseconds(1)),
            activeLow: try table.bool("active_low")
        )
        return SensorConfiguration(id: id, chip: chip, connection: connection, interval: interval, offsets: offsets, options: options)
    }

    /// Where `chip` is connected, from the table's connection keys; any key that is neither a connection key of
    /// the chip's interface nor in `extraKeys` is refused, naming the interface it would belong to.
    static func parseConnection(
        of chip: ChipModel, in table: TOMLTableReader, extraKeys: [String]
    ) throws(ConfigurationError) -> SensorConnection {
        let ownKeys = connectionKeys[chip.interface, default: []]
        for key in table.table.keys where !extraKeys.contains(key) && !ownKeys.contains(key) && key != "chip" && key != "id" {
            if let interface = connectionKeys.first(where: { $0.value.contains(key) })?.key {
                let expected = ownKeys.isEmpty ? "" : "; a \(chip) takes " + ownKeys.joined(separator: ", ")
                throw table.error(key, "does not apply to a \(chip), which is \(chip.interface), not \(interface)\(expected)")
            }
        }
        try table.rejectUnknownKeys(["chip", "id"] + extraKeys + ownKeys)

        let connection: SensorConnection
        switch chip.interface {
        case .i2c:
            let bus = try table.string("bus") ?? "/dev/i2c-1"
            var address = chip.i2cAddresses[0]
            if let configured = try table.int("address") {
                guard (0x03...0x77).contains(configured) else {
                    throw table.error("address", "\(hex(configured)) is not a 7-bit I²C address (0x03 to 0x77)")
                }
                guard chip.i2cAddresses.contains(UInt8(configured)) else {
                    throw table.error("address", "a \(chip) answers only at \(addressList(chip.i2cAddresses)), not at \(hex(configured)); check the address jumper")
                }
                address = UInt8(configured)
            }
            connection = .i2c(bus: bus, address: address)
        case .serial:
            guard let port = try table.string("port") else {
                throw table.error("port", "missing; a \(chip) needs its serial port, e.g. \"/dev/serial0\" or \"/dev/ttyUSB0\"")
            }
            let baud = try table.int("baud", in: 1200...921_600) ?? chip.baudRate ?? 9600
            connection = .serial(port: port, baudRate: baud)
        case .gpio:
            guard let line = try table.int("line", in: 0...1023) else {
                throw table.error("line", "missing; a \(chip) needs the GPIO line it is wired to (the BCM number on a Pi, e.g. 17)")
            }
            connection = .gpio(chip: try table.string("gpio_chip") ?? "gpiochip0", line: UInt32(line))
        case .network:
            connection = .network(host: try table.string("host") ?? "127.0.0.1", port: try table.int("port", in: 1...65535) ?? 2947)
        }
        return connection
    }

    private static func requireTopicSafe(_ value: String, key: String, in table: TOMLTableReader) throws(ConfigurationError) {
        let allowed = value.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" }
        guard !value.isEmpty, value.count <= 64, allowed, value.first != "-" else {
            throw table.error(
                key, "'\(value)' may only contain lowercase letters, digits and '-' (at most 64): it is part of MQTT topics"
            )
        }
    }
}

func hex<I: BinaryInteger>(_ value: I) -> String { "0x" + String(value, radix: 16) }

/// "0x76 or 0x77", "0x40 to 0x4f".
func addressList(_ addresses: [UInt8]) -> String {
    if addresses.count > 2, let first = addresses.first, let last = addresses.last { return "\(hex(first)) to \(hex(last))" }
    return addresses.map(hex).joined(separator: " or ")
}

extension SensorConnection {
    /// Whether two sensors would fight over the same address, port or line.
    func clashes(with other: SensorConnection) -> Bool {
        switch (self, other) {
        case (.i2c(let busA, let addressA), .i2c(let busB, let addressB)): busA == busB && addressA == addressB
        case (.serial(let portA, _), .serial(let portB, _)): portA == portB
        case (.gpio(let chipA, let lineA), .gpio(let chipB, let lineB)): chipA == chipB && lineA == lineB
        default: false
        }
    }
}
