import Foundation
import KiezboxCore
import MeshRelay
import SwiftProtobuf
import Testing

@Suite("Our box's status on the mesh: standard telemetry and a Kiezbox 2.0 update")
struct MeshStatusEncoderTests {
    static let now = Date(timeIntervalSince1970: 1_790_000_000)

    /// A full kit: BME280, SDS011/SPS30, SCD30, a battery INA219, a solar INA226, mains detector.
    static let fullKit = MeshStatus(
        mode: .crisis, temperature: -3.45, relativeHumidity: 81.5, pressure: 1002.75, pm1: 7.4, pm2_5: 12.3, pm10: 20.6,
        co2: 431, batteryVoltage: 12.63, batteryCurrent: -0.42, batteryLevel: 87, solarVoltage: 18.4, solarCurrent: 1.35,
        solarPower: 24.84, mainsPresent: false, uptime: .seconds(86_400 * 3 + 17))

    @Test("one telemetry per variant with data, the documented fields present, each within the 233-byte payload")
    func telemetryVariants() throws {
        let telemetry = MeshtasticTelemetryEncoder.telemetry(for: Self.fullKit, now: Self.now)
        #expect(telemetry.count == 4)
        for message in telemetry {
            #expect(message.time == 1_790_000_000)
            let bytes: [UInt8] = try message.serializedBytes()
            #expect(bytes.count <= MeshtasticPayload.maximumLength)
            let data: [UInt8] = try MeshtasticPayload.data(port: .telemetryApp, payload: bytes).serializedBytes()
            #expect(data.count == MeshtasticPayload.dataLength(port: .telemetryApp, payloadLength: bytes.count))
        }
        let environment = try #require(telemetry.first { $0.environmentMetrics != Meshtastic_EnvironmentMetrics() }?.environmentMetrics)
        #expect(environment.temperature == Float(-3.45) && environment.relativeHumidity == 81.5 && environment.barometricPressure == 1002.75)
        #expect(!environment.hasGasResistance && !environment.hasIaq)
        guard case .airQualityMetrics(let air)? = telemetry[1].variant else {
            Issue.record("the second telemetry is not air quality")
            return
        }
        // pm10_standard is PM1.0, pm25_standard PM2.5, pm100_standard PM10 (telemetry.proto), whole µg/m³.
        #expect(air.pm10Standard == 7 && air.pm25Standard == 12 && air.pm100Standard == 21 && air.co2 == 431)
        #expect(!air.hasPm10Environmental)
        guard case .powerMetrics(let power)? = telemetry[2].variant else {
            Issue.record("the third telemetry is not power")
            return
        }
        #expect(power.ch1Voltage == 12.63 && power.ch1Current == -0.42 && power.ch2Voltage == 18.4 && power.ch2Current == 1.35)
        #expect(!power.hasCh3Voltage)
        guard case .deviceMetrics(let device)? = telemetry[3].variant else {
            Issue.record("the fourth telemetry is not device metrics")
            return
        }
        #expect(device.batteryLevel == 87 && device.voltage == 12.63 && device.uptimeSeconds == 259_217)
        #expect(!device.hasChannelUtilization && !device.hasAirUtilTx)
    }

    @Test("only variants that have data; 0 °C is data; on mains without a level the battery level says 'powered'")
    func telemetryPresence() throws {
        #expect(MeshtasticTelemetryEncoder.telemetry(for: MeshStatus(), now: Self.now).isEmpty)
        let cold = MeshtasticTelemetryEncoder.telemetry(for: MeshStatus(temperature: 0, mainsPresent: true), now: Self.now)
        #expect(cold.count == 2)
        guard case .environmentMetrics(let environment)? = cold.first?.variant, case .deviceMetrics(let device)? = cold.last?.variant else {
            Issue.record("expected environment and device metrics: \(cold)")
            return
        }
        #expect(environment.hasTemperature && environment.temperature == 0 && !environment.hasRelativeHumidity)
        #expect(device.batteryLevel == 101 && !device.hasVoltage)
        // The explicit zero is on the wire: Telemetry { time, environment_metrics { temperature: 0.0 } }.
        let bytes: [UInt8] = try cold[0].serializedBytes()
        #expect(bytes == [0x0D] + withUnsafeBytes(of: UInt32(1_790_000_000).littleEndian, Array.init) + [0x1A, 0x05, 0x0D, 0, 0, 0, 0])
        let notFinite = MeshtasticTelemetryEncoder.telemetry(for: MeshStatus(temperature: .nan, pm2_5: .infinity), now: Self.now)
        #expect(notFinite.isEmpty)
    }

    @Test("the status from the latest readings: newest per quantity, solar and battery leads told apart by sensor id")
    func statusFromReadings() {
        let earlier = Self.now.addingTimeInterval(-60)
        let readings = [
            Reading(sensorID: "climate", quantity: .temperature, value: 18, measuredAt: earlier),
            Reading(sensorID: "climate", quantity: .temperature, value: 19, measuredAt: Self.now),
            Reading(sensorID: "balcony", quantity: .temperature, value: 99, measuredAt: earlier),
            Reading(sensorID: "climate", quantity: .relativeHumidity, value: 140, measuredAt: Self.now, quality: .implausible),
            Reading(sensorID: "battery", quantity: .voltage, value: 12.7, measuredAt: Self.now),
            Reading(sensorID: "battery", quantity: .current, value: 0.4, measuredAt: Self.now),
            Reading(sensorID: "solar-panel", quantity: .voltage, value: 18.9, measuredAt: Self.now),
            Reading(sensorID: "solar-panel", quantity: .power, value: 12.5, measuredAt: Self.now),
            Reading(sensorID: "mains", quantity: .mainsPresent, value: 0, measuredAt: Self.now),
            Reading(sensorID: "pm", quantity: .pm2_5, value: .nan, measuredAt: Self.now),
        ]
        let status = MeshStatus(latest: readings, mode: .normal)
        #expect(status.temperature == 19)
        #expect(status.relativeHumidity == nil && status.pm2_5 == nil)
        #expect(status.batteryVoltage == 12.7 && status.batteryCurrent == 0.4)
        #expect(status.solarVoltage == 18.9 && status.solarPower == 12.5 && status.solarCurrent == nil)
        #expect(status.mainsPresent == false)
    }

    @Test("our Kiezbox 2.0 update: meta, time, mode, the pilot's scaling; decoded by the pilot decoder to the same values")
    func ownUpdateRoundTrip() throws {
        let encoder = try KiezboxPilotUpdateEncoder(boxID: 200, districtID: 7)
        let message = encoder.message(for: Self.fullKit, now: Self.now)
        let update = message.update
        #expect(update.meta.boxID == 200 && update.meta.distID == 7 && update.meta.hasDevType && update.meta.devType == .core)
        #expect(update.unixTime == 1_790_000_000 && update.core.mode == .emergency)
        #expect(update.core.values.batteryCurrent == -420 && update.core.values.solarPower == 24_840)
        #expect(update.sensor.values.pressure == 1_002_750 && update.sensor.values.tempMain == -3450)
        let payload: [UInt8] = try message.serializedBytes()
        #expect(payload.count <= MeshtasticPayload.maximumLength)

        guard case .update(let decoded) = try KiezboxPilotDecoder().decode(payload: payload, from: 0x1234_5678, now: Self.now) else {
            Issue.record("not an update")
            return
        }
        #expect(decoded.mode == .crisis && decoded.timeSource == .message && decoded.box.name == "kb2-d7-b200")
        let values = Dictionary(uniqueKeysWithValues: decoded.readings.map { ("\($0.sensorID) \($0.quantity.rawValue)", $0.value) })
        #expect(
            values == [
                "kb2-d7-b200-battery voltage": 12.63, "kb2-d7-b200-battery current": -0.42,
                "kb2-d7-b200-solar voltage": 18.4, "kb2-d7-b200-solar power": 24.84,
                "kb2-d7-b200-s0 temperature": -3.45, "kb2-d7-b200-s0 relative_humidity": 81.5,
                "kb2-d7-b200-s0 pressure": 1002.75, "kb2-d7-b200-s0 pm2_5": 12.3, "kb2-d7-b200-s0 pm10": 20.6,
            ])
        #expect(decoded.skipped.isEmpty && decoded.implausible.isEmpty)

        // A box with only a battery monitor sends no sensor part.
        let bare = encoder.message(for: MeshStatus(mode: .normal, batteryVoltage: 12), now: Self.now)
        #expect(!bare.update.hasSensor && bare.update.core.mode == .normal)
        #expect(throws: KiezboxPilotEncodingError.idOutOfRange(field: "box_id", value: 256)) {
            try KiezboxPilotUpdateEncoder(boxID: 256, districtID: 1)
        }
        #expect(throws: KiezboxPilotEncodingError.idOutOfRange(field: "dist_id", value: -1)) {
            try KiezboxPilotUpdateEncoder(boxID: 1, districtID: -1)
        }
    }
}
