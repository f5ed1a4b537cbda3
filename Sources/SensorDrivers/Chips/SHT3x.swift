internal import KiezboxCore
import Synchronization

/// The Sensirion SHT30, SHT31 and SHT35 (temperature and relative humidity) on I²C, at 0x44 (ADDR low) or 0x45.
///
/// Each ``measure()`` runs one single-shot measurement with the **polling** commands (0x24xx, no clock
/// stretching): the Raspberry Pi's I²C block mishandles clock stretching, so the driver writes the command, lets
/// the bus go, waits the measurement time and reads; a NACK on that read means "not finished yet" and the read is
/// tried again a few times (`sensors.md` §0, §3, §16.1).
///
/// On the first measurement, and again after any failure, the chip is put in a known state: a break (leaves
/// periodic mode, if another program left it there), a soft reset, a status-register read (its CRC confirms a
/// Sensirion chip answers) and a status clear.
///
/// ```swift
/// let climate = SHT3x(device: bus.device(at: 0x44))
/// let values = try await climate.measure()   // °C, %
/// ```
public final class SHT3x: SensorDriver {
    /// Repeatability (noise) of a single shot; higher takes longer and uses more energy.
    public enum Repeatability: Sendable, Hashable, CaseIterable {
        case high
        case medium
        case low

        /// The polling (no clock stretching) single-shot command.
        public var command: UInt16 {
            switch self {
            case .high: 0x2400
            case .medium: 0x240B
            case .low: 0x2416
            }
        }

        /// How long to wait before the first read: 15 ms for high (`SHT3X_MEASUREMENT_DURATION_USEC`,
        /// `sensors.md` §3); 7 and 5 ms as Sensirion's `embedded-i2c-sht3x` waits for medium and low (not in the
        /// reference, unverified against the datasheet maximum). A NACK on an early read is retried anyway.
        public var measurementTime: Duration {
            switch self {
            case .high: .milliseconds(15)
            case .medium: .milliseconds(7)
            case .low: .milliseconds(5)
            }
        }
    }

    /// Commands and timings (`sensors.md` §3; waits from Sensirion's `embedded-i2c-sht3x`).
    enum Command {
        static let `break` = SensirionCommand(0x3093)
        static let softReset = SensirionCommand(0x30A2)
        static let readStatus = SensirionCommand(0xF32D)
        static let clearStatus = SensirionCommand(0x3041)

        static let breakTime = Duration.milliseconds(1)
        static let softResetTime = Duration.milliseconds(2)
        static let statusTime = Duration.milliseconds(10)
    }

    /// Status register bits (`sensors.md` §3).
    public enum StatusBit {
        public static let alertPending: UInt16 = 1 << 15
        public static let heaterOn: UInt16 = 1 << 13
        public static let resetDetected: UInt16 = 1 << 4
        public static let lastWriteChecksumFailed: UInt16 = 1 << 0
    }

    /// Re-reads of a NACKed answer, 1 ms apart, before the measurement counts as stuck.
    static let notReadyRetries = 10

    /// The chip's specified temperature range; values outside are flagged, not dropped. RH cannot leave 0…100 %.
    static let plausibleCelsius = -40.0...125.0

    private let link: SensirionI2CLink<SHT3x>
    private let repeatability: Repeatability
    private let status = Mutex<UInt16?>(nil)

    /// Creates a driver; nothing is sent until the first ``measure()``.
    ///
    /// - Parameters:
    ///   - device: the chip's I²C device, at 0x44 (ADDR low) or 0x45 (ADDR high).
    ///   - pause: how to wait for the chip; inject an instant pause in tests.
    ///   - repeatability: the single-shot repeatability; high by default (15 ms, still negligible self-heating at
    ///     one reading a minute).
    ///   - checksumAttempts: how many times a measurement whose answer fails its CRC is taken in all, at least 1.
    public init(
        device: any I2CDevice,
        pause: @escaping Pause = realPause,
        repeatability: Repeatability = .high,
        checksumAttempts: Int = 3
    ) {
        self.link = SensirionI2CLink(device: device, pause: pause, checksumAttempts: checksumAttempts, notReadyRetries: Self.notReadyRetries)
        self.repeatability = repeatability
    }

    /// "SHT3x": the SHT30, SHT31 and SHT35 cannot be told apart on the bus.
    public static let name = "SHT3x"

    /// How many answers failed their CRC since the driver was created (each was discarded).
    public var checksumErrorCount: Int { self.link.checksumErrorCount }

    /// The status register as read during the last initialisation (before it was cleared).
    public var statusRegister: UInt16? { self.status.withLock { $0 } }

    /// Takes one single-shot measurement: temperature (°C) and relative humidity (%).
    ///
    /// - Throws: ``I2CError`` when the bus fails, ``SHT3xError`` when the chip's answers fail their CRC every time
    ///   or the measurement never finishes. After either, the next call initialises the chip again.
    public func measure() async throws -> [MeasuredValue] {
        try await self.link.measure(initialise: self.initialise) {
            let words = try await self.link.read(
                SensirionCommand(self.repeatability.command),
                executionTime: self.repeatability.measurementTime,
                wordCount: 2
            )
            return Self.measuredValues(temperatureTicks: words[0], humidityTicks: words[1])
        }
    }

    /// Temperature and humidity from the raw ticks, per the datasheet.
    static func measuredValues(temperatureTicks: UInt16, humidityTicks: UInt16) -> [MeasuredValue] {
        let celsius = Self.celsius(ticks: temperatureTicks)
        return [
            MeasuredValue(.temperature, celsius, quality: Self.plausibleCelsius.contains(celsius) ? .good : .implausible),
            MeasuredValue(.relativeHumidity, Self.percentRH(ticks: humidityTicks)),
        ]
    }

    /// `T = −45 + 175·S/65535` (datasheet).
    public static func celsius(ticks: UInt16) -> Double {
        -45 + 175 * Double(ticks) / 65535
    }

    /// `RH = 100·S/65535` (datasheet); always within 0…100 %.
    public static func percentRH(ticks: UInt16) -> Double {
        100 * Double(ticks) / 65535
    }

    // MARK: - Initialisation

    private func initialise() async throws {
        // Break first: a soft reset is only accepted in idle mode, and another program may have left periodic mode on.
        try await self.link.write(Command.break)
        try await self.link.pause(Command.breakTime)
        try await self.link.write(Command.softReset)
        try await self.link.pause(Command.softResetTime)
        let status = try await self.link.read(Command.readStatus, executionTime: Command.statusTime, wordCount: 1)
        // Clearing the alert and reset flags lets a later status read show a brown-out as a fresh "reset detected".
        try await self.link.write(Command.clearStatus)
        try await self.link.pause(Command.statusTime)
        self.status.withLock { $0 = status[0] }
    }
}

// MARK: - Errors

extension SHT3x: SensirionChip {
    public static let checksumAdvice =
        "check the wiring (short cables, firm contacts, pull-ups) and keep it away from the Pi's power lines"

    public static func notReadyExplanation(command: UInt16) -> String? {
        "no answer to \(Self.hex(command: command)) after the measurement time: the chip did not finish; power-cycle the sensor"
    }
}

/// An SHT3x that answered on the bus but not with a usable measurement, with what a resident can do about it:
/// ``SensirionError/Code/notReady(command:)`` means the measurement never finished.
public typealias SHT3xError = SensirionError<SHT3x>
