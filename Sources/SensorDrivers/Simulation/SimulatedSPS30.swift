import Synchronization

/// An SPS30 in I²C mode on a simulated bus: the datasheet's command state machine with its three modes.
///
/// - **Sleeping**: the interface is off. The first transfer is NACKed and switches it on; then only wake-up
///   (0x1103) is accepted, which goes to idle. Everything else is NACKed. (So wake-up must be sent twice, §7.)
/// - **Idle**: start measurement 0x0010 + 0x0300 (float) or 0x0500 (uint16), sleep 0x1001, and the commands below.
///   Stop 0x0104 is a no-op (the Linux driver relies on that after a reset).
/// - **Measuring**: a sample a second, counted here in data-ready polls (``setSamplePeriod(dataReadyPolls:)``);
///   data-ready 0x0202 answers `00 01` when a sample waits, read 0x0300 answers 20 words (float) or 10 words
///   (uint16) and clears the flag; reading again without a new sample returns the last one (unverified); fan
///   cleaning 0x5607; stop 0x0104 goes to idle. Start and sleep are NACKed here.
/// - Any mode but sleeping: auto-clean interval 0x8004 (two words, with or without argument), serial 0xD033
///   (32 ASCII bytes as 16 words), firmware version 0xD100, and from firmware 2.2 the status register 0xD206 (two
///   words) and its clear 0xD210; reset 0xD304 goes to idle and clears the status register.
/// - Status bits: while measuring, a failed fan sets bit 4, a failed laser bit 5, a fan out of its speed range bit
///   21 (``setFanFailure(_:)``, ``setLaserFailure(_:)``, ``setFanSpeedOutOfRange(_:)``); they stay set until a clear
///   or a reset, and come back while the fault lasts.
/// - Unknown commands, invalid arguments and bad argument CRCs are NACKed.
///
/// ```swift
/// let chip = SimulatedSPS30()
/// chip.setParticulates(pm1: 4.1, pm2_5: 7.9, pm4: 9.8, pm10: 11.2)
/// bus.attach(chip, at: 0x69)
/// ```
public final class SimulatedSPS30: SimulatedPeriodicChip {
    /// One sample: mass concentrations (µg/m³), number concentrations (#/cm³) and typical particle size (µm).
    public struct Measurement: Sendable, Hashable {
        public var pm1: Float
        public var pm2_5: Float
        public var pm4: Float
        public var pm10: Float
        public var numberConcentrations: [Float]
        public var typicalParticleSize: Float

        /// A sample with these mass concentrations; the number concentrations default to rough values consistent
        /// with them (about 7 particles per µg in the smallest sizes), which only have to be plausible.
        public init(
            pm1: Float,
            pm2_5: Float,
            pm4: Float,
            pm10: Float,
            numberConcentrations: [Float]? = nil,
            typicalParticleSize: Float = 0.55
        ) {
            self.pm1 = pm1
            self.pm2_5 = pm2_5
            self.pm4 = pm4
            self.pm10 = pm10
            self.numberConcentrations =
                numberConcentrations ?? [pm1 * 6.0, pm1 * 7.0, pm2_5 * 7.2, pm4 * 7.3, pm10 * 7.3]
            self.typicalParticleSize = typicalParticleSize
        }

        /// The ten values in the order the sensor sends them.
        var values: [Float] {
            [self.pm1, self.pm2_5, self.pm4, self.pm10] + self.numberConcentrations.prefix(5) + [self.typicalParticleSize]
        }

        /// 20 words: ten big-endian float32.
        var floatWords: [UInt16] { self.values.flatMap(SensirionWords.words(of:)) }

        /// 10 words: whole µg/m³ and #/cm³, typical size in nm.
        var unsignedWords: [UInt16] {
            var scaled = self.values.map(Double.init)
            scaled[9] *= 1000
            return scaled.map { UInt16(clamping: Int(($0.isFinite ? $0 : 0).rounded())) }
        }
    }

    /// What the sensor is doing.
    public enum Mode: Sendable, Hashable {
        case sleeping
        case idle
        case measuring
    }

    private enum Command {
        static let startMeasurement: UInt16 = 0x0010
        static let stopMeasurement: UInt16 = 0x0104
        static let dataReady: UInt16 = 0x0202
        static let readMeasurement: UInt16 = 0x0300
        static let sleep: UInt16 = 0x1001
        static let wakeUp: UInt16 = 0x1103
        static let fanCleaning: UInt16 = 0x5607
        static let autoCleanInterval: UInt16 = 0x8004
        static let serialNumber: UInt16 = 0xD033
        static let firmwareVersion: UInt16 = 0xD100
        static let readStatus: UInt16 = 0xD206
        static let clearStatus: UInt16 = 0xD210
        static let reset: UInt16 = 0xD304

        static let floatFormat: UInt16 = 0x0300
        static let unsignedFormat: UInt16 = 0x0500
    }

    struct State: SimulatedSamplingState {
        var mode = Mode.idle
        var interfaceAwake = true
        var unsignedFormat = false
        var sampler: SimulatedPeriodicSampler<Measurement>
        let serialNumber: String
        let firmwareVersion: UInt16
        var status: UInt32 = 0
        var fanFailure = false
        var laserFailure = false
        var fanSpeedOutOfRange = false
        var autoCleanInterval: UInt32 = 604_800
        var starts = 0
        var resets = 0
        var fanCleanings = 0
        var answer: SensirionAnswer?

        var hasStatusRegister: Bool { self.firmwareVersion >= 0x0202 }

        mutating func raiseStatus() {
            guard self.mode == .measuring else { return }
            if self.fanFailure { self.status |= SPS30.StatusBit.fanError }
            if self.laserFailure { self.status |= SPS30.StatusBit.laserError }
            if self.fanSpeedOutOfRange { self.status |= SPS30.StatusBit.fanSpeedWarning }
        }

        mutating func execute(_ bytes: [UInt8], prematureReads: Int) throws(I2CError.Code) {
            self.answer = nil
            if self.mode == .sleeping {
                // The first transfer only switches the interface on.
                guard self.interfaceAwake else {
                    self.interfaceAwake = true
                    throw .noAcknowledge
                }
                guard bytes == [0x11, 0x03] else { throw .noAcknowledge }
                self.mode = .idle
                return
            }
            let frame = try SensirionCommandFrame(bytes)
            let arguments = frame.arguments
            func answer(_ words: [UInt16], consumesSample: Bool = false) {
                self.answer = SensirionAnswer(words, prematureReads: prematureReads, consumesSample: consumesSample)
            }
            switch frame.code {
            case Command.startMeasurement:
                guard self.mode == .idle, arguments.count == 1,
                    arguments[0] == Command.floatFormat || arguments[0] == Command.unsignedFormat
                else { throw .noAcknowledge }
                self.unsignedFormat = arguments[0] == Command.unsignedFormat
                self.mode = .measuring
                self.starts += 1
                self.sampler.start()
            case Command.stopMeasurement:
                self.mode = .idle
                self.sampler.stop()
            case Command.dataReady:
                answer([self.mode == .measuring && self.sampler.pollDataReady() ? 0x0001 : 0x0000])
                self.raiseStatus()
            case Command.readMeasurement:
                guard self.mode == .measuring else { throw .noAcknowledge }
                let unsigned = self.unsignedFormat
                if let fresh = self.sampler.freshSample {
                    answer(unsigned ? fresh.unsignedWords : fresh.floatWords, consumesSample: true)
                } else if let stale = self.sampler.latest {
                    answer(unsigned ? stale.unsignedWords : stale.floatWords)
                }
            case Command.sleep:
                guard self.mode == .idle else { throw .noAcknowledge }
                self.mode = .sleeping
                self.interfaceAwake = false
            case Command.fanCleaning:
                guard self.mode == .measuring else { throw .noAcknowledge }
                self.fanCleanings += 1
            case Command.autoCleanInterval:
                switch arguments.count {
                case 0:
                    answer([UInt16(truncatingIfNeeded: self.autoCleanInterval >> 16), UInt16(truncatingIfNeeded: self.autoCleanInterval)])
                case 2: self.autoCleanInterval = SensirionWords.uint32(high: arguments[0], low: arguments[1])
                default: throw .noAcknowledge
                }
            case Command.serialNumber:
                var bytes = Array(self.serialNumber.utf8.prefix(31))
                bytes += [UInt8](repeating: 0, count: 32 - bytes.count)
                answer(stride(from: 0, to: 32, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) })
            case Command.firmwareVersion: answer([self.firmwareVersion])
            case Command.readStatus:
                guard self.hasStatusRegister else { throw .noAcknowledge }
                self.raiseStatus()
                answer([UInt16(truncatingIfNeeded: self.status >> 16), UInt16(truncatingIfNeeded: self.status)])
            case Command.clearStatus:
                guard self.hasStatusRegister else { throw .noAcknowledge }
                self.status = 0
            case Command.reset:
                self.mode = .idle
                self.sampler.stop()
                self.status = 0
                self.resets += 1
            default:
                throw .noAcknowledge
            }
        }

        mutating func transmit() throws(I2CError.Code) -> [UInt16] {
            // In sleep a read only switches the interface on.
            guard self.mode != .sleeping || self.answer != nil else {
                self.interfaceAwake = true
                throw .noAcknowledge
            }
            return try self.sampler.serve(&self.answer)
        }
    }

    private let state: Mutex<State>

    /// The framing, transfer log, execution time and wiring faults.
    public let wire = SimulatedSensirionWire()

    /// Creates an idle sensor.
    ///
    /// - Parameters:
    ///   - serialNumber: the ASCII serial (at most 31 characters).
    ///   - firmwareVersion: major in the high byte, minor in the low byte; 2.2 (0x0202) by default, the first with
    ///     the status register.
    ///   - measurement: what the samples report.
    public init(
        serialNumber: String = "8C2D1E0F5A6B7C8D",
        firmwareVersion: UInt16 = 0x0202,
        measurement: Measurement = Measurement(pm1: 4.0, pm2_5: 6.5, pm4: 7.8, pm10: 8.4)
    ) {
        self.state = Mutex(
            State(sampler: SimulatedPeriodicSampler(steady: measurement), serialNumber: serialNumber, firmwareVersion: firmwareVersion)
        )
    }

    // MARK: Environment

    /// Sets the mass concentrations (µg/m³) the following samples report, with matching number concentrations.
    public func setParticulates(pm1: Double, pm2_5: Double, pm4: Double, pm10: Double) {
        self.setMeasurement(Measurement(pm1: Float(pm1), pm2_5: Float(pm2_5), pm4: Float(pm4), pm10: Float(pm10)))
    }

    // MARK: Timing and faults

    /// A fan that does not turn: status bit 4 while measuring.
    public func setFanFailure(_ failing: Bool) {
        self.state.withLock { $0.fanFailure = failing }
    }

    /// A laser current out of range: status bit 5 while measuring.
    public func setLaserFailure(_ failing: Bool) {
        self.state.withLock { $0.laserFailure = failing }
    }

    /// A fan out of its speed range (worn, dusty): status bit 21 while measuring.
    public func setFanSpeedOutOfRange(_ outOfRange: Bool) {
        self.state.withLock { $0.fanSpeedOutOfRange = outOfRange }
    }

    /// Puts the sensor in a mode directly, as a previous program would have left it.
    public func setMode(_ mode: Mode) {
        self.state.withLock { state in
            state.mode = mode
            state.interfaceAwake = mode != .sleeping
            if mode == .measuring { state.sampler.start() } else { state.sampler.stop() }
        }
    }

    // MARK: Inspection

    /// What the sensor is doing now.
    public var mode: Mode { self.state.withLock { $0.mode } }

    /// Whether the sensor reports in the uint16 format (set by the last start).
    public var reportsUnsignedIntegers: Bool { self.state.withLock { $0.unsignedFormat } }

    /// The device status register, without reading it over the bus.
    public var status: UInt32 { self.state.withLock { $0.status } }

    /// How many start commands the sensor has accepted.
    public var startCount: Int { self.state.withLock { $0.starts } }

    /// How many resets the sensor has accepted.
    public var resetCount: Int { self.state.withLock { $0.resets } }

    /// The auto-clean interval in seconds (factory default one week).
    public var autoCleanInterval: UInt32 { self.state.withLock { $0.autoCleanInterval } }
}

extension SimulatedSPS30: SimulatedSamplingChip {
    func withState<Result, E: Error>(_ body: (inout State) throws(E) -> Result) throws(E) -> Result {
        try self.state.withLock { state throws(E) in try body(&state) }
    }
}
