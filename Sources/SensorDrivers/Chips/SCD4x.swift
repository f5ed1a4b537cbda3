internal import KiezboxCore
import Synchronization

/// The Sensirion SCD40 and SCD41 (photoacoustic CO₂, plus temperature and relative humidity) on I²C at 0x62.
///
/// The chip measures periodically (every 5 s, or every 30 s in low-power mode, the default here as `sensors.md` §15
/// suggests); each ``measure()`` polls `get_data_ready_status` until a sample waits and reads it with
/// `read_measurement` (`[CO₂, T, RH]`, three CRC'd words). The chip NACKs `read_measurement` while it has no data,
/// which the driver treats as "not ready" and keeps polling (§6, §16.1).
///
/// On the first measurement, and again after any failure, the driver stops any periodic measurement (the chip
/// accepts few commands while measuring), reads the 48-bit serial number (its CRCs confirm the chip answers) and
/// starts periodic measurement. The first `warmUpSamples` samples after a start are discarded (§15). Settings in
/// EEPROM (`persist_settings`) are never written, as its write cycles are limited (§16.11).
///
/// ```swift
/// let co2 = SCD4x(device: bus.device(at: 0x62))
/// let values = try await co2.measure()   // ppm, °C, %
/// ```
public final class SCD4x: SensorDriver {
    /// How often the chip measures.
    public enum Mode: Sendable, Hashable, CaseIterable {
        /// A sample every 5 s (`start_periodic_measurement`, 0x21B1).
        case periodic
        /// A sample about every 30 s, at lower power (`start_low_power_periodic_measurement`, 0x21AC).
        case lowPowerPeriodic

        /// The command that starts this mode.
        public var startCommand: UInt16 {
            switch self {
            case .periodic: 0x21B1
            case .lowPowerPeriodic: 0x21AC
            }
        }

        /// The time between samples.
        public var samplePeriod: Duration {
            switch self {
            case .periodic: .seconds(5)
            case .lowPowerPeriodic: .seconds(30)
            }
        }
    }

    /// Commands and execution times (`sensors.md` §6, from Sensirion's `embedded-i2c-scd4x`).
    enum Command {
        static let stopPeriodic = SensirionCommand(0x3F86)
        static let serialNumber = SensirionCommand(0x3682)
        static let getDataReady = SensirionCommand(0xE4B8)
        static let readMeasurement = SensirionCommand(0xEC05)

        static let stopTime = Duration.milliseconds(500)
        static let readTime = Duration.milliseconds(1)
    }

    /// `get_data_ready_status`: data waits when any of the low 11 bits is set (0x8006 ready, 0x8000 not).
    static let dataReadyMask: UInt16 = 0x07FF

    /// Data-ready polls per sample period, and how many polls (2.5 periods) before the chip counts as hung.
    static let pollsPerPeriod = 10
    static let maximumPollsPerSample = 25
    static let notReadyRetries = 2

    /// Values outside these are flagged, not dropped. CO₂ below 250 ppm does not occur in air near the ground;
    /// 40 000 ppm is the top of the output range. The temperature range is the chip's operating range (unverified:
    /// recalled from the datasheet). RH cannot leave 0…100 % by its formula.
    static let plausiblePPM = 250.0...40_000.0
    static let plausibleCelsius = -10.0...60.0

    private let link: SensirionI2CLink<SCD4x>
    private let mode: Mode
    private let sampling: SensirionSampling
    private let serial = Mutex<UInt64?>(nil)

    /// Creates a driver; nothing is sent until the first ``measure()``.
    ///
    /// - Parameters:
    ///   - device: the chip's I²C device, at 0x62.
    ///   - pause: how to wait for the chip; inject an instant pause in tests.
    ///   - mode: periodic (5 s) or low-power periodic (30 s, the default).
    ///   - warmUpSamples: samples discarded after each (re)start.
    ///   - checksumAttempts: how many times a sample whose answer fails its CRC is fetched in all, at least 1.
    public init(
        device: any I2CDevice,
        pause: @escaping Pause = realPause,
        mode: Mode = .lowPowerPeriodic,
        warmUpSamples: Int = 1,
        checksumAttempts: Int = 3
    ) {
        self.link = SensirionI2CLink(device: device, pause: pause, checksumAttempts: checksumAttempts, notReadyRetries: Self.notReadyRetries)
        self.mode = mode
        // The chip NACKs read_measurement while it has no data: that is "not ready", so the read is retried briefly
        // and then polling resumes.
        self.sampling = SensirionSampling(
            dataReady: Command.getDataReady,
            isReady: { $0 & Self.dataReadyMask != 0 },
            readMeasurement: Command.readMeasurement,
            wordCount: 3,
            executionTime: Command.readTime,
            pollInterval: mode.samplePeriod / Self.pollsPerPeriod,
            maximumPolls: Self.maximumPollsPerSample,
            pollsOnWhenMeasurementIsMissing: true,
            warmUpSamples: max(0, warmUpSamples)
        )
    }

    /// "SCD4x": the SCD40 and SCD41 answer the same commands used here.
    public static let name = "SCD4x"

    /// How many answers failed their CRC since the driver was created (each was discarded).
    public var checksumErrorCount: Int { self.link.checksumErrorCount }

    /// The chip's 48-bit serial number, once read.
    public var serialNumber: UInt64? { self.serial.withLock { $0 } }

    /// Waits for the next sample and returns CO₂ (ppm), temperature (°C) and relative humidity (%).
    ///
    /// - Throws: ``I2CError`` when the bus fails, ``SCD4xError`` when the chip's answers fail their CRC every time
    ///   or no sample arrives within 2.5 periods. After any failure the next call initialises the chip again.
    public func measure() async throws -> [MeasuredValue] {
        try await self.link.measure(initialise: self.initialise) {
            Self.measuredValues(from: try await self.link.sampleAfterWarmUp(self.sampling))
        }
    }

    /// `CO₂ = word0` ppm; `T = −45 + 175·word1/65535`; `RH = 100·word2/65535` (datasheet).
    public static func measurement(from words: [UInt16]) -> (ppm: Double, celsius: Double, percentRH: Double) {
        func word(_ index: Int) -> UInt16 { index < words.count ? words[index] : 0 }
        return (Double(word(0)), -45 + 175 * Double(word(1)) / 65535, 100 * Double(word(2)) / 65535)
    }

    /// The 48-bit serial number from its three words, most significant first.
    public static func serialNumber(from words: [UInt16]) -> UInt64 {
        words.prefix(3).reduce(0) { $0 << 16 | UInt64($1) }
    }

    // MARK: - Initialisation and sampling

    private func initialise() async throws {
        // Stop first: while measuring, the chip takes only a few commands, and another program may have left it on.
        try await self.link.write(Command.stopPeriodic)
        try await self.link.pause(Command.stopTime)
        let serial = try await self.link.read(Command.serialNumber, executionTime: Command.readTime, wordCount: 3)
        try await self.link.write(SensirionCommand(self.mode.startCommand))
        self.serial.withLock { $0 = Self.serialNumber(from: serial) }
        self.link.measurementStarted()
    }

    private static func measuredValues(from words: [UInt16]) -> [MeasuredValue] {
        let (ppm, celsius, percentRH) = Self.measurement(from: words)
        return [
            MeasuredValue(.co2, ppm, quality: Self.plausiblePPM.contains(ppm) ? .good : .implausible),
            MeasuredValue(.temperature, celsius, quality: Self.plausibleCelsius.contains(celsius) ? .good : .implausible),
            MeasuredValue(.relativeHumidity, percentRH),
        ]
    }
}

// MARK: - Errors

extension SCD4x: SensirionChip {
    public static let checksumAdvice = "check the wiring (short cables, firm contacts, pull-ups)"

    public static func notReadyExplanation(command: UInt16) -> String? {
        guard command == Command.getDataReady.code else { return nil }
        return "no new measurement within 2.5 measurement periods: the sensor may have restarted or hung; power-cycle it"
    }
}

/// An SCD4x that answered on the bus but not with a usable measurement, with what a resident can do about it.
/// ``SensirionError/Code/notReady(command:)`` for data-ready (0xE4B8) means no sample arrived within 2.5 periods.
public typealias SCD4xError = SensirionError<SCD4x>
