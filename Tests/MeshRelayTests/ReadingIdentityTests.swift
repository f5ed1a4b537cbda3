import Foundation
import KiezboxCore
import ReadingStore
import Testing

@testable import MeshRelay

/// What a power cut does to the store, replayed without one: the disk keeps an older state of the database and
/// its write-ahead log than the daemon had committed, sent and had acknowledged. (The real power cut, QEMU killed
/// while the daemon writes, is `PowerCutTests`.)
@Suite("Reading identity across lost commits")
struct ReadingIdentityTests {
    let sender = SenderIdentity(box: BoxIdentity(district: "kiez", boxID: "box-1", name: "Box 1"), storeInstance: "")

    /// The database files as they are now, copied aside: what the disk still holds when the power goes.
    func copyDatabaseFiles(from directory: String, to snapshot: String) throws {
        try FileManager.default.createDirectory(atPath: snapshot, withIntermediateDirectories: true)
        for suffix in ["", "-wal"] {
            let file = ReadingStore.fileName + suffix
            let source = (directory as NSString).appendingPathComponent(file)
            guard FileManager.default.fileExists(atPath: source) else { continue }
            try FileManager.default.copyItem(atPath: source, toPath: (snapshot as NSString).appendingPathComponent(file))
        }
    }

    /// Puts the copied files back in place of the newer ones (the shared-memory index is rebuilt on open).
    func restoreDatabaseFiles(in directory: String, from snapshot: String) throws {
        for suffix in ["", "-wal", "-shm"] {
            try? FileManager.default.removeItem(atPath: (directory as NSString).appendingPathComponent(ReadingStore.fileName + suffix))
        }
        for file in try FileManager.default.contentsOfDirectory(atPath: snapshot) {
            try FileManager.default.copyItem(
                atPath: (snapshot as NSString).appendingPathComponent(file), toPath: (directory as NSString).appendingPathComponent(file)
            )
        }
    }

    func readings(_ count: Int, value: Double, from start: Date) -> [Reading] {
        (0..<count).map { index in
            Reading(sensorID: "climate", quantity: .temperature, value: value + Double(index), measuredAt: start.addingTimeInterval(Double(index) * 10))
        }
    }

    @Test("a global reading id never names two readings, even after the disk lost the last commits")
    func globalIDsSurviveLostCommits() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-identity-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let snapshot = directory + "/at-the-cut"
        let start = Date(timeIntervalSince1970: 1_790_000_000)

        var store = try ReadingStore(directory: directory)
        var sender = self.sender
        sender.storeInstance = store.instanceID
        try await store.registerUplink("mqtt")
        try await store.record(self.readings(10, value: 10, from: start))
        try await store.flush()
        try self.copyDatabaseFiles(from: directory, to: snapshot)

        // Committed and sent after the state the disk keeps: a power cut takes these commits back.
        try await store.record(self.readings(5, value: 50, from: start.addingTimeInterval(100)))
        try await store.flush()
        var sent: [String: Reading] = [:]
        for stored in try await store.undelivered(for: "mqtt", limit: 100) { sent[sender.readingID(stored)] = stored.reading }
        #expect(sent.count == 15)
        try store.close()

        try self.restoreDatabaseFiles(in: directory, from: snapshot)
        store = try ReadingStore(directory: directory)
        #expect(try store.readings().count == 10, "the replayed cut keeps only the first commit")
        try await store.record(self.readings(5, value: 90, from: start.addingTimeInterval(200)))
        try await store.flush()
        let afterTheCut = try await store.undelivered(for: "mqtt", limit: 100)
        #expect(afterTheCut.count == 15)
        let namingTwoReadings = afterTheCut.filter { stored in
            sent[sender.readingID(stored)].map { $0 != stored.reading } ?? false
        }
        #expect(namingTwoReadings.isEmpty, "ids sent before the cut now name other readings: \(namingTwoReadings.map { sender.readingID($0) })")
        // Readings that did survive keep the id they were sent with.
        for stored in afterTheCut.prefix(10) { #expect(sent[sender.readingID(stored)] == stored.reading) }
        try store.close()
    }

    @Test("each opening for writing is a new run, counted on the disk; readings carry it")
    func runsAreCounted() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-runs-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try ReadingStore(directory: directory)
        try await first.record(self.readings(1, value: 1, from: Date()))
        try await first.flush()
        try first.close()
        let second = try ReadingStore(directory: directory)
        try await second.record(self.readings(1, value: 2, from: Date()))
        try await second.flush()
        #expect(second.run == first.run + 1)
        #expect(try second.readings().map(\.run) == [first.run, second.run])
        let reader = try ReadingStore(directory: directory, readOnly: true)
        #expect(reader.run == 0)
        #expect(try reader.readings().map(\.run) == [first.run, second.run])
        try second.close()
    }

    @Test("readings from before runs were counted keep the id they were first sent with")
    func legacyReadingsKeepTheirID() {
        let reading = Reading(sensorID: "climate", quantity: .temperature, value: 1, measuredAt: Date())
        #expect(StoredReading(id: 7, run: 0, reading: reading).globalID(storeInstance: "abc") == "abc:7")
        #expect(StoredReading(id: 7, run: 3, reading: reading).globalID(storeInstance: "abc") == "abc:3:7")
    }
}
