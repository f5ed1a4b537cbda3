internal import KiezboxCore
import Synchronization

/// The TI INA226 current, voltage and power monitor on I²C (0x40–0x4F): bus voltage up to 36 V, a shunt
/// voltage of up to ±81.92 mV, and the current and power the chip computes from them with its calibration.
/// The part sensors.md §11 recommends for the battery lead.
///
/// The driver sets the chip up on the first measurement and again after any failure:
/// - it checks the manufacturer id (0x5449, "TI") and die id (0x226x), so another chip at the address is named;
/// - configuration 0x4527: 16-sample average, 1.1 ms bus and shunt conversions, continuous (the Linux driver's
///   default; 35.2 ms per averaged reading);
/// - calibration from the shunt and the maximum expected current (see ``ShuntCalibration``);
/// - both registers are read back, then it waits for one averaged cycle and the conversion-ready flag (CVRF).
///
/// Each ``measure()`` reads the bus, shunt, current, power and mask/enable registers, then the calibration
/// register: a calibration that no longer reads what was written (0 after a power-on reset or brown-out,
/// sensors.md §11) means the chip is set up again and read once more (``chipResetCount`` counts these).
///
/// Registers are 16 bit, most significant byte first; the driver uses the SMBus word calls with the byte swap
/// (sensors.md §0), so it runs on any adapter, including the kernel's SMBus-only `i2c-stub`.
///
/// ```swift
/// let battery = INA226(device: bus.device(at: 0x40), shuntOhms: 0.01, maximumCurrent: 8)
/// let values = try await battery.measure()   // V, A, W
/// ```
public final class INA226: SensorDriver {
    /// Register pointers, ids and bits beyond ``INA2xxRegister`` (datasheet §7.6).
    enum Register {
        static let maskEnable: UInt8 = 0x06
        static let alertLimit: UInt8 = 0x07
        static let manufacturerID: UInt8 = 0xFE
        static let dieID: UInt8 = 0xFF

        /// Mask/enable bit 3 (CVRF): a conversion finished; cleared by reading mask/enable or writing the configuration.
        static let conversionReady: UInt16 = 0x0008
        /// Mask/enable bit 2 (OVF): the current or power calculation overflowed.
        static let mathOverflow: UInt16 = 0x0004
    }

    /// "TI" in ASCII.
    public static let manufacturerID: UInt16 = 0x5449
    /// The die id's device field (bits 15:4); bits 3:0 are the die revision.
    public static let deviceID: UInt16 = 0x226

    /// Volts per count of the shunt voltage register.
    public static let shuntVoltageLSB = 2.5e-6
    /// Volts per count of the bus voltage register.
    public static let busVoltageLSB = 1.25e-3
    /// The shunt input's full scale, V: 32768 counts of 2.5 µV.
    public static let shuntFullScaleVolts = 0.08192

    /// INA226 calibration: `Cal = trunc(0.00512 / (Current_LSB · R))`, 15 bits, `Power_LSB = 25 · Current_LSB`.
    static let calibrationConstants = ShuntCalibration.ChipConstants(
        kTimes1e18: 5_120_000_000_000_000,
        largestRegister: 0x7FFF,
        registerMask: 0x7FFF,
        powerLSBFactor: 25
    )

    /// The configuration register the driver writes: reserved bits 14:12 = 100 (as the chip reads them),
    /// AVG = 010 (16 samples), VBUSCT = VSHCT = 100 (1.1 ms), MODE = 111 (shunt and bus, continuous).
    public static let configurationRegister: UInt16 = 0x4000 | 0b010 << 9 | 0b100 << 6 | 0b100 << 3 | 0b111

    /// One averaged conversion cycle with that configuration: 16 × (1.1 ms + 1.1 ms).
    static let conversionCycle = Duration.microseconds(16 * 2 * 1100)
    /// Conversion-ready polls after the cycle, 5 ms apart.
    static let readyPolls = 10
    static let readyPollInterval = Duration.milliseconds(5)

    /// The bus input is specified to 36 V (the ADC's 40.96 V full scale shows more only from a fault).
    static let plausibleBusVolts = 0.0...36.0

    /// The datasheet's calibration for a shunt and a maximum expected current (see ``ShuntCalibration``).
    ///
    /// TI's example (10 A, 2 mΩ, `currentLSB` 1 mA) gives 2560 (0x0A00); the Kiezbox example (10 mΩ, 8 A)
    /// gives a 0.5 mA LSB and 1024.
    public static func calibration(
        shuntOhms: Double,
        maximumCurrent: Double,
        currentLSB: Double? = nil
    ) throws(INA226Error.Code) -> ShuntCalibration {
        try Self.checkedCalibration(shuntOhms: shuntOhms, maximumCurrent: maximumCurrent, currentLSB: currentLSB)
    }

    /// The bus voltage in a bus voltage register value, V: `register · 1.25 mV`.
    public static func busVolts(register: UInt16) -> Double {
        Double(register) * Self.busVoltageLSB
    }

    /// The shunt voltage in a shunt voltage register value, V: a two's-complement count of 2.5 µV.
    public static func shuntVolts(register: UInt16) -> Double {
        Double(Int16(bitPattern: register)) * Self.shuntVoltageLSB
    }

    /// What the driver writes: the calibration for the configured shunt and current, and the fixed configuration.
    struct Setup: INA2xxSetup {
        var calibration: ShuntCalibration
        var configuration: UInt16 { INA226.configurationRegister }
    }

    private let core: INA2xxCore<INA226>

    /// Creates a driver; nothing is sent until the first ``measure()``.
    ///
    /// An impossible configuration (a shunt of 0 Ω, a current the shunt range cannot carry) does not stop the
    /// daemon: every ``measure()`` then throws an ``INA226Error`` saying what to fix.
    ///
    /// - Parameters:
    ///   - device: the chip's I²C device, at 0x40 (A0 and A1 to GND) to 0x4F.
    ///   - shuntOhms: the shunt resistance, Ω (R100 = 0.1 Ω, R010 = 0.01 Ω).
    ///   - maximumCurrent: the largest current expected through the shunt in either direction, A. It sets the
    ///     current resolution; `maximumCurrent · shuntOhms` must be at most 81.92 mV.
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

    /// How often the calibration register was found changed (0 after a power-on reset or brown-out) and the chip
    /// was set up again.
    public var chipResetCount: Int { self.core.chipResetCount }

    /// Reads bus voltage (V), current (A) and power (W).
    ///
    /// - Throws: ``I2CError`` when the bus fails, ``INA226Error`` when the configuration is impossible or the chip
    ///   misbehaves. After either, the next call sets the chip up again.
    public func measure() async throws -> [MeasuredValue] {
        try await self.readMeasurement().measuredValues
    }

    /// Reads everything the chip measures, including the shunt voltage, with a quality for each value:
    /// - current and power are ``ReadingQuality/implausible`` when the chip flags a math overflow (OVF) or the
    ///   shunt register is at its limit (0x7FFF or 0x8000: the true current may be larger);
    /// - the bus voltage is implausible when bit 15 is set (the register cannot hold a negative voltage, so the
    ///   word is garbage) or above the 36 V the input is specified for.
    public func readMeasurement() async throws -> PowerMeasurement {
        try await self.core.readMeasurement()
    }
}

extension INA226: INA2xxChip {
    public static var modelName: String { "INA226" }

    public static var errorWording: INA2xxErrorWording {
        INA2xxErrorWording(
            shuntExamples: "R100 printed on it = 0.1 Ω, R010 = 0.01 Ω",
            shuntFullScale: "81.92 mV",
            notAcceptedAdvice: "check the wiring and that nothing else on the bus writes to this chip"
        )
    }

    /// CVRF and OVF are in the mask/enable register, read with every sample.
    static var readyRegister: UInt8 { Register.maskEnable }
    static var conversionReady: UInt16 { Register.conversionReady }
    static var flagsRegister: UInt8? { Register.maskEnable }

    static func setup(shuntOhms: Double, maximumCurrent: Double, currentLSB: Double?) throws(INA2xxErrorCode) -> Setup {
        let calibration = try Self.calibration(shuntOhms: shuntOhms, maximumCurrent: maximumCurrent, currentLSB: currentLSB)
        let shuntVolts = maximumCurrent * shuntOhms
        guard shuntVolts <= Self.shuntFullScaleVolts * (1 + 1e-9) else { throw .shuntVoltageBeyondRange(volts: shuntVolts) }
        return Setup(calibration: calibration)
    }

    /// The manufacturer id (0x5449, "TI") and die id (0x226x), so another chip at the address is named.
    static func identityProblem(on device: any I2CDevice) async throws(I2CError) -> INA2xxErrorCode? {
        let manufacturer = try await device.readWordMSBFirst(Register.manufacturerID)
        let die = try await device.readWordMSBFirst(Register.dieID)
        guard manufacturer == Self.manufacturerID, die >> 4 == Self.deviceID else {
            return .wrongChip(manufacturerID: manufacturer, dieID: die)
        }
        return nil
    }

    static func measurement(from sample: INA2xxRawSample, setup: Setup) -> PowerMeasurement {
        let busVolts = Self.busVolts(register: sample.bus)
        let overflow = (sample.flags ?? 0) & Register.mathOverflow != 0
        // The ADC clips at its limits: the real current may be anything larger.
        let saturated = sample.shunt == 0x7FFF || sample.shunt == 0x8000
        return PowerMeasurement(
            sample: sample,
            calibration: setup.calibration,
            busVolts: busVolts,
            shuntVolts: Self.shuntVolts(register: sample.shunt),
            voltagePlausible: sample.bus & 0x8000 == 0 && Self.plausibleBusVolts.contains(busVolts),
            currentPlausible: !overflow && !saturated
        )
    }
}

/// An INA226 that cannot be set up as configured, or that answered but did not behave like one, with what a
/// resident can do about it.
public typealias INA226Error = INA2xxError<INA226>
