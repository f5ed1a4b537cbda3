import Foundation
import GRDB
import KiezboxCore
import ReadingStore
import Testing

/// The `kiezbox` executable next to the test bundle (SwiftPM builds it for this test target).
let kiezboxBinary: String = {
    if let override = ProcessInfo.processInfo.environment["KIEZBOX_BINARY"] { return override }
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [bundle, bundle.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent("kiezbox").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("kiezbox").path
}()

/// A `kiezbox` process with its standard error captured to a file.
final class KiezboxProcess {
    let process = Process()
    let stderrPath: String

    /// Runs the `kiezbox` binary, or `executable` (e.g. `ip netns exec … kiezbox …`) with `arguments`, and
    /// `environment` added to the test's own.
    init(_ arguments: [String], in directory: String, executable: String = kiezboxBinary, environment: [String: String] = [:]) throws {
        self.stderrPath = directory + "/stderr-\(UUID().uuidString).log"
        _ = FileManager.default.createFile(atPath: self.stderrPath, contents: nil)
        self.process.executableURL = URL(fileURLWithPath: executable)
        self.process.arguments = arguments
        self.process.currentDirectoryURL = URL(fileURLWithPath: directory)
        self.process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        self.process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: self.stderrPath))
        self.process.standardOutput = FileHandle.nullDevice
        try self.process.run()
    }

    var stderr: String { (try? String(contentsOfFile: self.stderrPath, encoding: .utf8)) ?? "" }

    func signal(_ number: Int32) { kill(self.process.processIdentifier, number) }

    /// Waits for the process to exit and returns its status.
    func waitForExit(timeout: Duration = .seconds(60)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while self.process.isRunning {
            guard ContinuousClock.now < deadline else {
                self.signal(SIGKILL)
                // What it was doing says why it did not stop.
                throw TimeoutError(what: "kiezbox to exit; the end of its log:\n" + String(self.stderr.suffix(3000)))
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return self.process.terminationStatus
    }
}

struct TimeoutError: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(self.what)" }
}

/// Runs a short command to completion and returns (status, stdout, stderr).
func runKiezbox(_ arguments: [String], in directory: String) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: kiezboxBinary)
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    let stdout = Pipe()
    let stderr = Pipe()
    process.standardOutput = stdout
    process.standardError = stderr
    try process.run()
    let out = stdout.fileHandleForReading.readDataToEndOfFile()
    let err = stderr.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
}

/// Polls (real time: this is a real process) until `condition` holds.
func waitUntil(_ what: String, timeout: Duration = .seconds(60), _ condition: () throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while try !condition() {
        guard ContinuousClock.now < deadline else { throw TimeoutError(what: what) }
        try await Task.sleep(for: .milliseconds(50))
    }
}

/// Committed readings as the daemon's own store sees them, read through a second connection like `status` does.
func committedReadings(in dataDirectory: String) throws -> [StoredReading] {
    do {
        return try ReadingStore(directory: dataDirectory, readOnly: true).readings()
    } catch let error as ReadingStoreError where error.code == .noDatabase {
        return []  // the daemon has not created its store yet
    }
}

@Suite("kiezbox run as a real process", .serialized, .timeLimit(.minutes(3)))
struct DaemonProcessTests {
    static let configuration = """
        [box]
        id = "test-box"
        district = "test-kiez"

        [store]
        flush_interval = "200ms"

        [simulation]
        enabled = true

        [[sensor]]
        id = "roof"
        chip = "bme280"
        address = 0x76
        interval = "1s"

        [[sensor]]
        id = "balcony"
        chip = "bme280"
        address = 0x77
        interval = "1s"
        """

    func withWorkspace(_ body: (String) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-process-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.configuration.write(toFile: directory + "/kiezbox.toml", atomically: true, encoding: .utf8)
        try await body(directory)
    }

    @Test("readings committed before SIGKILL survive a restart, and the database passes integrity_check")
    func crashSafety() async throws {
        try await self.withWorkspace { directory in
            let data = directory + "/data"
            let arguments = ["run", "--config", directory + "/kiezbox.toml", "--data-dir", data]

            let first = try KiezboxProcess(arguments, in: directory)
            try await waitUntil("30 committed readings") { try committedReadings(in: data).count >= 30 }
            let beforeKill = try committedReadings(in: data)
            first.signal(SIGKILL)
            #expect(try await first.waitForExit() == 9 || first.process.terminationReason == .uncaughtSignal)

            // Everything seen committed before the kill is there, unchanged, after it.
            let afterKill = try committedReadings(in: data)
            #expect(Set(beforeKill).isSubset(of: Set(afterKill)))
            let store = try ReadingStore(directory: data, readOnly: true)
            #expect(try store.integrityCheck() == ["ok"])

            // The restarted daemon opens the same store and goes on with new ids.
            let second = try KiezboxProcess(arguments, in: directory)
            let highestBefore = afterKill.map(\.id).max() ?? 0
            try await waitUntil("new readings after restart") {
                try committedReadings(in: data).contains { $0.id > highestBefore }
            }
            let afterRestart = try committedReadings(in: data)
            #expect(Set(afterKill).isSubset(of: Set(afterRestart)))
            #expect(Set(afterRestart.map(\.id)).count == afterRestart.count)

            // Each chip produced plausible weather for the three quantities it measures.
            for sensor in ["roof", "balcony"] {
                let quantities = Set(afterRestart.filter { $0.reading.sensorID == sensor }.map(\.reading.quantity))
                #expect(quantities == [.temperature, .relativeHumidity, .pressure])
            }
            for stored in afterRestart {
                let reading = stored.reading
                switch reading.quantity {
                case .temperature: #expect((-30.0...45.0).contains(reading.value))
                case .relativeHumidity: #expect((0.0...100.0).contains(reading.value))
                case .pressure: #expect((950.0...1060.0).contains(reading.value))
                default: Issue.record("unexpected quantity \(reading.quantity)")
                }
                #expect(reading.quality == .good)
            }

            // SIGTERM: the final flush, then exit status 0.
            second.signal(SIGTERM)
            #expect(try await second.waitForExit() == 0, "\(second.stderr)")
            #expect(second.stderr.contains("store flushed on shutdown"))
            #expect(try ReadingStore(directory: data, readOnly: true).integrityCheck() == ["ok"])
        }
    }

    @Test("an uplink that is no longer configured does not make retention drop delivered readings")
    func removedUplinkHoldsNothingBack() async throws {
        try await self.withWorkspace { directory in
            // A store an earlier configuration left: an openSenseMap cursor that never advanced, and more readings
            // than the new, small size limit holds.
            let data = directory + "/data"
            let earlier = try ReadingStore(directory: data, configuration: .init(maximumBatch: 100_000))
            try await earlier.registerUplink("opensensemap")
            let start = Date().addingTimeInterval(-86_400)
            try await earlier.record((0..<40_000).map { index in
                Reading(sensorID: "roof", quantity: .temperature, value: Double(index % 300) / 10, measuredAt: start.addingTimeInterval(Double(index)))
            })
            try await earlier.flush()
            try earlier.close()

            let configuration = Self.configuration.replacingOccurrences(
                of: "flush_interval = \"200ms\"", with: "flush_interval = \"200ms\"\nmax_size = \"1 MiB\""
            )
            try configuration.write(toFile: directory + "/small.toml", atomically: true, encoding: .utf8)
            let daemon = try KiezboxProcess(["run", "--config", directory + "/small.toml", "--data-dir", data], in: directory)
            try await waitUntil("retention to make room") {
                let statistics = try ReadingStore(directory: data, readOnly: true).statistics()
                return statistics.readingsStored < 40_000 && statistics.lastFlushAt != nil
            }
            daemon.signal(SIGTERM)
            #expect(try await daemon.waitForExit() == 0, "\(daemon.stderr)")
            let statistics = try ReadingStore(directory: data, readOnly: true).statistics()
            // No uplink is configured: nothing waits for these readings, so none of them counts as dropped.
            #expect(statistics.droppedReadings == 0)
            #expect(statistics.uplinks.map(\.name) == ["opensensemap"])
            #expect(statistics.uplinks.first?.retiredAt != nil)
            #expect(daemon.stderr.contains("uplink no longer configured"), "\(daemon.stderr)")
        }
    }

    @Test("SIGTERM commits the readings still buffered, and exits 0")
    func shutdownFlush() async throws {
        try await self.withWorkspace { directory in
            // An hour between commits and a large batch: only the shutdown flush can commit these readings.
            let configuration = Self.configuration.replacingOccurrences(
                of: "flush_interval = \"200ms\"", with: "flush_interval = \"1h\"\nmax_batch = 100000"
            )
            try configuration.write(toFile: directory + "/slow.toml", atomically: true, encoding: .utf8)
            let data = directory + "/data"
            let daemon = try KiezboxProcess(["run", "--config", directory + "/slow.toml", "--data-dir", data], in: directory)
            try await waitUntil("the daemon to start sampling") { daemon.stderr.contains("kiezbox running") }
            try await Task.sleep(for: .milliseconds(2500))
            #expect(try committedReadings(in: data).isEmpty)
            daemon.signal(SIGTERM)
            #expect(try await daemon.waitForExit() == 0, "\(daemon.stderr)")
            let readings = try committedReadings(in: data)
            // Both sensors sampled at least twice (t = 0 s, 1 s, 2 s), three quantities each.
            #expect(readings.count >= 12)
            #expect(Set(readings.map(\.reading.sensorID)) == ["roof", "balcony"])
        }
    }

    @Test("status and readings work while the daemon runs; a second daemon on the same data is refused")
    func toolsWhileRunning() async throws {
        try await self.withWorkspace { directory in
            let data = directory + "/data"
            let config = directory + "/kiezbox.toml"
            let daemon = try KiezboxProcess(["run", "--config", config, "--data-dir", data], in: directory)
            defer { if daemon.process.isRunning { daemon.signal(SIGKILL) } }
            try await waitUntil("readings from both sensors") {
                Set(try committedReadings(in: data).map(\.reading.sensorID)) == ["roof", "balcony"]
            }

            let status = try runKiezbox(["status", "--config", config, "--data-dir", data], in: directory)
            #expect(status.status == 0, "\(status.stderr)")
            #expect(status.stdout.contains("test-kiez/test-box"))
            #expect(status.stdout.contains("mode        normal"))
            #expect(status.stdout.contains("roof"))
            #expect(status.stdout.contains("°C"))

            let json = try runKiezbox(["status", "--json", "--data-dir", data], in: directory)
            #expect(json.status == 0, "\(json.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
            let sensors = object?["sensors"] as? [[String: Any]]
            #expect(sensors?.count == 6)
            #expect((object?["store"] as? [String: Any])?["droppedReadings"] as? Int == 0)

            let csv = try runKiezbox(["readings", "--data-dir", data, "--sensor", "roof"], in: directory)
            #expect(csv.status == 0, "\(csv.stderr)")
            let rows = csv.stdout.split(separator: "\n")
            #expect(rows.first == "id,sensor,quantity,value,unit,measured_at,quality")
            #expect(rows.count > 1)
            #expect(rows.dropFirst().allSatisfy { $0.contains(",roof,") })

            let jsonRows = try runKiezbox(["readings", "--data-dir", data, "--format", "json", "--since", "1h"], in: directory)
            #expect(jsonRows.status == 0, "\(jsonRows.stderr)")
            let array = try JSONSerialization.jsonObject(with: Data(jsonRows.stdout.utf8)) as? [[String: Any]]
            #expect((array?.count ?? 0) >= 6)
            #expect(array?.first?["store"] as? String != nil)

            let rival = try runKiezbox(["run", "--config", config, "--data-dir", data], in: directory)
            #expect(rival.status != 0)
            #expect(rival.stderr.contains("another kiezbox daemon"))

            daemon.signal(SIGTERM)
            #expect(try await daemon.waitForExit() == 0)
        }
    }

    @Test("config check names the line and key of a mistake and exits non-zero")
    func configCheck() async throws {
        try await self.withWorkspace { directory in
            let good = try runKiezbox(["config", "check", directory + "/kiezbox.toml"], in: directory)
            #expect(good.status == 0, "\(good.stderr)")
            #expect(good.stdout.contains("ok"))

            let bad = Self.configuration.replacingOccurrences(of: "address = 0x77", with: "address = 0x99")
            try bad.write(toFile: directory + "/bad.toml", atomically: true, encoding: .utf8)
            let result = try runKiezbox(["config", "check", directory + "/bad.toml"], in: directory)
            #expect(result.status != 0)
            #expect(result.stderr.contains("bad.toml:20: sensor[2].address: 0x99 is not a 7-bit I²C address"), "\(result.stderr)")

            let run = try runKiezbox(["run", "--config", directory + "/bad.toml"], in: directory)
            #expect(run.status != 0)
            #expect(run.stderr.contains("bad.toml:20"))
        }
    }

    @Test("status on a data directory without a store says what to do")
    func statusWithoutStore() async throws {
        try await self.withWorkspace { directory in
            let result = try runKiezbox(["status", "--data-dir", directory + "/nothing"], in: directory)
            #expect(result.status != 0)
            #expect(result.stderr.contains("has `kiezbox run` been started"))
        }
    }
}
