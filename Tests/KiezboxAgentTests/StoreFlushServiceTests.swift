import Foundation
import KiezboxCore
import Logging
import ReadingStore
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

@testable import KiezboxAgent

@Suite("Store flush service on an injected clock")
struct StoreFlushServiceTests {
    func withStore(flushInterval: Duration, _ body: (ReadingStore) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-flush-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try ReadingStore(directory: directory, configuration: .init(flushInterval: flushInterval, maximumBatch: 10_000))
        try await body(store)
    }

    func readings(_ count: Int) -> [Reading] {
        (0..<count).map { Reading(sensorID: "climate", quantity: .temperature, value: Double($0), measuredAt: Date()) }
    }

    @Test("buffered readings are committed when the flush interval has passed, not before")
    func commitsOnInterval() async throws {
        try await self.withStore(flushInterval: .seconds(10)) { store in
            let clock = ManualClock()
            let service = StoreFlushService(store: store, clock: clock, logger: Logger(label: "test"))
            try await testGracefulShutdown { trigger in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await service.run() }
                    try await store.record(self.readings(5))
                    await clock.waitForSleepers(1)
                    clock.advance(by: .seconds(9))
                    #expect(try store.readings().isEmpty)
                    clock.advance(by: .seconds(1))
                    // The service flushes and goes back to sleep for the next interval.
                    await clock.waitForSleepers(1)
                    #expect(try store.readings().count == 5)
                    try await store.record(self.readings(3))
                    trigger.triggerGracefulShutdown()
                    try await group.waitForAll()
                }
            }
            // Graceful shutdown committed what was still buffered, without waiting for the interval.
            #expect(try store.readings().count == 8)
            #expect(store.pendingCount == 0)
        }
    }

    @Test("the service keeps the store within its size limit")
    func enforcesRetention() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-flush-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The store's empty tables take about 60 KiB and the bulletin's share is an eighth: 128 KiB leaves readings
        // room for some of these 5000.
        let limit: Int64 = 128 * 1024
        let store = try ReadingStore(directory: directory, configuration: .init(flushInterval: .seconds(1), maximumBatch: 100_000, maximumBytes: limit))
        let clock = ManualClock()
        let service = StoreFlushService(store: store, clock: clock, logger: Logger(label: "test"))
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await service.run() }
                try await store.record(self.readings(5000))
                await clock.waitForSleepers(1)
                clock.advance(by: .seconds(1))
                await clock.waitForSleepers(1)
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        let statistics = try store.statistics()
        #expect(statistics.usedBytes <= limit)
        // No uplink is configured, so nothing waited for these readings: none counts as dropped.
        #expect(statistics.droppedReadings == 0)
        #expect(statistics.readingsStored > 0)
    }

    /// Seen in the full suite: SIGTERM arriving during a periodic commit cancelled GRDB's write, which logged
    /// "store flush failed … CancellationError()" at error level (the readings went back into the buffer and the
    /// final flush committed them).
    @Test("a periodic commit under way when shutdown begins is finished, not cancelled")
    func commitOutlivesCancellation() async throws {
        try await self.withStore(flushInterval: .seconds(10)) { store in
            let service = StoreFlushService(store: store, clock: ManualClock(), logger: Logger(label: "test"))
            try await store.record(self.readings(5))
            await withTaskGroup(of: Void.self) { group in
                group.cancelAll()
                group.addTask {
                    #expect(Task.isCancelled)
                    await service.periodicCommit()
                }
            }
            #expect(try store.readings().count == 5)
        }
    }
}
