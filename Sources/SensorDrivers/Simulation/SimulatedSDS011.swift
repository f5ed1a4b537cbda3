import Synchronization

/// A Nova SDS011 at the far end of a simulated serial line, following the control protocol V1.3.
///
/// It listens for `AA B4` commands addressed to its id (0xA160 by default) or to `FF FF`, and answers them as the
/// sensor does:
/// - reporting mode (2), working period (8) and sleep/work (6): query or set, answered with `AA C5`;
/// - query data (4): a measurement frame `AA C0`; set id (5); firmware version (7);
/// - while sleeping it ignores everything but the sleep/work command;
/// - in active reporting mode it sends a measurement every second while working.
///
/// The concentrations come from ``setConcentrations(pm2_5:pm10:)``. For ``warmUpDuration`` after waking, the fan
/// stirs up dust and the sensor reports ``warmUpFactor`` times the true values, which is what a driver that discards
/// warm-up readings must never return. The working period is stored and reported but its own duty cycle is not
/// simulated.
///
/// Faults: corrupted checksums, noise before frames, cut frames, lost commands and silence.
///
/// ```swift
/// let sensor = SimulatedSDS011()
/// sensor.setConcentrations(pm2_5: 8.4, pm10: 14.2)
/// let port = SimulatedSerialPort(device: sensor)
/// ```
public final class SimulatedSDS011: SimulatedParticulateUARTSensor {
    /// The id of the sensor in the protocol document's examples.
    public static let defaultDeviceID: UInt16 = 0xA160

    private struct State {
        var decoder = SDS011CommandStreamDecoder()
        var deviceID: UInt16
        var workState = SDS011WorkState.working
        var reportingMode = SDS011ReportingMode.active
        var workingPeriod: UInt8 = 0
        var firmware: (year: UInt8, month: UInt8, day: UInt8) = (18, 11, 16)
        var pm2_5Tenths: UInt16 = 84
        var pm10Tenths: UInt16 = 142
        var warmUp = SimulatedWarmUp(duration: .seconds(30), factor: 2.5)
        var activeFrames = SimulatedActiveFrames(interval: .seconds(1), next: .seconds(1))
        var commands: [SDS011AddressedCommand] = []
        var faults = SimulatedLineFaults()

        var isWorking: Bool { self.workState == .working }
        var isStreaming: Bool { self.isWorking && self.reportingMode == .active }

        func measurement(at time: Duration) -> SDS011Frame {
            func reported(_ tenths: UInt16) -> UInt16 {
                guard self.warmUp.isWarmingUp(at: time) else { return tenths }
                return UInt16(clamping: Int((Double(tenths) * self.warmUp.factor).rounded()))
            }
            return .measurement(
                SDS011Measurement(pm2_5Tenths: reported(self.pm2_5Tenths), pm10Tenths: reported(self.pm10Tenths), deviceID: self.deviceID)
            )
        }

        /// The bytes of a frame as they go on the line, with whatever fault is pending.
        mutating func send(_ frame: SDS011Frame) -> [UInt8] {
            let isMeasurement = if case .measurement = frame { true } else { false }
            return self.faults.transmit(frame.bytes, isMeasurement: isMeasurement) { $0[8] &+= 1 }
        }

        mutating func reply(_ command: UInt8, _ parameters: [UInt8]) -> [UInt8] {
            self.send(.reply(SDS011Reply(command: command, parameters: parameters, deviceID: self.deviceID)))
        }

        mutating func handle(_ addressed: SDS011AddressedCommand, at time: Duration) -> [UInt8] {
            guard addressed.deviceID == SDS011Command.anySensor || addressed.deviceID == self.deviceID else { return [] }
            self.commands.append(addressed)
            if self.faults.dropsCommand() { return [] }
            let command = addressed.command
            // Asleep, the sensor's MCU listens only for the work command.
            if !self.isWorking {
                switch command {
                case .queryWorkState, .setWorkState: break
                default: return []
                }
            }
            switch command {
            case .queryReportingMode:
                return self.reply(0x02, [0, self.reportingMode.rawValue, 0])
            case .setReportingMode(let mode):
                self.reportingMode = mode
                return self.reply(0x02, [1, mode.rawValue, 0])
            case .queryData:
                return self.send(self.measurement(at: time))
            case .setDeviceID(let newID):
                self.deviceID = newID
                return self.reply(0x05, [0, 0, 0])
            case .queryWorkState:
                return self.reply(0x06, [0, self.workState.rawValue, 0])
            case .setWorkState(let workState):
                if workState == .working, !self.isWorking {
                    self.warmUp.since = time
                    self.activeFrames.restart(at: time)
                }
                self.workState = workState
                return self.reply(0x06, [1, workState.rawValue, 0])
            case .queryFirmwareVersion:
                return self.reply(0x07, [self.firmware.year, self.firmware.month, self.firmware.day])
            case .queryWorkingPeriod:
                return self.reply(0x08, [0, self.workingPeriod, 0])
            case .setWorkingPeriod(let minutes):
                self.workingPeriod = minutes
                return self.reply(0x08, [1, minutes, 0])
            }
        }
    }

    private let state: Mutex<State>

    /// - Parameter deviceID: the id printed in its frames (`ID1 ID2`).
    public init(deviceID: UInt16 = SimulatedSDS011.defaultDeviceID) {
        self.state = Mutex(State(deviceID: deviceID))
    }

    // MARK: SimulatedSerialDevice

    public func received(_ bytes: [UInt8], at time: Duration) -> [UInt8] {
        self.state.withLock { state in
            SDS011CommandStreamDecoder.replies(to: bytes[...], in: &state, decoder: \.decoder) { $0.handle($1, at: time) }
        }
    }

    public func transmissions(upTo time: Duration) -> [UInt8] {
        self.state.withLock { state in
            state.activeFrames.due(upTo: time, sending: state.isStreaming).flatMap { state.send(state.measurement(at: $0)) }
        }
    }

    public func nextTransmissionTime() -> Duration? {
        self.state.withLock { state in state.isStreaming && !state.faults.isSilent ? state.activeFrames.next : nil }
    }

    public func changeLineFaults(_ change: (inout SimulatedLineFaults) -> Void) {
        self.state.withLock { change(&$0.faults) }
    }

    // MARK: Physical values

    /// Sets the true concentrations in µg/m³ (sent in tenths, 0…6553.5).
    public func setConcentrations(pm2_5: Double, pm10: Double) {
        func tenths(_ value: Double) -> UInt16 {
            value.isFinite ? UInt16(clamping: Int((value * 10).rounded())) : 0
        }
        self.setRawTenths(pm2_5: tenths(pm2_5), pm10: tenths(pm10))
    }

    /// Sets the values exactly as they go into the frame.
    public func setRawTenths(pm2_5: UInt16, pm10: UInt16) {
        self.state.withLock { state in
            state.pm2_5Tenths = pm2_5
            state.pm10Tenths = pm10
        }
    }

    /// How long after waking readings are off, and by what factor (default 30 s, 2.5×).
    public func setWarmUp(duration: Duration, factor: Double) {
        self.state.withLock { $0.warmUp.set(duration: duration, factor: factor) }
    }

    /// Puts the sensor in a mode as if a previous program had left it so.
    public func setModes(reporting: SDS011ReportingMode, workState: SDS011WorkState, workingPeriod: UInt8 = 0) {
        self.state.withLock { state in
            state.reportingMode = reporting
            state.workState = workState
            state.workingPeriod = workingPeriod
        }
    }

    // MARK: Inspection

    /// Every well-formed command addressed to this sensor, in order.
    public var commandsReceived: [SDS011Command] { self.state.withLock { $0.commands.map(\.command) } }
    public var workState: SDS011WorkState { self.state.withLock { $0.workState } }
    public var reportingMode: SDS011ReportingMode { self.state.withLock { $0.reportingMode } }
    public var workingPeriod: UInt8 { self.state.withLock { $0.workingPeriod } }
    public var deviceID: UInt16 { self.state.withLock { $0.deviceID } }
    /// Command frames the sensor heard but rejected (bad checksum, unknown command).
    public var rejectedCommandCount: Int {
        self.state.withLock { $0.decoder.statistics.checksumErrors + $0.decoder.statistics.malformedFrames }
    }
}
