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

    private struct State {
        var initialised = false
        var samplesSinceStart = 0
        var serialNumber: UInt64?
    }

    private let link: SensirionI2CLink
    private let mode: Mode
    private let warmUpSamples: Int
    private let checksumAttempts: Int
    private let state = Mutex(State())

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
        self.link = SensirionI2CLink(device: device, pause: pause)
        self.mode = mode
        self.warmUpSamples = max(0, warmUpSamples)
        self.checksumAttempts = max(1, checksumAttempts)
    }

    /// "SCD4x": the SCD40 and SCD41 answer the same commands used here.
    public var chipName: String { "SCD4x" }

    /// How many answers failed their CRC since the driver was created (each was discarded).
    public var checksumErrorCount: Int { self.link.checksumErrorCount }

    /// The chip's 48-bit serial number, once read.
    public var serialNumber: UInt64? { self.state.withLock { $0.serialNumber } }

    /// Waits for the next sample and returns CO₂ (ppm), temperature (°C) and relative humidity (%).
    ///
    /// - Throws: ``I2CError`` when the bus fails, ``SCD4xError`` when the chip's answers fail their CRC every time
    ///   or no sample arrives within 2.5 periods. After any failure the next call initialises the chip again.
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
                if sampleNumber > self.warmUpSamples { return Self.measuredValues(from: words) }
            }
        } catch {
            self.state.withLock { $0.initialised = false }
            throw self.chipError(for: error)
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
        let serial = try await self.link.retryingChecksumFailures(attempts: self.checksumAttempts) {
            try await self.link.read(
                Command.serialNumber,
                executionTime: Command.readTime,
                wordCount: 3,
                notReadyRetries: Self.notReadyRetries
            )
        }
        try await self.link.write(SensirionCommand(self.mode.startCommand))
        self.state.withLock { state in
            state.serialNumber = Self.serialNumber(from: serial)
            state.samplesSinceStart = 0
            state.initialised = true
        }
    }

    /// Polls data-ready until a sample waits, then reads it. The chip NACKs `read_measurement` while it has no data:
    /// that is "not ready", so the read is retried briefly and then polling resumes.
    private func nextSample() async throws -> [UInt16] {
        for poll in 0..<Self.maximumPollsPerSample {
            if poll > 0 { try await self.link.pause(self.mode.samplePeriod / Self.pollsPerPeriod) }
            let status = try await self.link.read(
                Command.getDataReady,
                executionTime: Command.readTime,
                wordCount: 1,
                notReadyRetries: Self.notReadyRetries
            )
            guard status[0] & Self.dataReadyMask != 0 else { continue }
            do {
                return try await self.link.read(
                    Command.readMeasurement,
                    executionTime: Command.readTime,
                    wordCount: 3,
                    notReadyRetries: Self.notReadyRetries
                )
            } catch let failure as SensirionLinkFailure where failure == .notReady(command: Command.readMeasurement) {
                // No data after all (the buffer is cleared on read): keep polling.
                continue
            }
        }
        throw SensirionLinkFailure.notReady(command: Command.getDataReady)
    }

    private static func measuredValues(from words: [UInt16]) -> [MeasuredValue] {
        let (ppm, celsius, percentRH) = Self.measurement(from: words)
        return [
            MeasuredValue(.co2, ppm, quality: Self.plausiblePPM.contains(ppm) ? .good : .implausible),
            MeasuredValue(.temperature, celsius, quality: Self.plausibleCelsius.contains(celsius) ? .good : .implausible),
            MeasuredValue(.relativeHumidity, percentRH),
        ]
    }

    private func chipError(for error: any Error) -> any Error {
        guard let failure = error as? SensirionLinkFailure else { return error }
        let device = self.link.device
        switch failure {
        case .checksum(let command, let wordError):
            let word = if case .checksumMismatch(let word, _, _) = wordError.code { word } else { 0 }
            return SCD4xError(.checksumMismatch(command: command.code, word: word), bus: device.busName, address: device.address)
        case .notReady(let command):
            return SCD4xError(.notReady(command: command.code), bus: device.busName, address: device.address)
        }
    }
}

/// An SCD4x that answered on the bus but not with a usable measurement, with what a resident can do about it.
public struct SCD4xError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// Every answer to `command` had a CRC error, first in word `word`; noise on the wires.
        case checksumMismatch(command: UInt16, word: Int)
        /// `command` went unanswered: for data-ready (0xE4B8), no sample arrived within 2.5 periods.
        case notReady(command: UInt16)
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
        let at = "SCD4x at \(SensirionWords.hex(self.address)) on \(self.bus)"
        switch self.code {
        case .checksumMismatch(let command, let word):
            return "\(at): CRC error in word \(word) of the answer to \(SensirionWords.hex(command)), on every attempt: "
                + "check the wiring (short cables, firm contacts, pull-ups)"
        case .notReady(0xE4B8):
            return "\(at): no new measurement within 2.5 measurement periods: the sensor may have restarted or hung; "
                + "power-cycle it"
        case .notReady(let command):
            return "\(at): no answer to \(SensirionWords.hex(command)): power-cycle the sensor"
        }
    }
}
