import Foundation
import KiezboxCore
import Logging
import ReadingStore
import Testing

@testable import KiezboxAgent

@Suite("Power model service")
struct PowerModelServiceTests {
    /// Two hours of an INA226 in the battery lead (6 A out, 12.3 V) and an INA219 on the solar input (18 V,
    /// 1 A), committed to a real store as the sampler would; the service takes them in across a restart.
    @Test("committed monitor readings drive the model; its record survives a restart and shows in kiezbox status")
    func feedsAndRestores() async throws {
        let directory = try temporaryDirectory("power-model")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let start = Date(timeIntervalSince1970: 1_790_000_000)
        let clock = ManualClock(startDate: start)
        let power = PowerConfiguration(
            battery: BatteryConfiguration(capacityAmpHours: 100, chemistry: .leadAcid), batterySensorID: "battery",
            solarSensorID: "solar"
        )
        func readings(minutes: ClosedRange<Int>) -> [Reading] {
            minutes.flatMap { minute -> [Reading] in
                let at = start.addingTimeInterval(Double(minute) * 60)
                return [
                    Reading(sensorID: "battery", quantity: .voltage, value: 12.3, measuredAt: at),
                    Reading(sensorID: "battery", quantity: .current, value: 6, measuredAt: at),
                    Reading(sensorID: "battery", quantity: .power, value: 73.8, measuredAt: at),
                    Reading(sensorID: "solar", quantity: .voltage, value: 18, measuredAt: at),
                    Reading(sensorID: "solar", quantity: .current, value: 1, measuredAt: at),
                    Reading(sensorID: "climate", quantity: .temperature, value: 20, measuredAt: at),
                ]
            }
        }
        do {
            let store = try ReadingStore(directory: directory)
            try await store.setBatteryRecord(
                BatteryRecord(
                    state: .init(stateOfCharge: 0.8, stateOfChargeUncertainty: 0.05),
                    estimate: BatteryModel(configuration: power.battery).estimate, at: start
                )
            )
            try await store.record(readings(minutes: 0...60))
            _ = try await store.flush()
            let service = PowerModelService(store: store, configuration: power, clock: clock, logger: Logger(label: "power-test"))
            var model = BatteryModel(configuration: power.battery, state: try #require(try store.batteryRecord()).state)
            await service.update(&model)
            #expect(abs(model.state.stateOfCharge - 0.74) < 1e-9)
            try store.close()
        }
        // The restarted daemon restores the state and counts on from the last sample, not twice.
        let store = try ReadingStore(directory: directory)
        try await store.record(readings(minutes: 30...120))
        _ = try await store.flush()
        clock.advance(by: .seconds(7200))
        let service = PowerModelService(store: store, configuration: power, clock: clock, logger: Logger(label: "power-test"))
        var model = BatteryModel(configuration: power.battery, state: try #require(try store.batteryRecord()).state)
        await service.update(&model)
        let record = try #require(try store.batteryRecord())
        #expect(abs(record.state.stateOfCharge - 0.68) < 1e-9)
        #expect(record.estimate.solarWatts == 18)
        #expect(record.estimate.hoursLeft != nil)

        let status = renderStatus(try store.statistics(), path: store.path, now: clock.currentDate(), battery: record)
        let line = try #require(status.split(separator: "\n").first { $0.contains("battery ") && $0.contains("power left") })
        print(line)
        #expect(line.contains("68 %"))
        #expect(line.contains("solar 18.0 W"))
    }
}
