import SensorDrivers
import Synchronization

/// What both simulated dialects share: the radio behind the modem, the firmware version it reports, and the
/// serial side. Each dialect (``SimulatedWioE5``, ``SimulatedRAK3172``) is a subclass that answers commands.
///
/// `@unchecked Sendable` only because the class is not final (its subclasses are the two dialects, in this module):
/// every stored property is an immutable, Sendable value.
public class SimulatedATModem: SimulatedSerialDevice, @unchecked Sendable {
    /// Scripting (failed joins, busy, duty cycle, downlinks, noise) and the record of what went on air.
    public let radio: SimulatedLoRaWANRadio
    /// What the version command answers.
    public let firmwareVersion: String
    private let line = SimulatedATLine()

    init(radio: SimulatedLoRaWANRadio, firmwareVersion: String) {
        self.radio = radio
        self.firmwareVersion = firmwareVersion
    }

    public func received(_ bytes: [UInt8], at time: Duration) -> [UInt8] {
        self.line.received(bytes, at: time, noise: self.radio.takeNoise()) { self.answer($0, at: time) }
    }

    public func transmissions(upTo time: Duration) -> [UInt8] {
        self.line.transmissions(upTo: time)
    }

    public func nextTransmissionTime() -> Duration? {
        self.line.nextTransmissionTime()
    }

    /// The dialect's answer to one command line.
    func answer(_ command: String, at time: Duration) -> [SimulatedATReply] {
        []
    }
}

/// One answer of a simulated modem: lines it sends at `time` (each ended by CR LF).
struct SimulatedATReply {
    var time: Duration
    var lines: [String]
}

/// The serial side both simulated dialects share: assembles command lines from bytes in any split, and queues
/// the answers in time order, immediate ones first and a join's or an uplink's result when its time comes.
final class SimulatedATLine: Sendable {
    private struct State {
        var partialCommand: [UInt8] = []
        /// Output not yet sent, in time order.
        var scheduled: [(time: Duration, bytes: [UInt8])] = []
    }

    private let state = Mutex(State())

    /// The host wrote `bytes`: every complete command (ended by CR or LF) is answered by `answer`; returns what
    /// is due now, `noise` first.
    func received(_ bytes: [UInt8], at time: Duration, noise: [UInt8], answer: (String) -> [SimulatedATReply]) -> [UInt8] {
        self.state.withLock { state in
            for byte in bytes {
                guard byte == 0x0D || byte == 0x0A else {
                    state.partialCommand.append(byte)
                    continue
                }
                guard !state.partialCommand.isEmpty else { continue }
                let command = String(decoding: state.partialCommand, as: UTF8.self)
                state.partialCommand = []
                for reply in answer(command) {
                    let bytes = Array(reply.lines.map { $0 + "\r\n" }.joined().utf8)
                    let index = state.scheduled.firstIndex { $0.time > reply.time } ?? state.scheduled.endIndex
                    state.scheduled.insert((reply.time, bytes), at: index)
                }
            }
            return noise + Self.takeDue(upTo: time, from: &state.scheduled)
        }
    }

    func transmissions(upTo time: Duration) -> [UInt8] {
        self.state.withLock { Self.takeDue(upTo: time, from: &$0.scheduled) }
    }

    func nextTransmissionTime() -> Duration? {
        self.state.withLock { $0.scheduled.first?.time }
    }

    private static func takeDue(upTo time: Duration, from scheduled: inout [(time: Duration, bytes: [UInt8])]) -> [UInt8] {
        let due = scheduled.prefix { $0.time <= time }
        scheduled.removeFirst(due.count)
        return due.flatMap(\.bytes)
    }
}

/// A parsed `AT+NAME=argument` command: NAME upper case, the argument as written (nil without `=`).
struct SimulatedATCommand {
    var name: String
    var argument: String?

    /// Nil for a line that is not `AT+…` (a bare `AT` gives the name "").
    init?(_ line: String) {
        guard line.uppercased().hasPrefix("AT") else { return nil }
        let rest = line.dropFirst(2)
        guard !rest.isEmpty else {
            self.name = ""
            self.argument = nil
            return
        }
        guard rest.hasPrefix("+") else { return nil }
        let body = rest.dropFirst()
        if let equals = body.firstIndex(of: "=") {
            self.name = body[..<equals].uppercased()
            self.argument = String(body[body.index(after: equals)...])
        } else {
            self.name = body.uppercased()
            self.argument = nil
        }
    }
}
