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
public final class SimulatedPMS5003: SimulatedSerialDevice {
    /// How often an awake sensor in active mode sends a measurement.
    public let activeInterval: Duration

    private struct State {
        let activeInterval: Duration
        var decoder = PMS5003CommandStreamDecoder()
        var isPassive = false
        var isAsleep = false
        var measurement = PMS5003Measurement(
            pm1Standard: 3, pm2_5Standard: 4, pm10Standard: 7, pm1: 3, pm2_5: 4, pm10: 7,
            particleCounts: [720, 184, 25, 8, 4, 2], reserved: 0x9700
        )
        var wokeAt: Duration = .zero
        var warmUpDuration = Duration.seconds(30)
        var warmUpFactor = 2.5
        var nextActiveFrameAt: Duration?
        var commands: [PMS5003Command] = []
        var corruptFramesLeft = 0
        var corruptMeasurementsLeft = 0
        var cutFramesLeft = 0
        var noiseBeforeFrames: [UInt8] = []
        var commandsToDrop = 0
        var isSilent = false

        func measurementFrame(at time: Duration) -> PMS5003Frame {
            guard time - self.wokeAt < self.warmUpDuration else { return .measurement(self.measurement) }
            let factor = self.warmUpFactor
            let words = self.measurement.words.enumerated().map { index, word in
                index < 12 ? UInt16(clamping: Int((Double(word) * factor).rounded())) : word
            }
            return .measurement(PMS5003Measurement(words: words))
        }

        mutating func send(_ frame: PMS5003Frame) -> [UInt8] {
            if self.isSilent { return [] }
            var bytes = frame.bytes
            let isMeasurement = if case .measurement = frame { true } else { false }
            if self.corruptFramesLeft > 0 || (isMeasurement && self.corruptMeasurementsLeft > 0) {
                if self.corruptFramesLeft > 0 { self.corruptFramesLeft -= 1 } else { self.corruptMeasurementsLeft -= 1 }
                bytes[bytes.count - 1] &+= 1
            }
            if self.cutFramesLeft > 0 {
                self.cutFramesLeft -= 1
                bytes = Array(bytes.prefix(bytes.count / 2))
            }
            return self.noiseBeforeFrames + bytes
        }

        mutating func handle(_ command: PMS5003Command, at time: Duration) -> [UInt8] {
            self.commands.append(command)
            if self.commandsToDrop > 0 {
                self.commandsToDrop -= 1
                return []
            }
            if self.isAsleep {
                guard command == .wake else { return [] }
                self.isAsleep = false
                self.wokeAt = time
                self.nextActiveFrameAt = self.isPassive ? nil : time + self.activeInterval
                return []
            }
            switch command {
            case .passiveMode, .activeMode:
                self.isPassive = command == .passiveMode
                self.nextActiveFrameAt = self.isPassive ? nil : time + self.activeInterval
            case .read:
                return self.isPassive ? self.send(self.measurementFrame(at: time)) : []
            case .sleep:
                self.isAsleep = true
                self.nextActiveFrameAt = nil
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
        var state = State(activeInterval: self.activeInterval)
        state.nextActiveFrameAt = self.activeInterval
        self.state = Mutex(state)
    }

    // MARK: SimulatedSerialDevice

    public func received(_ bytes: [UInt8], at time: Duration) -> [UInt8] {
        self.state.withLock { state in
            state.decoder.append(bytes)
            var reply: [UInt8] = []
            while let command = state.decoder.next() { reply += state.handle(command, at: time) }
            return reply
        }
    }

    public func transmissions(upTo time: Duration) -> [UInt8] {
        self.state.withLock { state in
            var bytes: [UInt8] = []
            // After a long silence only the last few frames matter: the UART buffer would have overrun anyway.
            let window = self.activeInterval * 10
            if let due = state.nextActiveFrameAt, time - due > window { state.nextActiveFrameAt = time - window }
            while !state.isAsleep, !state.isPassive, let due = state.nextActiveFrameAt, due <= time {
                bytes += state.send(state.measurementFrame(at: due))
                state.nextActiveFrameAt = due + self.activeInterval
            }
            return bytes
        }
    }

    public func nextTransmissionTime() -> Duration? {
        self.state.withLock { state in
            !state.isAsleep && !state.isPassive && !state.isSilent ? state.nextActiveFrameAt : nil
        }
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
        self.state.withLock { state in
            state.warmUpDuration = duration
            state.warmUpFactor = factor.isFinite ? max(0, factor) : 1
        }
    }

    /// Puts the sensor in a state as if a previous program had left it so.
    public func setModes(passive: Bool, asleep: Bool) {
        self.state.withLock { state in
            state.isPassive = passive
            state.isAsleep = asleep
            state.nextActiveFrameAt = passive || asleep ? nil : self.activeInterval
        }
    }

    // MARK: Inspection

    /// Every well-formed command received, in order.
    public var commandsReceived: [PMS5003Command] { self.state.withLock { $0.commands } }
    public var isPassive: Bool { self.state.withLock { $0.isPassive } }
    public var isAsleep: Bool { self.state.withLock { $0.isAsleep } }

    // MARK: Faults

    /// Sends the next `count` frames with a checksum off by one.
    public func corruptNextFrames(_ count: Int) {
        self.state.withLock { $0.corruptFramesLeft = max(0, count) }
    }

    /// Sends the next `count` measurement frames (not command answers) with a checksum off by one.
    public func corruptNextMeasurements(_ count: Int) {
        self.state.withLock { $0.corruptMeasurementsLeft = max(0, count) }
    }

    /// Sends only the first half of the next `count` frames.
    public func cutNextFrames(_ count: Int) {
        self.state.withLock { $0.cutFramesLeft = max(0, count) }
    }

    /// Sends `noise` before every frame (empty: none), e.g. a false `42 4D` start with a bad length.
    public func setNoiseBeforeFrames(_ noise: [UInt8]) {
        self.state.withLock { $0.noiseBeforeFrames = noise }
    }

    /// Ignores the next `count` commands.
    public func dropNextCommands(_ count: Int) {
        self.state.withLock { $0.commandsToDrop = max(0, count) }
    }

    /// Sends nothing at all while set.
    public func setSilent(_ silent: Bool) {
        self.state.withLock { $0.isSilent = silent }
    }

    /// Ends every fault.
    public func clearFaults() {
        self.state.withLock { state in
            state.corruptFramesLeft = 0
            state.corruptMeasurementsLeft = 0
            state.cutFramesLeft = 0
            state.noiseBeforeFrames = []
            state.commandsToDrop = 0
            state.isSilent = false
        }
    }
}
