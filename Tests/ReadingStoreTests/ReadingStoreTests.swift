import Foundation
import GRDB
import KiezboxCore
import Testing

@testable import ReadingStore

/// A fresh directory under the system temp folder, removed when the test ends.
func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-test-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    return try await body(directory)
}

func makeReadings(_ count: Int, sensor: String = "climate", start: Date = Date(timeIntervalSince1970: 1_790_000_000)) -> [Reading] {
    (0..<count).map { index in
        Reading(
            sensorID: sensor, quantity: .temperature, value: 20 + Double(index % 100) / 10,
            measuredAt: start.addingTimeInterval(Double(index) * 60)
        )
    }
}

@Suite("Reading store")
struct ReadingStoreTests {
    @Test("readings are buffered until a flush and committed in one batch")
    func batching() async throws {
        try await withTemporaryDirectory { directory in
            let store = try ReadingStore(directory: directory, configuration: .init(maximumBatch: 100))
            try await store.record(makeReadings(10))
            #expect(store.pendingCount == 10)
            #expect(try store.readings().isEmpty)
            #expect(try await store.flush() == 10)
            #expect(store.pendingCount == 0)
            let stored = try store.readings()
            #expect(stored.count == 10)
            #expect(stored.map(\.id) == Array(1...10))
            #expect(stored[3].reading == makeReadings(10)[3])
        }
    }

    @Test("a full batch commits at once, without waiting for the interval")
    func fullBatchCommits() async throws {
        try await withTemporaryDirectory { directory in
            let store = try ReadingStore(directory: directory, configuration: .init(maximumBatch: 50))
            try await store.record(makeReadings(49))
            #expect(store.pendingCount == 49)
            try await store.record(makeReadings(1))
            #expect(store.pendingCount == 0)
            #expect(try store.readings().count == 50)
        }
    }

    @Test("the store runs in WAL mode with synchronous=NORMAL, or FULL when every commit is to be synced")
    func pragmas() async throws {
        try await withTemporaryDirectory { directory in
            _ = try ReadingStore(directory: directory)
            let queue = try DatabaseQueue(path: directory + "/" + ReadingStore.fileName)
            let mode = try await queue.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") }
            #expect(mode == "wal")
            let store = try ReadingStore(directory: directory)
            // 1 = NORMAL: the run counter's one synced commit must not leave the writer at FULL.
            #expect(try await store.pool.write { try Int.fetchOne($0, sql: "PRAGMA synchronous") } == 1)
            try store.close()
            let syncing = try ReadingStore(directory: directory, configuration: .init(syncEveryCommit: true))
            #expect(try await syncing.pool.write { try Int.fetchOne($0, sql: "PRAGMA synchronous") } == 2)
            try syncing.close()
        }
    }

    @Test("a cursor of an uplink no longer configured is retired, comes back with the uplink, and is forgotten after a while")
    func retiredCursors() async throws {
        try await withTemporaryDirectory { directory in
            let store = try ReadingStore(directory: directory)
            try await store.registerUplink("mqtt")
            try await store.registerUplink("opensensemap")
            try await store.record(makeReadings(5))
            try await store.flush()
            let now = Date(timeIntervalSince1970: 1_800_000_000)
            let retired = try await store.retireUplinks(except: ["mqtt"], at: now)
            #expect(retired == [RetiredUplink(name: "opensensemap", undelivered: 5, retiredAt: now, forgotten: false)])
            #expect(try store.uplinkProgress().map(\.retiredAt) == [nil, now])
            // Configured again: it goes on from its cursor.
            #expect(try await store.retireUplinks(except: ["mqtt", "opensensemap"], at: now + 60).isEmpty)
            #expect(try await store.undelivered(for: "opensensemap", limit: 10).count == 5)
            // Gone for longer than the lifetime: the cursor and its acknowledgements are deleted.
            _ = try await store.retireUplinks(except: ["mqtt"], at: now + 120)
            let later = now + 120 + ReadingStore.retiredCursorLifetime
            #expect(try await store.retireUplinks(except: ["mqtt"], at: later).map(\.forgotten) == [true])
            #expect(try store.uplinkProgress().map(\.name) == ["mqtt"])
        }
    }

    @Test("reading ids are never reused, even after retention empties the table")
    func idsNeverReused() async throws {
        try await withTemporaryDirectory { directory in
            let store = try ReadingStore(directory: directory, configuration: .init(maximumBytes: 1))
            try await store.record(makeReadings(20))
            try await store.flush()
            try await store.enforceRetention()
            try await store.record(makeReadings(1))
            try await store.flush()
            let ids = try store.readings().map(\.id)
            #expect(ids.allSatisfy { $0 > 20 })
        }
    }

    @Test("each uplink has its own cursor: next undelivered, acknowledged, in order")
    func cursors() async throws {
        try await withTemporaryDirectory { directory in
            let store = try ReadingStore(directory: directory)
            try await store.registerUplink("mqtt")
            try await store.registerUplink("opensensemap")
            try await store.record(makeReadings(10))
            try await store.flush()

            let firstBatch = try await store.undelivered(for: "mqtt", limit: 4)
            #expect(firstBatch.map(\.id) == [1, 2, 3, 4])
            // Not yet acknowledged: the same batch comes again (at-least-once delivery).
            #expect(try await store.undelivered(for: "mqtt", limit: 4).map(\.id) == [1, 2, 3, 4])

            try await store.acknowledge([1, 2, 3, 4], for: "mqtt")
            #expect(try await store.undelivered(for: "mqtt", limit: 4).map(\.id) == [5, 6, 7, 8])
            // The other uplink is untouched.
            #expect(try await store.undelivered(for: "opensensemap", limit: 2).map(\.id) == [1, 2])

            let statistics = try store.statistics()
            let mqtt = try #require(statistics.uplinks.first { $0.name == "mqtt" })
            #expect(mqtt.deliveredThrough == 4)
            #expect(mqtt.undelivered == 6)
            #expect(mqtt.deliveredTotal == 4)
        }
    }

    @Test("out-of-order acknowledgements advance the cursor only over contiguous runs")
    func outOfOrderAcknowledgements() async throws {
        try await withTemporaryDirectory { directory in
            let store = try ReadingStore(directory: directory)
            try await store.registerUplink("mqtt")
            try await store.record(makeReadings(6))
            try await store.flush()

            try await store.acknowledge([2, 3, 5], for: "mqtt")
            #expect(try await store.undelivered(for: "mqtt", limit: 10).map(\.id) == [1, 4, 6])
            #expect(try store.statistics().uplinks[0].deliveredThrough == 0)

            try await store.acknowledge([1], for: "mqtt")
            #expect(try store.statistics().uplinks[0].deliveredThrough == 3)
            try await store.acknowledge([4, 6], for: "mqtt")
            #expect(try store.statistics().uplinks[0].deliveredThrough == 6)
            #expect(try await store.undelivered(for: "mqtt", limit: 10).isEmpty)
            // Duplicate acknowledgements change nothing.
            try await store.acknowledge([6, 5], for: "mqtt")
            #expect(try store.statistics().uplinks[0].deliveredTotal == 6)
        }
    }

    @Test("an uplink registered 'now' skips the backlog; re-registering keeps the cursor")
    func registerNow() async throws {
        try await withTemporaryDirectory { directory in
            let store = try ReadingStore(directory: directory)
            try await store.record(makeReadings(5))
            try await store.flush()
            try await store.registerUplink("live", startingAt: .now)
            try await store.registerUplink("backfill", startingAt: .oldest)
            #expect(try await store.undelivered(for: "live", limit: 10).isEmpty)
            #expect(try await store.undelivered(for: "backfill", limit: 10).count == 5)
            try await store.acknowledge([1, 2], for: "backfill")
            try await store.registerUplink("backfill")
            #expect(try await store.undelivered(for: "backfill", limit: 10).map(\.id) == [3, 4, 5])
        }
    }

    @Test("an unknown uplink is a clear error")
    func unknownUplink() async throws {
        try await withTemporaryDirectory { directory in
            let store = try ReadingStore(directory: directory)
            await #expect(throws: ReadingStoreError.self) { _ = try await store.undelivered(for: "nope", limit: 1) }
        }
    }

    @Test("retention deletes the oldest delivered readings first and keeps what is undelivered")
    func retentionDeliveredFirst() async throws {
        try await withTemporaryDirectory { directory in
            let filling = try ReadingStore(directory: directory)
            try await filling.registerUplink("mqtt")
            try await filling.record(makeReadings(3000))
            try await filling.flush()
            try await filling.acknowledge(Array(1...2000), for: "mqtt")
            // A limit a little below what the store holds: deleting some of the 2000 delivered readings suffices
            // whatever the empty tables take (retention aims at 90 % of the readings' share, 7/8 of the limit).
            let limit = try filling.statistics().usedBytes / 20 * 19
            let store = try ReadingStore(directory: directory, configuration: .init(maximumBytes: limit))

            let outcome = try await store.enforceRetention()
            #expect(outcome.deletedDelivered > 0)
            #expect(outcome.droppedUndelivered == 0)
            let after = try store.statistics()
            #expect(after.usedBytes <= limit)
            #expect(after.droppedReadings == 0)
            let ids = try store.readings().map(\.id)
            // What went was a prefix of the delivered readings; every undelivered reading is still there.
            #expect(ids.first == Int64(outcome.deletedDelivered) + 1)
            #expect(Set(2001...3000).isSubset(of: Set(ids)))
        }
    }

    @Test("when everything is undelivered, retention drops the oldest and counts the drop")
    func retentionDropsUndeliveredLast() async throws {
        try await withTemporaryDirectory { directory in
            // The store's empty tables take about 60 KiB and the bulletin's share is an eighth: 128 KiB leaves
            // readings room for about a third of these 3000.
            let limit: Int64 = 128 * 1024
            let store = try ReadingStore(directory: directory, configuration: .init(maximumBytes: limit))
            try await store.registerUplink("mqtt")
            try await store.record(makeReadings(3000))
            try await store.flush()
            try await store.acknowledge(Array(1...100), for: "mqtt")

            let outcome = try await store.enforceRetention()
            #expect(outcome.deletedDelivered == 100)
            #expect(outcome.droppedUndelivered > 0)
            let statistics = try store.statistics()
            #expect(statistics.usedBytes <= limit)
            #expect(statistics.droppedReadings == Int64(outcome.droppedUndelivered))
            // The newest readings survive; the oldest went.
            let ids = try store.readings().map(\.id)
            #expect(ids.last == 3000)
            #expect(ids.first == Int64(100 + outcome.droppedUndelivered + 1))
            // The uplink carries on with what is left, oldest first.
            #expect(try await store.undelivered(for: "mqtt", limit: 1).first?.id == ids.first)
        }
    }

    @Test("within the limit, retention deletes nothing")
    func retentionWithinLimit() async throws {
        try await withTemporaryDirectory { directory in
            let store = try ReadingStore(directory: directory)
            try await store.record(makeReadings(100))
            try await store.flush()
            #expect(try await store.enforceRetention() == RetentionOutcome(deletedDelivered: 0, droppedUndelivered: 0))
            #expect(try store.readings().count == 100)
        }
    }

    @Test("latest keeps the newest value per sensor and quantity")
    func latestPerSeries() async throws {
        try await withTemporaryDirectory { directory in
            let store = try ReadingStore(directory: directory)
            try await store.record(makeReadings(5, sensor: "a") + makeReadings(3, sensor: "b"))
            try await store.flush()
            // An older reading arriving late does not replace the newest.
            try await store.record(makeReadings(1, sensor: "a"))
            try await store.flush()
            let latest = try store.latest()
            #expect(latest.map(\.reading.sensorID) == ["a", "b"])
            #expect(latest[0].id == 5)
            #expect(latest[1].reading.measuredAt == makeReadings(3)[2].measuredAt)
        }
    }

    @Test("readings can be filtered by time and sensor")
    func filters() async throws {
        try await withTemporaryDirectory { directory in
            let store = try ReadingStore(directory: directory)
            let start = Date(timeIntervalSince1970: 1_790_000_000)
            try await store.record(makeReadings(10, sensor: "a", start: start) + makeReadings(10, sensor: "b", start: start))
            try await store.flush()
            #expect(try store.readings(sensor: "b").count == 10)
            #expect(try store.readings(since: start.addingTimeInterval(5 * 60)).count == 10)
            #expect(try store.readings(since: start.addingTimeInterval(5 * 60), sensor: "a").count == 5)
        }
    }

    @Test("a read-only store sees what the writer committed, and a missing store is a clear error")
    func readOnly() async throws {
        try await withTemporaryDirectory { directory in
            #expect(throws: ReadingStoreError.self) { _ = try ReadingStore(directory: directory, readOnly: true) }
            let writer = try ReadingStore(directory: directory)
            try await writer.setIdentity(BoxIdentity(district: "kreuzberg", boxID: "k1", name: "Box"))
            try await writer.setMode(.normal)
            let reader = try ReadingStore(directory: directory, readOnly: true)
            #expect(reader.instanceID == writer.instanceID)
            try await writer.record(makeReadings(3))
            try await writer.flush()
            let statistics = try reader.statistics()
            #expect(statistics.readingsStored == 3)
            #expect(statistics.identity?.boxID == "k1")
            #expect(statistics.mode == .normal)
            #expect(statistics.lastFlushAt != nil)
        }
    }

    @Test("a reader arriving before the writer has committed the schema is told to try again, not that the file is damaged")
    func readerBeforeSchema() async throws {
        try await withTemporaryDirectory { directory in
            // What a reader sees in the moment after the daemon created the file: a database with no tables.
            _ = try DatabaseQueue(path: directory + "/" + ReadingStore.fileName)
            let error = #expect(throws: ReadingStoreError.self) { _ = try ReadingStore(directory: directory, readOnly: true) }
            #expect(error?.code == .noDatabase)
            #expect(error?.description.contains("still being set up") == true)
        }
    }

    @Test("neighbours' latest status is kept per box and read back, most recently seen first")
    func neighbours() async throws {
        try await withTemporaryDirectory { directory in
            let store = try ReadingStore(directory: directory)
            let seen = Date(timeIntervalSince1970: 1_790_000_000)
            func neighbour(_ box: String, online: Bool, at offset: TimeInterval) -> NeighbourBox {
                NeighbourBox(
                    identity: BoxIdentity(district: "kreuzberg", boxID: box, name: "Box \(box)", position: GeoPosition(latitude: 52.5, longitude: 13.4)),
                    online: online, mode: .normal, batteryVolts: 12.6, lastSeen: seen + offset, path: "mqtt://127.0.0.1:1883"
                )
            }
            try await store.recordNeighbour(neighbour("a", online: true, at: 0))
            try await store.recordNeighbour(neighbour("b", online: true, at: 10))
            try await store.recordNeighbour(neighbour("a", online: false, at: 20))
            let neighbours = try ReadingStore(directory: directory, readOnly: true).neighbours()
            #expect(neighbours == [neighbour("a", online: false, at: 20), neighbour("b", online: true, at: 10)])
            #expect(try store.statistics().neighbours.count == 2)
        }
    }

    @Test("the instance id is created once and kept")
    func instanceID() async throws {
        try await withTemporaryDirectory { directory in
            let first = try ReadingStore(directory: directory).instanceID
            let second = try ReadingStore(directory: directory).instanceID
            #expect(first == second)
            #expect(first.count == 36)
        }
    }
}

@Suite("Store migrations")
struct MigrationTests {
    @Test("a new database gets every migration, and opening it again applies none twice")
    func migratesOnce() async throws {
        try await withTemporaryDirectory { directory in
            _ = try ReadingStore(directory: directory)
            _ = try ReadingStore(directory: directory)
            let queue = try DatabaseQueue(path: directory + "/" + ReadingStore.fileName)
            let applied = try queue.read { try Schema.migrator.appliedIdentifiers($0) }
            #expect(applied == Set(Schema.migrator.migrations))
            let tables = try queue.read { db in
                try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            }
            #expect(Set(["meta", "reading", "uplink", "uplink_ack", "latest"]).isSubset(of: Set(tables)))
        }
    }

    @Test("a database written by a newer kiezbox is refused with a clear error, not migrated")
    func newerSchemaRefused() async throws {
        try await withTemporaryDirectory { directory in
            _ = try ReadingStore(directory: directory)
            let queue = try DatabaseQueue(path: directory + "/" + ReadingStore.fileName)
            try queue.write { db in
                try db.execute(sql: "INSERT INTO grdb_migrations(identifier) VALUES ('v99-from-the-future')")
            }
            let error = #expect(throws: ReadingStoreError.self) { _ = try ReadingStore(directory: directory) }
            #expect(error?.code == .newerSchema)
            #expect(error?.description.contains("newer kiezbox") == true)
        }
    }

    @Test("a damaged file is reported as such")
    func corruptFile() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/" + ReadingStore.fileName
            try Data(repeating: 0x42, count: 8192).write(to: URL(fileURLWithPath: path))
            let error = #expect(throws: ReadingStoreError.self) { _ = try ReadingStore(directory: directory) }
            #expect(error?.code == .corrupt)
        }
    }
}
