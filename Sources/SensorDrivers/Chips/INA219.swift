internal import KiezboxCore
import Synchronization

/// The TI INA219 current, voltage and power monitor on I²C (0x40–0x4F): bus voltage up to 26 V, a shunt
/// voltage of up to ±320 mV, and the current and power the chip computes from them with its calibration.
///
/// The driver sets the chip up on the first measurement and again after any failure:
/// - configuration: 32 V bus range, the smallest PGA range that covers `maximumCurrent · shuntOhms`, both ADCs
///   at 12 bit averaging 128 samples (68.10 ms each), continuous conversion;
/// - calibration from the shunt and the maximum expected current (see ``ShuntCalibration``);
/// - both registers are read back, then it waits for the first conversion cycle and its conversion-ready bit.
///
/// Each ``measure()`` reads the bus, shunt, current and power registers, then the calibration register: a
/// calibration that no longer reads what was written (0 after a power-on reset or brown-out, sensors.md §11) means
/// the current and power just read are worthless, so the chip is set up again and read once more
/// (``chipResetCount`` counts these).
///
/// Registers are 16 bit, most significant byte first; the driver uses the SMBus word calls with the byte swap
/// (sensors.md §0), so it runs on any adapter, including the kernel's SMBus-only `i2c-stub`.
///
/// ```swift
/// let battery = INA219(device: bus.device(at: 0x40), shuntOhms: 0.1, maximumCurrent: 3.2)
/// let values = try await battery.measure()   // V, A, W
/// ```
public final class INA219: SensorDriver {
    /// Bus voltage register bits (datasheet §8.6); the register pointers are ``INA2xxRegister``.
    enum Register {
        /// Bus voltage register bit 1 (CNVR): a conversion finished since the power register was last read.
        static let conversionReady: UInt16 = 0x0002
        /// Bus voltage register bit 0 (OVF): the current or power calculation overflowed.
        static let mathOverflow: UInt16 = 0x0001
    }

    /// The shunt voltage range of the programmable gain amplifier (configuration bits 12:11, PG).
    public enum ShuntRange: UInt16, Sendable, Hashable, CaseIterable {
        /// ±40 mV (gain 1).
        case millivolts40 = 0
        /// ±80 mV (gain /2).
        case millivolts80 = 1
        /// ±160 mV (gain /4).
        case millivolts160 = 2
        /// ±320 mV (gain /8), the power-on default.
        case millivolts320 = 3

        /// The full-scale shunt voltage, V.
        public var fullScaleVolts: Double { Double(self.fullScaleCount) * INA219.shuntVoltageLSB }

        /// The full-scale shunt register value: 4000, 8000, 16000 or 32000 counts of 10 µV.
        public var fullScaleCount: Int16 { Int16(4000) << Int16(self.rawValue) }

        /// The most sensitive range that still covers `volts` across the shunt, or nil beyond ±320 mV.
        public static func smallest(covering volts: Double) -> ShuntRange? {
            Self.allCases.first { volts <= $0.fullScaleVolts * (1 + 1e-9) }
        }
    }

    /// Volts per count of the shunt voltage register (whatever the PGA range).
    public static let shuntVoltageLSB = 10e-6
    /// Volts per count of the bus voltage register's value field (bits 15:3).
    public static let busVoltageLSB = 0.004

    /// INA219 calibration: `Cal = trunc(0.04096 / (Current_LSB · R))`, bit 0 not stored, `Power_LSB = 20 · Current_LSB`.
    static let calibrationConstants = ShuntCalibration.ChipConstants(
        kTimes1e18: 40_960_000_000_000_000,
        largestRegister: 0xFFFE,
        registerMask: 0xFFFE,
        powerLSBFactor: 20
    )

    /// One conversion cycle with the driver's configuration: bus and shunt, 128 samples of 532 µs each.
    static let conversionCycle = Duration.microseconds(2 * 68_100)
    /// Conversion-ready polls after the cycle, 10 ms apart: room for a slow oscillator, yet a chip that never
    /// converts fails within about a quarter second.
    static let readyPolls = 10
    static let readyPollInterval = Duration.milliseconds(10)

    /// The bus input pins are rated to 26 V (datasheet absolute maximum); the 32 V ADC range can show more,
    /// but only from a fault.
    static let plausibleBusVolts = 0.0...26.0

    /// The configuration register the driver writes: BRNG = 32 V, PG = `range`, BADC = SADC = 1111 (12 bit,
    /// 128-sample average), MODE = 111 (shunt and bus, continuous).
    public static func configurationRegister(range: ShuntRange) -> UInt16 {
        0x2000 | range.rawValue << 11 | 0b1111 << 7 | 0b1111 << 3 | 0b111
    }

    /// The datasheet's calibration for a shunt and a maximum expected current (see ``ShuntCalibration``).
    ///
    /// TI's example (10 A, 2 mΩ, `currentLSB` 1 mA) gives 20480 (0x5000); the Adafruit preset (0.1 Ω, 3.2 A)
    /// gives a 100 µA LSB and 4096.
    public static func calibration(
        shuntOhms: Double,
        maximumCurrent: Double,
        currentLSB: Double? = nil
    ) throws(INA219Error.Code) -> ShuntCalibration {
        try Self.checkedCalibration(shuntOhms: shuntOhms, maximumCurrent: maximumCurrent, currentLSB: currentLSB)
    }

    /// The bus voltage in a bus voltage register value, V: `(register >> 3) · 4 mV`; CNVR and OVF are ignored.
    public static func busVolts(register: UInt16) -> Double {
        Double(register >> 3) * Self.busVoltageLSB
    }

    /// The shunt voltage in a shunt voltage register value, V: a two's-complement count of 10 µV.
    public static func shuntVolts(register: UInt16) -> Double {
        Double(Int16(bitPattern: register)) * Self.shuntVoltageLSB
    }

    /// What the driver writes, worked out once from the configured shunt and current.
    struct Setup: INA2xxSetup {
        var calibration: ShuntCalibration
        var range: ShuntRange
        var configuration: UInt16
    }

    private let core: INA2xxCore<INA219>

    /// Creates a driver; nothing is sent until the first ``measure()``.
    ///
    /// An impossible configuration (a shunt of 0 Ω, a current the shunt range cannot carry) does not stop the
    /// daemon: every ``measure()`` then throws an ``INA219Error`` saying what to fix.
    ///
    /// - Parameters:
    ///   - device: the chip's I²C device, at 0x40 (A0 and A1 to GND) to 0x4F.
    ///   - shuntOhms: the shunt resistance, Ω (R100 on the common breakout = 0.1 Ω).
    ///   - maximumCurrent: the largest current expected through the shunt in either direction, A. It sets the PGA
    ///     range and the current resolution; `maximumCurrent · shuntOhms` must be at most 320 mV.
    ///   - currentLSB: amperes per count of the current register, instead of the automatic 1-2-5 choice.
    ///   - pause: how to wait for the chip; inject an instant pause in tests.
    public init(
        device: any I2CDevice,
        shuntOhms: Double,
        maximumCurrent: Double,
        currentLSB: Double? = nil,
        pause: @escaping Pause = realPause
    ) {
        self.core = INA2xxCore(
            device: device, shuntOhms: shuntOhms, maximumCurrent: maximumCurrent, currentLSB: currentLSB, pause: pause
        )
    }

    public var chipName: String { Self.modelName }

    /// The calibration the driver writes, or nil when the configuration is impossible.
    public var calibration: ShuntCalibration? { try? self.core.setup.get().calibration }

    /// The PGA range the driver selects, or nil when the configuration is impossible.
    public var shuntRange: ShuntRange? { try? self.core.setup.get().range }

    /// How often the calibration register was found changed (0 after a power-on reset or brown-out) and the chip
    /// was set up again.
    public var chipResetCount: Int { self.core.chipResetCount }

    /// Reads bus voltage (V), current (A) and power (W).
    ///
    /// - Throws: ``I2CError`` when the bus fails, ``INA219Error`` when the configuration is impossible or the chip
    ///   misbehaves. After either, the next call sets the chip up again.
    public func measure() async throws -> [MeasuredValue] {
        try await self.readMeasurement().measuredValues
    }

    /// Reads everything the chip measures, including the shunt voltage, with a quality for each value:
    /// - current and power are ``ReadingQuality/implausible`` when the chip flags a math overflow (OVF) or the
    ///   shunt voltage sits at the end of the PGA range (the true current may be larger);
    /// - the bus voltage is implausible above the 26 V the pins are rated for.
    public func readMeasurement() async throws -> PowerMeasurement {
        try await self.core.readMeasurement()
    }
}

extension INA219: INA2xxChip {
    public static var modelName: String { "INA219" }

    public static var errorWording: INA2xxErrorWording {
        INA2xxErrorWording(
            shuntExamples: "R100 printed on it = 0.1 Ω",
            shuntFullScale: "320 mV",
            notAcceptedAdvice: "check that the chip at this address is an INA219 (an INA226 needs its own driver) and its wiring"
        )
    }

    /// CNVR is in the bus voltage register.
    static var readyRegister: UInt8 { INA2xxRegister.busVoltage }
    static var conversionReady: UInt16 { Register.conversionReady }

    static func setup(shuntOhms: Double, maximumCurrent: Double, currentLSB: Double?) throws(INA2xxErrorCode) -> Setup {
        let calibration = try Self.calibration(shuntOhms: shuntOhms, maximumCurrent: maximumCurrent, currentLSB: currentLSB)
        let shuntVolts = maximumCurrent * shuntOhms
        guard let range = ShuntRange.smallest(covering: shuntVolts) else {
            throw .shuntVoltageBeyondRange(volts: shuntVolts)
        }
        return Setup(calibration: calibration, range: range, configuration: Self.configurationRegister(range: range))
    }

    static func measurement(from sample: INA2xxRawSample, setup: Setup) -> PowerMeasurement {
        let busVolts = Self.busVolts(register: sample.bus)
        let shuntCount = Int16(bitPattern: sample.shunt)
        let overflow = sample.bus & Register.mathOverflow != 0
        // At the end of the PGA range the ADC clips: the real current may be anything larger.
        let saturated = shuntCount.magnitude >= setup.range.fullScaleCount.magnitude
        return PowerMeasurement(
            sample: sample,
            calibration: setup.calibration,
            busVolts: busVolts,
            shuntVolts: Self.shuntVolts(register: sample.shunt),
            voltagePlausible: Self.plausibleBusVolts.contains(busVolts),
            currentPlausible: !overflow && !saturated
        )
    }
}

/// An INA219 that cannot be set up as configured, or that answered but did not behave like one, with what a
/// resident can do about it.
public typealias INA219Error = INA2xxError<INA219>
