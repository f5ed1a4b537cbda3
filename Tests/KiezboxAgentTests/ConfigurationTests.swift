import Foundation
import KiezboxCore
import ReadingStore
import SensorDrivers
import Testing

@testable import KiezboxAgent

@Suite("Configuration")
struct ConfigurationTests {
    static let valid = """
        [box]
        id = "wrangelkiez-01"
        district = "friedrichshain-kreuzberg"
        name = "Kiezbox Wrangelstraße"
        latitude = 52.4996
        longitude = 13.4318

        [store]
        data_dir = "/var/lib/kiezbox"
        flush_interval = "30s"
        max_batch = 600
        max_size = "64 MiB"

        [[sensor]]
        id = "climate"
        chip = "bme280"
        address = 0x77
        interval = "1m"
        offsets = { temperature = -0.4 }

        [[sensor]]
        id = "climate-2"
        chip = "BME280"
        bus = "/dev/i2c-3"
        """

    /// Parses `source`, expecting an error; returns it.
    func error(in source: String) -> ConfigurationError? {
        do {
            _ = try KiezboxConfiguration.parse(source, file: "kiezbox.toml")
            return nil
        } catch {
            return error
        }
    }

    /// `valid` with `line` (1-based) replaced.
    func replacing(line number: Int, with text: String) -> String {
        var lines = Self.valid.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        lines[number - 1] = text
        return lines.joined(separator: "\n")
    }

    @Test("a valid file parses into typed values")
    func valid() throws {
        let configuration = try KiezboxConfiguration.parse(Self.valid, file: "kiezbox.toml")
        #expect(configuration.identity == BoxIdentity(
            district: "friedrichshain-kreuzberg", boxID: "wrangelkiez-01", name: "Kiezbox Wrangelstraße",
            position: GeoPosition(latitude: 52.4996, longitude: 13.4318)
        ))
        #expect(configuration.dataDirectory == "/var/lib/kiezbox")
        #expect(configuration.store.flushInterval == .seconds(30))
        #expect(configuration.store.maximumBatch == 600)
        #expect(configuration.store.maximumBytes == 64 << 20)
        #expect(configuration.simulate == false)
        #expect(configuration.sensors.count == 2)
        #expect(configuration.sensors[0] == SensorConfiguration(
            id: "climate", chip: .bme280, connection: .i2c(bus: "/dev/i2c-1", address: 0x77), interval: .seconds(60),
            offsets: [.temperature: -0.4], options: ChipOptions()
        ))
        // Defaults: the chip's usual address, one reading a minute.
        #expect(configuration.sensors[1].connection == .i2c(bus: "/dev/i2c-3", address: 0x76))
        #expect(configuration.sensors[1].interval == .seconds(60))
    }

    @Test("the embedded default parses and runs a simulated kit")
    func embeddedDefault() throws {
        let configuration = try KiezboxConfiguration.parse(KiezboxConfiguration.embeddedDefault, file: "default")
        #expect(configuration.simulate)
        #expect(configuration.dataDirectory == "./kiezbox-data")
        #expect(configuration.store.flushInterval == .seconds(10))
        #expect(!configuration.sensors.isEmpty)
    }

    @Test("a syntax error names the line and column")
    func syntaxError() throws {
        let error = try #require(self.error(in: self.replacing(line: 10, with: "flush_interval = \"30s")))
        #expect(error.line == 10)
        #expect(error.column != nil)
        #expect(error.description.hasPrefix("kiezbox.toml:10:"))
        #expect(error.description.contains("not valid TOML"))
    }

    @Test(
        "a wrong value names the line, the key and what is expected",
        arguments: [
            (10, "flush_interval = 30", "store.flush_interval", "expected a duration"),
            (10, "flush_interval = \"soon\"", "store.flush_interval", "expected a duration"),
            (10, "flush_interval = \"1ms\"", "store.flush_interval", "too short"),
            (11, "max_batch = \"many\"", "store.max_batch", "expected a whole number, found the string \"many\""),
            (11, "max_batch = 0", "store.max_batch", "out of range"),
            (12, "max_size = \"lots\"", "store.max_size", "expected a size"),
            (2, "id = \"Wrangel Kiez\"", "box.id", "lowercase letters, digits and '-'"),
            (5, "latitude = 152.5", "box.latitude", "out of range"),
            (15, "id = \"\"", "sensor[1].id", "lowercase letters"),
            (16, "chip = \"bme281\"", "sensor[1].chip", "unknown chip 'bme281'; supported: bme280, sht3x"),
            (17, "address = 0x48", "sensor[1].address", "answers only at 0x76 or 0x77"),
            (17, "address = 0x80", "sensor[1].address", "not a 7-bit I²C address"),
            (18, "interval = \"500ms\"", "sensor[1].interval", "too short"),
            (19, "offsets = { temprature = 1.0 }", "sensor[1].offsets.temprature", "did you mean 'temperature'"),
            (10, "flush_intervall = \"30s\"", "store.flush_intervall", "did you mean 'flush_interval'"),
            (19, "calibration = 1", "sensor[1].calibration", "unknown key"),
        ] as [(Int, String, String, String)]
    )
    func valueErrors(line: Int, text: String, key: String, message: String) throws {
        let error = try #require(self.error(in: self.replacing(line: line, with: text)))
        #expect(error.line == line, "\(error)")
        #expect(error.key == key, "\(error)")
        #expect(error.message.contains(message), "\(error)")
        #expect(error.description.hasPrefix("kiezbox.toml:\(line): \(key): "))
    }

    @Test("the second sensor's mistakes are reported at the second sensor's lines")
    func secondSensor() throws {
        let error = try #require(self.error(in: self.replacing(line: 22, with: "id = \"climate\"")))
        #expect(error.line == 22)
        #expect(error.key == "sensor[2].id")
        #expect(error.message.contains("must be unique"))
    }

    @Test("two chips at one address on one bus are refused")
    func addressClash() throws {
        let source = Self.valid.replacingOccurrences(of: "bus = \"/dev/i2c-3\"", with: "address = 0x77")
        let error = try #require(self.error(in: source))
        #expect(error.key == "sensor[2].address")
        #expect(error.line == 24)
        #expect(error.message.contains("'climate' is already on /dev/i2c-1 at 0x77"))
    }

    @Test("missing required keys and tables are named")
    func missing() throws {
        let noBox = try #require(self.error(in: "[store]\nflush_interval = \"10s\"\n"))
        #expect(noBox.key == "box")
        #expect(noBox.message.contains("missing"))
        let noDistrict = try #require(self.error(in: self.replacing(line: 3, with: "")))
        #expect(noDistrict.key == "box.district")
        #expect(noDistrict.line == 1)
        let noChip = try #require(self.error(in: self.replacing(line: 16, with: "")))
        #expect(noChip.key == "sensor[1].chip")
        #expect(noChip.line == 14)
    }

    @Test("latitude without longitude is refused")
    func halfPosition() throws {
        let error = try #require(self.error(in: self.replacing(line: 6, with: "")))
        #expect(error.key == "box.longitude")
    }

    @Test("durations and sizes are read the way residents write them")
    func units() {
        #expect(parseDuration("10s") == .seconds(10))
        #expect(parseDuration("1h30m") == .seconds(5400))
        #expect(parseDuration("500ms") == .milliseconds(500))
        #expect(parseDuration("2d") == .seconds(172_800))
        #expect(parseDuration("10") == nil)
        #expect(parseDuration("s") == nil)
        #expect(parseDuration("5 parsecs") == nil)
        #expect(parseByteCount("256 MiB") == 256 << 20)
        #expect(parseByteCount("1GB") == 1_000_000_000)
        #expect(parseByteCount("4096") == 4096)
        #expect(parseByteCount("12 furlongs") == nil)
        #expect(format(.seconds(5400)) == "1h30m")
        #expect(format(.milliseconds(250)) == "250ms")
        #expect(format(.seconds(0)) == "0s")
    }

    @Test("the key locator finds keys under headers, arrays of tables and dotted keys")
    func locator() {
        let locator = TOMLKeyLocator(source: """
            title = "x" # a comment with = in it
            [a]
            b.c = 1
            "quoted key" = 'v = w'
            [[s]]
            k = 1
            [[s]]
            k = 2
            [s.sub]
            deep = true
            """)
        #expect(locator.line(of: [.key("title")]) == 1)
        #expect(locator.line(of: [.key("a"), .key("b"), .key("c")]) == 3)
        #expect(locator.line(of: [.key("a"), .key("quoted key")]) == 4)
        #expect(locator.line(of: [.key("s"), .index(0), .key("k")]) == 6)
        #expect(locator.line(of: [.key("s"), .index(1), .key("k")]) == 8)
        #expect(locator.line(of: [.key("s"), .index(1), .key("sub"), .key("deep")]) == 10)
        #expect(locator.line(of: [.key("a"), .key("missing")]) == 2)
        #expect(locator.line(of: [.key("nowhere")]) == nil)
    }

    /// A file with `[box]` and the given sensor tables.
    func withSensors(_ sensors: String) -> String {
        "[box]\nid = \"b\"\ndistrict = \"d\"\n\n" + sensors
    }

    @Test("serial, GPIO and gpsd sensors, with chip options and per-chip defaults")
    func otherInterfaces() throws {
        let source = self.withSensors("""
            [[sensor]]
            id = "pm"
            chip = "sds011"
            port = "/dev/ttyUSB0"

            [[sensor]]
            id = "pm-uart"
            chip = "sps30-uart"
            port = "/dev/serial0"
            interval = "2m"

            [[sensor]]
            id = "rain"
            chip = "rain-gauge"
            gpio_chip = "pinctrl-bcm2711"
            line = 17
            mm_per_tip = 0.2794
            debounce = "20ms"

            [[sensor]]
            id = "battery"
            chip = "ina219"
            address = 0x41
            shunt_ohms = 0.1
            max_current = 3.2

            [[sensor]]
            id = "position"
            chip = "gpsd"
            """)
        let sensors = try KiezboxConfiguration.parse(source, file: "k.toml").sensors
        #expect(sensors.map(\.connection) == [
            .serial(port: "/dev/ttyUSB0", baudRate: 9600), .serial(port: "/dev/serial0", baudRate: 115_200),
            .gpio(chip: "pinctrl-bcm2711", line: 17), .i2c(bus: "/dev/i2c-1", address: 0x41),
            .network(host: "127.0.0.1", port: 2947),
        ])
        #expect(sensors.map(\.interval) == [.seconds(300), .seconds(120), .seconds(60), .seconds(10), .seconds(600)])
        #expect(sensors[2].options == ChipOptions(millimetresPerTip: 0.2794, debounce: .milliseconds(20)))
        #expect(sensors[3].options == ChipOptions(shuntOhms: 0.1, maximumCurrent: 3.2))
    }

    @Test(
        "sensor mistakes per interface are named with their line",
        arguments: [
            ("[[sensor]]\nid = \"pm\"\nchip = \"pms5003\"\n", 5, "sensor[1].port", "missing; a PMS5003 needs its serial port"),
            ("[[sensor]]\nid = \"pm\"\nchip = \"sds011\"\nport = \"/dev/ttyUSB0\"\naddress = 0x69\n", 9, "sensor[1].address", "does not apply to a SDS011, which is a serial (UART) device, not an I²C chip"),
            ("[[sensor]]\nid = \"climate\"\nchip = \"bme280\"\nline = 4\n", 8, "sensor[1].line", "does not apply to a BME280"),
            ("[[sensor]]\nid = \"rain\"\nchip = \"rain-gauge\"\n", 5, "sensor[1].line", "missing; a rain gauge needs the GPIO line"),
            ("[[sensor]]\nid = \"co2\"\nchip = \"scd30\"\naddress = 0x62\n", 8, "sensor[1].address", "answers only at 0x61"),
            ("[[sensor]]\nid = \"power\"\nchip = \"ina226\"\naddress = 0x50\n", 8, "sensor[1].address", "answers only at 0x40 to 0x4f"),
            ("[[sensor]]\nid = \"power\"\nchip = \"ina226\"\nshunt_ohms = 0\n", 8, "sensor[1].shunt_ohms", "out of range"),
            ("[[sensor]]\nid = \"climate\"\nchip = \"bme280\"\nshunt_ohms = 0.1\n", 8, "sensor[1].shunt_ohms", "unknown key"),
            ("[[sensor]]\nid = \"pm\"\nchip = \"sds011\"\nport = \"/dev/ttyUSB0\"\n[[sensor]]\nid = \"gps\"\nchip = \"gps\"\nport = \"/dev/ttyUSB0\"\n", 12, "sensor[2].port", "'pm' is already on /dev/ttyUSB0"),
            ("[[sensor]]\nid = \"a\"\nchip = \"rain-gauge\"\nline = 17\n[[sensor]]\nid = \"b\"\nchip = \"mains-fail\"\nline = 17\n", 12, "sensor[2].line", "'a' is already on gpiochip0 line 17"),
        ] as [(String, Int, String, String)]
    )
    func interfaceErrors(sensors: String, line: Int, key: String, message: String) throws {
        let error = try #require(self.error(in: self.withSensors(sensors)))
        #expect(error.key == key, "\(error)")
        #expect(error.line == line, "\(error)")
        #expect(error.message.contains(message), "\(error)")
    }
}

@Suite("Uplink configuration")
struct UplinkConfigurationTests {
    func parse(_ uplinks: String) throws(ConfigurationError) -> UplinkConfiguration {
        try KiezboxConfiguration.parse("[box]\nid = \"b\"\ndistrict = \"d\"\n\n" + uplinks, file: "k.toml").uplinks
    }

    @Test("MQTT, open-data and relay settings, with defaults")
    func settings() throws {
        let uplinks = try self.parse("""
            [mqtt]
            host = "broker.kiez"
            username = "box"
            password = "secret"
            ca_file = "/etc/kiezbox/ca.pem"

            [sensor_community]
            sensor_id = "raspi-1234"

            [opensensemap]
            box_id = "5f0000000000000000000000"
            access_token = "token"
            sensors = { "climate.temperature" = "5f0000000000000000000001" }

            [relay]
            max_backfill_rate = 100
            """)
        #expect(uplinks.mqtt?.port == 8883)
        #expect(uplinks.mqtt?.topicPrefix == "kiezbox/v1")
        #expect(uplinks.sensorCommunity?.liveWindow == .seconds(300))
        #expect(uplinks.openSenseMap?.sensorIDs == [.init(sensor: "climate", quantity: .temperature): "5f0000000000000000000001"])
        #expect(uplinks.relay.maximumBackfillRate == 100)
        #expect(uplinks.relay.batchSize == 500)
    }

    @Test(
        "uplink mistakes are named with their line",
        arguments: [
            ("[mqtt]\nport = 1883\n", "mqtt.host", "missing"),
            ("[mqtt]\nhost = \"b\"\ncert_file = \"c.pem\"\n", "mqtt.key_file", "needs both"),
            ("[mqtt]\nhost = \"b\"\npassword = \"p\"\n", "mqtt.username", "a password needs a username"),
            ("[opensensemap]\nbox_id = \"x\"\nsensors = { \"temperature\" = \"y\" }\n", "opensensemap.sensors.temperature", "<sensor id>.<quantity>"),
            ("[opensensemap]\nbox_id = \"x\"\nsensors = { \"climate.temprature\" = \"y\" }\n", "opensensemap.sensors.climate.temprature", "unknown quantity 'temprature'"),
            ("[relay]\nmax_backfil_rate = 5\n", "relay.max_backfil_rate", "did you mean 'max_backfill_rate'"),
        ] as [(String, String, String)]
    )
    func errors(source: String, key: String, message: String) throws {
        do {
            _ = try self.parse(source)
            Issue.record("accepted: \(source)")
        } catch {
            #expect(error.key == key, "\(error)")
            #expect(error.message.contains(message), "\(error)")
            #expect(error.line != nil)
        }
    }
}
