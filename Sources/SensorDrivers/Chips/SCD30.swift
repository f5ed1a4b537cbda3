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

    private struct State {
        var initialised = false
        var samplesSinceStart = 0
        var firmwareVersion: UInt16?
    }

    private let link: SensirionI2CLink
    private let measurementInterval: Int
    private let ambientPressure: Int?
    private let warmUpSamples: Int
    private let checksumAttempts: Int
    private let state = Mutex(State())

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
        self.link = SensirionI2CLink(device: device, pause: pause)
        self.measurementInterval = min(max(measurementInterval, Self.measurementIntervals.lowerBound), Self.measurementIntervals.upperBound)
        self.ambientPressure = ambientPressure.map { min(max($0, Self.ambientPressures.lowerBound), Self.ambientPressures.upperBound) }
        self.warmUpSamples = max(0, warmUpSamples)
        self.checksumAttempts = max(1, checksumAttempts)
    }

    /// "SCD30".
    public var chipName: String { "SCD30" }

    /// How many answers failed their CRC since the driver was created (each was discarded).
    public var checksumErrorCount: Int { self.link.checksumErrorCount }

    /// The firmware version word (major in the high byte, minor in the low byte), once read.
    public var firmwareVersion: UInt16? { self.state.withLock { $0.firmwareVersion } }

    /// Waits for the next sample and returns CO₂ (ppm), temperature (°C) and relative humidity (%).
    ///
    /// - Throws: ``I2CError`` when the bus fails, ``SCD30Error`` when the chip's answers fail their CRC every time,
    ///   no sample arrives within 2.5 intervals, or a value is not a number. After any failure the next call
    ///   initialises the chip again.
    public func measure() async throws -> [MeasuredValue] {
        do {
            if !self.state.withLock({ $0.initialised }) { try await self.initialise() }
            while true {
                let words = try await self.link.retryingChecksumFailures(attempts: self.checksumAttempts) {
                    try await self.nextSample()
                }
                let sampleNumber = self.state.withLock { state in
                    state.samplesSinceStart += 1
                    return state.samplesSinceStart
                }
                if sampleNumber > self.warmUpSamples { return try self.measuredValues(from: words) }
            }
        } catch {
            self.state.withLock { $0.initialised = false }
            throw self.chipError(for: error)
        }
    }

    /// CO₂ (ppm), temperature (°C) and humidity (%) from the six words of a measurement: three big-endian
    /// float32, each the most significant word first. Missing words read as zero.
    public static func measurement(from words: [UInt16]) -> (ppm: Float, celsius: Float, percentRH: Float) {
        let floats = SensirionWords.floats(from: words + [UInt16](repeating: 0, count: max(0, 6 - words.count)))
        return (floats[0], floats[1], floats[2])
    }

    // MARK: - Initialisation and sampling

    private var pollInterval: Duration { .seconds(self.measurementInterval) / Self.pollsPerInterval }

    private func initialise() async throws {
        let firmware = try await self.readWord(Command.firmwareVersion)
        let interval = try await self.readWord(Command.measurementInterval)
        if interval != UInt16(self.measurementInterval) {
            try await self.link.write(Command.measurementInterval, arguments: [UInt16(self.measurementInterval)])
            try await self.link.pause(Command.writeDelay)
        }
        // 0 switches pressure compensation off.
        try await self.link.write(Command.startContinuous, arguments: [UInt16(self.ambientPressure ?? 0)])
        try await self.link.pause(Command.writeDelay)
        self.state.withLock { state in
            state.firmwareVersion = firmware
            state.samplesSinceStart = 0
            state.initialised = true
        }
    }

    private func readWord(_ command: SensirionCommand) async throws -> UInt16 {
        let words = try await self.link.retryingChecksumFailures(attempts: self.checksumAttempts) {
            try await self.link.read(command, executionTime: Command.readDelay, wordCount: 1, notReadyRetries: Self.notReadyRetries)
        }
        return words[0]
    }

    /// Polls data-ready until a sample waits, then reads it. A CRC failure anywhere throws, and the caller polls
    /// again for the next sample: a measurement is gone once read.
    private func nextSample() async throws -> [UInt16] {
        for poll in 0..<Self.maximumPollsPerSample {
            if poll > 0 { try await self.link.pause(self.pollInterval) }
            let ready = try await self.link.read(
                Command.dataReady,
                executionTime: Command.readDelay,
                wordCount: 1,
                notReadyRetries: Self.notReadyRetries
            )
            if ready[0] == 1 {
                return try await self.link.read(
                    Command.readMeasurement,
                    executionTime: Command.readDelay,
                    wordCount: 6,
                    notReadyRetries: Self.notReadyRetries
                )
            }
        }
        throw SensirionLinkFailure.notReady(command: Command.dataReady)
    }

    private func measuredValues(from words: [UInt16]) throws -> [MeasuredValue] {
        let (ppm, celsius, percentRH) = Self.measurement(from: words)
        for (field, value) in [("CO₂", ppm), ("temperature", celsius), ("humidity", percentRH)] where !value.isFinite {
            throw SCD30Error(.nonFiniteValue(field: field), bus: self.link.device.busName, address: self.link.device.address)
        }
        func quality(_ value: Double, _ range: ClosedRange<Double>) -> ReadingQuality { range.contains(value) ? .good : .implausible }
        return [
            MeasuredValue(.co2, Double(ppm), quality: quality(Double(ppm), Self.plausiblePPM)),
            MeasuredValue(.temperature, Double(celsius), quality: quality(Double(celsius), Self.plausibleCelsius)),
            MeasuredValue(.relativeHumidity, Double(percentRH), quality: quality(Double(percentRH), Self.plausiblePercentRH)),
        ]
    }

    private func chipError(for error: any Error) -> any Error {
        guard let failure = error as? SensirionLinkFailure else { return error }
        let device = self.link.device
        switch failure {
        case .checksum(let command, let wordError):
            let word = if case .checksumMismatch(let word, _, _) = wordError.code { word } else { 0 }
            return SCD30Error(.checksumMismatch(command: command.code, word: word), bus: device.busName, address: device.address)
        case .notReady(let command):
            return SCD30Error(.notReady(command: command.code), bus: device.busName, address: device.address)
        }
    }
}

/// An SCD30 that answered on the bus but not with a usable measurement, with what a resident can do about it.
public struct SCD30Error: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// Every answer to `command` had a CRC error, first in word `word`; noise on the wires, or clock stretching
        /// the bus could not follow.
        case checksumMismatch(command: UInt16, word: Int)
        /// `command` went unanswered: for data-ready (0x0202), no sample arrived within 2.5 measurement intervals.
        case notReady(command: UInt16)
        /// A value decoded to NaN or infinity although its CRC was right.
        case nonFiniteValue(field: String)
    }

    public var code: Code
    /// The bus name ("/dev/i2c-1", "sim:i2c-1").
    public var bus: String
    public var address: UInt8

    public init(_ code: Code, bus: String, address: UInt8) {
        self.code = code
        self.bus = bus
        self.address = address
    }

    public var description: String {
        let at = "SCD30 at \(SensirionWords.hex(self.address)) on \(self.bus)"
        switch self.code {
        case .checksumMismatch(let command, let word):
            return "\(at): CRC error in word \(word) of the answer to \(SensirionWords.hex(command)), on every attempt: "
                + "check the wiring and run the bus at 50 kHz or less (dtparam=i2c_arm_baudrate=50000), "
                + "because the SCD30 stretches the clock"
        case .notReady(0x0202):
            return "\(at): no new measurement within 2.5 measurement intervals: the sensor may have restarted or hung; "
                + "power-cycle it"
        case .notReady(let command):
            return "\(at): no answer to \(SensirionWords.hex(command)): power-cycle the sensor"
        case .nonFiniteValue(let field):
            return "\(at): the \(field) value is not a number: the sensor is faulty or still booting; power-cycle it"
        }
    }
}
