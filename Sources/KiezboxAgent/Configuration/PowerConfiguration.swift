import KiezboxCore
import SensorDrivers

/// `[power]`: the battery the power model follows (docs/power.md). Without the table there is no model and the
/// portal estimates the charge from the voltage alone (`[portal] battery`).
struct PowerConfiguration: Sendable, Hashable {
    var battery: BatteryConfiguration
    /// The power monitor in the battery lead (positive current: discharging).
    var batterySensorID: String
    /// A second power monitor on the solar input, if any.
    var solarSensorID: String?
    /// When the box sheds load (docs/power.md, "Load shedding").
    var shedding = LoadSheddingPolicy()

    static let keys = [
        "capacity_ah", "chemistry", "nominal_voltage", "battery_sensor", "solar_sensor", "internal_resistance",
        "rest_current", "rest_after", "average_over", "shed_at", "shed_recover",
    ]

    /// Parses `[power]`; sensor ids must name power monitors among `sensors`.
    static func parse(_ root: TOMLTableReader, sensors: [SensorConfiguration]) throws(ConfigurationError) -> PowerConfiguration? {
        guard let table = try root.table("power") else { return nil }
        try table.rejectUnknownKeys(Self.keys)
        guard let capacity = try table.double("capacity_ah", in: 0.1...100_000) else {
            throw table.error("capacity_ah", "missing; the battery's capacity in ampere-hours, e.g. capacity_ah = 100")
        }
        let chemistryName = try table.string("chemistry") ?? BatteryChemistry.lifePO4.name
        guard let chemistry = BatteryChemistry.named(chemistryName) else {
            throw table.error(
                "chemistry", "unknown chemistry '\(chemistryName)'; known: " + BatteryChemistry.known.map(\.name).joined(separator: ", ")
            )
        }
        let nominalVolts = try table.double("nominal_voltage") ?? 12
        guard [12.0, 24.0, 48.0].contains(nominalVolts) else {
            throw table.error("nominal_voltage", "\(nominalVolts) V is not a battery voltage the model knows; expected 12, 24 or 48")
        }
        var battery = BatteryConfiguration(capacityAmpHours: capacity, chemistry: chemistry, nominalVolts: nominalVolts)
        battery.internalResistanceOhms = try table.double("internal_resistance", in: 0...1) ?? battery.internalResistanceOhms
        battery.restCurrentAmps = try table.double("rest_current", in: 0...1000) ?? battery.restCurrentAmps
        if let after = try table.duration("rest_after", atLeast: .seconds(60)) { battery.restDuration = after.timeInterval }
        if let window = try table.duration("average_over", atLeast: .seconds(60)) { battery.drawTimeConstant = window.timeInterval }

        let batterySensorID = try table.string("battery_sensor") ?? "battery"
        try Self.requirePowerMonitor(batterySensorID, key: "battery_sensor", among: sensors, in: table)
        let solarSensorID = try table.string("solar_sensor")
        if let solarSensorID {
            try Self.requirePowerMonitor(solarSensorID, key: "solar_sensor", among: sensors, in: table)
            guard solarSensorID != batterySensorID else {
                throw table.error("solar_sensor", "'\(solarSensorID)' is already the battery_sensor; the solar input needs its own monitor")
            }
        }
        return PowerConfiguration(
            battery: battery, batterySensorID: batterySensorID, solarSensorID: solarSensorID, shedding: try Self.parseShedding(table))
    }

    /// `shed_at` (percentages, strictly falling, at most as many as there are steps; [] never sheds) and
    /// `shed_recover` (points above a step's threshold before it ends).
    private static func parseShedding(_ table: TOMLTableReader) throws(ConfigurationError) -> LoadSheddingPolicy {
        var policy = LoadSheddingPolicy()
        if let percentages = try table.numbers("shed_at") {
            let most = LoadSheddingPolicy.stepSettings.count
            guard percentages.count <= most else {
                throw table.error("shed_at", "\(percentages.count) steps; at most \(most) (one per way of shedding load)")
            }
            guard percentages.allSatisfy({ $0 > 0 && $0 < 100 }) else {
                throw table.error("shed_at", "percentages of charge between 0 and 100 are expected, e.g. shed_at = [50, 35, 20, 10]")
            }
            guard zip(percentages, percentages.dropFirst()).allSatisfy({ $0 > $1 }) else {
                throw table.error("shed_at", "the steps must fall, the first at the highest charge, e.g. shed_at = [50, 35, 20, 10]")
            }
            policy.thresholds = percentages.map { $0 / 100 }
        }
        if let recover = try table.double("shed_recover", in: 0...50) { policy.recoveryMargin = recover / 100 }
        return policy
    }

    private static func requirePowerMonitor(
        _ id: String, key: String, among sensors: [SensorConfiguration], in table: TOMLTableReader
    ) throws(ConfigurationError) {
        let monitors = sensors.filter { $0.chip == .ina219 || $0.chip == .ina226 }
        guard monitors.contains(where: { $0.id == id }) else {
            let known = monitors.isEmpty ? "no ina219 or ina226 [[sensor]] is configured" : "power monitors: " + monitors.map(\.id).joined(separator: ", ")
            throw table.error(key, "'\(id)' is not a configured power monitor; \(known)")
        }
    }
}
