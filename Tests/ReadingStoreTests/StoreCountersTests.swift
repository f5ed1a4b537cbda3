import Foundation
import KiezboxCore
import Testing

@testable import ReadingStore

/// The counters `/metrics` reads instead of counting the readings table must say what counting would.
@Suite("Store counters")
struct StoreCountersTests {
    /// What counting the table says: readings stored, and per uplink the readings not acknowledged.
    static func counted(_ store: ReadingStore, acknowledged: [String: Set<Int64>]) throws -> (stored: Int64, undelivered: [String: Int64]) {
        let ids = try store.readings().map(\.id)
        let undelivered = acknowledged.mapValues { acked in Int64(ids.count { !acked.contains($0) }) }
        return (Int64(ids.count), undelivered)
    }

    static func expectCountersMatch(_ store: ReadingStore, _ acknowledged: [String: Set<Int64>], _ step: String) throws {
        let counters = try store.counters()
        let truth = try Self.counted(store, acknowledged: acknowledged)
        #expect(counters.readingsStored == truth.stored, "\(step)")
        for uplink in counters.uplinks {
            #expect(uplink.undelivered == truth.undelivered[uplink.name], "\(step): \(uplink.name)")
        }
        #expect(try store.uplinkProgress().map(\.undelivered) == counters.uplinks.map(\.undelivered), "\(step)")
        #expect(try store.statistics().readingsStored == truth.stored, "\(step)")
    }

    @Test("counts stay right through flushes, in-order and out-of-order acknowledgements, late uplinks and retention")
    func countersFollowEveryWrite() async throws {
        try await withTemporaryDirectory { directory in
            let limit: Int64 = 96 * 1024
            let store = try ReadingStore(directory: directory, configuration: .init(maximumBytes: limit))
            var acknowledged: [String: Set<Int64>] = ["mqtt": [], "opensensemap": []]
            try await store.registerUplink("mqtt")
            try await store.registerUplink("opensensemap")
            try Self.expectCountersMatch(store, acknowledged, "empty")

            try await store.record(makeReadings(1200))
            try await store.flush()
            try Self.expectCountersMatch(store, acknowledged, "first flush")

            try await store.acknowledge(Array(1...500), for: "mqtt")
            acknowledged["mqtt"]!.formUnion(1...500)
            // Out of order: above the cursor first, then the gap closes.
            try await store.acknowledge([700, 701, 900], for: "opensensemap")
            acknowledged["opensensemap"]!.formUnion([700, 701, 900])
            try Self.expectCountersMatch(store, acknowledged, "out-of-order acknowledgements")
            try await store.acknowledge(Array(1...699), for: "opensensemap")
            acknowledged["opensensemap"]!.formUnion(1...699)
            try Self.expectCountersMatch(store, acknowledged, "gap closed")

            // An uplink configured later, from now on: nothing it has to deliver yet.
            try await store.registerUplink("sensor-community", startingAt: .now)
            acknowledged["sensor-community"] = Set(try store.readings().map(\.id))
            try Self.expectCountersMatch(store, acknowledged, "late uplink")

            try await store.record(makeReadings(2400, start: Date(timeIntervalSince1970: 1_791_000_000)))
            try await store.flush()
            try Self.expectCountersMatch(store, acknowledged, "second flush")

            // Retention: delivered readings go first, then undelivered ones are dropped.
            let outcome = try await store.enforceRetention()
            #expect(outcome.deletedDelivered + outcome.droppedUndelivered > 0)
            try Self.expectCountersMatch(store, acknowledged, "after retention")

            try await store.record(makeReadings(300, start: Date(timeIntervalSince1970: 1_792_000_000)))
            try await store.flush()
            let newest = try store.readings().map(\.id).suffix(300)
            try await store.acknowledge(Array(newest.prefix(100)), for: "sensor-community")
            acknowledged["sensor-community"]!.formUnion(newest.prefix(100))
            try Self.expectCountersMatch(store, acknowledged, "after retention and another flush")

            // The counters are kept in the file: a store opened again reads the same figures.
            try store.close()
            let reopened = try ReadingStore(directory: directory, configuration: .init(maximumBytes: limit))
            try Self.expectCountersMatch(reopened, acknowledged, "reopened")
            #expect(try reopened.counters().droppedReadings == Int64(outcome.droppedUndelivered))
        }
    }
}
