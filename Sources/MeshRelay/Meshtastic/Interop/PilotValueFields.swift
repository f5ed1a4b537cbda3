public import KiezboxCore

/// The numeric fields of the pilot's `CoreValues` and `SensorValues`, with what Kiezbox makes of each.
///
/// Every one is an `optional int32` in fixed point × 1000 of its unit (kiezbox2-protocol.md, "Value scaling"):
/// m°C, m%RH, mV, mW, mA, µg/m³ × 1000, and pressure in Pa × 10, which divided by 1000 is hPa. So a Kiezbox value
/// is always the wire value / 1000. Fields with no Kiezbox ``Quantity`` (solar energy, the BME680's gas resistance,
/// the real-time clock's temperature, the never-filled `noise`) have no ``quantity``: they are counted as skipped.
public enum PilotValueField: String, Sendable, Hashable, CaseIterable {
    case tempOut = "core.temp_out"
    case tempIn = "core.temp_in"
    case humidIn = "core.humid_in"
    case solarVoltage = "core.solar_voltage"
    case solarPower = "core.solar_power"
    case solarEnergyDay = "core.solar_energy_day"
    case solarEnergyTotal = "core.solar_energy_total"
    case batteryVoltage = "core.battery_voltage"
    case batteryCurrent = "core.battery_current"
    case coreClockTemperature = "core.temp_rtc"
    case tempMain = "sensor.temp_main"
    case humidMain = "sensor.humid_main"
    case pressure = "sensor.pressure"
    case airQuality = "sensor.air_quality"
    case particulates2_5 = "sensor.part_pm25"
    case particulates10 = "sensor.part_pm10"
    case noise = "sensor.noise"
    case sensorClockTemperature = "sensor.temp_rtc"
    case sensorBatteryVoltage = "sensor.battery_voltage"

    /// Wire value per unit of ``quantity``: every field is × 1000 (pressure: Pa × 10 = hPa × 1000).
    public static let scale = 1000.0

    /// The fields of `CoreValues`, in field-number order.
    public static let coreFields: [PilotValueField] = [
        .tempOut, .tempIn, .humidIn, .solarVoltage, .solarPower, .solarEnergyDay, .solarEnergyTotal, .batteryVoltage,
        .batteryCurrent, .coreClockTemperature,
    ]
    /// The fields of `SensorValues`, in field-number order.
    public static let sensorFields: [PilotValueField] = [
        .tempMain, .humidMain, .pressure, .airQuality, .particulates2_5, .particulates10, .noise, .sensorClockTemperature,
        .sensorBatteryVoltage,
    ]

    /// What the field measures in Kiezbox terms; nil: no Kiezbox quantity, the value is skipped.
    public var quantity: Quantity? {
        switch self {
        case .tempOut, .tempIn, .tempMain: .temperature
        case .humidIn, .humidMain: .relativeHumidity
        case .solarVoltage, .batteryVoltage, .sensorBatteryVoltage: .voltage
        case .solarPower: .power
        case .batteryCurrent: .current
        case .pressure: .pressure
        case .particulates2_5: .pm2_5
        case .particulates10: .pm10
        case .solarEnergyDay, .solarEnergyTotal, .coreClockTemperature, .airQuality, .noise, .sensorClockTemperature: nil
        }
    }

    /// The physical sensor the value belongs to, for a sensor module with id `sensorModuleID`.
    func part(sensorModuleID: UInt32) -> PilotSensorPart {
        switch self {
        case .tempOut: .outdoor
        case .tempIn, .humidIn: .inside
        case .solarVoltage, .solarPower, .solarEnergyDay, .solarEnergyTotal: .solar
        case .batteryVoltage, .batteryCurrent, .coreClockTemperature: .battery
        case .sensorBatteryVoltage: .sensorModuleBattery(sensorModuleID)
        case .tempMain, .humidMain, .pressure, .airQuality, .particulates2_5, .particulates10, .noise, .sensorClockTemperature:
            .sensorModule(sensorModuleID)
        }
    }

    /// The values a working sensor of this kind can report, in the quantity's unit; outside them a value is
    /// dropped as implausible. Wide on purpose: they catch garbage (a stuck sensor's −127 °C, an unplugged
    /// probe's 0xFFFF), not unusual weather.
    public var plausibleRange: ClosedRange<Double>? {
        switch self.quantity {
        case .temperature: -60...85
        case .relativeHumidity: 0...100
        case .pressure: 300...1100
        case .pm2_5, .pm10: 0...1000
        case .voltage: 0...100
        case .current: -200...200
        case .power: 0...5000
        default: nil
        }
    }

    /// The wire value in `values`, nil when absent.
    func raw(in values: Meshtastic_KiezboxMessage.CoreValues) -> Int32? {
        switch self {
        case .tempOut: values.hasTempOut ? values.tempOut : nil
        case .tempIn: values.hasTempIn ? values.tempIn : nil
        case .humidIn: values.hasHumidIn ? values.humidIn : nil
        case .solarVoltage: values.hasSolarVoltage ? values.solarVoltage : nil
        case .solarPower: values.hasSolarPower ? values.solarPower : nil
        case .solarEnergyDay: values.hasSolarEnergyDay ? values.solarEnergyDay : nil
        case .solarEnergyTotal: values.hasSolarEnergyTotal ? values.solarEnergyTotal : nil
        case .batteryVoltage: values.hasBatteryVoltage ? values.batteryVoltage : nil
        case .batteryCurrent: values.hasBatteryCurrent ? values.batteryCurrent : nil
        case .coreClockTemperature: values.hasTempRtc ? values.tempRtc : nil
        default: nil
        }
    }

    /// The wire value in `values`, nil when absent.
    func raw(in values: Meshtastic_KiezboxMessage.SensorValues) -> Int32? {
        switch self {
        case .tempMain: values.hasTempMain ? values.tempMain : nil
        case .humidMain: values.hasHumidMain ? values.humidMain : nil
        case .pressure: values.hasPressure ? values.pressure : nil
        case .airQuality: values.hasAirQuality ? values.airQuality : nil
        case .particulates2_5: values.hasPartPm25 ? values.partPm25 : nil
        case .particulates10: values.hasPartPm10 ? values.partPm10 : nil
        case .noise: values.hasNoise ? values.noise : nil
        case .sensorClockTemperature: values.hasTempRtc ? values.tempRtc : nil
        case .sensorBatteryVoltage: values.hasBatteryVoltage ? values.batteryVoltage : nil
        default: nil
        }
    }

    /// Sets the field in `values` (a `CoreValues` field; others are ignored).
    func set(_ raw: Int32, in values: inout Meshtastic_KiezboxMessage.CoreValues) {
        switch self {
        case .tempOut: values.tempOut = raw
        case .tempIn: values.tempIn = raw
        case .humidIn: values.humidIn = raw
        case .solarVoltage: values.solarVoltage = raw
        case .solarPower: values.solarPower = raw
        case .solarEnergyDay: values.solarEnergyDay = raw
        case .solarEnergyTotal: values.solarEnergyTotal = raw
        case .batteryVoltage: values.batteryVoltage = raw
        case .batteryCurrent: values.batteryCurrent = raw
        case .coreClockTemperature: values.tempRtc = raw
        default: break
        }
    }

    /// Sets the field in `values` (a `SensorValues` field; others are ignored).
    func set(_ raw: Int32, in values: inout Meshtastic_KiezboxMessage.SensorValues) {
        switch self {
        case .tempMain: values.tempMain = raw
        case .humidMain: values.humidMain = raw
        case .pressure: values.pressure = raw
        case .airQuality: values.airQuality = raw
        case .particulates2_5: values.partPm25 = raw
        case .particulates10: values.partPm10 = raw
        case .noise: values.noise = raw
        case .sensorClockTemperature: values.tempRtc = raw
        case .sensorBatteryVoltage: values.batteryVoltage = raw
        default: break
        }
    }

    /// The wire value of a finite `value` (in the quantity's unit): × 1000, rounded, clamped to int32.
    static func raw(_ value: Double) -> Int32 {
        let scaled = (value * Self.scale).rounded()
        return Int32(min(max(scaled, Double(Int32.min)), Double(Int32.max)))
    }
}
