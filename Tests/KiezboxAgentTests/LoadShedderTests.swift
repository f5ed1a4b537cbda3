import Foundation
import KiezboxCore
import Logging
import ReadingStore
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

@testable import KiezboxAgent

@Suite("Load shedder")
struct LoadShedderTests {
    let logger = Logger(label: "load-shed-test")

    /// A power-model record saying `stateOfCharge`, made at `at`.
    static func batteryRecord(_ stateOfCharge: Double, at: Date) -> BatteryRecord {
        let model = BatteryModel(
            configuration: BatteryConfiguration(capacityAmpHours: 100, chemistry: .lifePO4),
            state: BatteryState(stateOfCharge: stateOfCharge, stateOfChargeUncertainty: 0.02))
        return BatteryRecord(state: model.state, estimate: model.estimate, at: at)
    }

    /// A shedder with the default policy on a real store in `directory`.
    func shedder(in directory: String) throws -> (ManualClock, ReadingStore, ShedLevel, LoadShedder<ManualClock>) {
        let clock = ManualClock()
        let store = try ReadingStore(directory: directory)
        let level = ShedLevel()
        return (clock, store, level, LoadShedder(store: store, policy: LoadSheddingPolicy(), level: level, clock: clock, logger: self.logger))
    }

    /// The first decision, from step 0, with the power model saying `stateOfCharge`.
    static func start(_ shedder: LoadShedder<ManualClock>, store: ReadingStore, clock: ManualClock, stateOfCharge: Double) async throws -> LoadShedRecord {
        var current = LoadShedRecord(step: 0, steps: 4, since: clock.currentDate(), reason: "starting")
        try await store.setBatteryRecord(Self.batteryRecord(stateOfCharge, at: clock.currentDate()))
        await shedder.update(&current)
        return current
    }

    /// The shedder reads the power model's record from a real store and sets the shared level; the real sampler
    /// then reads the particulate sensor (5-minute slots) a quarter as often at step 1, and every slot again once
    /// the charge is back above 55 %. The climate sensor next to it keeps its cadence all along.
    @Test("at step 1 the sampler reads the particulate sensor a quarter as often; back at step 0 every slot again")
    func samplerShedsTheFan() async throws {
        let directory = try temporaryDirectory("load-shed")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (clock, store, level, shedder) = try self.shedder(in: directory)
        var current = try await Self.start(shedder, store: store, clock: clock, stateOfCharge: 0.45)
        #expect(level.current.step == 1)
        let record = try #require(try store.loadShedRecord())
        #expect(record.step == 1 && record.steps == 4)
        #expect(record.reason == "state of charge 45.0 % below 50 %")

        let particulate = ScriptedDriver()
        let climate = ScriptedDriver()
        let collector = ReadingCollector()
        let sampler = Sampler(
            sensors: [
                ScheduledSensor(id: "pm", interval: .seconds(300), offsets: [:], driver: particulate, isParticulate: true),
                ScheduledSensor(id: "climate", interval: .seconds(300), offsets: [:], driver: climate),
            ],
            clock: clock, logger: self.logger, shedLevel: level
        ) { collector.record($0) }
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await sampler.run() }
                // Two hours at step 1: slots at 0, 5, …, 120 min; the fan runs at 0, 20, 40, …, 120.
                for _ in 0..<24 {
                    await clock.waitForSleepers(2)
                    clock.advance(by: .seconds(300))
                }
                await clock.waitForSleepers(2)
                #expect(particulate.calls == 7)
                #expect(climate.calls == 25)
                // The sun came out: 60 % is 5 points above the 50 % threshold, so step 1 ends.
                try await store.setBatteryRecord(Self.batteryRecord(0.60, at: clock.currentDate()))
                await shedder.update(&current)
                #expect(level.current.step == 0)
                for _ in 0..<12 {
                    await clock.waitForSleepers(2)
                    clock.advance(by: .seconds(300))
                }
                await clock.waitForSleepers(2)
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        #expect(particulate.calls == 7 + 12)
        #expect(climate.calls == 25 + 12)
        try store.close()
    }

    @Test("mains present ends shedding at once; a stale model record keeps the step; the step survives a restart")
    func mainsAndStaleness() async throws {
        let directory = try temporaryDirectory("load-shed-mains")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (clock, store, level, shedder) = try self.shedder(in: directory)
        var current = try await Self.start(shedder, store: store, clock: clock, stateOfCharge: 0.15)
        #expect(level.current.step == 3)
        #expect(level.settings.loRaReportFactor > 1)
        // The power model stopped 20 minutes ago: the step stays (no new facts), whatever the old record said.
        clock.advance(by: .seconds(1200))
        try await store.setBatteryRecord(Self.batteryRecord(0.90, at: clock.currentDate().addingTimeInterval(-1200)))
        await shedder.update(&current)
        #expect(current.step == 3)
        // Mains back (the mains-fail input says so): step 0 at once, even at 15 %.
        try await store.setBatteryRecord(Self.batteryRecord(0.15, at: clock.currentDate()))
        try await store.record([Reading(sensorID: "mains", quantity: .mainsPresent, value: 1, measuredAt: clock.currentDate())])
        _ = try await store.flush()
        await shedder.update(&current)
        #expect(level.current.step == 0)
        #expect(try store.loadShedRecord()?.reason == "mains present")
        // Mains gone again: by the charge, step 3 again.
        clock.advance(by: .seconds(60))
        try await store.record([Reading(sensorID: "mains", quantity: .mainsPresent, value: 0, measuredAt: clock.currentDate())])
        _ = try await store.flush()
        await shedder.update(&current)
        #expect(current.step == 3)
        // A restarted daemon whose power model has not reported yet (the record is an hour old) goes on at step 3.
        clock.advance(by: .seconds(3600))
        let restartedLevel = ShedLevel()
        let restarted = LoadShedder(store: store, policy: LoadSheddingPolicy(), level: restartedLevel, clock: clock, logger: self.logger)
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await restarted.run() }
                await clock.waitForSleepers(1)
                #expect(restartedLevel.current.step == 3)
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        try store.close()
    }
}

@Suite("Load shedding in kiezbox status")
struct LoadShedStatusTests {
    @Test("the shedding line says the step, for how long and why; none at step 0")
    func line() {
        let now = Date(timeIntervalSince1970: 1_790_000_000)
        #expect(
            renderLoadShed(LoadShedRecord(step: 2, steps: 4, since: now - 3 * 3600, reason: "state of charge 34.6 % below 35 %"), now: now)
                == "  shedding    step 2 of 4 for 3h (state of charge 34.6 % below 35 %)")
        #expect(renderLoadShed(LoadShedRecord(step: 0, steps: 4, since: now, reason: "mains present"), now: now) == "  shedding    none (mains present)")
    }
}
