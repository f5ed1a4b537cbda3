public import Foundation
import KiezboxCore
import SwiftProtobuf

/// The largest `Data.payload` a Meshtastic packet carries (`Constants.DATA_PAYLOAD_LEN`), in bytes.
public enum MeshtasticPayload {
    public static let maximumLength = 233

    /// The serialised `Data` message that carries `payload` on `port`: what goes on air after the 16-byte header.
    public static func data(port: Meshtastic_PortNum, payload: [UInt8]) -> Meshtastic_Data {
        Meshtastic_Data.with {
            $0.portnum = port
            $0.payload = Data(payload)
        }
    }

    /// The length of that serialised `Data` (what ``MeshtasticAirtime/airtime(dataLength:modulation:)`` takes).
    public static func dataLength(port: Meshtastic_PortNum, payloadLength: Int) -> Int {
        // portnum: tag + varint; payload: tag + length varint + bytes.
        1 + varintLength(UInt64(port.rawValue)) + 1 + varintLength(UInt64(payloadLength)) + payloadLength
    }

    static func varintLength(_ value: UInt64) -> Int {
        var length = 1
        var rest = value >> 7
        while rest != 0 {
            length += 1
            rest >>= 7
        }
        return length
    }
}

/// The box's status as standard Meshtastic telemetry (TELEMETRY_APP, port 67), so every Meshtastic app shows it.
///
/// One `Telemetry` per variant that has data (the variants are a oneof): environment (temperature, humidity,
/// pressure), air quality (`pm10_standard` is PM1.0, `pm25_standard` PM2.5, `pm100_standard` PM10, in whole
/// µg/m³; CO₂ in ppm), power (channel 1 the battery's voltage and current, channel 2 the solar panel's) and device
/// (battery level, 101 when on mains without a known level, as the firmware says "powered"; battery voltage;
/// uptime). `time` is `now`. Each is a few dozen bytes, far below the 233-byte payload limit.
public enum MeshtasticTelemetryEncoder {
    public static func telemetry(for status: MeshStatus, now: Date) -> [Meshtastic_Telemetry] {
        let time = UInt32(clamping: Int64(max(0, now.timeIntervalSince1970)))
        var variants: [Meshtastic_Telemetry.OneOf_Variant] = []

        var environment = Meshtastic_EnvironmentMetrics()
        if let value = finite(status.temperature) { environment.temperature = Float(value) }
        if let value = finite(status.relativeHumidity) { environment.relativeHumidity = Float(value) }
        if let value = finite(status.pressure) { environment.barometricPressure = Float(value) }
        if environment != Meshtastic_EnvironmentMetrics() { variants.append(.environmentMetrics(environment)) }

        var air = Meshtastic_AirQualityMetrics()
        if let value = whole(status.pm1) { air.pm10Standard = value }
        if let value = whole(status.pm2_5) { air.pm25Standard = value }
        if let value = whole(status.pm10) { air.pm100Standard = value }
        if let value = whole(status.co2) { air.co2 = value }
        if air != Meshtastic_AirQualityMetrics() { variants.append(.airQualityMetrics(air)) }

        var power = Meshtastic_PowerMetrics()
        if let value = finite(status.batteryVoltage) { power.ch1Voltage = Float(value) }
        if let value = finite(status.batteryCurrent) { power.ch1Current = Float(value) }
        if let value = finite(status.solarVoltage) { power.ch2Voltage = Float(value) }
        if let value = finite(status.solarCurrent) { power.ch2Current = Float(value) }
        if power != Meshtastic_PowerMetrics() { variants.append(.powerMetrics(power)) }

        var device = Meshtastic_DeviceMetrics()
        if let level = whole(status.batteryLevel) {
            device.batteryLevel = min(100, level)
        } else if status.mainsPresent == true {
            device.batteryLevel = 101
        }
        if let value = finite(status.batteryVoltage) { device.voltage = Float(value) }
        if let uptime = status.uptime, uptime >= .zero { device.uptimeSeconds = UInt32(clamping: uptime.components.seconds) }
        if device != Meshtastic_DeviceMetrics() { variants.append(.deviceMetrics(device)) }

        return variants.map { variant in
            Meshtastic_Telemetry.with {
                $0.time = time
                $0.variant = variant
            }
        }
    }

    private static func finite(_ value: Double?) -> Double? { value.flatMap { $0.isFinite ? $0 : nil } }

    /// A non-negative value rounded to a whole number, as the air-quality metrics carry them.
    private static func whole(_ value: Double?) -> UInt32? {
        finite(value).map { UInt32(min(max(0, $0.rounded()), Double(UInt32.max))) }
    }
}

/// Why our own pilot update cannot be built.
public enum KiezboxPilotEncodingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The pilot's box and district ids use 8 bits.
    case idOutOfRange(field: String, value: Int)

    public var description: String {
        switch self {
        case .idOutOfRange(let field, let value): "\(field) = \(value): the Kiezbox 2.0 schema uses 0…255"
        }
    }
}

/// Our box's status as a Kiezbox 2.0 `update`, as a pilot box sends it, so the pilot's gateways store us too.
///
/// `meta` carries the configured box and district ids (0…255) and `dev_type` core; `unix_time` is `now`. The core
/// part carries the mode (crisis as the pilot's "emergency"), the battery (`battery_voltage`, `battery_current`)
/// and the solar panel (`solar_voltage`, `solar_power`); the sensor part the climate and particulate values
/// (`temp_main`, `humid_main`, `pressure`, `part_pm25`, `part_pm10`). Every value in the pilot's fixed point (× 1000,
/// pressure hPa × 1000 = Pa × 10), rounded, clamped to int32.
public struct KiezboxPilotUpdateEncoder: Sendable, Hashable {
    public let boxID: UInt32
    public let districtID: UInt32

    public init(boxID: Int, districtID: Int) throws(KiezboxPilotEncodingError) {
        guard (0...255).contains(boxID) else { throw .idOutOfRange(field: "box_id", value: boxID) }
        guard (0...255).contains(districtID) else { throw .idOutOfRange(field: "dist_id", value: districtID) }
        self.boxID = UInt32(boxID)
        self.districtID = UInt32(districtID)
    }

    public func message(for status: MeshStatus, now: Date) -> Meshtastic_KiezboxMessage {
        var core = Meshtastic_KiezboxMessage.CoreValues()
        var sensor = Meshtastic_KiezboxMessage.SensorValues()
        let values: [(PilotValueField, Double?)] = [
            (.batteryVoltage, status.batteryVoltage), (.batteryCurrent, status.batteryCurrent),
            (.solarVoltage, status.solarVoltage), (.solarPower, status.solarPower),
            (.tempMain, status.temperature), (.humidMain, status.relativeHumidity), (.pressure, status.pressure),
            (.particulates2_5, status.pm2_5), (.particulates10, status.pm10),
        ]
        for case (let field, let value?) in values where value.isFinite {
            field.set(PilotValueField.raw(value), in: &core)
            field.set(PilotValueField.raw(value), in: &sensor)
        }
        let meta = Meshtastic_KiezboxMessage.Meta.with {
            $0.boxID = self.boxID
            $0.distID = self.districtID
            $0.devType = .core
        }
        return Meshtastic_KiezboxMessage.with { message in
            message.update = .with { update in
                update.meta = meta
                update.unixTime = Int64(now.timeIntervalSince1970.rounded(.down))
                update.core = .with {
                    $0.mode = status.mode.pilot
                    $0.values = core
                }
                if sensor != Meshtastic_KiezboxMessage.SensorValues() {
                    update.sensor = .with { $0.values = sensor }
                }
            }
        }
    }
}
