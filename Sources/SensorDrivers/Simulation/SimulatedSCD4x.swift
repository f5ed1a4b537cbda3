import Synchronization

/// An SCD40/SCD41 on a simulated I²C bus: the datasheet's command state machine.
///
/// - `start_periodic_measurement` 0x21B1 and `start_low_power_periodic_measurement` 0x21AC (from idle only),
///   `stop_periodic_measurement` 0x3F86.
/// - `get_data_ready_status` 0xE4B8 answers 0x8006 when a sample waits, 0x8000 when not (the datasheet's example
///   words, `sensors.md` §6); `read_measurement` 0xEC05 answers `[CO₂, T, RH]` and clears the buffer; with no
///   sample in the buffer its read is NACKed.
/// - While measuring, only `read_measurement`, `get_data_ready_status`, stop and `set_ambient_pressure` (0xE000)
///   are accepted (§6); anything else is NACKed.
/// - In idle: serial number 0x3682 (three words), temperature offset 0x241D/0x2318, altitude 0x2427/0x2322,
///   ambient pressure 0xE000 (with or without argument), ASC 0x2416/0x2313, forced recalibration 0x362F (answer
///   0x8000 + correction, 0xFFFF before any sample was taken), persist 0x3615, reinit 0x3646, variant 0x202F.
/// - Time passes in data-ready polls (``setSamplePeriod(dataReadyPolls:)``); every answer waits the wire's
///   execution time. Unknown commands and bad argument CRCs are NACKed.
///
/// ```swift
/// let chip = SimulatedSCD4x()
/// chip.setCO2(ppm: 850)
/// chip.setEnvironment(celsius: 22.4, percentRH: 48)
/// bus.attach(chip, at: 0x62)
/// ```
public final class SimulatedSCD4x: SimulatedPeriodicChip {
    /// One sample as the chip sends it.
    public struct Measurement: Sendable, Hashable {
        public var co2: UInt16
        public var temperatureTicks: UInt16
        public var humidityTicks: UInt16

        public init(co2: UInt16, temperatureTicks: UInt16, humidityTicks: UInt16) {
            self.co2 = co2
            self.temperatureTicks = temperatureTicks
            self.humidityTicks = humidityTicks
        }

        /// The ticks for these physical values (inverse of the datasheet conversion, to the nearest tick).
        public init(ppm: Double, celsius: Double, percentRH: Double) {
            self.co2 = UInt16(clamping: Int(ppm.isFinite ? ppm.rounded() : 0))
            self.temperatureTicks = SimulatedSCD4x.sixteenBit((celsius + 45) / 175)
            self.humidityTicks = SimulatedSCD4x.sixteenBit(percentRH / 100)
        }

        var words: [UInt16] { [self.co2, self.temperatureTicks, self.humidityTicks] }
    }

    /// The datasheet's example: `01 f4 33 66 67 a2 5e b9 3c` = 500 ppm, 25.003 °C, 37.002 % (`sensors.md` §6).
    public static let referenceMeasurement = Measurement(co2: 0x01F4, temperatureTicks: 0x6667, humidityTicks: 0x5EB9)
    /// The datasheet's example serial number, `f8 96 31 9f 07 c2 3b be 89` = 273325796834238.
    public static let referenceSerialNumber: UInt64 = 0xF896_9F07_3BBE

    /// What the chip is doing.
    public enum Mode: Sendable, Hashable {
        case idle
        case periodic
        case lowPowerPeriodic
    }

    private enum Command {
        static let startPeriodic: UInt16 = 0x21B1
        static let startLowPowerPeriodic: UInt16 = 0x21AC
        static let getDataReady: UInt16 = 0xE4B8
        static let readMeasurement: UInt16 = 0xEC05
        static let stopPeriodic: UInt16 = 0x3F86
        static let ambientPressure: UInt16 = 0xE000
        static let setTemperatureOffset: UInt16 = 0x241D
        static let getTemperatureOffset: UInt16 = 0x2318
        static let setAltitude: UInt16 = 0x2427
        static let getAltitude: UInt16 = 0x2322
        static let setASC: UInt16 = 0x2416
        static let getASC: UInt16 = 0x2313
        static let forcedRecalibration: UInt16 = 0x362F
        static let persistSettings: UInt16 = 0x3615
        static let serialNumber: UInt16 = 0x3682
        static let reinit: UInt16 = 0x3646
        static let variant: UInt16 = 0x202F

        /// Accepted while measuring (`sensors.md` §6).
        static let duringMeasurement: Set<UInt16> = [readMeasurement, getDataReady, stopPeriodic, ambientPressure]
    }

    struct State: SimulatedSamplingState {
        var mode = Mode.idle
        var sampler: SimulatedPeriodicSampler<Measurement>
        let serialNumber: UInt64
        let variant: UInt16
        /// Default offset 4 °C: 4·65536/175, rounded.
        var temperatureOffset: UInt16 = 1498
        var altitude: UInt16 = 0
        /// Pa/100.
        var ambientPressure: UInt16 = 1013
        var automaticSelfCalibration: UInt16 = 1
        var persistCount = 0
        var starts = 0
        var answer: SensirionAnswer?

        mutating func execute(_ bytes: [UInt8], prematureReads: Int) throws(I2CError.Code) {
            let frame = try SensirionCommandFrame(bytes)
            self.answer = nil
            let code = frame.code
            let argument = frame.arguments.first
            guard self.mode == .idle || Command.duringMeasurement.contains(code) else { throw .noAcknowledge }
            func answer(_ words: [UInt16], consumesSample: Bool = false) {
                self.answer = SensirionAnswer(words, prematureReads: prematureReads, consumesSample: consumesSample)
            }
            func set(_ value: inout UInt16) throws(I2CError.Code) {
                guard let argument else { throw .noAcknowledge }
                value = argument
            }
            switch code {
            case Command.startPeriodic, Command.startLowPowerPeriodic:
                self.mode = code == Command.startPeriodic ? .periodic : .lowPowerPeriodic
                self.starts += 1
                self.sampler.start()
            case Command.stopPeriodic:
                self.mode = .idle
                self.sampler.stop()
            case Command.getDataReady: answer([0x8000 | (self.sampler.pollDataReady() ? 0x0006 : 0x0000)])
            case Command.readMeasurement:
                // An empty buffer leaves no answer: the read header is NACKed.
                if let sample = self.sampler.freshSample { answer(sample.words, consumesSample: true) }
            case Command.ambientPressure:
                if argument != nil { try set(&self.ambientPressure) } else { answer([self.ambientPressure]) }
            case Command.setTemperatureOffset: try set(&self.temperatureOffset)
            case Command.getTemperatureOffset: answer([self.temperatureOffset])
            case Command.setAltitude: try set(&self.altitude)
            case Command.getAltitude: answer([self.altitude])
            case Command.setASC: try set(&self.automaticSelfCalibration)
            case Command.getASC: answer([self.automaticSelfCalibration])
            case Command.forcedRecalibration:
                guard let target = argument else { throw .noAcknowledge }
                if let latest = self.sampler.latest {
                    answer([UInt16(truncatingIfNeeded: 0x8000 + Int(target) - Int(latest.co2))])
                } else {
                    answer([0xFFFF])
                }
            case Command.persistSettings: self.persistCount += 1
            case Command.serialNumber:
                answer([32, 16, 0].map { UInt16(truncatingIfNeeded: self.serialNumber >> UInt64($0)) })
            case Command.reinit: break
            case Command.variant: answer([self.variant])
            default: throw .noAcknowledge
            }
        }
    }

    private let state: Mutex<State>

    /// The framing, transfer log, execution time and wiring faults.
    public let wire = SimulatedSensirionWire()

    /// Creates an idle chip.
    ///
    /// - Parameters:
    ///   - serialNumber: the 48-bit serial; the datasheet's example by default.
    ///   - variant: the `get_sensor_variant` word: 0x0000 SCD40, 0x1000 SCD41 (default).
    ///   - measurement: what the samples report.
    public init(
        serialNumber: UInt64 = SimulatedSCD4x.referenceSerialNumber,
        variant: UInt16 = 0x1000,
        measurement: Measurement = Measurement(ppm: 420, celsius: 21, percentRH: 50)
    ) {
        self.state = Mutex(State(sampler: SimulatedPeriodicSampler(steady: measurement), serialNumber: serialNumber, variant: variant))
    }

    // MARK: Environment

    /// Sets the CO₂ concentration the following samples report (nearest whole ppm).
    public func setCO2(ppm: Double) {
        self.state.withLock { $0.sampler.steady.co2 = Measurement(ppm: ppm, celsius: 0, percentRH: 0).co2 }
    }

    /// Sets temperature and humidity the following samples report (nearest tick).
    public func setEnvironment(celsius: Double, percentRH: Double) {
        let ticks = Measurement(ppm: 0, celsius: celsius, percentRH: percentRH)
        self.state.withLock { state in
            state.sampler.steady.temperatureTicks = ticks.temperatureTicks
            state.sampler.steady.humidityTicks = ticks.humidityTicks
        }
    }

    // MARK: Timing and faults

    /// Puts the chip in a mode directly, as a program that left it measuring would.
    public func setMode(_ mode: Mode) {
        self.state.withLock { state in
            state.mode = mode
            if mode == .idle { state.sampler.stop() } else { state.sampler.start() }
        }
    }

    // MARK: Inspection

    /// What the chip is doing now.
    public var mode: Mode { self.state.withLock { $0.mode } }

    /// How many start commands the chip has accepted.
    public var startCount: Int { self.state.withLock { $0.starts } }

    /// How many times `persist_settings` (an EEPROM write) was received.
    public var persistCount: Int { self.state.withLock { $0.persistCount } }
}

extension SimulatedSCD4x: SimulatedSamplingChip {
    func withState<Result, E: Error>(_ body: (inout State) throws(E) -> Result) throws(E) -> Result {
        try self.state.withLock { state throws(E) in try body(&state) }
    }
}
