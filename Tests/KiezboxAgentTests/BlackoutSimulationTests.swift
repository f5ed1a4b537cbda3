import Foundation
import KiezboxCore
import Logging
import ReadingStore
import SensorDrivers
import Testing

@testable import KiezboxAgent

/// What the box draws, by part (docs/power.md, "The five-day blackout"). Watts at 5 V; the battery sees them
/// through a DC-DC converter of 85 % efficiency (the sizing in shared/reference/performance.md §1b).
struct BlackoutLoads {
    /// Raspberry Pi Zero 2 W, headless, idle: ~120 mA at 5 V (cnx-software 2021-12-09, Otii Arc; performance.md §1b).
    var piWatts = 0.6
    /// The emergency Wi-Fi access point and the portal: no published Pi measurement; performance.md §1b says to plan
    /// "a few hundred mW". An assumption.
    var accessPointWatts = 0.3
    /// CO₂ (SCD4x periodic measurement, ~15 mA at 3.3 V), BME280, GPS: an assumption of 0.1 W together, not shed.
    var otherSensorsWatts = 0.1
    /// The SDS011 while its fan and laser run: at most 100 mA at 5 V; asleep 2 mA (Nova Fitness SDS011 datasheet
    /// v1.3, as quoted at aqicn.org/sensor/sds011).
    var particulateRunningWatts = 0.5
    var particulateSleepingWatts = 0.01
    /// The SDS011 driver's defaults: 30 s warm-up, 5 samples 1 s apart.
    var particulateRunSeconds = 35.0
    /// One LoRa frame: ~1.5 s on air at SF12 for a short report (performance.md §0.6, Semtech formula) at ~100 mA
    /// and 5 V for the radio module while sending (an assumption for an SX126x-class module at +14 dBm).
    var loRaFrameJoules = 1.5 * 0.5
    /// A Meshtastic status is telemetry plus the Kiezbox 2.0 update: about three frames.
    var meshtasticFramesPerStatus = 3.0
    /// CPU per sensor reading or relay round: ~20 ms at +0.5 W over idle (performance.md §1b's wake-up estimate,
    /// rounded up for an SQLite query).
    var cpuJoulesPerWake = 0.02 * 0.5
    var converterEfficiency = 0.85

    /// The configured cadences the shed factors apply to (the embedded default configuration's).
    var particulateInterval: TimeInterval = 60
    var relayIdlePoll: TimeInterval = 10
    var loRaWANReportInterval: TimeInterval = 600
    var meshtasticStatusInterval: TimeInterval = 1800
    /// climate 10 s, co2 30 s, battery 10 s, mains 10 s: readings per second, not shed.
    var otherReadingsPerSecond = 1.0 / 10 + 1.0 / 30 + 1.0 / 10 + 1.0 / 10

    /// Average watts at 5 V over a minute in which the particulate sensor ran `particulateReadings` times.
    func watts(_ shed: ShedSettings, particulateReadings: Int) -> Double {
        let particulateOn = min(60, Double(particulateReadings) * self.particulateRunSeconds) / 60
        let particulate = particulateOn * self.particulateRunningWatts + (1 - particulateOn) * self.particulateSleepingWatts
        let loRaFramesPerSecond = 1 / (self.loRaWANReportInterval * Double(shed.loRaReportFactor))
            + self.meshtasticFramesPerStatus / (self.meshtasticStatusInterval * Double(shed.loRaReportFactor))
        let wakesPerSecond = self.otherReadingsPerSecond + Double(particulateReadings) / 60
            + 1 / (self.relayIdlePoll * Double(shed.relayIntervalFactor))
        return self.piWatts + self.accessPointWatts + self.otherSensorsWatts + particulate
            + loRaFramesPerSecond * self.loRaFrameJoules + wakesPerSecond * self.cpuJoulesPerWake
    }
}

/// A cloudy Berlin December: daylight 07:15–14:55 UTC, a half-sine of sun delivering 0.5 kWh per kWp and day
/// (the low end of Nov/Dec yields, Hochschule Trier 2019 via performance.md §1b) from a 20 Wp panel: 10 Wh a day.
struct CloudyDecember {
    var panelWattsPeak = 20.0
    var kilowattHoursPerKilowattPeakPerDay = 0.5
    var sunrise = 7.25
    var sunset = 14.92

    func watts(at date: Date) -> Double {
        let hour = date.timeIntervalSince1970.truncatingRemainder(dividingBy: 86_400) / 3600
        guard hour > self.sunrise, hour < self.sunset else { return 0 }
        let daylight = self.sunset - self.sunrise
        let dailyWattHours = self.panelWattsPeak * self.kilowattHoursPerKilowattPeakPerDay
        let peak = dailyWattHours * Double.pi / (2 * daylight)
        return peak * sin(Double.pi * (hour - self.sunrise) / daylight)
    }
}

/// Five days without mains for a box on the default kit with a small battery, minute by minute on a ManualClock:
/// the simulated battery feeds the simulated kit's INA226, the real driver reads it, the readings go into a real
/// store, the real power model service and load shedder take them from there every five minutes, and the shed
/// level they set decides the next minutes' draw.
struct BlackoutSimulation {
    struct Outcome {
        /// Hour of the blackout at which each step was first entered, in order of entry.
        var steps: [(step: Int, hour: Double, trueCharge: Double, estimate: Double)] = []
        /// When the battery's low-voltage disconnect first cut the box (and with it the portal); nil: still up.
        var portalDownAtHour: Double?
        var timeline: [String] = []
    }

    static let start = Date(timeIntervalSince1970: 1_796_666_400)  // 2026-12-07 18:00 UTC
    static let configuration = """
        [box]
        id = "blackout-box"
        district = "test-kiez"
        [[sensor]]
        id = "battery"
        chip = "ina226"
        address = 0x40
        [[sensor]]
        id = "particulates"
        chip = "sds011"
        port = "/dev/ttyUSB0"
        interval = "1m"
        [power]
        capacity_ah = 8
        chemistry = "lifepo4"
        """

    var days = 5.0
    var loads = BlackoutLoads()
    var sun = CloudyDecember()

    func run(shedding: Bool) async throws -> Outcome {
        let directory = try temporaryDirectory("blackout")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = try KiezboxConfiguration.parse(Self.configuration, file: "blackout.toml")
        let power = try #require(configuration.power)
        let policy = shedding ? power.shedding : LoadSheddingPolicy(thresholds: [])
        let clock = ManualClock(startDate: Self.start)
        let logger = Logger(label: "blackout")
        let store = try ReadingStore(directory: directory)
        defer { try? store.close() }
        let kit = SimulatedKit(following: configuration.sensors, position: nil)
        let batteryMonitor = try #require(SensorFactory(buses: kit).scheduledSensors(configuration.sensors).first { $0.id == "battery" })
        let level = ShedLevel()
        let powerModel = PowerModelService(store: store, configuration: power, clock: clock, logger: logger)
        let shedder = LoadShedder(store: store, policy: policy, level: level, clock: clock, logger: logger)

        // Mains charged the battery full until the blackout: the end-of-charge anchor, 100 % ± 1 %.
        var battery = SimulatedBattery(chemistry: .lifePO4, capacityAmpHours: power.battery.capacityAmpHours, stateOfCharge: 1)
        var model = BatteryModel(configuration: power.battery, state: BatteryState(stateOfCharge: 1, stateOfChargeUncertainty: 0.01))
        try await store.setBatteryRecord(BatteryRecord(state: model.state, estimate: model.estimate, at: Self.start))
        var shedRecord = LoadShedRecord(step: 0, steps: policy.stepCount, since: Self.start, reason: "starting")

        var outcome = Outcome()
        var volts = battery.step(loadAmps: 0, chargerAmps: 0, seconds: 1).volts
        var particulateSlots = Int.max / 2
        var wattMinutes = 0.0
        for minute in 0..<Int(self.days * 24 * 60) {
            let now = clock.currentDate()
            let hour = Double(minute) / 60
            // The particulate sensor's slot this minute, decided as the sampler decides it.
            var particulateReadings = 0
            if level.settings.readsParticulate(slotsSinceLastReading: particulateSlots) {
                particulateReadings = 1
                particulateSlots = 1
            } else {
                particulateSlots += 1
            }
            let watts = self.loads.watts(level.settings, particulateReadings: particulateReadings)
            let loadAmps = watts / self.loads.converterEfficiency / volts
            let chargerAmps = self.sun.watts(at: now) / volts
            let step = battery.step(loadAmps: loadAmps, chargerAmps: chargerAmps, seconds: 60)
            volts = step.volts
            wattMinutes += step.loadAmps > 0 ? watts : 0
            if step.loadAmps == 0, outcome.portalDownAtHour == nil { outcome.portalDownAtHour = hour }

            clock.advance(by: .seconds(60))
            var conditions = SimulatedWeather.conditions(at: clock.currentDate())
            (conditions.batteryVolts, conditions.batteryAmps, conditions.mainsPresent) = (step.volts, step.amps, false)
            kit.updateWorld(conditions, at: clock.currentDate())
            let measured = try await batteryMonitor.driver.measure()
            try await store.record(measured.map { Reading(sensorID: "battery", quantity: $0.quantity, value: $0.value, measuredAt: clock.currentDate()) })
            guard minute % 5 == 4 else { continue }
            // What the mains-fail input reports, and the services' rounds.
            try await store.record([Reading(sensorID: "mains", quantity: .mainsPresent, value: 0, measuredAt: clock.currentDate())])
            _ = try await store.flush()
            await powerModel.update(&model)
            let before = shedRecord.step
            await shedder.update(&shedRecord)
            let estimate = model.estimate.stateOfCharge
            if shedRecord.step > before, !outcome.steps.contains(where: { $0.step >= shedRecord.step }) {
                outcome.steps.append((shedRecord.step, Double(minute + 1) / 60, battery.stateOfCharge, estimate))
            }
            if (minute + 1) % (12 * 60) == 0 {
                outcome.timeline.append(String(
                    format: "  hour %3d: true charge %5.1f %%, model %5.1f %%, step %d; the box drew %.2f W (5 V side) on average over the last 12 h",
                    (minute + 1) / 60, battery.stateOfCharge * 100, estimate * 100, shedRecord.step, wattMinutes / (12 * 60)))
                wattMinutes = 0
            }
        }
        return outcome
    }
}

@Suite("Five-day blackout with load shedding")
struct BlackoutSimulationTests {
    @Test("steps come in order, the portal stays up past the last step, and shedding keeps it up longer")
    func fiveDays() async throws {
        let simulation = BlackoutSimulation()
        let shed = try await simulation.run(shedding: true)
        let unshed = try await simulation.run(shedding: false)
        func portal(_ outcome: BlackoutSimulation.Outcome) -> String {
            outcome.portalDownAtHour.map { String(format: "portal down at hour %.1f", $0) } ?? "portal still up after \(Int(simulation.days * 24)) h"
        }
        print("Five-day blackout from 2026-12-07 18:00 UTC: 8 Ah LiFePO₄ full, 20 Wp panel in a cloudy December, default kit")
        print("with shedding (shed_at = [50, 35, 20, 10]):")
        for step in shed.steps {
            print(String(format: "  step %d at hour %.1f (true charge %.1f %%, model %.1f %%)", step.step, step.hour, step.trueCharge * 100, step.estimate * 100))
        }
        shed.timeline.forEach { print($0) }
        print("  " + portal(shed))
        print("without shedding:")
        unshed.timeline.forEach { print($0) }
        print("  " + portal(unshed))

        #expect(shed.steps.map(\.step) == [1, 2, 3, 4], "each step once, in order")
        #expect(zip(shed.steps, shed.steps.dropFirst()).allSatisfy { $0.hour < $1.hour })
        #expect(unshed.steps.isEmpty)
        let lastStep = try #require(shed.steps.last)
        #expect((shed.portalDownAtHour ?? .infinity) > lastStep.hour, "the portal is up until the last step")
        let unshedDown = try #require(unshed.portalDownAtHour, "without shedding the battery empties within five days")
        #expect((shed.portalDownAtHour ?? .infinity) > unshedDown, "shedding keeps the portal up longer")
    }
}
