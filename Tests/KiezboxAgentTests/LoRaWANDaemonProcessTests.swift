import Foundation
import KiezboxTestSupport
import ReadingStore
import Testing

/// `kiezbox run` with `[lorawan]` on a simulated box (a simulated RAK3172 at the configured port), as a real process:
/// what `kiezbox status`, `/metrics` and the log show, and that the airtime ledger outlives a restart.
@Suite("kiezbox run with a LoRaWAN uplink as a real process (DaemonProcess)", .serialized, .timeLimit(.minutes(5)))
struct LoRaWANDaemonProcessTests {
    /// The AppKey of ``LoRaWANConfigurationTests/keys`` as hex: it must never reach the log.
    static let appKeyHex = "2B7E151628AED2A6ABF7158809CF4F3C"

    /// A started daemon, killed and reaped if a test leaves it running.
    final class Daemon {
        let spawned: SpawnedDaemon
        private(set) var exitStatus: Int32?

        init(_ arguments: [String], in directory: String) throws {
            self.spawned = try SpawnedDaemon([kiezboxBinary] + arguments, in: directory)
        }

        var log: String { self.spawned.stderr }

        /// Throws when the daemon ended on its own (a hang guard would otherwise hide why).
        func checkRunning() throws {
            guard self.exitStatus == nil, isRunning(self.spawned.pid) else {
                self.exitStatus = self.exitStatus ?? reapedStatus(self.spawned.pid) ?? -1
                throw SpawnError(description: "the daemon ended:\n\(self.log)")
            }
        }

        /// SIGTERM, then the exit status (SIGKILL after the hang guard).
        func stop() async throws -> Int32 {
            if let exitStatus = self.exitStatus { return exitStatus }
            self.spawned.signal(SIGTERM)
            let deadline = ContinuousClock.now + .seconds(40)
            while ContinuousClock.now < deadline {
                if let status = reapedStatus(self.spawned.pid) {
                    self.exitStatus = status
                    return status
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            self.spawned.signal(SIGKILL)
            self.exitStatus = reapedStatus(self.spawned.pid, blocking: true)
            throw TimeoutError(what: "kiezbox to stop after SIGTERM")
        }

        deinit {
            if self.exitStatus == nil {
                self.spawned.signal(SIGKILL)
                _ = reapedStatus(self.spawned.pid, blocking: true)
            }
        }
    }

    /// What the test reads of the `lorawan` object of `kiezbox status --json` (the store's `LoRaWANAccount`).
    struct Account: Decodable {
        var airtimeUsedSeconds: Double
        var airtimeLeftSeconds: Double
        var airtimeLimitSeconds: Double
        var uplinksSent: Int
        var joins: Int
        var nextSend: LoRaWANNextSend?
    }

    struct StatusJSON: Decodable {
        var lorawan: Account?

        /// `kiezbox status --json`'s LoRaWAN account, dates in ISO 8601 as it writes them.
        static func account(_ output: String) throws -> Account? {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            return try decoder.decode(StatusJSON.self, from: Data(output.utf8)).lorawan
        }
    }

    func status(_ arguments: [String], in directory: String, json: Bool) async throws -> ProgramRun {
        let run = try await runProgram([kiezboxBinary, "status"] + arguments + (json ? ["--json"] : []), in: directory)
        try #require(run.status == 0, "\(run.all)")
        return run
    }

    func account(_ arguments: [String], in directory: String) async throws -> Account {
        let run = try await self.status(arguments, in: directory, json: true)
        return try #require(try StatusJSON.account(run.output), "\(run.output)")
    }

    /// Polls `kiezbox status --json` until the LoRaWAN account satisfies `condition` (60 s hang guard, no schedule).
    func waitForAccount(
        _ what: String, of daemon: Daemon, _ arguments: [String], in directory: String, _ condition: (Account) -> Bool
    ) async throws -> Account {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            try daemon.checkRunning()
            // Before the daemon has created its store, status fails: keep polling.
            let run = try await runProgram([kiezboxBinary, "status", "--json"] + arguments, in: directory)
            if run.status == 0, let account = try? StatusJSON.account(run.output), condition(account) {
                return account
            }
            guard ContinuousClock.now < deadline else { throw TimeoutError(what: what + "; last status: " + run.all + "\nlog:\n" + daemon.log) }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    @Test("status and /metrics show the airtime, the log shows join and send but never the AppKey, and a restart keeps the ledger")
    func uplinkAndRestart() async throws {
        try requireProgram("/usr/bin/curl", package: "curl")
        let directory = try temporaryDirectory("kiezbox-lorawan-process")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let portalPort = try MosquittoBroker.freePort()
        let configuration = DaemonProcessTests.configuration + """

            [log]
            level = "debug"

            [portal]
            listen = "127.0.0.1"
            port = \(portalPort)
            https_port = \(try MosquittoBroker.freePort())

            [lorawan]
            port = "/dev/ttyUSB1"
            modem = "rak3172"
            data_rate = 5

            """ + LoRaWANConfigurationTests.keys + "\n"
        try configuration.write(toFile: directory + "/kiezbox.toml", atomically: true, encoding: .utf8)
        let arguments = ["--config", directory + "/kiezbox.toml", "--data-dir", directory + "/data"]

        let first = try Daemon(["run"] + arguments, in: directory)
        // Hang guard: the first report follows the relay's handover and its recheck, a few seconds after the start.
        let sent = try await self.waitForAccount("a LoRaWAN uplink in kiezbox status", of: first, arguments, in: directory) {
            $0.uplinksSent >= 1 && $0.nextSend != nil
        }
        #expect(sent.joins >= 1)
        #expect(sent.airtimeUsedSeconds > 0)
        #expect(sent.airtimeLimitSeconds == 30)
        #expect(abs(sent.airtimeUsedSeconds + sent.airtimeLeftSeconds - sent.airtimeLimitSeconds) < 0.001)
        print("LoRaWAN after the first start: \(sent.uplinksSent) uplink(s), \(sent.joins) join(s), \(sent.airtimeUsedSeconds) s airtime used")

        let text = try await self.status(arguments, in: directory, json: false).output
        #expect(text.contains("LoRaWAN (last 24 hours)"), "\(text)")

        let metrics = try await runProgram(
            ["/usr/bin/curl", "-sS", "--noproxy", "*", "--max-time", "20", "http://127.0.0.1:\(portalPort)/metrics"], in: directory)
        try #require(metrics.status == 0, "\(metrics.all)")
        let used = try #require(Self.gauge("kiezbox_lorawan_airtime_used_seconds", in: metrics.output), "\(metrics.output)")
        #expect(used > 0)
        #expect(Self.gauge("kiezbox_lorawan_airtime_left_seconds", in: metrics.output) != nil, "\(metrics.output)")

        let log = first.log
        #expect(log.contains("LoRaWAN joined"), "\(log)")
        #expect(log.contains("LoRaWAN frame sent"), "\(log)")
        #expect(!log.uppercased().contains(Self.appKeyHex))
        #expect(try await first.stop() == 0, "\(first.log)")

        // Stopped: the store still holds the 24-hour account.
        let stopped = try await self.account(arguments, in: directory)
        #expect(stopped.joins >= sent.joins)
        #expect(stopped.airtimeUsedSeconds >= sent.airtimeUsedSeconds)

        // Restarted on the same data directory: the fresh simulated modem has no session, so the daemon joins again;
        // that join is added to the ledger, it does not start a new one.
        let second = try Daemon(["run"] + arguments, in: directory)
        let carried = try await self.waitForAccount("the restarted daemon to join again", of: second, arguments, in: directory) {
            $0.joins > stopped.joins
        }
        #expect(second.log.contains("LoRaWAN joined"), "\(second.log)")
        print("LoRaWAN after the restart: \(carried.uplinksSent) uplink(s), \(carried.joins) join(s), \(carried.airtimeUsedSeconds) s airtime used")
        #expect(carried.uplinksSent >= stopped.uplinksSent)
        #expect(carried.airtimeUsedSeconds > stopped.airtimeUsedSeconds)
        #expect(!second.log.uppercased().contains(Self.appKeyHex))
        #expect(try await second.stop() == 0, "\(second.log)")
    }

    /// The value of an unlabelled Prometheus gauge in an exposition text.
    static func gauge(_ name: String, in exposition: String) -> Double? {
        exposition.split(separator: "\n").lazy
            .filter { !$0.hasPrefix("#") }
            .compactMap { line -> Double? in
                let fields = line.split(separator: " ")
                guard fields.count == 2, fields[0] == name else { return nil }
                return Double(fields[1])
            }
            .first
    }
}
