import KiezboxCore
import SensorDrivers
import Synchronization

/// One line of a conversation with a LoRaWAN modem, for the log. The AppKey is already hidden in `text`.
public struct LoRaWANModemLogEntry: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// A command the host wrote (debug level).
        case command
        /// A line the dialect knows, read in answer to a command (debug level).
        case reply
        /// A line the dialect does not know, or one that arrived when nothing was waiting for it: skipped, never
        /// fatal (notice level: a modem that babbles points at wiring or a wrong baud rate).
        case skipped
    }

    public var kind: Kind
    /// The serial port's name.
    public var port: String
    public var text: String

    public init(kind: Kind, port: String, text: String) {
        self.kind = kind
        self.port = port
        self.text = text
    }

    public var description: String {
        switch self.kind {
        case .command: "\(self.port) → \(self.text)"
        case .reply: "\(self.port) ← \(self.text)"
        case .skipped: "\(self.port) skipped: \(self.text)"
        }
    }
}

/// Where a modem driver reports its conversation; the daemon maps it to its logger.
public typealias LoRaWANModemLog = @Sendable (LoRaWANModemLogEntry) -> Void

/// How long a modem driver waits. Every wait is for silence, not a total: a modem that keeps talking keeps the
/// wait going, bounded by ``maximumLinesPerCommand``. These are hang guards; the modem's own timing decides how
/// long things take.
public struct LoRaWANModemTimeouts: Sendable, Hashable {
    /// Silence after a command before the modem counts as not answering.
    public var reply: Duration
    /// Silence allowed during a join: the join request's airtime (up to 1.5 s at SF12) and the join-accept
    /// windows 5 and 6 s after it.
    public var join: Duration
    /// Silence allowed during an uplink: its airtime (up to 2.8 s at SF12) and the receive windows 1 and 2 s after it.
    public var transmission: Duration
    /// After an uplink is reported done (the RAK3172's `+EVT:TX_DONE`), how long downlink events may still follow.
    public var downlinkGrace: Duration
    /// Lines read while waiting for one answer before giving up on a babbling line.
    public var maximumLinesPerCommand: Int

    public init(
        reply: Duration = .seconds(2),
        join: Duration = .seconds(20),
        transmission: Duration = .seconds(20),
        downlinkGrace: Duration = .seconds(1),
        maximumLinesPerCommand: Int = 200
    ) {
        self.reply = reply
        self.join = join
        self.transmission = transmission
        self.downlinkGrace = downlinkGrace
        self.maximumLinesPerCommand = maximumLinesPerCommand
    }
}

/// What a dialect made of one line while waiting for an answer.
enum ATLineVerdict<Answer> {
    /// The answer: the wait ends.
    case answer(Answer)
    /// A line of this conversation that does not end the wait (`+JOIN: Start`, a get reply before its `OK`).
    case known
    /// A line the dialect does not know: logged and skipped.
    case unknown
}

/// A modem on a serial port, shared by both dialects' drivers: one conversation at a time, in the order the calls
/// came (a modem is a half-duplex conversation; two interleaved commands would take each other's answers).
final class ATModemLink: Sendable {
    let port: any SerialPort
    let timeouts: LoRaWANModemTimeouts
    private let log: LoRaWANModemLog
    private struct State {
        var isConversing = false
        var waiting: [CheckedContinuation<Void, Never>] = []
        /// The AppKey, once configured: hidden in every log line and error from then on.
        var secret: [UInt8]?
    }

    private let state = Mutex(State())

    init(port: any SerialPort, timeouts: LoRaWANModemTimeouts, log: @escaping LoRaWANModemLog) {
        self.port = port
        self.timeouts = timeouts
        self.log = log
    }

    /// From now on, `secret` never appears in logs or errors.
    func hide(_ secret: [UInt8]) {
        self.state.withLock { $0.secret = secret }
    }

    /// Runs `body` when no other conversation is running. Each conversation reads through a session of its own;
    /// what arrived between two conversations is read (and logged) at the start of the next.
    func converse<T>(_ body: (inout ATModemConversation) async throws -> T) async throws -> T {
        await withCheckedContinuation { (turn: CheckedContinuation<Void, Never>) in
            let mayGo = self.state.withLock { state in
                guard state.isConversing else {
                    state.isConversing = true
                    return true
                }
                state.waiting.append(turn)
                return false
            }
            if mayGo { turn.resume() }
        }
        defer {
            let next = self.state.withLock { state in
                guard !state.waiting.isEmpty else {
                    state.isConversing = false
                    return nil as CheckedContinuation<Void, Never>?
                }
                return state.waiting.removeFirst()
            }
            next?.resume()
        }
        var conversation = ATModemConversation(port: self.port, timeouts: self.timeouts, log: self.log, secret: self.state.withLock { $0.secret })
        return try await body(&conversation)
    }
}

/// The line-level half of both dialects: writes each command in one `write()` with CR LF (a Wio-E5 answers a
/// split command with `+INFO: Input timeout`), reads lines through a resynchronising ``SerialSession``, hides the
/// AppKey in everything it logs or puts into an error, and logs the lines nobody waited for.
struct ATModemConversation {
    private var session: SerialSession<SerialLineFormat>
    let timeouts: LoRaWANModemTimeouts
    private let log: LoRaWANModemLog
    /// Hex spellings of the AppKey (upper and lower case), replaced in every text that leaves the driver.
    private var secrets: [String] = []

    init(port: any SerialPort, timeouts: LoRaWANModemTimeouts, log: @escaping LoRaWANModemLog, secret: [UInt8]?) {
        // The conversation reads every line itself (a frame is never "skipped" by the session), so the skipped-frame
        // bound never ends a wait; a bound on bytes still ends one on a line that streams garbage without line ends.
        self.session = SerialSession(
            port: port,
            limits: .init(maximumBytesPerWait: 16384, maximumSkippedFrames: .max, readSize: 256)
        )
        self.timeouts = timeouts
        self.log = log
        if let secret {
            let upper = Hex.encode(secret)
            self.secrets = [upper, upper.lowercased()]
        }
    }

    var portName: String { self.session.port.name }

    /// `text` with the AppKey replaced.
    func redacted(_ text: String) -> String {
        var text = text
        for secret in self.secrets where !secret.isEmpty {
            text = text.replacing(secret, with: "(hidden)")
        }
        return text
    }

    func record(_ kind: LoRaWANModemLogEntry.Kind, _ text: String) {
        self.log(LoRaWANModemLogEntry(kind: kind, port: self.portName, text: self.redacted(text)))
    }

    /// Writes `command` with CR LF in one `write()`. Lines that arrived since the last answer (late events, the tail
    /// of an earlier answer) are read first, so they are not taken for this command's answer, and returned; those
    /// `isKnown` does not recognise are logged as skipped.
    @discardableResult
    mutating func write(_ command: String, isKnown: (String) -> Bool = { _ in false }) async throws -> [String] {
        var earlier: [String] = []
        while let line = try await self.session.next(timeout: .zero, { $0 }) {
            self.record(isKnown(line) ? .reply : .skipped, line)
            earlier.append(line)
        }
        self.record(.command, command)
        try await self.session.port.write(Array((command + "\r\n").utf8))
        return earlier
    }

    /// Reads lines until `interpret` gives the answer; nil when the modem stayed silent for `timeout` or sent
    /// ``LoRaWANModemTimeouts/maximumLinesPerCommand`` lines without one. Lines `interpret` does not know are
    /// logged and skipped; its errors end the wait.
    mutating func answer<Answer>(
        timeout: Duration,
        _ interpret: (String) throws -> ATLineVerdict<Answer>
    ) async throws -> Answer? {
        for _ in 0..<self.timeouts.maximumLinesPerCommand {
            guard let line = try await self.session.next(timeout: timeout, { $0 }) else { return nil }
            let verdict: ATLineVerdict<Answer>
            do {
                verdict = try interpret(line)
            } catch let refusal as LoRaWANModemError {
                self.record(.reply, line)
                throw self.redacted(refusal)
            }
            switch verdict {
            case .answer(let answer):
                self.record(.reply, line)
                return answer
            case .known:
                self.record(.reply, line)
            case .unknown:
                self.record(.skipped, line)
            }
        }
        return nil
    }

    /// `error` with the AppKey hidden in every text it carries.
    func redacted(_ error: LoRaWANModemError) -> LoRaWANModemError {
        switch error {
        case .noAnswer(let command, let port): .noAnswer(command: self.redacted(command), port: port)
        case .unrecognisedModem(let port, let answer): .unrecognisedModem(port: port, answer: self.redacted(answer))
        case .joinFailed(let reason): .joinFailed(reason: self.redacted(reason))
        case .refused(let command, let reply): .refused(command: self.redacted(command), reply: self.redacted(reply))
        case .notJoined, .busy, .dutyCycle, .lengthError, .noFreeChannel: error
        }
    }

    /// The error for a command that got no answer: ``LoRaWANModemError/noAnswer(command:port:)``, with the
    /// command's secrets hidden.
    func noAnswer(_ command: String) -> LoRaWANModemError {
        self.redacted(.noAnswer(command: command, port: self.portName))
    }

    /// A refusal with the command's secrets hidden.
    func refused(_ command: String, _ reply: String) -> LoRaWANModemError {
        self.redacted(.refused(command: command, reply: reply))
    }
}

/// The application ports both dialects accept for an uplink: 1…223 (224 is the LoRaWAN test port, 0 is MAC only).
let lorawanApplicationPorts: ClosedRange<UInt8> = 1...223

/// An integer at the start of `text` (after spaces), e.g. the `123` of `123ms`.
func leadingInteger(_ text: some StringProtocol) -> Int? {
    let trimmed = text.drop { $0 == " " }
    let digits = trimmed.prefix { $0.isASCII && ($0.isNumber || $0 == "-") }
    return Int(digits)
}
