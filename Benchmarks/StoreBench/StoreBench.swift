import Foundation
import KiezboxCore
import ReadingStore

/// `make bench`: the reading store's sustained insert rate and bytes written per reading at its default
/// batching, beside a plain sqlite3 C API reference run in the same invocation, and the ratios.
@main
struct StoreBench {
    static let rows = Int(ProcessInfo.processInfo.environment["KIEZBOX_BENCH_ROWS"] ?? "") ?? 300_000
    /// How many readings arrive at a time (a sampler cycle of several sensors).
    static let arrival = 24

    static func main() async throws {
        let workspace = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: workspace) }

        let readings = (0..<rows).map(benchReading)
        let store = try await measureStore(readings, directory: workspace + "/store")
        let reference = try measureReference(path: workspace + "/reference.sqlite")

        let configuration = ReadingStoreConfiguration()
        print("Reading store benchmark: \(rows) readings, arriving \(arrival) at a time")
        print("  kiezbox store: default batching (commit every \(configuration.flushInterval) or \(configuration.maximumBatch) readings), GRDB, WAL, synchronous=NORMAL")
        print("  reference:     sqlite3 C API, one prepared statement, one transaction per 600 rows, WAL, synchronous=NORMAL")
        print("")
        print(row("", "kiezbox store", "reference", "ratio"))
        print(row("readings/s", format(store.rate, 0), format(reference.rate, 0), format(store.rate / reference.rate, 2) + "x"))
        print(row("bytes/reading to disk (write_bytes)", format(store.diskBytesPerRow, 1), format(reference.diskBytesPerRow, 1), format(store.diskBytesPerRow / reference.diskBytesPerRow, 2) + "x"))
        print(row("bytes/reading to write() (wchar)", format(store.writeCallBytesPerRow, 1), format(reference.writeCallBytesPerRow, 1), format(store.writeCallBytesPerRow / reference.writeCallBytesPerRow, 2) + "x"))
        print("")
        print("targets: >= 100000 readings/s -> \(store.rate >= 100_000 ? "met" : "NOT met"); "
            + "<= 1.5x the reference's bytes/reading -> \(store.diskBytesPerRow <= 1.5 * reference.diskBytesPerRow ? "met" : "NOT met")")
    }

    struct Figures {
        var rows: Int
        var seconds: Double
        var writeCallBytes: Int64
        var diskBytes: Int64
        var rate: Double { Double(self.rows) / self.seconds }
        var diskBytesPerRow: Double { Double(self.diskBytes) / Double(self.rows) }
        var writeCallBytesPerRow: Double { Double(self.writeCallBytes) / Double(self.rows) }
    }

    static func measureStore(_ readings: [Reading], directory: String) async throws -> Figures {
        let before = IOCounters.read()
        let store = try ReadingStore(directory: directory)
        let start = ContinuousClock.now
        var index = 0
        while index < readings.count {
            let end = min(index + arrival, readings.count)
            try await store.record(Array(readings[index..<end]))
            index = end
        }
        try await store.flush()
        let elapsed = ContinuousClock.now - start
        try store.close()
        let after = IOCounters.read()
        return Figures(
            rows: readings.count, seconds: seconds(elapsed), writeCallBytes: after.wchar - before.wchar,
            diskBytes: after.writeBytes - before.writeBytes
        )
    }

    static func measureReference(path: String) throws -> Figures {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("SQLiteReference")
        let process = Process()
        process.executableURL = binary
        process.arguments = [path, String(rows)]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw BenchError(description: "SQLiteReference failed") }
        struct Result: Decodable {
            var rows: Int
            var seconds: Double
            var wchar: Int64
            var write_bytes: Int64
        }
        let result = try JSONDecoder().decode(Result.self, from: data)
        return Figures(rows: result.rows, seconds: result.seconds, writeCallBytes: result.wchar, diskBytes: result.write_bytes)
    }

    static func row(_ a: String, _ b: String, _ c: String, _ d: String) -> String {
        a.padding(toLength: 38, withPad: " ", startingAt: 0) + b.padding(toLength: 16, withPad: " ", startingAt: 0)
            + c.padding(toLength: 14, withPad: " ", startingAt: 0) + d
    }

    static func format(_ value: Double, _ decimals: Int) -> String { String(format: "%.\(decimals)f", value) }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
}

/// This process's I/O counters from /proc/self/io.
struct IOCounters {
    var wchar: Int64
    var writeBytes: Int64

    static func read() -> IOCounters {
        var counters = IOCounters(wchar: 0, writeBytes: 0)
        guard let text = try? String(contentsOfFile: "/proc/self/io", encoding: .utf8) else { return counters }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":")
            guard parts.count == 2, let value = Int64(parts[1].trimmingCharacters(in: .whitespaces)) else { continue }
            if parts[0] == "wchar" { counters.wchar = value }
            if parts[0] == "write_bytes" { counters.writeBytes = value }
        }
        return counters
    }
}

/// The same rows as Benchmarks/SQLiteReference/include/rows.h.
func benchReading(_ index: Int) -> Reading {
    let sensors = ["roof", "balcony", "yard", "street", "school", "garden", "corner", "park"]
    let quantities: [Quantity] = [.temperature, .relativeHumidity, .pressure]
    return Reading(
        sensorID: sensors[(index / 3) % 8], quantity: quantities[index % 3], value: Double(index % 1000) / 10 + 0.25,
        measuredAt: Date(timeIntervalSince1970: 1_790_000_000 + Double(index / 24))
    )
}
