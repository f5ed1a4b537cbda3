internal import KiezboxCore
import Synchronization

/// The Sensirion SHT40, SHT41 and SHT45 (temperature and relative humidity) on I²C, at 0x44 (-AD1B), 0x45 (-BD1B)
/// or 0x46.
///
/// Each ``measure()`` sends the one-byte measure command (0xFD, high precision, by default), lets the bus go, waits
/// the measurement time and reads `[T, CRC, RH, CRC]`; a NACK on that read means "not finished yet" and the read is
/// tried again a few times (`sensors.md` §0, §4, §16.1). Humidity is cropped to 0…100 % as the datasheet's
/// pseudo-code does: the calibration curve runs from −6 % to 119 %, and values outside 0…100 are not physical.
///
/// On the first measurement, and again after any failure, the chip gets a soft reset and its serial number is read;
/// the serial's CRCs confirm that a Sensirion chip answers.
///
/// The heater (§4) is not used: pulsing it is a policy decision for long wet spells (outdoor condensation), and the
/// readings just after a pulse must be skipped.
///
/// ```swift
/// let climate = SHT4x(device: bus.device(at: 0x44))
/// let values = try await climate.measure()   // °C, %
/// ```
public final class SHT4x: SensorDriver {
    /// Measurement precision (repeatability); higher takes longer.
    public enum Precision: Sendable, Hashable, CaseIterable {
        case high
        case medium
        case low

        /// The one-byte measure command.
        public var command: UInt8 {
            switch self {
            case .high: 0xFD
            case .medium: 0xF6
            case .low: 0xE0
            }
        }

        /// How long Sensirion's driver waits before reading (`sensors.md` §4).
        public var measurementTime: Duration {
            switch self {
            case .high: .milliseconds(10)
            case .medium: .milliseconds(5)
            case .low: .milliseconds(2)
            }
        }
    }

    /// Commands and timings (`sensors.md` §4; the reset and serial waits from Sensirion's `embedded-i2c-sht4x`).
    enum Command {
        static let softReset = SensirionCommand(byte: 0x94)
        static let serialNumber = SensirionCommand(byte: 0x89)

        static let softResetTime = Duration.milliseconds(10)
        static let serialNumberTime = Duration.milliseconds(10)
    }

    /// Re-reads of a NACKed answer, 1 ms apart, before the measurement counts as stuck.
    static let notReadyRetries = 10

    /// The chip's specified temperature range; values outside are flagged, not dropped.
    static let plausibleCelsius = -40.0...125.0

    private let link: SensirionI2CLink<SHT4x>
    private let precision: Precision
    private let serial = Mutex<UInt32?>(nil)

    /// Creates a driver; nothing is sent until the first ``measure()``.
    ///
    /// - Parameters:
    ///   - device: the chip's I²C device, at 0x44, 0x45 or 0x46 depending on the part number.
    ///   - pause: how to wait for the chip; inject an instant pause in tests.
    ///   - precision: the measurement precision; high by default.
    ///   - checksumAttempts: how many times a measurement whose answer fails its CRC is taken in all, at least 1.
    public init(
        device: any I2CDevice,
        pause: @escaping Pause = realPause,
        precision: Precision = .high,
        checksumAttempts: Int = 3
    ) {
        self.link = SensirionI2CLink(device: device, pause: pause, checksumAttempts: checksumAttempts, notReadyRetries: Self.notReadyRetries)
        self.precision = precision
    }

    /// "SHT4x": the SHT40, SHT41 and SHT45 cannot be told apart on the bus.
    public static let name = "SHT4x"

    /// How many answers failed their CRC since the driver was created (each was discarded).
    public var checksumErrorCount: Int { self.link.checksumErrorCount }

    /// The chip's 32-bit serial number, once read.
    public var serialNumber: UInt32? { self.serial.withLock { $0 } }

    /// Takes one measurement: temperature (°C) and relative humidity (%, cropped to 0…100).
    ///
    /// - Throws: ``I2CError`` when the bus fails, ``SHT4xError`` when the chip's answers fail their CRC every time
    ///   or the measurement never finishes. After either, the next call initialises the chip again.
    public func measure() async throws -> [MeasuredValue] {
        try await self.link.measure(initialise: self.initialise) {
            let words = try await self.link.read(
                SensirionCommand(byte: self.precision.command),
                executionTime: self.precision.measurementTime,
                wordCount: 2
            )
            let celsius = Self.celsius(ticks: words[0])
            return [
                MeasuredValue(.temperature, celsius, quality: Self.plausibleCelsius.contains(celsius) ? .good : .implausible),
                MeasuredValue(.relativeHumidity, Self.percentRH(ticks: words[1])),
            ]
        }
    }

    /// `T = −45 + 175·S/65535` (datasheet).
    public static func celsius(ticks: UInt16) -> Double {
        -45 + 175 * Double(ticks) / 65535
    }

    /// `RH = −6 + 125·S/65535`, cropped to 0…100 % (datasheet pseudo-code).
    public static func percentRH(ticks: UInt16) -> Double {
        min(max(-6 + 125 * Double(ticks) / 65535, 0), 100)
    }

    // MARK: - Initialisation

    private func initialise() async throws {
        try await self.link.write(Command.softReset)
        try await self.link.pause(Command.softResetTime)
        let serial = try await self.link.read(Command.serialNumber, executionTime: Command.serialNumberTime, wordCount: 2)
        self.serial.withLock { $0 = SensirionWords.uint32(high: serial[0], low: serial[1]) }
    }
}

// MARK: - Errors

extension SHT4x: SensirionChip {
    /// 1: the SHT4x's commands are single bytes.
    public static let commandByteCount = 1

    public static let checksumAdvice =
        "check the wiring (short cables, firm contacts, pull-ups) and keep it away from the Pi's power lines"

    public static func notReadyExplanation(command: UInt16) -> String? {
        "no answer to \(Self.hex(command: command)) after the measurement time: the chip did not finish; power-cycle the sensor"
    }
}

/// An SHT4x that answered on the bus but not with a usable measurement, with what a resident can do about it:
/// ``SensirionError/Code/notReady(command:)`` means the measurement never finished. Commands are the one-byte codes
/// (0xFD), widened to 16 bits.
public typealias SHT4xError = SensirionError<SHT4x>
