import Foundation
import KiezboxCore
import Testing

@testable import ReadingStore

@Suite("Battery model in the store")
struct BatteryRecordTests {
    let start = Date(timeIntervalSince1970: 1_790_000_000)

    @Test("the model's state survives reopening the store, and a restored model counts on from it")
    func survivesRestart() async throws {
        try await withTemporaryDirectory { directory in
            let configuration = BatteryConfiguration(capacityAmpHours: 100, chemistry: .leadAcid)
            var model = BatteryModel(configuration: configuration, state: .init(stateOfCharge: 0.8, stateOfChargeUncertainty: 0.05))
            for minute in 0...60 {
                model.observeBattery(volts: 12.3, amps: 6, at: self.start.addingTimeInterval(Double(minute) * 60))
            }
            model.observeSolar(volts: 13, amps: 2, watts: nil, at: self.start.addingTimeInterval(3600))
            do {
                let store = try ReadingStore(directory: directory)
                #expect(try store.batteryRecord() == nil)
                try await store.setBatteryRecord(.init(state: model.state, estimate: model.estimate, at: self.start.addingTimeInterval(3600)))
                try store.close()
            }
            let store = try ReadingStore(directory: directory)
            let record = try #require(try store.batteryRecord())
            #expect(record.state == model.state)
            #expect(record.estimate == model.estimate)
            #expect(record.estimate.hoursLeft != nil)

            // The restored model goes on counting where the old one stopped: another hour at 6 A.
            var restored = BatteryModel(configuration: configuration, state: record.state)
            for minute in 61...120 {
                restored.observeBattery(volts: 12.3, amps: 6, at: self.start.addingTimeInterval(Double(minute) * 60))
            }
            #expect(abs(restored.state.stateOfCharge - 0.68) < 1e-9)
            #expect(restored.state.stateOfChargeUncertainty > record.state.stateOfChargeUncertainty)

            try await store.setBatteryRecord(nil)
            #expect(try store.batteryRecord() == nil)
        }
    }
}
