import Foundation
import KiezboxCore
import Logging
import ReadingStore
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing

@testable import MeshRelay

/// An uplink whose other side the test scripts: it records what arrived and acknowledges what it is told to.
final class ScriptedUplink: Uplink {
    let name: String
    let maximumBatch: Int
    private struct State {
        var received: [StoredReading] = []
        var failuresLeft = 0
        var connectionBreaksAfter: Int?
        var acknowledgementsLostAfter: Int?
        var deliveries = 0
        var started = 0
        var stopped = 0
    }
    private let state = Mutex(State())

    init(name: String = "scripted", maximumBatch: Int = 100) {
        self.name = name
        self.maximumBatch = maximumBatch
    }

    var received: [StoredReading] { self.state.withLock { $0.received } }
    var deliveries: Int { self.state.withLock { $0.deliveries } }
    var stopped: Int { self.state.withLock { $0.stopped } }
    func fail(times: Int) { self.state.withLock { $0.failuresLeft = times } }
    /// Each delivery gets only its first `count` readings through, then the connection breaks.
    func breakConnection(after count: Int?) { self.state.withLock { $0.connectionBreaksAfter = count } }
    /// Each delivery arrives whole, but only the first `count` acknowledgements come back.
    func loseAcknowledgements(after count: Int?) { self.state.withLock { $0.acknowledgementsLostAfter = count } }

    struct Unreachable: Error {}

    func deliver(_ batch: [StoredReading]) async throws -> Set<Int64> {
        try self.state.withLock { state in
            state.deliveries += 1
            if state.failuresLeft > 0 {
                state.failuresLeft -= 1
                throw Unreachable()
            }
            let arriving = batch.prefix(state.connectionBreaksAfter ?? batch.count)
            state.received.append(contentsOf: arriving)
            return Set(arriving.prefix(state.acknowledgementsLostAfter ?? arriving.count).map(\.id))
        }
    }

    func start() async throws { self.state.withLock { $0.started += 1 } }
    func stop() async { self.state.withLock { $0.stopped += 1 } }
}

@Suite("Relay")
struct RelayTests {
    let logger = Logger(label: "test")

    func withStore(_ body: (ReadingStore) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-relay-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await body(try ReadingStore(directory: directory))
    }

    func readings(_ count: Int, sensors: [String] = ["a", "b"]) -> [Reading] {
        (0..<count).map { index in
            Reading(
                sensorID: sensors[index % sensors.count], quantity: .temperature, value: Double(index),
                measuredAt: Date(timeIntervalSince1970: 1_790_000_000 + Double(index))
            )
        }
    }

    /// Runs the relay while `steps` advance the clock by `step` each, one sleeper (the pump) at a time.
    func drive(_ relay: RelayService<ManualClock>, clock: ManualClock, steps: Int, step: Duration = .seconds(1), each: (Int) async throws -> Void = { _ in }) async throws {
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await relay.run() }
                for index in 0..<steps {
                    await clock.waitForSleepers(1)
                    try await each(index)
                    clock.advance(by: step)
                }
                await clock.waitForSleepers(1)
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
    }

    @Test("every reading is delivered once, in order, and the cursor follows")
    func deliversInOrder() async throws {
        try await self.withStore { store in
            try await store.record(self.readings(250))
            try await store.flush()
            let clock = ManualClock()
            let uplink = ScriptedUplink()
            let relay = RelayService(
                uplinks: [uplink], store: store, clock: clock,
                configuration: .init(batchSize: 100, idlePoll: .seconds(1), maximumBackfillRate: 0), logger: self.logger
            )
            try await self.drive(relay, clock: clock, steps: 3) { step in
                if step == 1 {
                    try await store.record(self.readings(10))
                    try await store.flush()
                }
            }
            #expect(uplink.received.map(\.id) == Array(1...260))
            #expect(try await store.undelivered(for: "scripted", limit: 10).isEmpty)
            #expect(try store.statistics().uplinks.first?.deliveredThrough == 260)
            #expect(uplink.stopped == 1)
        }
    }

    @Test("a failing uplink is retried with doubling backoff, and nothing is lost")
    func backoff() async throws {
        try await self.withStore { store in
            try await store.record(self.readings(10))
            try await store.flush()
            let clock = ManualClock()
            let uplink = ScriptedUplink()
            uplink.fail(times: 4)
            let relay = RelayService(
                uplinks: [uplink], store: store, clock: clock,
                configuration: .init(initialBackoff: .seconds(2), maximumBackoff: .seconds(8)), logger: self.logger,
                jitter: { $0 }
            )
            var deliveriesAt: [Int: Int] = [:]
            try await self.drive(relay, clock: clock, steps: 40) { second in deliveriesAt[second] = uplink.deliveries }
            // Attempts at t = 0, 2, 6, 14, 22 (2, 4, 8, 8 s apart): the fifth succeeds.
            let attemptTimes = (1..<40).filter { deliveriesAt[$0, default: 0] > deliveriesAt[$0 - 1, default: 0] }
            #expect(attemptTimes == [2, 6, 14, 22])
            #expect(uplink.received.map(\.id) == Array(1...10))
        }
    }

    @Test("jitter keeps the wait between half the backoff and all of it")
    func jitterBounds() {
        for _ in 0..<1000 {
            let delay = RelayService<ManualClock>.halfToFullJitter(.seconds(10))
            #expect(delay >= .seconds(5) && delay <= .seconds(10))
        }
        let configuration = RelayConfiguration(initialBackoff: .seconds(2), maximumBackoff: .seconds(300))
        #expect((1...10).map { configuration.backoff(afterFailures: $0) } == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300].map { .seconds($0) })
    }

    @Test(
        "a connection that breaks mid-batch, or acknowledgements that get lost, lose nothing and keep each sensor in order",
        arguments: ["break", "lost-acks"]
    )
    func partialDelivery(failure: String) async throws {
        try await self.withStore { store in
            try await store.record(self.readings(40))
            try await store.flush()
            let clock = ManualClock()
            let uplink = ScriptedUplink(maximumBatch: 10)
            if failure == "break" { uplink.breakConnection(after: 3) } else { uplink.loseAcknowledgements(after: 3) }
            let relay = RelayService(
                uplinks: [uplink], store: store, clock: clock,
                configuration: .init(idlePoll: .seconds(1), maximumBackfillRate: 0), logger: self.logger
            )
            try await self.drive(relay, clock: clock, steps: 30)
            let received = uplink.received
            #expect(Set(received.map(\.id)) == Set(1...40))
            #expect(try await store.undelivered(for: "scripted", limit: 1).isEmpty)
            // After dropping duplicates by id, every sensor's readings arrived in the order they were measured.
            var seen: Set<Int64> = []
            let firstArrivals = received.filter { seen.insert($0.id).inserted }
            for sensor in ["a", "b"] {
                let times = firstArrivals.filter { $0.reading.sensorID == sensor }.map(\.reading.measuredAt)
                #expect(times == times.sorted())
            }
            if failure == "lost-acks" { #expect(received.count > 40, "lost acknowledgements mean duplicates") }
        }
    }

    @Test("a backlog is sent no faster than the configured rate")
    func pacedBackfill() async throws {
        try await self.withStore { store in
            try await store.record(self.readings(1000))
            try await store.flush()
            let clock = ManualClock()
            let uplink = ScriptedUplink(maximumBatch: 100)
            let relay = RelayService(
                uplinks: [uplink], store: store, clock: clock,
                configuration: .init(batchSize: 100, maximumBackfillRate: 50), logger: self.logger
            )
            var deliveredAt: [Int] = []
            try await self.drive(relay, clock: clock, steps: 10) { _ in deliveredAt.append(uplink.received.count) }
            // 100 readings, then 2 s of pacing at 50/s, then the next 100: 500 after 10 s, not 1000 at once.
            #expect(deliveredAt == [100, 100, 200, 200, 300, 300, 400, 400, 500, 500])
        }
    }
}
