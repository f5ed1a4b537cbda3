import Foundation
import KiezboxCore
import Logging
import Synchronization

/// How wrong bearer tokens are slowed down and logged (see ``AuthorityAttempts``).
public struct AuthorityAttemptPolicy: Sendable, Hashable {
    /// Wrong tokens one address may send before it has to wait.
    public var freeFailures: Int
    /// The wait after the last free failure; each further failure doubles it, up to ``maximumDelay``.
    public var firstDelay: Duration
    public var maximumDelay: Duration
    /// An address's failures are forgotten once it has sent no wrong token for this long after its last wait ended.
    public var forgetAfter: Duration
    /// At most one "wrong token" log line per address this often; every wait that starts is logged as well.
    public var logInterval: Duration
    /// Addresses remembered at once; beyond it the one quiet longest is forgotten, so a flood of addresses cannot
    /// grow the table without bound.
    public var maximumAddresses: Int

    public init(
        freeFailures: Int = 10, firstDelay: Duration = .seconds(1), maximumDelay: Duration = .seconds(3600),
        forgetAfter: Duration = .seconds(3600), logInterval: Duration = .seconds(60), maximumAddresses: Int = 4096
    ) {
        self.freeFailures = freeFailures
        self.firstDelay = firstDelay
        self.maximumDelay = maximumDelay
        self.forgetAfter = forgetAfter
        self.logInterval = logInterval
        self.maximumAddresses = maximumAddresses
    }
}

/// Wrong authority tokens per source address: after ``AuthorityAttemptPolicy/freeFailures`` an address must wait
/// (429 with `Retry-After`), twice as long after each further wrong token. Only the address that guesses waits: an
/// authority elsewhere is never locked out by someone else's guesses. A waiting address's requests are refused
/// before its token is looked at, so the refusal says nothing about the token.
///
/// Failures are logged per address, at most once per ``AuthorityAttemptPolicy/logInterval`` and whenever a wait
/// starts, with the address and the count, so a flood of guesses cannot flood the log.
public final class AuthorityAttempts: Sendable {
    /// What a request from an address may do now.
    public enum Admission: Sendable, Hashable {
        case check
        /// Refused without looking at the token; try again in this many seconds (at least 1).
        case wait(seconds: Int)
    }

    struct Record {
        var failures = 0
        var lastFailure: Date
        var waitUntil: Date?
        var lastLogged: Date?
        var unloggedFailures = 0
    }

    public let policy: AuthorityAttemptPolicy
    private let records = Mutex<[String: Record]>([:])
    private let logger: Logger

    public init(policy: AuthorityAttemptPolicy = AuthorityAttemptPolicy(), logger: Logger) {
        self.policy = policy
        self.logger = logger
    }

    /// Whether a token from `address` is looked at now.
    public func admission(for address: String, at now: Date) -> Admission {
        self.records.withLock { records in
            guard let waitUntil = records[address]?.waitUntil, waitUntil > now else { return .check }
            return .wait(seconds: max(1, Int(waitUntil.timeIntervalSince(now).rounded(.up))))
        }
    }

    /// A wrong token from `address`: counted, perhaps logged, perhaps the start of a wait.
    public func recordFailure(from address: String, at now: Date) {
        let line: (message: Logger.Message, metadata: Logger.Metadata)? = self.records.withLock { records in
            var record = records[address] ?? Record(lastFailure: now)
            // Quiet for `forgetAfter` after the last failure and after the last wait ended: the address starts afresh.
            // (Counting from the wait's end, an address that guesses once a wait is over is never forgotten.)
            let quietSince = max(record.lastFailure, record.waitUntil ?? record.lastFailure)
            if record.failures > 0, now.timeIntervalSince(quietSince) >= self.policy.forgetAfter.timeInterval {
                record = Record(lastFailure: now)
            }
            record.failures += 1
            record.unloggedFailures += 1
            record.lastFailure = now
            var delay: Duration?
            if record.failures >= self.policy.freeFailures {
                let doublings = min(record.failures - self.policy.freeFailures, 40)
                let seconds = min(self.policy.firstDelay.timeInterval * pow(2, Double(doublings)), self.policy.maximumDelay.timeInterval)
                record.waitUntil = now.addingTimeInterval(seconds)
                delay = .seconds(seconds)
            }
            let logDue = delay != nil || record.lastLogged.map { now.timeIntervalSince($0) >= self.policy.logInterval.timeInterval } ?? true
            var line: (message: Logger.Message, metadata: Logger.Metadata)?
            if logDue {
                var metadata: Logger.Metadata = [
                    "client": "\(address)", "failures": "\(record.failures)", "since_last_line": "\(record.unloggedFailures)",
                ]
                if let delay { metadata["retry_after_s"] = "\(Int(delay.timeInterval.rounded(.up)))" }
                line = (delay == nil ? "wrong authority token" : "wrong authority tokens: the address must wait", metadata)
                record.lastLogged = now
                record.unloggedFailures = 0
            }
            records[address] = record
            if records.count > self.policy.maximumAddresses { Self.forgetQuietest(&records, keeping: address, at: now) }
            return line
        }
        if let line { self.logger.warning(line.message, metadata: line.metadata) }
    }

    /// A right token from `address`: its failures are forgotten.
    public func recordSuccess(from address: String) {
        _ = self.records.withLock { $0.removeValue(forKey: address) }
    }

    /// Addresses remembered now (for tests and `/metrics`-style checks).
    public var trackedAddresses: Int { self.records.withLock { $0.count } }

    /// Forgets the address whose last failure is oldest among those not waiting (or, if all wait, the oldest).
    private static func forgetQuietest(_ records: inout [String: Record], keeping kept: String, at now: Date) {
        let candidates = records.filter { $0.key != kept }
        let quiet = candidates.filter { $0.value.waitUntil.map { $0 <= now } ?? true }
        let pool = quiet.isEmpty ? candidates : quiet
        if let oldest = pool.min(by: { $0.value.lastFailure < $1.value.lastFailure }) { records.removeValue(forKey: oldest.key) }
    }
}
