internal import KiezboxCore
import Synchronization

/// The Sensirion SPS30 particulate-matter sensor in I²C mode (SEL pin to GND), at 0x69. Supply 5 V; keep the I²C
/// cable under 20 cm, or use UART mode for longer runs (`sensors.md` §7).
///
/// The sensor measures once a second while running; each ``measure()`` polls the data-ready flag, reads the
/// measured values (float32 or uint16 format) and returns the mass concentrations PM1.0, PM2.5, PM4.0 and PM10 in
/// µg/m³. The first `warmUpSamples` samples after each start are discarded while the fan spins up and the flow
/// settles (§15: "measure ≥30 s"). The device status register (firmware ≥ 2.2) is read with every measurement: a
/// fan or laser error is a typed error, a fan-speed warning marks the values ``ReadingQuality/degraded``.
///
/// On the first measurement, and again after any failure, the sensor is reset (waking it first if a previous run left
/// it asleep), its firmware version and serial number are read (their CRCs confirm the sensor answers), and
/// measurement is started. With `sleepsBetweenMeasurements` the fan and laser are switched off after each
/// measurement (stop, then sleep) and woken for the next, which saves power and fan wear at the cost of a warm-up
/// per measurement.
///
/// ```swift
/// let dust = SPS30(device: bus.device(at: 0x69))
/// let values = try await dust.measure()   // µg/m³: pm1, pm2_5, pm4, pm10
/// ```
public final class SPS30: SensorDriver {
    /// The format the sensor reports its measured values in.
    public enum OutputFormat: Sendable, Hashable, CaseIterable {
        /// Big-endian IEEE-754 float32, start argument 0x0300: 10 values as 20 words (60 bytes), §7.
        case float
        /// Unsigned 16-bit integers, start argument 0x0500: 10 words (30 bytes), whole µg/m³ (firmware ≥ 2.0;
        /// unverified: from the datasheet as recalled, not in the reference).
        case unsignedInteger

        /// The start-measurement argument word.
        public var startArgument: UInt16 {
            switch self {
            case .float: 0x0300
            case .unsignedInteger: 0x0500
            }
        }

        /// How many words a measurement takes.
        public var wordCount: Int {
            switch self {
            case .float: 20
            case .unsignedInteger: 10
            }
        }
    }

    /// Commands and waits (`sensors.md` §7; delays from Sensirion's `embedded-sps` and the Linux `sps30` driver).
    enum Command {
        static let startMeasurement = SensirionCommand(0x0010)
        static let stopMeasurement = SensirionCommand(0x0104)
        static let dataReady = SensirionCommand(0x0202)
        static let readMeasurement = SensirionCommand(0x0300)
        static let sleep = SensirionCommand(0x1001)
        static let wakeUp = SensirionCommand(0x1103)
        static let serialNumber = SensirionCommand(0xD033)
        static let firmwareVersion = SensirionCommand(0xD100)
        static let readStatus = SensirionCommand(0xD206)
        static let reset = SensirionCommand(0xD304)

        /// §7: wait 20 ms after starting.
        static let startDelay = Duration.milliseconds(20)
        /// `SPS_CMD_DELAY_USEC` in `embedded-sps`, after stop and the other state changes.
        static let commandDelay = Duration.milliseconds(10)
        /// The Linux driver waits 300 ms after a reset.
        static let resetDelay = Duration.milliseconds(300)
        /// Read commands are answered at once (`embedded-sps` reads without a delay).
        static let readDelay = Duration.zero
        /// The serial number: 32 ASCII bytes, NUL-terminated, as 16 words.
        static let serialWordCount = 16
    }

    /// Device status register bits (`sensors.md` §7).
    public enum StatusBit {
        /// The fan is switched on but not turning.
        public static let fanError: UInt32 = 1 << 4
        /// The laser current is out of range.
        public static let laserError: UInt32 = 1 << 5
        /// The fan speed is out of range.
        public static let fanSpeedWarning: UInt32 = 1 << 21
    }

    /// The first firmware with the status register (2.2; unverified: recalled from the datasheet).
    static let statusRegisterFirmware: UInt16 = 0x0202

    /// Data-ready polls, 100 ms apart, before the sensor counts as hung: 5 s for a 1 s sample period, to allow the
    /// first sample after a start to take longer.
    static let pollInterval = Duration.milliseconds(100)
    static let maximumPollsPerSample = 50
    static let notReadyRetries = 2

    /// The specified mass-concentration range; values outside, or a size distribution that is not cumulative
    /// (PM1 ≤ PM2.5 ≤ PM4 ≤ PM10), are flagged, not dropped.
    static let plausibleMicrogramsPerCubicMetre = 0.0...1000.0
    static let cumulativeTolerance = 0.01

    private struct State {
        var asleep = false
        var firmwareVersion: UInt16?
        var serialNumber: String?
        var statusRegister: UInt32?
    }

    private let link: SensirionI2CLink<SPS30>
    private let outputFormat: OutputFormat
    private let sleepsBetweenMeasurements: Bool
    private let sampling: SensirionSampling
    private let state = Mutex(State())

    /// Creates a driver; nothing is sent until the first ``measure()``.
    ///
    /// - Parameters:
    ///   - device: the sensor's I²C device, at 0x69.
    ///   - pause: how to wait for the sensor; inject an instant pause in tests.
    ///   - outputFormat: float32 (the default, as in the reference) or uint16.
    ///   - warmUpSamples: samples (one a second) discarded after each start; 30 by default.
    ///   - sleepsBetweenMeasurements: stop and sleep after each measurement, wake and warm up for the next.
    ///   - checksumAttempts: how many times a sample whose answer fails its CRC is fetched in all, at least 1.
    public init(
        device: any I2CDevice,
        pause: @escaping Pause = realPause,
        outputFormat: OutputFormat = .float,
        warmUpSamples: Int = 30,
        sleepsBetweenMeasurements: Bool = false,
        checksumAttempts: Int = 3
    ) {
        self.link = SensirionI2CLink(device: device, pause: pause, checksumAttempts: checksumAttempts, notReadyRetries: Self.notReadyRetries)
        self.outputFormat = outputFormat
        self.sleepsBetweenMeasurements = sleepsBetweenMeasurements
        // The data-ready flag reads `00 01` when set.
        self.sampling = SensirionSampling(
            dataReady: Command.dataReady,
            isReady: { $0 & 0x00FF == 0x01 },
            readMeasurement: Command.readMeasurement,
            wordCount: outputFormat.wordCount,
            executionTime: Command.readDelay,
            pollInterval: Self.pollInterval,
            maximumPolls: Self.maximumPollsPerSample,
            warmUpSamples: max(0, warmUpSamples)
        )
    }

    /// "SPS30".
    public static let name = "SPS30"

    /// How many answers failed their CRC since the driver was created (each was discarded).
    public var checksumErrorCount: Int { self.link.checksumErrorCount }

    /// The firmware version word (major in the high byte, minor in the low byte), once read.
    public var firmwareVersion: UInt16? { self.state.withLock { $0.firmwareVersion } }

    /// The serial number the sensor reported, once read.
    public var serialNumber: String? { self.state.withLock { $0.serialNumber } }

    /// The device status register as last read (nil before firmware 2.2).
    public var statusRegister: UInt32? { self.state.withLock { $0.statusRegister } }

    /// Waits for the next sample (after the warm-up, if the sensor was just started) and returns PM1.0, PM2.5, PM4.0
    /// and PM10 in µg/m³.
    ///
    /// - Throws: ``I2CError`` when the bus fails, ``SPS30Error`` when the answers fail their CRC every time, no
    ///   sample arrives, a value is not a number, or the status register reports a fan or laser error. After any
    ///   failure the next call resets the sensor and starts again.
    public func measure() async throws -> [MeasuredValue] {
        try await self.link.measure(initialise: self.initialise) {
            // Initialisation leaves the sensor awake; only a previous measurement put it to sleep.
            if self.state.withLock({ $0.asleep }) {
                try await self.wakeUp()
                try await self.start()
            }
            let words = try await self.link.sampleAfterWarmUp(self.sampling)
            let status = try await self.readStatusIfSupported()
            if self.sleepsBetweenMeasurements {
                try await self.link.write(Command.stopMeasurement)
                try await self.link.pause(Command.commandDelay)
                try await self.link.write(Command.sleep)
                try await self.link.pause(Command.commandDelay)
                self.state.withLock { $0.asleep = true }
            }
            return try self.measuredValues(from: words, status: status)
        }
    }

    /// PM1.0, PM2.5, PM4.0 and PM10 (µg/m³) from the words of a measurement in `format`. Missing words read as zero.
    public static func massConcentrations(from words: [UInt16], format: OutputFormat) -> [Double] {
        let padded = words + [UInt16](repeating: 0, count: max(0, format.wordCount - words.count))
        switch format {
        case .float: return SensirionWords.floats(from: Array(padded.prefix(8))).map(Double.init)
        case .unsignedInteger: return padded.prefix(4).map(Double.init)
        }
    }

    /// The serial number's text: ASCII up to the first NUL.
    public static func serialNumber(from words: [UInt16]) -> String {
        let bytes = words.flatMap { [UInt8(truncatingIfNeeded: $0 >> 8), UInt8(truncatingIfNeeded: $0)] }
        let text = bytes.prefix { $0 != 0 }.filter { (0x20...0x7E).contains($0) }
        return String(decoding: text, as: UTF8.self)
    }

    // MARK: - Initialisation and sampling

    private func initialise() async throws {
        if try await !self.acknowledges(Command.reset) {
            // Asleep (a previous run used sleep): wake it, then reset. A sensor that is absent NACKs the wake-up too.
            try await self.wakeUp()
            try await self.link.write(Command.reset)
        }
        try await self.link.pause(Command.resetDelay)
        // The Linux driver sends a stop (a no-op in idle) after a reset: the reset glitches the bus, and some
        // controllers need traffic to recover. Its outcome does not matter.
        try? await self.link.write(Command.stopMeasurement)
        let firmware = try await self.readWords(Command.firmwareVersion, count: 1)[0]
        let serial = try await self.readWords(Command.serialNumber, count: Command.serialWordCount)
        self.state.withLock { state in
            state.firmwareVersion = firmware
            state.serialNumber = Self.serialNumber(from: serial)
            state.asleep = false
        }
        try await self.start()
    }

    /// Sends `command`; false when the sensor NACKed it.
    private func acknowledges(_ command: SensirionCommand) async throws(I2CError) -> Bool {
        do {
            try await self.link.write(command)
            return true
        } catch {
            guard error.code == .noAcknowledge else { throw error }
            return false
        }
    }

    /// The wake-up sequence: in sleep the interface is off, and the first transfer only switches it on (and is
    /// NACKed), so wake-up is sent twice (§7). Either may be NACKed (the interface may already be on, and a wake-up
    /// outside sleep is refused), so neither result counts; the command that follows shows whether the sensor is up.
    private func wakeUp() async throws {
        _ = try? await self.link.write(Command.wakeUp)
        _ = try? await self.link.write(Command.wakeUp)
        try await self.link.pause(Command.commandDelay)
        self.state.withLock { $0.asleep = false }
    }

    private func start() async throws {
        try await self.link.write(Command.startMeasurement, arguments: [self.outputFormat.startArgument])
        try await self.link.pause(Command.startDelay)
        self.link.measurementStarted()
    }

    private func readWords(_ command: SensirionCommand, count: Int) async throws -> [UInt16] {
        try await self.link.read(command, executionTime: Command.readDelay, wordCount: count)
    }

    private func readStatusIfSupported() async throws -> UInt32? {
        guard let firmware = self.state.withLock({ $0.firmwareVersion }), firmware >= Self.statusRegisterFirmware else {
            return nil
        }
        let words = try await self.readWords(Command.readStatus, count: 2)
        let status = SensirionWords.uint32(high: words[0], low: words[1])
        self.state.withLock { $0.statusRegister = status }
        return status
    }

    private func measuredValues(from words: [UInt16], status: UInt32?) throws -> [MeasuredValue] {
        if let status {
            if status & StatusBit.fanError != 0 { throw self.link.error(.chip(.fanFailure)) }
            if status & StatusBit.laserError != 0 { throw self.link.error(.chip(.laserFailure)) }
        }
        let concentrations = Self.massConcentrations(from: words, format: self.outputFormat)
        let quantities: [Quantity] = [.pm1, .pm2_5, .pm4, .pm10]
        for (quantity, value) in zip(quantities, concentrations) where !value.isFinite {
            throw self.link.error(.chip(.nonFiniteValue(field: quantity.rawValue)))
        }
        // PM2.5 includes PM1 and so on: a distribution that shrinks with size cannot say which value is wrong.
        let cumulative = zip(concentrations, concentrations.dropFirst()).allSatisfy { $0 <= $1 + Self.cumulativeTolerance }
        let fanSpeedOutOfRange = (status ?? 0) & StatusBit.fanSpeedWarning != 0
        return zip(quantities, concentrations).map { quantity, value in
            let quality: ReadingQuality =
                if !cumulative || !Self.plausibleMicrogramsPerCubicMetre.contains(value) {
                    .implausible
                } else if fanSpeedOutOfRange {
                    .degraded
                } else {
                    .good
                }
            return MeasuredValue(quantity, value, quality: quality)
        }
    }
}

// MARK: - Errors

extension SPS30: SensirionChip {
    /// What only an SPS30 fails with.
    public enum Failure: Sendable, Hashable {
        /// A value decoded to NaN or infinity although its CRC was right.
        case nonFiniteValue(field: String)
        /// Status bit 4: the fan is switched on but not turning.
        case fanFailure
        /// Status bit 5: the laser current is out of range.
        case laserFailure
    }

    public static let checksumAdvice = "keep the I²C cable under 20 cm (or use the UART), check contacts and pull-ups"

    public static func notReadyExplanation(command: UInt16) -> String? {
        guard command == Command.dataReady.code else { return nil }
        return "no new measurement for 5 s: check the 5 V supply and power-cycle the sensor"
    }

    public static func explanation(of failure: Failure) -> String {
        switch failure {
        case .nonFiniteValue(let field):
            "the \(field) value is not a number: the sensor is faulty; power-cycle it"
        case .fanFailure:
            "fan error (switched on but not turning): check the 5 V supply and that the fan is not "
                + "blocked by dirt or insects; replace the sensor if it persists"
        case .laserFailure:
            "laser error (current out of range): the sensor is failing; replace it"
        }
    }
}

/// An SPS30 that answered on the bus but not with a usable measurement, with what a resident can do about it.
/// ``SensirionError/Code/notReady(command:)`` for data-ready (0x0202) means no sample arrived within 5 s.
public typealias SPS30Error = SensirionError<SPS30>
