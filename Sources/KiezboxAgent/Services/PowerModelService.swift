import Foundation
import KiezboxCore
import Logging
import ReadingStore
import ServiceLifecycle

/// Feeds the power model (docs/power.md) the battery and solar monitors' committed readings and keeps its state
/// and estimate in the store, where the portal, `kiezbox status` and `/metrics` read them. Continues from the
/// stored state after a restart.
struct PowerModelService<C: KiezboxClock>: Service {
    let store: ReadingStore
    let configuration: PowerConfiguration
    let clock: C
    let logger: Logger
    /// How often committed readings are taken in (they arrive with the store's flush interval anyway).
    var interval: Duration = .seconds(30)

    func run() async throws {
        let initial = BatteryModel(configuration: self.configuration.battery, state: self.restoredState())
        var model = await cancelWhenGracefulShutdown {
            var model = initial
            while !Task.isCancelled {
                await self.update(&model)
                do { try await self.clock.sleep(for: self.interval) } catch { break }
            }
            return model
        }
        // The last readings the sampler committed on the way down.
        await self.update(&model)
    }

    /// Takes in the readings committed since the model's last sample and records the result.
    func update(_ model: inout BatteryModel) async {
        do {
            // A fresh model starts from the last hour rather than the whole store.
            let since = [model.state.lastSampleAt, model.state.lastSolarAt].compactMap(\.self).min()
                ?? self.clock.currentDate().addingTimeInterval(-3600)
            var readings = try self.store.readings(since: since, sensor: self.configuration.batterySensorID)
            if let solar = self.configuration.solarSensorID {
                readings += try self.store.readings(since: since, sensor: solar)
            }
            model.observe(
                readings.map(\.reading), batterySensorID: self.configuration.batterySensorID,
                solarSensorID: self.configuration.solarSensorID
            )
            try await self.store.setBatteryRecord(.init(state: model.state, estimate: model.estimate, at: self.clock.currentDate()))
        } catch {
            self.logger.error("power model: readings could not be taken in", metadata: ["error": "\(error)"])
        }
    }

    private func restoredState() -> BatteryState {
        do {
            if let record = try self.store.batteryRecord() { return record.state }
        } catch {
            self.logger.warning("power model: stored state unreadable; starting afresh", metadata: ["error": "\(error)"])
        }
        return .unknown
    }
}
