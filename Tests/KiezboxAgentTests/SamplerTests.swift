import Foundation
import KiezboxCore
import Logging
import SensorDrivers
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing

@testable import KiezboxAgent

/// A driver whose answers the test scripts: a value, or a failure, per call.
final class ScriptedDriver: SensorDriver {
    let chipName = "scripted"
    private let state: Mutex<(calls: Int, failing: Bool)>

    init(failing: Bool = false) {
        self.state = Mutex((0, failing))
    }

    var calls: Int { self.state.withLock { $0.calls } }
    func setFailing(_ failing: Bool) { self.state.withLock { $0.failing = failing } }

    func measure() async throws -> [MeasuredValue] {
        let (call, failing) = self.state.withLock { state in
            state.calls += 1
            return (state.calls, state.failing)
        }
        struct Unplugged: Error {}
        if failing { throw Unplugged() }
        return [MeasuredValue(.temperature, Double(call))]
    }
}

/// Collects what the sampler hands to the store.
final class ReadingCollector: Sendable {
    private let readings = Mutex<[Reading]>([])
    var all: [Reading] { self.readings.withLock { $0 } }
    func record(_ new: [Reading]) { self.readings.withLock { $0.append(contentsOf: new) } }
    func count(of sensor: String) -> Int { self.all.filter { $0.sensorID == sensor }.count }
}

@Suite("Sampler on an injected clock")
struct SamplerTests {
    let logger = Logger(label: "test")

    /// Runs `sampler` and steps the clock `steps` times by `step`, each time after every sensor task is asleep.
    func drive(
        _ sampler: Sampler<ManualClock>, clock: ManualClock, sleepers: Int, steps: Int, step: Duration = .seconds(1)
    ) async throws {
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await sampler.run() }
                for _ in 0..<steps {
                    await clock.waitForSleepers(sleepers)
                    clock.advance(by: step)
                }
                await clock.waitForSleepers(sleepers)
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
    }

    @Test("every sensor runs on its own cadence")
    func cadences() async throws {
        let clock = ManualClock()
        let collector = ReadingCollector()
        let sampler = Sampler(
            sensors: [
                ScheduledSensor(id: "fast", interval: .seconds(10), offsets: [:], driver: ScriptedDriver()),
                ScheduledSensor(id: "slow", interval: .seconds(25), offsets: [:], driver: ScriptedDriver()),
            ],
            clock: clock, logger: self.logger
        ) { collector.record($0) }
        try await self.drive(sampler, clock: clock, sleepers: 2, steps: 100)
        // t = 0, 10, …, 100 and t = 0, 25, 50, 75, 100.
        #expect(collector.count(of: "fast") == 11)
        #expect(collector.count(of: "slow") == 5)
    }

    @Test("readings carry the sensor id, the clock's wall time and the configured offset")
    func stamping() async throws {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let clock = ManualClock(startDate: start)
        let collector = ReadingCollector()
        let sampler = Sampler(
            sensors: [ScheduledSensor(id: "climate", interval: .seconds(60), offsets: [.temperature: -0.5], driver: ScriptedDriver())],
            clock: clock, logger: self.logger
        ) { collector.record($0) }
        try await self.drive(sampler, clock: clock, sleepers: 1, steps: 2, step: .seconds(60))
        let readings = collector.all
        #expect(readings.map(\.measuredAt) == [start, start + 60, start + 120])
        #expect(readings.map(\.value) == [0.5, 1.5, 2.5])
        #expect(readings.allSatisfy { $0.sensorID == "climate" && $0.quantity == .temperature })
    }

    @Test("a failing sensor is retried with doubling backoff and never stops the others")
    func failingSensorBacksOff() async throws {
        let clock = ManualClock()
        let collector = ReadingCollector()
        let broken = ScriptedDriver(failing: true)
        let sampler = Sampler(
            sensors: [
                ScheduledSensor(id: "broken", interval: .seconds(10), offsets: [:], driver: broken),
                ScheduledSensor(id: "healthy", interval: .seconds(10), offsets: [:], driver: ScriptedDriver()),
            ],
            clock: clock, backoff: RetryBackoff(initial: .seconds(5), maximum: .seconds(40)), logger: self.logger
        ) { collector.record($0) }
        try await self.drive(sampler, clock: clock, sleepers: 2, steps: 200)
        // Attempts at t = 0, 5, 15, 35, 75, 115, 155, 195: 5 s doubling, capped at 40 s.
        #expect(broken.calls == 8)
        #expect(collector.count(of: "broken") == 0)
        #expect(collector.count(of: "healthy") == 21)
    }

    @Test("a sensor that answers again returns to its cadence")
    func recovery() async throws {
        let clock = ManualClock()
        let collector = ReadingCollector()
        let flaky = ScriptedDriver(failing: true)
        let sampler = Sampler(
            sensors: [ScheduledSensor(id: "flaky", interval: .seconds(10), offsets: [:], driver: flaky)],
            clock: clock, backoff: RetryBackoff(initial: .seconds(5), maximum: .seconds(40)), logger: self.logger
        ) { collector.record($0) }
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await sampler.run() }
                for second in 0..<100 {
                    await clock.waitForSleepers(1)
                    if second == 20 { flaky.setFailing(false) }
                    clock.advance(by: .seconds(1))
                }
                await clock.waitForSleepers(1)
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        // Failed at 0, 5, 15; healed at 20; answered at 35 (the pending retry), then 45, 55, …, 95.
        #expect(collector.count(of: "flaky") == 7)
        #expect(collector.all.first?.measuredAt == ManualClock().currentDate() + 35)
    }

    @Test("a store that refuses readings does not stop sampling")
    func sinkFailure() async throws {
        let clock = ManualClock()
        let attempts = Mutex(0)
        struct DiskFull: Error {}
        let sampler = Sampler(
            sensors: [ScheduledSensor(id: "climate", interval: .seconds(10), offsets: [:], driver: ScriptedDriver())],
            clock: clock, logger: self.logger
        ) { _ in
            attempts.withLock { $0 += 1 }
            throw DiskFull()
        }
        try await self.drive(sampler, clock: clock, sleepers: 1, steps: 50)
        #expect(attempts.withLock { $0 } == 6)
    }

    @Test("backoff doubles up to its maximum")
    func backoff() {
        let backoff = RetryBackoff(initial: .seconds(5), maximum: .seconds(600))
        #expect(backoff.delay(afterFailures: 1) == .seconds(5))
        #expect(backoff.delay(afterFailures: 2) == .seconds(10))
        #expect(backoff.delay(afterFailures: 5) == .seconds(80))
        #expect(backoff.delay(afterFailures: 20) == .seconds(600))
        #expect(backoff.delay(afterFailures: 10_000) == .seconds(600))
    }
}

@Suite("Sampler: watching sensors")
struct WatchingSensorSamplerTests {
    @Test("a watching sensor is first read one interval after the start, then on its cadence")
    func firstReadingAfterInterval() async throws {
        let clock = ManualClock()
        let collector = ReadingCollector()
        var sensor = ScheduledSensor(id: "rain", interval: .seconds(60), offsets: [:], driver: ScriptedDriver())
        sensor.firstReadingAfterInterval = true
        let sampler = Sampler(sensors: [sensor], clock: clock, logger: Logger(label: "test")) { collector.record($0) }
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await sampler.run() }
                for _ in 0..<180 {
                    await clock.waitForSleepers(1)
                    clock.advance(by: .seconds(1))
                }
                await clock.waitForSleepers(1)
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        let start = ManualClock().currentDate()
        #expect(collector.all.map(\.measuredAt) == [start + 60, start + 120, start + 180])
    }
}
