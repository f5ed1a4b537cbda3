import Foundation
import KiezboxCore
import Testing

@testable import KiezboxAgent

@Suite("[power] configuration")
struct PowerConfigurationTests {
    static let head = """
        [box]
        id = "wrangelkiez-01"
        district = "friedrichshain-kreuzberg"

        [[sensor]]
        id = "battery"
        chip = "ina226"
        address = 0x40

        [[sensor]]
        id = "solar"
        chip = "ina219"
        address = 0x41

        [[sensor]]
        id = "climate"
        chip = "bme280"
        address = 0x76

        """

    func parse(_ rest: String) throws -> KiezboxConfiguration {
        try KiezboxConfiguration.parse(Self.head + rest, file: "kiezbox.toml")
    }

    @Test("a [power] table parses into the model's configuration; none without it")
    func valid() throws {
        #expect(try self.parse("").power == nil)
        let power = try #require(
            try self.parse(
                """
                [power]
                capacity_ah = 100
                chemistry = "lead-acid"
                nominal_voltage = 24
                solar_sensor = "solar"
                internal_resistance = 0.03
                rest_current = 0.5
                rest_after = "1h"
                average_over = "12h"
                """
            ).power
        )
        #expect(power.battery.capacityAmpHours == 100)
        #expect(power.battery.chemistry == .leadAcid)
        #expect(power.battery.cellCount == 12)
        #expect(power.battery.internalResistanceOhms == 0.03)
        #expect(power.battery.restCurrentAmps == 0.5)
        #expect(power.battery.restDuration == 3600)
        #expect(power.battery.drawTimeConstant == 12 * 3600)
        #expect(power.batterySensorID == "battery")
        #expect(power.solarSensorID == "solar")
    }

    @Test("load shedding: steps at 50, 35, 20 and 10 % by default; shed_at and shed_recover change them; [] never sheds")
    func shedding() throws {
        let defaults = try #require(try self.parse("[power]\ncapacity_ah = 100").power)
        #expect(defaults.shedding == LoadSheddingPolicy(thresholds: [0.50, 0.35, 0.20, 0.10], recoveryMargin: 0.05))
        let custom = try #require(try self.parse("[power]\ncapacity_ah = 100\nshed_at = [40, 25.5, 15]\nshed_recover = 8").power)
        #expect(custom.shedding.thresholds == [0.40, 0.255, 0.15])
        #expect(abs(custom.shedding.recoveryMargin - 0.08) < 1e-12)
        let never = try #require(try self.parse("[power]\ncapacity_ah = 100\nshed_at = []").power)
        #expect(never.shedding.stepCount == 0)
    }

    @Test("a wrong shed_at says what is wrong with it", arguments: [
        ("[35, 50]", "the steps must fall"),
        ("[50, 50]", "the steps must fall"),
        ("[60, 50, 35, 20, 10]", "5 steps; at most 4"),
        ("[150, 20]", "between 0 and 100"),
        ("[50, \"35\"]", "expected a list of numbers"),
    ])
    func sheddingMessages(_ value: String, message: String) throws {
        do {
            _ = try self.parse("[power]\ncapacity_ah = 100\nshed_at = \(value)")
            Issue.record("accepted: \(value)")
        } catch let error as ConfigurationError {
            #expect(error.message.contains(message), "\(error)")
        }
    }

    @Test("mistakes are refused with their line and key", arguments: [
        ("[power]\nchemistry = \"lifepo4\"", 19, "power.capacity_ah"),
        ("[power]\ncapacity_ah = 100\nchemistry = \"nimh\"", 21, "power.chemistry"),
        ("[power]\ncapacity_ah = 0", 20, "power.capacity_ah"),
        ("[power]\ncapacity_ah = 100\nnominal_voltage = 13", 21, "power.nominal_voltage"),
        ("[power]\ncapacity_ah = 100\nbattery_sensor = \"climate\"", 21, "power.battery_sensor"),
        ("[power]\ncapacity_ah = 100\nsolar_sensor = \"panel\"", 21, "power.solar_sensor"),
        ("[power]\ncapacity_ah = 100\nsolar_sensor = \"battery\"", 21, "power.solar_sensor"),
        ("[power]\ncapacity_ah = 100\nrest_after = \"5s\"", 21, "power.rest_after"),
        ("[power]\ncapacity = 100", 20, "power.capacity"),
        ("[power]\ncapacity_ah = 100\nshed_at = [35, 50]", 21, "power.shed_at"),
        ("[power]\ncapacity_ah = 100\nshed_at = [50, 50]", 21, "power.shed_at"),
        ("[power]\ncapacity_ah = 100\nshed_at = [60, 50, 35, 20, 10]", 21, "power.shed_at"),
        ("[power]\ncapacity_ah = 100\nshed_at = [150, 20]", 21, "power.shed_at"),
        ("[power]\ncapacity_ah = 100\nshed_at = [50, \"35\"]", 21, "power.shed_at"),
        ("[power]\ncapacity_ah = 100\nshed_at = 50", 21, "power.shed_at"),
        ("[power]\ncapacity_ah = 100\nshed_recover = 60", 21, "power.shed_recover"),
    ])
    func mistakes(_ source: String, line: Int, key: String) throws {
        do {
            _ = try self.parse(source)
            Issue.record("accepted: \(source)")
        } catch let error as ConfigurationError {
            #expect(error.key == key)
            #expect(error.line == line, "\(error)")
        }
    }
}
