import Synchronization

/// An SHT30/31/35 on a simulated I²C bus: the datasheet's command state machine, without periodic mode.
///
/// - Single shot, polling (0x2400 / 0x240B / 0x2416): the answer `[T, RH]` is ready after the wire's execution time
///   (``SimulatedSensirionWire/setExecutionTime(prematureReads:)``); reads before that are NACKed.
/// - Single shot, clock stretching (0x2C06 / 0x2C0D / 0x2C10): the chip holds SCL instead of NACKing, so the
///   answer is ready at the first read (the stretch itself is not modelled).
/// - Status 0xF32D, clear status 0x3041, soft reset 0x30A2, heater on/off 0x306D/0x3066, break 0x3093.
/// - Any other command, including periodic mode (not modelled), is NACKed and sets status bit 1 ("last command
///   not processed"); reading without a command is NACKed. None of the modelled commands takes an argument; argument
///   bytes with a bad CRC set status bits 0 and 1 as the datasheet says, and are NACKed (the NACK is unverified).
///
/// Status after power-up or a soft reset is 0x8010 (alert pending, reset detected), as in the datasheet's default
/// (unverified: recalled, not re-read).
///
/// ```swift
/// let chip = SimulatedSHT3x()
/// chip.setEnvironment(celsius: 21.5, percentRH: 55)
/// bus.attach(chip, at: 0x44)
/// ```
public final class SimulatedSHT3x: SimulatedTemperatureHumidityChip {
    /// The status register after power-up or a soft reset.
    public static let powerOnStatus: UInt16 = 0x8010

    private enum Command {
        static let singleShotPolling: Set<UInt16> = [0x2400, 0x240B, 0x2416]
        static let singleShotStretching: Set<UInt16> = [0x2C06, 0x2C0D, 0x2C10]
        static let readStatus: UInt16 = 0xF32D
        static let clearStatus: UInt16 = 0x3041
        static let softReset: UInt16 = 0x30A2
        static let heaterOn: UInt16 = 0x306D
        static let heaterOff: UInt16 = 0x3066
        static let `break`: UInt16 = 0x3093
    }

    /// Status bits the simulation sets besides those ``SHT3x/StatusBit`` names.
    private enum StatusBit {
        static let commandNotProcessed: UInt16 = 1 << 1
        static let writeChecksumFailed: UInt16 = 1 << 0
        /// Bits 11 and 10: RH and T tracking alerts, cleared with the alert flag.
        static let trackingAlerts: UInt16 = 0x0C00
    }

    struct State: SimulatedSignalState {
        var temperatureTicks: UInt16
        var humidityTicks: UInt16
        var status = SimulatedSHT3x.powerOnStatus
        var answer: SensirionAnswer?
        var measurements = 0

        mutating func execute(_ bytes: [UInt8], prematureReads: Int) throws(I2CError.Code) {
            let frame: SensirionCommandFrame
            do {
                frame = try SensirionCommandFrame(bytes)
            } catch {
                // Datasheet: a failed write checksum sets bits 0 and 1 and the command is not processed.
                self.status |= StatusBit.writeChecksumFailed | StatusBit.commandNotProcessed
                throw .noAcknowledge
            }
            // A new command replaces whatever answer was waiting.
            self.answer = nil
            let code = frame.code
            if Command.singleShotPolling.contains(code) || Command.singleShotStretching.contains(code) {
                self.measurements += 1
                let ready = Command.singleShotStretching.contains(code) ? 0 : prematureReads
                self.answer = SensirionAnswer([self.temperatureTicks, self.humidityTicks], prematureReads: ready)
            } else {
                switch code {
                case Command.readStatus: self.answer = SensirionAnswer([self.status], prematureReads: 0)
                case Command.clearStatus:
                    self.status &= ~(SHT3x.StatusBit.alertPending | StatusBit.trackingAlerts | SHT3x.StatusBit.resetDetected)
                case Command.softReset: self.status = SimulatedSHT3x.powerOnStatus
                case Command.heaterOn: self.status |= SHT3x.StatusBit.heaterOn
                case Command.heaterOff: self.status &= ~SHT3x.StatusBit.heaterOn
                case Command.break: break
                default:
                    self.status |= StatusBit.commandNotProcessed
                    throw .noAcknowledge
                }
            }
            self.status &= ~(StatusBit.commandNotProcessed | StatusBit.writeChecksumFailed)
        }
    }

    private let state: Mutex<State>

    /// The framing, transfer log, execution time and wiring faults.
    public let wire = SimulatedSensirionWire()

    /// Creates a chip whose measurements read `celsius` and `percentRH`.
    public init(celsius: Double = 21.0, percentRH: Double = 50.0) {
        self.state = Mutex(
            State(temperatureTicks: Self.temperatureTicks(celsius), humidityTicks: Self.humidityTicks(percentRH))
        )
    }

    // MARK: Environment

    /// Inverse of `RH = 100·S/65535`.
    public static func humidityTicks(_ percentRH: Double) -> UInt16 { Self.sixteenBit(percentRH / 100) }

    // MARK: Inspection and faults

    /// The status register, without reading it over the bus.
    public var status: UInt16 { self.state.withLock { $0.status } }

    /// Sets status bits, as a brown-out (reset detected) or a stray heater command would.
    public func setStatusBits(_ bits: UInt16) {
        self.state.withLock { $0.status |= bits }
    }

    /// How many single-shot measurements were started.
    public var measurementCount: Int { self.state.withLock { $0.measurements } }
}

extension SimulatedSHT3x: SimulatedSignalChip {
    func withState<Result, E: Error>(_ body: (inout State) throws(E) -> Result) throws(E) -> Result {
        try self.state.withLock { state throws(E) in try body(&state) }
    }
}
