#if os(Linux)
import Foundation
import KiezboxTestSupport
import MeshRelay
import Testing

/// Real power cuts: `kiezbox run` in the kernel VM (scripts/kernel-vm) writes its store to a virtual disk without a
/// host cache and relays to a mosquitto on the host; the test kills qemu with SIGKILL at random moments, boots
/// again, and compares the store after each cut with what the broker delivered (scripts/kernel-vm/README.md).
@Suite("Power cuts in the kernel VM", .serialized)
struct PowerCutTests {
    /// `KIEZBOX_POWER_CUTS` changes the number of cuts (at least 20 in the README's test run).
    static let cuts = ProcessInfo.processInfo.environment["KIEZBOX_POWER_CUTS"].flatMap(Int.init) ?? 20
    static let packageRoot = URL(filePath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test("after every power cut the store is intact, keeps what the broker acknowledged, and no id names two readings",
          .timeLimit(.minutes(15)))
    func powerCuts() async throws {
        try requireProgram("/usr/sbin/mkfs.ext4", package: "e2fsprogs")
        try requireProgram("/usr/bin/sqlite3", package: "sqlite3")
        try requireProgram(MosquittoBroker.executable, package: "mosquitto")
        let directory = try temporaryDirectory("kiezbox-power-cut")
        defer { try? FileManager.default.removeItem(atPath: directory) }

        try await MosquittoBroker.with { broker in
            let subscriber = try await TestSubscriber.connected(port: broker.port, filter: "kiezbox/v1/+/+/readings")
            do {
                let machine = try await PowerCutMachine(directory: directory, brokerPort: broker.port)
                var ledger = PowerCutLedger()
                try await Self.cutRepeatedly(machine, broker: broker, subscriber: subscriber, ledger: &ledger)
                print(ledger.summary(cuts: Self.cuts))
                #expect(ledger.integrityFailures.isEmpty, "PRAGMA integrity_check: \(ledger.integrityFailures)")
                #expect(ledger.missingFromStore.isEmpty, "acknowledged readings missing after a cut: \(ledger.missingFromStore.prefix(10))")
                #expect(ledger.idsWithTwoContents.isEmpty, "ids that named two readings: \(ledger.idsWithTwoContents.sorted { $0.key < $1.key }.prefix(10))")
                #expect(ledger.dropped == 0, "the store pruned readings; the test expects max_size to keep them all")
            } catch {
                await subscriber.stop()
                throw error
            }
            await subscriber.stop()
        }
    }

    /// Boots `cuts + 1` times; every boot but the last ends in a power cut, every boot checks what the cut before
    /// it left behind.
    static func cutRepeatedly(
        _ machine: PowerCutMachine, broker: MosquittoBroker, subscriber: TestSubscriber, ledger: inout PowerCutLedger
    ) async throws {
        var previousRun: PowerCutRun?
        for boot in 0...cuts {
            let run = try machine.boot(number: boot)
            defer { run.cutPower() }
            let state = try await run.storeAfterBoot()
            let received = subscriber.messages.compactMap { try? JSONDecoder().decode(ReadingsMessage.self, from: Data($0.payload)) }
            ledger.check(store: state, received: received, previousRun: previousRun)
            guard boot < cuts else { break }

            // The daemon is up when the broker delivers a reading it measured in this run.
            let daemonStarted = try await run.daemonStartedAt()
            var looked = 0
            try await run.waitUntil("the daemon of boot \(boot) relays", timeout: .seconds(240)) {
                let messages = subscriber.messages
                defer { looked = messages.count }
                return messages[looked...].contains { message in
                    guard let decoded = try? JSONDecoder().decode(ReadingsMessage.self, from: Data(message.payload)) else { return false }
                    return decoded.observations.contains { (PowerCutLedger.milliseconds($0.phenomenonTime) ?? 0) >= daemonStarted }
                }
            }
            run.relayingAt = ContinuousClock.now
            if boot.isMultiple(of: 2) {
                // Steady relaying: the cut lands anywhere in the flush and publish cycle.
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...4000)))
            } else {
                // A backlog builds while the broker does not answer; the cut lands while the relay catches up.
                broker.pause()
                try await Task.sleep(for: .milliseconds(Int.random(in: 2000...5000)))
                let before = subscriber.messages.count
                broker.resume()
                try await run.waitUntil("the backfill after boot \(boot)", timeout: .seconds(120)) { subscriber.messages.count > before }
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...1500)))
            }
            run.cutPower()
            try await run.waitForExit()
            print("power-cut: boot \(boot): \(run.timeline)")
            previousRun = run
        }
        print("power-cut: boot to /init \(machine.bootTimes.summary) s, boot to a relayed reading \(machine.relayTimes.summary) s")
    }
}

/// The VM's disks and rig arguments, shared by all boots.
final class PowerCutMachine {
    let directory: String
    let rig: String
    let arguments: [String]
    let exportImage: String
    var pidFile: String { self.directory + "/qemu.pid" }
    var bootTimes = Figures()
    var relayTimes = Figures()

    init(directory: String, brokerPort: Int) async throws {
        self.directory = directory
        self.rig = PowerCutTests.packageRoot.appending(path: "scripts/kernel-vm/run.sh").path
        let dataImage = directory + "/data.img"
        self.exportImage = directory + "/export.img"
        for (image, size) in [(dataImage, 256 << 20), (exportImage, 16 << 20)] {
            _ = FileManager.default.createFile(atPath: image, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(filePath: image))
            try handle.truncate(atOffset: UInt64(size))
            try handle.close()
        }
        let mkfs = try await runProgram(["/usr/sbin/mkfs.ext4", "-q", "-F", dataImage], in: directory)
        try #require(mkfs.status == 0, "mkfs.ext4: \(mkfs.all)")
        let guest = PowerCutTests.packageRoot.appending(path: "scripts/kernel-vm/power-cut-guest.sh").path
        self.arguments = [
            "/bin/bash", self.rig, "--timeout", "900", "--initramfs", directory + "/initramfs.img", "--pidfile", directory + "/qemu.pid",
            "--disk", dataImage, "--disk", exportImage, "--forward", "10.0.2.100:1883=\(brokerPort)",
            "--with", kiezboxBinary, "--with", "/usr/bin/sqlite3", guest, "--", kiezboxBinary, "/usr/bin/sqlite3",
        ]
    }

    func boot(number: Int) throws -> PowerCutRun {
        try PowerCutRun(machine: self, number: number)
    }
}

/// One boot of the VM, from power-on to the cut.
final class PowerCutRun {
    let machine: PowerCutMachine
    let number: Int
    let rig: SpawnedDaemon
    let pidFile: String
    let startedAt = ContinuousClock.now
    /// Guest clock minus host clock, in milliseconds, measured from the guest's first console line.
    var clockOffset: Int64 = 0
    var relayingAt: ContinuousClock.Instant?
    var guestUpAt: ContinuousClock.Instant?
    var cutInstant: ContinuousClock.Instant?
    /// When the power was cut, on the guest's clock (ms since the epoch).
    var cutAt: Int64?
    var daemonStarted: Int64?
    private var exited = false

    init(machine: PowerCutMachine, number: Int) throws {
        self.machine = machine
        self.number = number
        self.pidFile = machine.pidFile
        try? FileManager.default.removeItem(atPath: self.pidFile)
        self.rig = try SpawnedDaemon(machine.arguments, in: machine.directory, keepOutput: true)
    }

    var console: String { self.rig.stderr }

    /// The value of the newest console line "power-cut <key> <value>", waiting for it (a hang guard).
    func marker(_ key: String, timeout: Duration = .seconds(240)) async throws -> String {
        var value: String?
        try await self.waitUntil("'power-cut \(key)' from boot \(self.number)", timeout: timeout) {
            value = self.console.split(separator: "\n").last { $0.hasPrefix("power-cut \(key) ") }
                .map { String($0.dropFirst("power-cut \(key) ".count)) }
            return value != nil
        }
        return value ?? ""
    }

    /// Polls `condition`; fails early with the console when the VM ended, and after `timeout` (a hang guard).
    func waitUntil(_ what: String, timeout: Duration, _ condition: () throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while try !condition() {
            if !self.exited, let status = reapedStatus(self.rig.pid) {
                self.exited = true
                throw TestFailure("the VM ended (run.sh \(status)) before \(what):\n\(self.console.suffix(4000))")
            }
            guard ContinuousClock.now < deadline else {
                throw TestFailure("timed out after \(timeout) waiting for \(what):\n\(self.console.suffix(4000))")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits for the guest's integrity check and dump of the store, and reads the dump off the export disk.
    func storeAfterBoot() async throws -> StoreAfterBoot {
        let clock = try await self.marker("clock")
        // "<ms since the epoch> uptime <seconds>"
        let guestNow = Int64(clock.split(separator: " ").first ?? "") ?? 0
        self.clockOffset = guestNow - Int64(Date().timeIntervalSince1970 * 1000)
        self.guestUpAt = .now
        self.machine.bootTimes.add(self.startedAt.duration(to: .now))
        let integrity = try await self.marker("integrity").trimmingCharacters(in: .whitespaces)
        // "<bytes> dropped <count>"
        let dumpLine = try await self.marker("dump").split(separator: " ")
        let bytes = dumpLine.first.flatMap { Int($0) } ?? 0
        let export = try FileHandle(forReadingFrom: URL(filePath: self.machine.exportImage))
        defer { try? export.close() }
        let dump = try export.read(upToCount: bytes) ?? Data()
        let rows = try JSONDecoder().decode([StoreAfterBoot.Row].self, from: dump)
        return StoreAfterBoot(boot: self.number, integrity: integrity, rows: rows, dropped: dumpLine.last.flatMap { Int($0) } ?? -1)
    }

    /// When `kiezbox run` was started, on the guest's clock.
    func daemonStartedAt() async throws -> Int64 {
        let started = Int64(try await self.marker("daemon")) ?? 0
        self.daemonStarted = started
        return started
    }

    /// SIGKILL to qemu: the power cut. Safe to call again, and a no-op once the VM has ended.
    func cutPower() {
        guard !self.exited else { return }
        if self.cutAt == nil {
            self.cutAt = Int64(Date().timeIntervalSince1970 * 1000) + self.clockOffset
            self.cutInstant = .now
        }
        if let relayingAt { self.machine.relayTimes.add(self.startedAt.duration(to: relayingAt)) }
        if let text = try? String(contentsOfFile: self.pidFile, encoding: .utf8), let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)),
           (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.hasPrefix("qemu") == true
        {
            kill(pid, SIGKILL)
        } else {
            // qemu has not written its pid yet: the rig goes, and qemu with it at the latest at its time limit.
            self.rig.signal(SIGKILL)
        }
    }

    /// Seconds from power-on to the guest's first line, to a relayed reading and to the cut.
    var timeline: String {
        func seconds(_ instant: ContinuousClock.Instant?) -> String {
            guard let instant else { return "-" }
            let duration = self.startedAt.duration(to: instant)
            return String(format: "%.1f s", Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
        }
        return "guest up after \(seconds(self.guestUpAt)), relaying after \(seconds(self.relayingAt)), cut after \(seconds(self.cutInstant))"
    }

    /// Waits until the rig has noticed the cut and exited (a hang guard; the rig is killed after it).
    func waitForExit() async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while !self.exited, reapedStatus(self.rig.pid) == nil {
            guard ContinuousClock.now < deadline else {
                self.rig.signal(SIGKILL)
                throw TestFailure("the rig did not exit after the cut of boot \(self.number):\n\(self.console.suffix(2000))")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        self.exited = true
    }
}

/// What the guest found on the data disk after a boot: sqlite3's verdict and every reading.
struct StoreAfterBoot {
    var boot: Int
    var integrity: String
    var readings: [String: PowerCutLedger.Content] = [:]
    var newestMeasuredAt: Int64 = 0
    var dropped = 0

    /// One reading of `kiezbox readings --format json`.
    struct Row: Decodable {
        /// Absent before the run counter: the global id was then `<store>:<id>`.
        var globalID: String?
        var store: String
        var id: Int64
        var sensor: String
        var quantity: String
        var value: Double
        var measuredAt: String
        var quality: String
    }

    init(boot: Int, integrity: String, rows: [Row], dropped: Int) {
        self.boot = boot
        self.integrity = integrity
        self.dropped = dropped
        for row in rows {
            let measuredAt = PowerCutLedger.milliseconds(row.measuredAt) ?? -1
            self.readings[row.globalID ?? "\(row.store):\(row.id)"] = .init(sensor: row.sensor, quantity: row.quantity, measuredAt: measuredAt, quality: row.quality, value: row.value)
            self.newestMeasuredAt = max(self.newestMeasuredAt, measuredAt)
        }
    }
}

/// The counts the test prints and checks, accumulated over all boots.
struct PowerCutLedger {
    /// What a global id names: the reading's contents as both the store and a readings message carry them.
    struct Content: Hashable, CustomStringConvertible {
        var sensor: String
        var quantity: String
        var measuredAt: Int64
        var quality: String
        var value: Double
        var description: String { "\(sensor)/\(quantity)@\(measuredAt)=\(value)(\(quality))" }
    }

    var integrityFailures: [String] = []
    var missingFromStore: [String] = []
    /// Each id that named two readings, with the two.
    var idsWithTwoContents: [String: String] = [:]
    var receivedTotal = 0
    var duplicatesReceived = 0
    var distinctReceived = 0
    var dropped = 0
    var storedAtEnd = 0
    /// Per cut: seconds of sampling before the cut that did not survive it.
    var lostSeconds = Figures()
    private var firstContent: [String: Content] = [:]
    private var missingSeen: Set<String> = []

    static func milliseconds(_ iso: String) -> Int64? {
        guard let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(iso) else { return nil }
        return Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    mutating func check(store: StoreAfterBoot, received: [ReadingsMessage], previousRun: PowerCutRun?) {
        if store.integrity != "ok", store.integrity != "none" { self.integrityFailures.append("boot \(store.boot): \(store.integrity)") }
        self.dropped = store.dropped
        self.storedAtEnd = store.readings.count

        // Everything received so far, in arrival order: the same id must always carry the same reading.
        self.receivedTotal = 0
        self.duplicatesReceived = 0
        var firstContent: [String: Content] = [:]
        for observation in received.flatMap(\.observations) {
            self.receivedTotal += 1
            let content = Content(
                sensor: observation.sensor, quantity: observation.quantity,
                measuredAt: Self.milliseconds(observation.phenomenonTime) ?? -1, quality: observation.quality, value: observation.result)
            if let first = firstContent[observation.id] {
                // A repeat (QoS 1 allows it) or a second reading under the same id (never allowed).
                if first == content {
                    self.duplicatesReceived += 1
                } else {
                    self.idsWithTwoContents[observation.id] = "received \(first), then \(content)"
                }
            } else {
                firstContent[observation.id] = content
            }
        }
        self.distinctReceived = firstContent.count
        self.firstContent = firstContent

        // ... and what the broker delivered must be in the store after the cut, as it was delivered.
        for (id, content) in firstContent {
            guard let stored = store.readings[id] else {
                if self.missingSeen.insert(id).inserted { self.missingFromStore.append("\(id) \(content) (boot \(store.boot))") }
                continue
            }
            if stored != content { self.idsWithTwoContents[id] = "received \(content), stored \(stored) (boot \(store.boot))" }
        }

        if let previousRun, let cutAt = previousRun.cutAt {
            let durableThrough = max(store.newestMeasuredAt, previousRun.daemonStarted ?? 0)
            self.lostSeconds.add(.milliseconds(max(0, cutAt - durableThrough)))
        }
    }

    func summary(cuts: Int) -> String {
        """
        power-cut: \(cuts) cuts; \(self.receivedTotal) readings received (\(self.distinctReceived) distinct ids, \
        \(self.duplicatesReceived) repeats with the same contents); \(self.storedAtEnd) in the store after the last boot, \(self.dropped) pruned; \
        received but missing from the store: \(self.missingFromStore.count); ids with two contents: \(self.idsWithTwoContents.count); \
        integrity failures: \(self.integrityFailures.count)
        power-cut: seconds of sampling lost per cut (measured, never durable): \(self.lostSeconds.summary)
        """
    }
}

/// Durations, summarised as min / median / max in seconds.
struct Figures {
    private(set) var values: [Double] = []

    mutating func add(_ duration: Duration) {
        self.values.append(Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
    }

    var summary: String {
        guard !self.values.isEmpty else { return "none" }
        let sorted = self.values.sorted()
        return String(format: "min %.1f / median %.1f / max %.1f (n=%d)", sorted[0], sorted[sorted.count / 2], sorted[sorted.count - 1], sorted.count)
    }
}
#endif
