import Synchronization

/// A Plantower PMS5003 at the far end of a simulated serial line.
///
/// It starts awake in active mode and behaves as the sensor does:
/// - active mode: a 32-byte measurement frame every ``activeInterval``;
/// - `E1 00` / `E1 01`: passive / active mode, answered with `42 4D 00 04 E1 00|01` + checksum;
/// - `E2`: in passive mode, one measurement frame;
/// - `E4 00`: sleep, answered with `42 4D 00 04 E4 00` + checksum; asleep it hears only `E4 01` (wake), which it does
///   not answer. It wakes in the mode it slept in.
///
/// The atmospheric values come from ``setConcentrations(pm1:pm2_5:pm10:)`` (the CF=1 words get the same values,
/// as they do below about 30 µg/m³). For ``warmUpDuration`` after waking the fan stirs up dust and the sensor reports
/// ``warmUpFactor`` times the true values.
///
/// Faults: corrupted checksums, noise before frames, cut frames, lost commands and silence.
public final class SimulatedPMS5003: SimulatedParticulateUARTSensor {
    /// How often an awake sensor in active mode sends a measurement.
    public let activeInterval: Duration

    private struct State {
        var decoder = PMS5003CommandStreamDecoder()
        var isPassive = false
        var isAsleep = false
        var measurement = PMS5003Measurement(
            pm1Standard: 3, pm2_5Standard: 4, pm10Standard: 7, pm1: 3, pm2_5: 4, pm10: 7,
            particleCounts: [720, 184, 25, 8, 4, 2], reserved: 0x9700
        )
        var warmUp = SimulatedWarmUp(duration: .seconds(30), factor: 2.5)
        var activeFrames: SimulatedActiveFrames
        var commands: [PMS5003Command] = []
        var faults = SimulatedLineFaults()

        var isStreaming: Bool { !self.isAsleep && !self.isPassive }

        func measurementFrame(at time: Duration) -> PMS5003Frame {
            guard self.warmUp.isWarmingUp(at: time) else { return .measurement(self.measurement) }
            let factor = self.warmUp.factor
            let words = self.measurement.words.enumerated().map { index, word in
                index < 12 ? UInt16(clamping: Int((Double(word) * factor).rounded())) : word
            }
            return .measurement(PMS5003Measurement(words: words))
        }

        mutating func send(_ frame: PMS5003Frame) -> [UInt8] {
            let isMeasurement = if case .measurement = frame { true } else { false }
            return self.faults.transmit(frame.bytes, isMeasurement: isMeasurement) { $0[$0.count - 1] &+= 1 }
        }

        mutating func handle(_ command: PMS5003Command, at time: Duration) -> [UInt8] {
            self.commands.append(command)
            if self.faults.dropsCommand() { return [] }
            if self.isAsleep {
                guard command == .wake else { return [] }
                self.isAsleep = false
                self.warmUp.since = time
                self.activeFrames.restart(at: time, sending: !self.isPassive)
                return []
            }
            switch command {
            case .passiveMode, .activeMode:
                self.isPassive = command == .passiveMode
                self.activeFrames.restart(at: time, sending: !self.isPassive)
            case .read:
                return self.isPassive ? self.send(self.measurementFrame(at: time)) : []
            case .sleep:
                self.isAsleep = true
                self.activeFrames.next = nil
            case .wake:
                return []
            }
            return command.expectedReply.map { self.send(.commandReply($0)) } ?? []
        }
    }

    private let state: Mutex<State>

    /// - Parameter activeInterval: the period of active-mode frames (the datasheet gives 200 ms…2.3 s).
    public init(activeInterval: Duration = .seconds(1)) {
        self.activeInterval = max(activeInterval, .milliseconds(1))
        self.state = Mutex(State(activeFrames: SimulatedActiveFrames(interval: self.activeInterval, next: self.activeInterval)))
    }

    // MARK: SimulatedSerialDevice

    public func received(_ bytes: [UInt8], at time: Duration) -> [UInt8] {
        self.state.withLock { state in
            PMS5003CommandStreamDecoder.replies(to: bytes[...], in: &state, decoder: \.decoder) { $0.handle($1, at: time) }
        }
    }

    public func transmissions(upTo time: Duration) -> [UInt8] {
        self.state.withLock { state in
            state.activeFrames.due(upTo: time, sending: state.isStreaming).flatMap { state.send(state.measurementFrame(at: $0)) }
        }
    }

    public func nextTransmissionTime() -> Duration? {
        self.state.withLock { state in state.isStreaming && !state.faults.isSilent ? state.activeFrames.next : nil }
    }

    public func changeLineFaults(_ change: (inout SimulatedLineFaults) -> Void) {
        self.state.withLock { change(&$0.faults) }
    }

    // MARK: Physical values

    /// Sets the true atmospheric concentrations in µg/m³ (whole numbers on the wire; the CF=1 words get the same).
    public func setConcentrations(pm1: Double, pm2_5: Double, pm10: Double) {
        func word(_ value: Double) -> UInt16 { value.isFinite ? UInt16(clamping: Int(value.rounded())) : 0 }
        self.state.withLock { state in
            let counts = state.measurement.particleCounts
            state.measurement = PMS5003Measurement(
                pm1Standard: word(pm1), pm2_5Standard: word(pm2_5), pm10Standard: word(pm10),
                pm1: word(pm1), pm2_5: word(pm2_5), pm10: word(pm10),
                particleCounts: counts, reserved: state.measurement.reserved
            )
        }
    }

    /// Sets every word of the measurement frame exactly.
    public func setMeasurement(_ measurement: PMS5003Measurement) {
        self.state.withLock { $0.measurement = measurement }
    }

    /// How long after waking readings are off, and by what factor (default 30 s, 2.5×).
    public func setWarmUp(duration: Duration, factor: Double) {
        self.state.withLock { $0.warmUp.set(duration: duration, factor: factor) }
    }

    /// Puts the sensor in a state as if a previous program had left it so.
    public func setModes(passive: Bool, asleep: Bool) {
        self.state.withLock { state in
            state.isPassive = passive
            state.isAsleep = asleep
            state.activeFrames.restart(at: .zero, sending: !passive && !asleep)
        }
    }

    // MARK: Inspection

    /// Every well-formed command received, in order.
    public var commandsReceived: [PMS5003Command] { self.state.withLock { $0.commands } }
    public var isPassive: Bool { self.state.withLock { $0.isPassive } }
    public var isAsleep: Bool { self.state.withLock { $0.isAsleep } }
}
