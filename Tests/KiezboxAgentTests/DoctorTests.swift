import Foundation
import KiezboxCore
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
