import Synchronization

/// An SCD30 on a simulated I²C bus: the interface description's command state machine.
///
/// - Start continuous measurement 0x0010 + pressure (0 or 700…1400 mbar), stop 0x0104.
/// - Measurement interval 0x4600: with an argument (2…1800 s) it sets, without one it is read back.
///   ASC 0x5306, FRC 0x5204, temperature offset 0x5403 and altitude 0x5102 work the same way. These settings and
///   the running state survive a soft reset (0xD304), as the chip keeps them in non-volatile memory (unverified,
///   `sensors.md` §19).
/// - Data ready 0x0202 answers 1 when a sample waits, else 0; read measurement 0x0300 answers six words (CO₂, T,
///   RH as big-endian float32) and clears data-ready. Reading again without a new sample returns the last one
///   (unverified); before any sample, the read is NACKed.
/// - Firmware version 0xD100 (one word, major.minor).
/// - Time passes in data-ready polls (``setSamplePeriod(dataReadyPolls:)``); every answer waits the wire's execution
///   time (``SimulatedSensirionWire/setExecutionTime(prematureReads:)``).
/// - A write with a repeated start is NACKed: the chip does not support it, so a driver that tries fails visibly.
/// - Unknown commands, out-of-range arguments and bad argument CRCs are NACKed.
///
/// ```swift
/// let chip = SimulatedSCD30()
/// chip.setCO2(ppm: 850)
/// chip.setEnvironment(celsius: 22.4, percentRH: 48)
/// bus.attach(chip, at: 0x61)
/// ```
public final class SimulatedSCD30: SimulatedPeriodicChip {
    /// One sample as the chip reports it.
    public struct Measurement: Sendable, Hashable {
        public var ppm: Float
        public var celsius: Float
        public var percentRH: Float

        public init(ppm: Float, celsius: Float, percentRH: Float) {
            self.ppm = ppm
            self.celsius = celsius
            self.percentRH = percentRH
        }

        /// The six words on the wire: each value as a big-endian float32.
        public var words: [UInt16] {
            SensirionWords.words(of: self.ppm) + SensirionWords.words(of: self.celsius) + SensirionWords.words(of: self.percentRH)
        }
    }

    /// The interface description's example frame: 439.09515 ppm, 27.23828 °C, 48.80674 % (`sensors.md` §5).
    public static let referenceMeasurement = Measurement(
        ppm: Float(bitPattern: 0x43DB_8C2E),
        celsius: Float(bitPattern: 0x41D9_E7FF),
        percentRH: Float(bitPattern: 0x4243_3A1B)
    )

    private enum Command {
        static let startContinuous: UInt16 = 0x0010
        static let stop: UInt16 = 0x0104
        static let measurementInterval: UInt16 = 0x4600
        static let dataReady: UInt16 = 0x0202
        static let readMeasurement: UInt16 = 0x0300
        static let automaticSelfCalibration: UInt16 = 0x5306
        static let forcedRecalibration: UInt16 = 0x5204
        static let temperatureOffset: UInt16 = 0x5403
        static let altitude: UInt16 = 0x5102
        static let firmwareVersion: UInt16 = 0xD100
        static let softReset: UInt16 = 0xD304
    }

    /// The chip's settings, as kept in its non-volatile memory.
    public struct Settings: Sendable, Hashable {
        public var measurementInterval: UInt16 = 2
        public var automaticSelfCalibration: UInt16 = 1
        public var forcedRecalibrationPPM: UInt16 = 400
        public var temperatureOffset: UInt16 = 0
        public var altitude: UInt16 = 0
        /// The last start's pressure argument (0: compensation off).
        public var ambientPressure: UInt16 = 0

        /// Factory settings (interval 2 s, ASC on), with the interval given.
        public init(measurementInterval: UInt16 = 2) {
            self.measurementInterval = measurementInterval
        }
    }

    struct State: SimulatedSamplingState {
        var sampler: SimulatedPeriodicSampler<Measurement>
        var settings = Settings()
        var firmwareVersion: UInt16
        var answer: SensirionAnswer?
        var settingWrites = 0
        var starts = 0

        mutating func execute(_ bytes: [UInt8], prematureReads: Int) throws(I2CError.Code) {
            let frame = try SensirionCommandFrame(bytes)
            self.answer = nil
            let argument = frame.arguments.first
            func answer(_ words: [UInt16], consumesSample: Bool = false) {
                self.answer = SensirionAnswer(words, prematureReads: prematureReads, consumesSample: consumesSample)
            }
            /// A setting command: with an argument in `range` it writes, without one it reads back.
            func setting(_ value: inout UInt16, range: ClosedRange<UInt16>) throws(I2CError.Code) {
                guard let argument else { return answer([value]) }
                guard range.contains(argument) else { throw .noAcknowledge }
                value = argument
                self.settingWrites += 1
            }
            switch frame.code {
            case Command.startContinuous:
                guard let argument, argument == 0 || (700...1400).contains(argument) else { throw .noAcknowledge }
                self.settings.ambientPressure = argument
                self.starts += 1
                self.sampler.start()
            case Command.stop: self.sampler.stop()
            case Command.measurementInterval: try setting(&self.settings.measurementInterval, range: 2...1800)
            case Command.automaticSelfCalibration: try setting(&self.settings.automaticSelfCalibration, range: 0...1)
            case Command.forcedRecalibration: try setting(&self.settings.forcedRecalibrationPPM, range: 400...2000)
            case Command.temperatureOffset: try setting(&self.settings.temperatureOffset, range: 0...UInt16.max)
            case Command.altitude: try setting(&self.settings.altitude, range: 0...UInt16.max)
            case Command.dataReady: answer([self.sampler.pollDataReady() ? 1 : 0])
            case Command.readMeasurement:
                if let fresh = self.sampler.freshSample {
                    answer(fresh.words, consumesSample: true)
                } else if let stale = self.sampler.latest {
                    answer(stale.words)
                }
            case Command.firmwareVersion: answer([self.firmwareVersion])
            case Command.softReset: break
            default: throw .noAcknowledge
            }
        }
    }

    private let state: Mutex<State>

    /// The framing, transfer log, execution time and wiring faults.
    public let wire = SimulatedSensirionWire()

    /// Creates an idle chip (continuous measurement off, interval 2 s) whose samples read `measurement`.
    ///
    /// - Parameter firmwareVersion: the version word, major in the high byte (3.66 by default).
    public init(measurement: Measurement = Measurement(ppm: 420, celsius: 21, percentRH: 50), firmwareVersion: UInt16 = 0x0342) {
        self.state = Mutex(State(sampler: SimulatedPeriodicSampler(steady: measurement), firmwareVersion: firmwareVersion))
    }

    /// The SCD30 does not support a repeated start (`sensors.md` §0); modelled as a NACK.
    public func receiveThenTransmit(_ bytes: [UInt8], count: Int) throws(I2CError.Code) -> [UInt8] {
        try self.wire.receive(bytes) { _ throws(I2CError.Code) in throw .noAcknowledge }
        return []
    }

    // MARK: Environment

    /// Sets the CO₂ concentration the following samples report.
    public func setCO2(ppm: Double) {
        self.state.withLock { $0.sampler.steady.ppm = Float(ppm) }
    }

    /// Sets temperature and humidity the following samples report.
    public func setEnvironment(celsius: Double, percentRH: Double) {
        self.state.withLock { state in
            state.sampler.steady.celsius = Float(celsius)
            state.sampler.steady.percentRH = Float(percentRH)
        }
    }

    // MARK: Inspection

    /// The settings as the chip keeps them.
    public var settings: Settings { self.state.withLock { $0.settings } }

    /// Sets the stored settings, as a chip configured by an earlier program would have them.
    public func setSettings(_ settings: Settings) {
        self.state.withLock { $0.settings = settings }
    }

    /// Whether continuous measurement is running.
    public var isMeasuring: Bool { self.state.withLock { $0.sampler.measuring } }

    /// How many setting writes (non-volatile memory cycles) the chip has seen.
    public var settingWriteCount: Int { self.state.withLock { $0.settingWrites } }

    /// How many start commands the chip has accepted.
    public var startCount: Int { self.state.withLock { $0.starts } }
}

extension SimulatedSCD30: SimulatedSamplingChip {
    func withState<Result, E: Error>(_ body: (inout State) throws(E) -> Result) throws(E) -> Result {
        try self.state.withLock { state throws(E) in try body(&state) }
    }
}
