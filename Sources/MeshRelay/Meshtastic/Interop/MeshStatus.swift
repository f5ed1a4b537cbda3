import Foundation
public import KiezboxCore

/// The box's latest values, as its status on the mesh carries them: the input of both status encoders
/// (``MeshtasticTelemetryEncoder`` and ``KiezboxPilotUpdateEncoder``). Every value in its quantity's unit; nil
/// when the box does not measure it.
public struct MeshStatus: Sendable, Hashable {
    public var mode: Mode
    public var temperature: Double?
    public var relativeHumidity: Double?
    public var pressure: Double?
    public var pm1: Double?
    public var pm2_5: Double?
    public var pm10: Double?
    public var co2: Double?
    public var batteryVoltage: Double?
    /// With the sign the shunt is wired for.
    public var batteryCurrent: Double?
    public var batteryLevel: Double?
    public var solarVoltage: Double?
    public var solarCurrent: Double?
    public var solarPower: Double?
    public var mainsPresent: Bool?
    public var uptime: Duration?

    public init(
        mode: Mode = .normal, temperature: Double? = nil, relativeHumidity: Double? = nil, pressure: Double? = nil,
        pm1: Double? = nil, pm2_5: Double? = nil, pm10: Double? = nil, co2: Double? = nil, batteryVoltage: Double? = nil,
        batteryCurrent: Double? = nil, batteryLevel: Double? = nil, solarVoltage: Double? = nil, solarCurrent: Double? = nil,
        solarPower: Double? = nil, mainsPresent: Bool? = nil, uptime: Duration? = nil
    ) {
        self.mode = mode
        self.temperature = temperature
        self.relativeHumidity = relativeHumidity
        self.pressure = pressure
        self.pm1 = pm1
        self.pm2_5 = pm2_5
        self.pm10 = pm10
        self.co2 = co2
        self.batteryVoltage = batteryVoltage
        self.batteryCurrent = batteryCurrent
        self.batteryLevel = batteryLevel
        self.solarVoltage = solarVoltage
        self.solarCurrent = solarCurrent
        self.solarPower = solarPower
        self.mainsPresent = mainsPresent
        self.uptime = uptime
    }

    /// The status from the box's latest readings (any number per sensor and quantity; the newest of each
    /// quantity counts, the alphabetically first sensor id on a tie). Implausible readings and values that are not
    /// finite are left out.
    ///
    /// Voltage, current and power come from power monitors (INA219/INA226), whose sensor ids the resident chooses:
    /// a sensor id containing "solar" is the solar panel's lead, any other the battery's (the packaged
    /// configuration calls it "battery").
    public init(latest readings: [Reading], mode: Mode, uptime: Duration? = nil) {
        self.init(mode: mode, uptime: uptime)
        var newest: [String: Reading] = [:]
        for reading in readings where reading.quality != .implausible && reading.value.isFinite {
            let isSolar = reading.sensorID.contains("solar")
            let slot =
                switch reading.quantity {
                case .voltage, .current, .power: (isSolar ? "solar." : "battery.") + reading.quantity.rawValue
                default: reading.quantity.rawValue
                }
            if let kept = newest[slot],
                kept.measuredAt > reading.measuredAt
                    || (kept.measuredAt == reading.measuredAt && kept.sensorID <= reading.sensorID)
            {
                continue
            }
            newest[slot] = reading
        }
        let value = { (slot: String) in newest[slot]?.value }
        self.temperature = value(Quantity.temperature.rawValue)
        self.relativeHumidity = value(Quantity.relativeHumidity.rawValue)
        self.pressure = value(Quantity.pressure.rawValue)
        self.pm1 = value(Quantity.pm1.rawValue)
        self.pm2_5 = value(Quantity.pm2_5.rawValue)
        self.pm10 = value(Quantity.pm10.rawValue)
        self.co2 = value(Quantity.co2.rawValue)
        self.batteryLevel = value(Quantity.batteryLevel.rawValue)
        self.batteryVoltage = value("battery.voltage")
        self.batteryCurrent = value("battery.current")
        self.solarVoltage = value("solar.voltage")
        self.solarCurrent = value("solar.current")
        self.solarPower = value("solar.power")
        self.mainsPresent = value(Quantity.mainsPresent.rawValue).map { $0 != 0 }
    }
}
