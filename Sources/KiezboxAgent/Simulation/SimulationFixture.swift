import Foundation
import SensorDrivers
import TOMLKit

/// A fixture file: the simulated hardware for `kiezbox run --simulate FIXTURE` and `kiezbox doctor --simulate
/// FIXTURE` — which chips sit where, values to hold, and faults to produce. Documented in docs/simulation.md.
struct SimulationFixture: Sendable {
    var chips: [SimulatedChipSpec]
    /// How much faster than real time the drivers' waits run (warm-ups, conversion times).
    var timeScale: Double
    /// Which day the simulated weather plays (`scenario`: ordinary, heat-wave, cloudburst).
    var scenario: SimulatedWeather.Scenario = .ordinary

    static func load(path: String) throws(ConfigurationError) -> SimulationFixture {
        let source: String
        do {
            source = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(file: path, line: nil, column: nil, key: "", message: "cannot read the fixture: \(error.localizedDescription)")
        }
        return try parse(source, file: path)
    }

    static func parse(_ source: String, file: String) throws(ConfigurationError) -> SimulationFixture {
        let root = try TOMLTableReader.document(source, file: file)
        try root.rejectUnknownKeys(["time_scale", "scenario", "chip"])
        var chips: [SimulatedChipSpec] = []
        for table in try root.arrayOfTables("chip") {
            let chipName = try table.requiredString("chip")
            guard let chip = ChipModel(rawValue: chipName.lowercased()) else {
                throw table.error("chip", "unknown chip '\(chipName)'; supported: " + ChipModel.allCases.map(\.rawValue).joined(separator: ", "))
            }
            let valueKeys = ["chip_id", "celsius", "percent_rh", "hectopascal", "co2_ppm", "pm2_5", "battery_volts", "battery_amps", "rain_mm_per_hour", "mains", "mains_file", "faults"]
            let place = try KiezboxConfiguration.parseConnection(of: chip, in: table, extraKeys: valueKeys)
            var spec = SimulatedChipSpec(chip: chip, place: place)
            if let chipID = try table.int("chip_id", in: 0...255) { spec.chipID = UInt8(chipID) }
            spec.fixed = SimulatedChipSpec.FixedValues(
                celsius: try table.double("celsius", in: -60...100),
                percentRH: try table.double("percent_rh", in: 0...100),
                hectopascal: try table.double("hectopascal", in: 300...1100),
                co2PPM: try table.double("co2_ppm", in: 0...40_000),
                pm2_5: try table.double("pm2_5", in: 0...1000),
                batteryVolts: try table.double("battery_volts", in: 0...36),
                batteryAmps: try table.double("battery_amps", in: -30...30),
                rainMillimetresPerHour: try table.double("rain_mm_per_hour", in: 0...500),
                mainsPresent: try table.bool("mains"),
                mainsFile: try table.string("mains_file")
            )
            for name in try table.strings("faults") {
                guard let fault = SimulatedFault(rawValue: name) else {
                    throw table.error("faults", "unknown fault '\(name)'; known: " + SimulatedFault.allCases.map(\.rawValue).joined(separator: ", "))
                }
                spec.faults.insert(fault)
            }
            if let other = chips.first(where: { $0.place.clashes(with: place) }) {
                throw table.error("chip", "a \(other.chip) is already simulated on \(other.place)")
            }
            chips.append(spec)
        }
        var scenario = SimulatedWeather.Scenario.ordinary
        if let name = try root.string("scenario") {
            guard let named = SimulatedWeather.Scenario(rawValue: name) else {
                throw root.error("scenario", "unknown scenario '\(name)'; known: " + SimulatedWeather.Scenario.allCases.map(\.rawValue).joined(separator: ", "))
            }
            scenario = named
        }
        return SimulationFixture(chips: chips, timeScale: try root.double("time_scale", in: 1...10_000) ?? 100, scenario: scenario)
    }
}
