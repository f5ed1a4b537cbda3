import Synchronization

/// An SHT40/41/45 on a simulated I²C bus: the datasheet's one-byte command state machine.
///
/// - Measure 0xFD / 0xF6 / 0xE0, and the six heater commands (0x39, 0x32, 0x2F, 0x24, 0x1E, 0x15), each of which
///   answers with a measurement taken at the end of heating: the answer `[T, RH]` is ready after the wire's
///   execution time (``SimulatedSensirionWire/setExecutionTime(prematureReads:)``); reads before that are NACKed.
///   The heater's warming is not modelled: set it with ``setEnvironment(celsius:percentRH:)``.
/// - Serial number 0x89 (two words, at once), soft reset 0x94.
/// - Any other command, or extra bytes after a command, is NACKed; reading without a command is NACKed.
///
/// ```swift
/// let chip = SimulatedSHT4x()
/// chip.setEnvironment(celsius: 21.5, percentRH: 55)
/// bus.attach(chip, at: 0x44)
/// ```
public final class SimulatedSHT4x: SimulatedTemperatureHumidityChip {
    private enum Command {
        static let measure: Set<UInt16> = [0xFD, 0xF6, 0xE0]
        static let heater: Set<UInt16> = [0x39, 0x32, 0x2F, 0x24, 0x1E, 0x15]
        static let serialNumber: UInt16 = 0x89
        static let softReset: UInt16 = 0x94
    }

    struct State: SimulatedSignalState {
        var temperatureTicks: UInt16
        var humidityTicks: UInt16
        var serialNumber: UInt32
        var answer: SensirionAnswer?
        var measurements = 0
        var heaterPulses = 0
        var resets = 0

        mutating func execute(_ bytes: [UInt8], prematureReads: Int) throws(I2CError.Code) {
            let frame = try SensirionCommandFrame(bytes, commandBytes: 1)
            self.answer = nil
            // Every SHT4x command is a single byte without arguments.
            guard frame.arguments.isEmpty else { throw .noAcknowledge }
            let code = frame.code
            if Command.measure.contains(code) || Command.heater.contains(code) {
                self.measurements += 1
                if Command.heater.contains(code) { self.heaterPulses += 1 }
                self.answer = SensirionAnswer([self.temperatureTicks, self.humidityTicks], prematureReads: prematureReads)
            } else if code == Command.serialNumber {
                let serial = [UInt16(truncatingIfNeeded: self.serialNumber >> 16), UInt16(truncatingIfNeeded: self.serialNumber)]
                self.answer = SensirionAnswer(serial, prematureReads: 0)
            } else if code == Command.softReset {
                self.resets += 1
            } else {
                throw .noAcknowledge
            }
        }
    }

    private let state: Mutex<State>

    /// The framing, transfer log, execution time and wiring faults.
    public let wire = SimulatedSensirionWire()

    /// Creates a chip with this serial number whose measurements read `celsius` and `percentRH`.
    public init(serialNumber: UInt32 = 0x0F1E_2D3C, celsius: Double = 21.0, percentRH: Double = 50.0) {
        self.state = Mutex(
            State(
                temperatureTicks: Self.temperatureTicks(celsius),
                humidityTicks: Self.humidityTicks(percentRH),
                serialNumber: serialNumber
            )
        )
    }

    // MARK: Environment

    /// Inverse of `RH = −6 + 125·S/65535` (before the driver's crop): the signal carries −6 % to 119 %.
    public static func humidityTicks(_ percentRH: Double) -> UInt16 { Self.sixteenBit((percentRH + 6) / 125) }

    // MARK: Inspection

    /// How many measurements (including heater pulses) were started.
    public var measurementCount: Int { self.state.withLock { $0.measurements } }

    /// How many heater commands were received.
    public var heaterPulseCount: Int { self.state.withLock { $0.heaterPulses } }

    /// How many soft resets were received.
    public var resetCount: Int { self.state.withLock { $0.resets } }
}

extension SimulatedSHT4x: SimulatedSignalChip {
    func withState<Result, E: Error>(_ body: (inout State) throws(E) -> Result) throws(E) -> Result {
        try self.state.withLock { state throws(E) in try body(&state) }
    }
}
