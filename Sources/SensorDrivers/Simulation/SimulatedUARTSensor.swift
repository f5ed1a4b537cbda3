import Synchronization

/// The faults pending on the line of a simulated UART sensor: corrupted checksums, noise before frames, cut frames,
/// lost commands and silence.
public struct SimulatedLineFaults: Sendable {
    var corruptFramesLeft = 0
    var corruptMeasurementsLeft = 0
    var cutFramesLeft = 0
    var noiseBeforeFrames: [UInt8] = []
    var commandsToDrop = 0
    var isSilent = false

    init() {}

    /// The bytes of a frame as they go on the line, with whatever fault is pending; `corrupt` breaks the checksum of
    /// a frame the pending corruption falls on.
    mutating func transmit(_ frame: [UInt8], isMeasurement: Bool = false, corrupt: (inout [UInt8]) -> Void) -> [UInt8] {
        if self.isSilent { return [] }
        var bytes = frame
        if self.corruptFramesLeft > 0 {
            self.corruptFramesLeft -= 1
            corrupt(&bytes)
        } else if isMeasurement, self.corruptMeasurementsLeft > 0 {
            self.corruptMeasurementsLeft -= 1
            corrupt(&bytes)
        }
        if self.cutFramesLeft > 0 {
            self.cutFramesLeft -= 1
            bytes = Array(bytes.prefix(bytes.count / 2))
        }
        return self.noiseBeforeFrames + bytes
    }

    /// Whether the command just heard is lost (one of the next `count` set with a drop).
    mutating func dropsCommand() -> Bool {
        guard self.commandsToDrop > 0 else { return false }
        self.commandsToDrop -= 1
        return true
    }
}

/// A simulated UART sensor whose line can be made faulty; the fault setters are the same for every such sensor.
public protocol SimulatedUARTSensor: SimulatedSerialDevice {
    /// Changes the pending line faults under the device's lock.
    func changeLineFaults(_ change: (inout SimulatedLineFaults) -> Void)
}

extension SimulatedUARTSensor {
    /// Sends the next `count` frames with a checksum that does not match.
    public func corruptNextFrames(_ count: Int) {
        self.changeLineFaults { $0.corruptFramesLeft = max(0, count) }
    }

    /// Sends only the first half of the next `count` frames, as when the line drops bytes.
    public func cutNextFrames(_ count: Int) {
        self.changeLineFaults { $0.cutFramesLeft = max(0, count) }
    }

    /// Sends `noise` before every frame (empty: none), e.g. a false frame start.
    public func setNoiseBeforeFrames(_ noise: [UInt8]) {
        self.changeLineFaults { $0.noiseBeforeFrames = noise }
    }

    /// Sends nothing at all while set (a dead sensor or a broken TX wire).
    public func setSilent(_ silent: Bool) {
        self.changeLineFaults { $0.isSilent = silent }
    }
}

/// A simulated particulate sensor that streams measurements and can also corrupt only those, and lose commands.
public protocol SimulatedParticulateUARTSensor: SimulatedUARTSensor {}

extension SimulatedParticulateUARTSensor {
    /// Sends the next `count` measurement frames (not command answers) with a checksum off by one.
    public func corruptNextMeasurements(_ count: Int) {
        self.changeLineFaults { $0.corruptMeasurementsLeft = max(0, count) }
    }

    /// Ignores the next `count` commands addressed to it, as a sensor busy waking up may.
    public func dropNextCommands(_ count: Int) {
        self.changeLineFaults { $0.commandsToDrop = max(0, count) }
    }

    /// Ends every fault.
    public func clearFaults() {
        self.changeLineFaults { $0 = SimulatedLineFaults() }
    }
}

/// How a simulated particulate sensor's readings are off while its fan spins up after waking.
struct SimulatedWarmUp<Factor: BinaryFloatingPoint & Sendable>: Sendable {
    /// When the sensor woke (or started measuring).
    var since: Duration = .zero
    var duration: Duration
    var factor: Factor

    func isWarmingUp(at time: Duration) -> Bool { time - self.since < self.duration }

    mutating func set(duration: Duration, factor: Factor) {
        self.duration = duration
        self.factor = factor.isFinite ? max(0, factor) : 1
    }
}

/// When a simulated sensor in active mode sends its next measurement frame.
struct SimulatedActiveFrames: Sendable {
    let interval: Duration
    var next: Duration?

    /// The times of the frames due up to `time` while `sending`; after a long silence only the last ten intervals
    /// matter: the UART buffer would have overrun anyway.
    mutating func due(upTo time: Duration, sending: Bool) -> [Duration] {
        let window = self.interval * 10
        if let due = self.next, time - due > window { self.next = time - window }
        var times: [Duration] = []
        while sending, let due = self.next, due <= time {
            times.append(due)
            self.next = due + self.interval
        }
        return times
    }

    /// Frames resume one interval after `time` (a wake-up or a switch to active mode), or stop when not `sending`.
    mutating func restart(at time: Duration, sending: Bool = true) {
        self.next = sending ? time + self.interval : nil
    }
}

extension SerialStreamDecoder {
    /// Appends `bytes` to the decoder at `decoder` in `state` and returns what `handle` answers to every complete frame,
    /// in order.
    static func replies<State>(
        to bytes: ArraySlice<UInt8>,
        in state: inout State,
        decoder: WritableKeyPath<State, Self>,
        _ handle: (inout State, Format.Frame) -> [UInt8]
    ) -> [UInt8] {
        state[keyPath: decoder].append(bytes)
        var reply: [UInt8] = []
        while let frame = state[keyPath: decoder].next() { reply += handle(&state, frame) }
        return reply
    }
}
