internal import KiezboxCore
import Synchronization

/// The Sensirion SCD30 (NDIR CO₂, plus temperature and relative humidity) on I²C at 0x61.
///
/// The SCD30 measures continuously at its own interval; each ``measure()`` waits for the next sample by polling the
/// data-ready word and then reads the 18-byte measurement (three big-endian float32, each as two CRC'd words).
/// The chip cannot do a repeated start, so every command is a write message of its own and every answer a separate
/// read message (`sensors.md` §0, §5). Keep the bus at ≤50 kHz or raise `clk_tout_ms`: the SCD30 stretches the clock
/// up to 150 ms.
///
/// On the first measurement, and again after any failure, the driver reads the firmware version (its CRC confirms
/// the chip answers), reads the measurement interval and writes it only if it differs (the chip keeps it in
/// non-volatile memory, whose write cycles are limited, §16.11), and starts continuous measurement with the ambient
/// pressure compensation. The first `warmUpSamples` samples after a start are discarded: the first readings after
/// power-up settle (§15).
///
/// ```swift
/// let co2 = SCD30(device: bus.device(at: 0x61), measurementInterval: 30)
/// let values = try await co2.measure()   // ppm, °C, %
/// ```
public final class SCD30: SensorDriver {
    /// Commands and timings (`sensors.md` §5).
    enum Command {
        static let startContinuous = SensirionCommand(0x0010)
        static let stop = SensirionCommand(0x0104)
        static let measurementInterval = SensirionCommand(0x4600)
        static let dataReady = SensirionCommand(0x0202)
        static let readMeasurement = SensirionCommand(0x0300)
        static let firmwareVersion = SensirionCommand(0xD100)

        /// Sensirion's driver waits this long after commands with an argument (`SCD30_WRITE_DELAY_US`).
        static let writeDelay = Duration.milliseconds(20)
        /// The wait between a read command and its read header: the interface description asks for at least 3 ms
        /// (unverified: recalled, not re-read).
        static let readDelay = Duration.milliseconds(3)
    }

    /// The measurement intervals the chip accepts, in seconds.
    public static let measurementIntervals = 2...1800
    /// The ambient pressures the chip accepts for compensation, in mbar.
    public static let ambientPressures = 700...1400

    /// Data-ready polls per measurement interval, and how many polls (2.5 intervals) before the chip counts as hung.
    static let pollsPerInterval = 10
    static let maximumPollsPerSample = 25
    /// Re-reads of a NACKed answer before the command counts as unanswered.
    static let notReadyRetries = 2

    /// Values outside these are flagged, not dropped. CO₂ below 250 ppm does not occur in air near the ground (the
    /// global background is above 400 ppm); 40 000 ppm is the top of the output range. The temperature range is the
    /// chip's operating range (unverified: recalled from the datasheet).
    static let plausiblePPM = 250.0...40_000.0
    static let plausibleCelsius = -40.0...70.0
    static let plausiblePercentRH = 0.0...100.0

    private let link: SensirionI2CLink<SCD30>
    private let measurementInterval: Int
    private let ambientPressure: Int?
    private let sampling: SensirionSampling
    private let firmware = Mutex<UInt16?>(nil)

    /// Creates a driver; nothing is sent until the first ``measure()``.
    ///
    /// - Parameters:
    ///   - device: the chip's I²C device, at 0x61.
    ///   - pause: how to wait for the chip; inject an instant pause in tests.
    ///   - measurementInterval: seconds between the chip's samples, clamped to 2…1800; 30 s as airrohr uses, which
    ///     fits a sampler reading once a minute.
    ///   - ambientPressure: the air pressure in mbar for the CO₂ compensation, clamped to 700…1400; nil switches
    ///     the compensation off.
    ///   - warmUpSamples: samples discarded after each (re)start.
    ///   - checksumAttempts: how many times a sample whose answer fails its CRC is fetched in all, at least 1.
    public init(
        device: any I2CDevice,
        pause: @escaping Pause = realPause,
        measurementInterval: Int = 30,
        ambientPressure: Int? = nil,
        warmUpSamples: Int = 1,
        checksumAttempts: Int = 3
    ) {
        self.link = SensirionI2CLink(device: device, pause: pause, checksumAttempts: checksumAttempts, notReadyRetries: Self.notReadyRetries)
        let measurementInterval = min(max(measurementInterval, Self.measurementIntervals.lowerBound), Self.measurementIntervals.upperBound)
        self.measurementInterval = measurementInterval
        self.ambientPressure = ambientPressure.map { min(max($0, Self.ambientPressures.lowerBound), Self.ambientPressures.upperBound) }
        self.sampling = SensirionSampling(
            dataReady: Command.dataReady,
            isReady: { $0 == 1 },
            readMeasurement: Command.readMeasurement,
            wordCount: 6,
            executionTime: Command.readDelay,
            pollInterval: .seconds(measurementInterval) / Self.pollsPerInterval,
            maximumPolls: Self.maximumPollsPerSample,
            warmUpSamples: max(0, warmUpSamples)
        )
    }

    /// "SCD30".
    public static let name = "SCD30"

    /// How many answers failed their CRC since the driver was created (each was discarded).
    public var checksumErrorCount: Int { self.link.checksumErrorCount }

    /// The firmware version word (major in the high byte, minor in the low byte), once read.
    public var firmwareVersion: UInt16? { self.firmware.withLock { $0 } }

    /// Waits for the next sample and returns CO₂ (ppm), temperature (°C) and relative humidity (%).
    ///
    /// - Throws: ``I2CError`` when the bus fails, ``SCD30Error`` when the chip's answers fail their CRC every time,
    ///   no sample arrives within 2.5 intervals, or a value is not a number. After any failure the next call
    ///   initialises the chip again.
    public func measure() async throws -> [MeasuredValue] {
        try await self.link.measure(initialise: self.initialise) {
            let words = try await self.link.sampleAfterWarmUp(self.sampling)
            return try self.measuredValues(from: words)
        }
    }

    /// CO₂ (ppm), temperature (°C) and humidity (%) from the six words of a measurement: three big-endian
    /// float32, each the most significant word first. Missing words read as zero.
    public static func measurement(from words: [UInt16]) -> (ppm: Float, celsius: Float, percentRH: Float) {
        let floats = SensirionWords.floats(from: words + [UInt16](repeating: 0, count: max(0, 6 - words.count)))
        return (floats[0], floats[1], floats[2])
    }

    // MARK: - Initialisation and sampling

    private func initialise() async throws {
        let firmware = try await self.link.read(Command.firmwareVersion, executionTime: Command.readDelay, wordCount: 1)[0]
        let interval = try await self.link.read(Command.measurementInterval, executionTime: Command.readDelay, wordCount: 1)[0]
        if interval != UInt16(self.measurementInterval) {
            try await self.link.write(Command.measurementInterval, arguments: [UInt16(self.measurementInterval)])
            try await self.link.pause(Command.writeDelay)
        }
        // 0 switches pressure compensation off.
        try await self.link.write(Command.startContinuous, arguments: [UInt16(self.ambientPressure ?? 0)])
        try await self.link.pause(Command.writeDelay)
        self.firmware.withLock { $0 = firmware }
        self.link.measurementStarted()
    }

    private func measuredValues(from words: [UInt16]) throws -> [MeasuredValue] {
        let (ppm, celsius, percentRH) = Self.measurement(from: words)
        for (field, value) in [("CO₂", ppm), ("temperature", celsius), ("humidity", percentRH)] where !value.isFinite {
            throw self.link.error(.chip(.nonFiniteValue(field: field)))
        }
        func quality(_ value: Double, _ range: ClosedRange<Double>) -> ReadingQuality { range.contains(value) ? .good : .implausible }
        return [
            MeasuredValue(.co2, Double(ppm), quality: quality(Double(ppm), Self.plausiblePPM)),
            MeasuredValue(.temperature, Double(celsius), quality: quality(Double(celsius), Self.plausibleCelsius)),
            MeasuredValue(.relativeHumidity, Double(percentRH), quality: quality(Double(percentRH), Self.plausiblePercentRH)),
        ]
    }
}

// MARK: - Errors

extension SCD30: SensirionChip {
    /// What only an SCD30 fails with.
    public enum Failure: Sendable, Hashable {
        /// A value decoded to NaN or infinity although its CRC was right.
        case nonFiniteValue(field: String)
    }

    /// Noise on the wires, or clock stretching the bus could not follow.
    public static let checksumAdvice = "check the wiring and run the bus at 50 kHz or less (dtparam=i2c_arm_baudrate=50000), "
        + "because the SCD30 stretches the clock"

    public static func notReadyExplanation(command: UInt16) -> String? {
        guard command == Command.dataReady.code else { return nil }
        return "no new measurement within 2.5 measurement intervals: the sensor may have restarted or hung; power-cycle it"
    }

    public static func explanation(of failure: Failure) -> String {
        switch failure {
        case .nonFiniteValue(let field):
            "the \(field) value is not a number: the sensor is faulty or still booting; power-cycle it"
        }
    }
}

/// An SCD30 that answered on the bus but not with a usable measurement, with what a resident can do about it.
/// ``SensirionError/Code/notReady(command:)`` for data-ready (0x0202) means no sample arrived within 2.5 measurement
/// intervals.
public typealias SCD30Error = SensirionError<SCD30>
