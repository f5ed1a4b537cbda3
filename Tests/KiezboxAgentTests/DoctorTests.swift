import Foundation
import KiezboxCore
import KiezboxTestSupport
import MeshRelay
import SensorDrivers
import Testing

@testable import KiezboxAgent

@Suite("kiezbox doctor")
struct DoctorTests {
    static let box = "[box]\nid = \"b\"\ndistrict = \"d\"\n\n"

    /// Runs the doctor on a configuration against a fixture's simulated kit.
    func examine(configuration sensors: String, fixture: String) async throws -> [DoctorFinding] {
        let configuration = try KiezboxConfiguration.parse(Self.box + sensors, file: "k.toml")
        let kit = SimulatedKit(specs: try SimulationFixture.parse(fixture, file: "f.toml").chips)
        kit.updateWorld(at: Date())
        return await Doctor(configuration: configuration, buses: kit, simulated: true, answerTimeout: .seconds(20)).examine()
    }

    func finding(_ findings: [DoctorFinding], sensor: String) throws -> DoctorFinding {
        try #require(findings.first { $0.sensor == sensor }, "no finding for \(sensor) in \(findings)")
    }

    @Test("the demo kit is found complete")
    func demoKitFound() async throws {
        let configuration = try KiezboxConfiguration.parse(KiezboxConfiguration.embeddedDefault, file: "default")
        let fixture = try SimulationFixture.load(path: DemoKitTests.fixturePath)
        let kit = SimulatedKit(specs: fixture.chips, timeScale: fixture.timeScale)
        kit.updateWorld(at: Date())
        let findings = await Doctor(configuration: configuration, buses: kit, simulated: true).examine()
        #expect(findings.count == configuration.sensors.count)
        #expect(findings.allSatisfy { $0.status == .found }, "\(findings)")
    }

    @Test("a chip that is not there is missing, with the wiring to check")
    func missing() async throws {
        let findings = try await self.examine(
            configuration: "[[sensor]]\nid = \"co2\"\nchip = \"scd30\"\n",
            fixture: "[[chip]]\nchip = \"bme280\"\nbus = \"/dev/i2c-1\"\naddress = 0x76\n"
        )
        let co2 = try self.finding(findings, sensor: "co2")
        #expect(co2.status == .missing)
        #expect(co2.detail == "no device answers at 0x61")
        #expect(co2.fix?.contains("SDA to GPIO2 (pin 3)") == true)
        // The BME280 nobody configured is reported too, with the lines to add.
        let extra = try #require(findings.first { $0.status == .unexpected })
        #expect(extra.chip == "BME280")
        #expect(extra.fix?.contains("chip = \"bme280\", bus = \"/dev/i2c-1\", address = 0x76") == true)
    }

    @Test("a chip strapped to its other address is found there, with the setting to change")
    func otherAddress() async throws {
        let findings = try await self.examine(
            configuration: "[[sensor]]\nid = \"climate\"\nchip = \"bme280\"\naddress = 0x76\n",
            fixture: "[[chip]]\nchip = \"bme280\"\nbus = \"/dev/i2c-1\"\naddress = 0x77\n"
        )
        let climate = try self.finding(findings, sensor: "climate")
        #expect(climate.status == .missing)
        #expect(climate.detail.contains("a BME280 answers at 0x77"))
        #expect(climate.fix?.contains("set address = 0x77") == true)
    }

    @Test("a BMP280 sold as a BME280 is found, and the missing humidity is explained")
    func bmp280() async throws {
        let findings = try await self.examine(
            configuration: "[[sensor]]\nid = \"climate\"\nchip = \"bme280\"\n",
            fixture: "[[chip]]\nchip = \"bme280\"\nbus = \"/dev/i2c-1\"\naddress = 0x76\nchip_id = 0x58\n"
        )
        let climate = try self.finding(findings, sensor: "climate")
        #expect(climate.status == .found)
        #expect(climate.chip == "BMP280")
        #expect(climate.fix?.contains("no humidity sensor") == true)
    }

    @Test("another chip at the configured address is wrong, and the doctor names it")
    func wrongChip() async throws {
        let findings = try await self.examine(
            configuration: "[[sensor]]\nid = \"climate\"\nchip = \"sht3x\"\naddress = 0x44\n",
            fixture: "[[chip]]\nchip = \"sht4x\"\nbus = \"/dev/i2c-1\"\naddress = 0x44\n"
        )
        let climate = try self.finding(findings, sensor: "climate")
        #expect(climate.status == .wrong)
        #expect(climate.detail.contains("found a SHT4x"))
        #expect(climate.fix?.contains("chip = \"sht4x\"") == true)
    }

    @Test("a silent serial sensor is missing, with what to check")
    func silentSerialSensor() async throws {
        let findings = try await self.examine(
            configuration: "[[sensor]]\nid = \"pm\"\nchip = \"sds011\"\nport = \"/dev/ttyUSB0\"\n",
            fixture: "[[chip]]\nchip = \"sds011\"\nport = \"/dev/ttyUSB0\"\nfaults = [\"nack\"]\n"
        )
        let pm = try self.finding(findings, sensor: "pm")
        #expect(pm.status == .missing)
        #expect(pm.fix?.contains("TX goes to the Pi's RX") == true)
    }

    @Test("a serial port with nothing on it, and a GPIO chip that does not exist, are missing")
    func absentPortAndChip() async throws {
        let findings = try await self.examine(
            configuration: "[[sensor]]\nid = \"gps\"\nchip = \"gps\"\nport = \"/dev/serial0\"\n[[sensor]]\nid = \"rain\"\nchip = \"rain-gauge\"\ngpio_chip = \"gpiochip4\"\nline = 5\n",
            fixture: ""
        )
        #expect(try self.finding(findings, sensor: "gps").status == .missing)
        let rain = try self.finding(findings, sensor: "rain")
        #expect(rain.status == .missing)
        #expect(rain.detail.contains("no GPIO chip"))
    }

    @Test("a rain gauge line held low is found, with a hint")
    func rainLineLow() async throws {
        let findings = try await self.examine(
            configuration: "[[sensor]]\nid = \"mains\"\nchip = \"mains-fail\"\nline = 27\n",
            fixture: "[[chip]]\nchip = \"mains-fail\"\ngpio_chip = \"gpiochip0\"\nline = 27\nmains = false\n"
        )
        let mains = try self.finding(findings, sensor: "mains")
        #expect(mains.status == .found)
        #expect(mains.detail == "line low: mains absent")
    }

    @Test("kiezbox doctor --simulate exits 0 for the demo kit, 1 with a missing chip, and speaks JSON")
    func command() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-doctor-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ok = try runKiezbox(["doctor", "--simulate", DemoKitTests.fixturePath], in: directory)
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
        #expect(ok.stdout.contains("7 found"))

        try "[[chip]]\nchip = \"bme280\"\nbus = \"/dev/i2c-1\"\naddress = 0x76\n".write(toFile: directory + "/one.toml", atomically: true, encoding: .utf8)
        let partial = try runKiezbox(["doctor", "--simulate", directory + "/one.toml", "--json"], in: directory)
        #expect(partial.status == 1)
        let findings = try JSONDecoder().decode([DoctorFinding].self, from: Data(partial.stdout.utf8))
        #expect(findings.filter { $0.status == .found }.map(\.sensor) == ["climate"])
        #expect(findings.filter { $0.status == .missing }.count == 6)
    }
}

@Suite("kiezbox doctor: the LoRaWAN modem")
struct DoctorLoRaWANTests {
    static let port = "/dev/ttyUSB1"

    func configuration(port: String = Self.port, modem: String, extra: String = "") throws -> KiezboxConfiguration {
        let lorawan = "[lorawan]\nport = \"\(port)\"\nmodem = \"\(modem)\"\n" + LoRaWANConfigurationTests.keys + "\n"
        return try KiezboxConfiguration.parse(DoctorTests.box + extra + lorawan, file: "k.toml")
    }

    /// The doctor on a simulated kit that has only a LoRaWAN modem of `kind` at ``port``.
    func examine(modem setting: String, kit: SimulatedKit) async throws -> [DoctorFinding] {
        let configuration = try self.configuration(modem: setting)
        return await Doctor(configuration: configuration, buses: kit, simulated: true, answerTimeout: .seconds(20)).examine()
    }

    func modemFinding(_ findings: [DoctorFinding]) throws -> DoctorFinding {
        let modem = findings.filter { $0.sensor == "lorawan" && $0.status != .ok && $0.status != .problem }
        #expect(modem.count == 1, "\(findings)")
        return try #require(modem.first, "no LoRaWAN modem finding in \(findings)")
    }

    @Test(
        "a simulated modem is found in its dialect, named by `modem = \"auto\"` or explicitly, and never asked to join",
        arguments: [
            (LoRaWANModemKind.rak3172, "auto"), (.rak3172, "rak3172"), (.wioE5, "auto"), (.wioE5, "wio-e5"),
        ]
    )
    func found(kind: LoRaWANModemKind, setting: String) async throws {
        let kit = SimulatedKit(specs: [], loRaWANModem: (Self.port, kind))
        let radio = try #require(kit.loRaWANRadio)
        let modem = try self.modemFinding(try await self.examine(modem: setting, kit: kit))
        #expect(modem.status == .found, "\(modem)")
        #expect(modem.chip == kind.description)
        #expect(modem.place == Self.port)
        switch kind {
        case .rak3172:
            #expect(modem.detail.hasPrefix("RAK3172 firmware RUI_"), "\(modem.detail)")
            #expect(modem.detail.hasSuffix(", not joined yet"), "\(modem.detail)")
        case .wioE5:
            #expect(modem.detail.hasPrefix("Seeed Wio-E5 firmware "), "\(modem.detail)")
            // The Wio-E5 has no query for its join state: the doctor says so instead of guessing.
            #expect(modem.detail.contains("cannot tell whether it has joined"), "\(modem.detail)")
        }
        // Joins cost airtime: the doctor only asks.
        #expect(radio.joinRequests.isEmpty)
        #expect(radio.uplinks.isEmpty)
    }

    @Test("a RAK3172 that has joined is reported joined")
    func joinedRAK3172() async throws {
        let kit = SimulatedKit(specs: [], loRaWANModem: (Self.port, .rak3172))
        let radio = try #require(kit.loRaWANRadio)
        let configuration = try self.configuration(modem: "rak3172")
        let settings = try #require(configuration.uplinks.loRaWAN)
        // The daemon joined it before it was stopped.
        let (port, _) = try kit.serialPort(Self.port, baudRate: RAK3172Modem.baudRate)
        let daemonSide = RAK3172Modem(port: port)
        try await daemonSide.configure(keys: settings.keys, dataRate: nil)
        try await daemonSide.join()
        #expect(radio.joinRequests.count == 1)

        let modem = try self.modemFinding(
            await Doctor(configuration: configuration, buses: kit, simulated: true, answerTimeout: .seconds(20)).examine())
        #expect(modem.status == .found, "\(modem)")
        #expect(modem.detail.hasSuffix(", joined"), "\(modem.detail)")
        #expect(radio.joinRequests.count == 1)
    }

    @Test("a RAK3172 configured as a Wio-E5 is named, with the setting to change")
    func wrongDialect() async throws {
        let kit = SimulatedKit(specs: [], loRaWANModem: (Self.port, .rak3172))
        let modem = try self.modemFinding(try await self.examine(modem: "wio-e5", kit: kit))
        #expect(modem.status == .wrong, "\(modem)")
        #expect(modem.chip == "RAK3172")
        #expect(modem.detail.contains("a RAK3172 (firmware RUI_"), "\(modem.detail)")
        #expect(modem.detail.contains("not a Seeed Wio-E5"), "\(modem.detail)")
        #expect(modem.fix?.contains("set modem = \"rak3172\"") == true, "\(String(describing: modem.fix))")
    }

    @Test("no modem at the configured port of a simulated kit is missing")
    func noSuchPort() async throws {
        let kit = SimulatedKit(specs: [], loRaWANModem: ("/dev/ttyUSB0", .rak3172))
        let modem = try self.modemFinding(try await self.examine(modem: "auto", kit: kit))
        #expect(modem.status == .missing, "\(modem)")
    }

    @Test("a modem that stays silent on a real serial port is missing, with the wiring, supply and baud rate to check")
    func silentModem() async throws {
        let terminal = try PseudoTerminal()
        defer { terminal.closeMaster() }
        let data = try temporaryDirectory("kiezbox-doctor-lorawan")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let configuration = try self.configuration(
            port: terminal.slavePath, modem: "auto", extra: "[store]\ndata_dir = \"\(data)\"\n\n")
        let findings = await Doctor(configuration: configuration, buses: LinuxBuses(), simulated: false, answerTimeout: .seconds(30)).examine()
        let modem = try self.modemFinding(findings)
        #expect(modem.status == .missing, "\(modem)")
        #expect(modem.place == terminal.slavePath)
        #expect(modem.detail.contains("no answer"), "\(modem.detail)")
        let fix = try #require(modem.fix)
        #expect(fix.contains("TX"), "\(fix)")
        #expect(fix.contains("3.3 V"), "\(fix)")
        #expect(fix.contains("baud"), "\(fix)")
        // Its device node is checked like a serial sensor's, and it is no "USB serial device no sensor uses".
        let access = try #require(findings.first { $0.status == .ok && $0.place == terminal.slavePath }, "\(findings)")
        #expect(access.sensor == "lorawan")
        #expect(!findings.contains { $0.status == .unexpected && $0.place == terminal.slavePath })
        // The doctor wrote nothing but its questions: no join, no configuration.
        let written = String(decoding: terminal.readAvailable(), as: UTF8.self)
        #expect(!written.contains("JOIN") && !written.contains("KEY"), "\(written)")
    }

    @Test("kiezbox doctor --simulate finds the configured modem in the simulated kit, with and without a fixture")
    func command() async throws {
        let directory = try temporaryDirectory("kiezbox-doctor-lorawan")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = DoctorTests.box + "[lorawan]\nport = \"\(Self.port)\"\nmodem = \"wio-e5\"\n" + LoRaWANConfigurationTests.keys + "\n"
        try configuration.write(toFile: directory + "/k.toml", atomically: true, encoding: .utf8)
        try "".write(toFile: directory + "/empty.toml", atomically: true, encoding: .utf8)
        for fixture in [[], [directory + "/empty.toml"]] {
            let run = try await runProgram(
                [kiezboxBinary, "doctor", "--config", directory + "/k.toml", "--simulate", "--json"] + fixture, in: directory)
            #expect(run.status == 0, "\(run.all)")
            let findings = try JSONDecoder().decode([DoctorFinding].self, from: Data(run.output.utf8))
            let modem = try self.modemFinding(findings)
            #expect(modem.status == .found, "\(modem)")
            #expect(modem.chip == "Seeed Wio-E5")
        }
    }
}

@Suite("I²C chip identification")
struct I2CChipIdentifierTests {
    @Test(
        "each simulated chip identifies as itself at its address",
        arguments: [
            (ChipModel.bme280, UInt8(0x76)), (.sht3x, 0x44), (.sht4x, 0x44), (.sht4x, 0x46), (.scd30, 0x61),
            (.scd4x, 0x62), (.sps30, 0x69), (.ina219, 0x40), (.ina226, 0x45),
        ]
    )
    func identifies(chip: ChipModel, address: UInt8) async throws {
        let kit = SimulatedKit(specs: [SimulatedChipSpec(chip: chip, place: .i2c(bus: "/dev/i2c-1", address: address))])
        let bus = try kit.i2cBus("/dev/i2c-1")
        #expect(bus.scan() == [address])
        let identity = await I2CChipIdentifier.identify(bus.device(at: address), pause: { _ in })
        #expect(identity?.model == chip, "\(String(describing: identity))")
    }
}

@Suite("Fixture faults reach the production drivers")
struct FixtureFaultTests {
    func driver(_ chip: String, place: String, faults: [String]) throws -> any SensorDriver {
        let fixture = "[[chip]]\nchip = \"\(chip)\"\n\(place)\nfaults = [\(faults.map { "\"\($0)\"" }.joined(separator: ", "))]\n"
        let kit = SimulatedKit(specs: try SimulationFixture.parse(fixture, file: "f.toml").chips)
        kit.updateWorld(at: Date())
        let configuration = try KiezboxConfiguration.parse(
            "[box]\nid = \"b\"\ndistrict = \"d\"\n[[sensor]]\nid = \"s\"\nchip = \"\(chip)\"\n\(place.replacingOccurrences(of: "bus = \"/dev/i2c-1\"\n", with: ""))\n",
            file: "k.toml"
        )
        return try SensorFactory(buses: kit).makeDriver(for: configuration.sensors[0])
    }

    @Test("garbage between serial frames is skipped: the SDS011 still reads")
    func serialGarbage() async throws {
        let values = try await self.driver("sds011", place: "port = \"/dev/ttyUSB0\"", faults: ["garbage"]).measure()
        #expect(Set(values.map(\.quantity)) == [.pm2_5, .pm10])
    }

    @Test("a Sensirion chip with CRC errors on every answer fails with a typed error, never a value")
    func badCRC() async throws {
        let driver = try self.driver("sht4x", place: "bus = \"/dev/i2c-1\"\naddress = 0x44", faults: ["bad-crc"])
        await #expect(throws: (any Error).self) { _ = try await driver.measure() }
    }

    @Test("a stuck bus times out, and a NACKing chip is reported as not answering")
    func stuckAndNack() async throws {
        let stuck = try self.driver("bme280", place: "bus = \"/dev/i2c-1\"\naddress = 0x76", faults: ["stuck-bus"])
        let stuckError = await #expect(throws: I2CError.self) { _ = try await stuck.measure() }
        #expect(stuckError?.code == .timeout)
        let nack = try self.driver("bme280", place: "bus = \"/dev/i2c-1\"\naddress = 0x76", faults: ["nack"])
        let nackError = await #expect(throws: I2CError.self) { _ = try await nack.measure() }
        #expect(nackError?.code == .noAcknowledge)
    }
}
