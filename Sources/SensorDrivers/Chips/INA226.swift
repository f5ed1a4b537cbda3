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
    /// Register pointers, ids and bits (datasheet §7.6).
    enum Register {
        static let configuration: UInt8 = 0x00
        static let shuntVoltage: UInt8 = 0x01
        static let busVoltage: UInt8 = 0x02
        static let power: UInt8 = 0x03
        static let current: UInt8 = 0x04
        static let calibration: UInt8 = 0x05
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
        let result = ShuntCalibration.make(
            shuntOhms: shuntOhms,
            maximumCurrent: maximumCurrent,
            currentLSB: currentLSB,
            chip: Self.calibrationConstants
        )
        switch result {
        case .success(let calibration):
            return calibration
        case .failure(.shuntNotPositive):
            throw .shuntNotPositive(ohms: shuntOhms)
        case .failure(.maximumCurrentNotPositive):
            throw .maximumCurrentNotPositive(amps: maximumCurrent)
        case .failure(.currentLSBTooSmall(let minimum)):
            throw .currentLSBTooSmall(lsb: currentLSB ?? 0, minimum: minimum)
        case .failure(.calibrationOutOfRange(let value)):
            throw .calibrationOutOfRange(value: value)
        }
    }

    /// The bus voltage in a bus voltage register value, V: `register · 1.25 mV`.
    public static func busVolts(register: UInt16) -> Double {
        Double(register) * Self.busVoltageLSB
    }

    /// The shunt voltage in a shunt voltage register value, V: a two's-complement count of 2.5 µV.
    public static func shuntVolts(register: UInt16) -> Double {
        Double(Int16(bitPattern: register)) * Self.shuntVoltageLSB
    }

    /// The registers of one reading, as the chip holds them.
    private struct RawSample {
        var bus: UInt16
        var shunt: UInt16
        var current: UInt16
        var power: UInt16
        var maskEnable: UInt16
    }

    private struct State {
        /// False means "identify, write configuration and calibration before the next reading".
        var configured = false
        var chipResets = 0
    }

    private let device: any I2CDevice
    private let pause: Pause
    private let setup: Result<ShuntCalibration, INA226Error.Code>
    private let state = Mutex(State())

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
        self.device = device
        self.pause = pause
        self.setup = Result { () throws(INA226Error.Code) -> ShuntCalibration in
            let calibration = try Self.calibration(shuntOhms: shuntOhms, maximumCurrent: maximumCurrent, currentLSB: currentLSB)
            let shuntVolts = maximumCurrent * shuntOhms
            guard shuntVolts <= Self.shuntFullScaleVolts * (1 + 1e-9) else { throw .shuntVoltageBeyondRange(volts: shuntVolts) }
            return calibration
        }
    }

    public var chipName: String { "INA226" }

    /// The calibration the driver writes, or nil when the configuration is impossible.
    public var calibration: ShuntCalibration? { try? self.setup.get() }

    /// How often the calibration register was found changed (0 after a power-on reset or brown-out) and the chip
    /// was set up again.
    public var chipResetCount: Int { self.state.withLock { $0.chipResets } }

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
        let calibration = try self.setup.mapError { INA226Error($0, bus: self.device.busName, address: self.device.address) }.get()
        do {
            if !self.state.withLock({ $0.configured }) { try await self.configure(calibration) }
            var sample = try await self.readSample()
            if try await self.calibrationLost(calibration) {
                self.state.withLock { $0.chipResets += 1 }
                try await self.configure(calibration)
                sample = try await self.readSample()
                if try await self.calibrationLost(calibration) { throw self.error(.calibrationLost) }
            }
            return Self.measurement(from: sample, calibration: calibration)
        } catch {
            // Any failure may mean a brown-out or a re-plugged module: set the chip up again next time.
            self.state.withLock { $0.configured = false }
            throw error
        }
    }

    // MARK: - Set-up

    private func configure(_ calibration: ShuntCalibration) async throws {
        let manufacturer = try await self.device.readWordMSBFirst(Register.manufacturerID)
        let die = try await self.device.readWordMSBFirst(Register.dieID)
        guard manufacturer == Self.manufacturerID, die >> 4 == Self.deviceID else {
            throw self.error(.wrongChip(manufacturerID: manufacturer, dieID: die))
        }
        try await self.device.writeWordMSBFirst(Register.configuration, Self.configurationRegister)
        try await self.device.writeWordMSBFirst(Register.calibration, calibration.register)
        for (register, written) in [(Register.configuration, Self.configurationRegister), (Register.calibration, calibration.register)] {
            let read = try await self.device.readWordMSBFirst(register)
            guard read == written else {
                throw self.error(.configurationNotAccepted(register: register, wrote: written, read: read))
            }
        }
        // Writing the configuration restarts the averaging; current and power are valid after one full cycle.
        try await self.pause(Self.conversionCycle)
        for attempt in 0..<Self.readyPolls {
            if attempt > 0 { try await self.pause(Self.readyPollInterval) }
            let flags = try await self.device.readWordMSBFirst(Register.maskEnable)
            if flags & Register.conversionReady != 0 {
                self.state.withLock { $0.configured = true }
                return
            }
        }
        throw self.error(.conversionDidNotFinish)
    }

    private func calibrationLost(_ calibration: ShuntCalibration) async throws(I2CError) -> Bool {
        try await self.device.readWordMSBFirst(Register.calibration) != calibration.register
    }

    // MARK: - Reading

    private func readSample() async throws(I2CError) -> RawSample {
        RawSample(
            bus: try await self.device.readWordMSBFirst(Register.busVoltage),
            shunt: try await self.device.readWordMSBFirst(Register.shuntVoltage),
            current: try await self.device.readWordMSBFirst(Register.current),
            power: try await self.device.readWordMSBFirst(Register.power),
            maskEnable: try await self.device.readWordMSBFirst(Register.maskEnable)
        )
    }

    private static func measurement(from sample: RawSample, calibration: ShuntCalibration) -> PowerMeasurement {
        let busVolts = Self.busVolts(register: sample.bus)
        let overflow = sample.maskEnable & Register.mathOverflow != 0
        // The ADC clips at its limits: the real current may be anything larger.
        let saturated = sample.shunt == 0x7FFF || sample.shunt == 0x8000
        let voltageQuality: ReadingQuality =
            sample.bus & 0x8000 == 0 && Self.plausibleBusVolts.contains(busVolts) ? .good : .implausible
        let currentQuality: ReadingQuality = overflow || saturated ? .implausible : .good
        return PowerMeasurement(
            busVolts: busVolts,
            shuntVolts: Self.shuntVolts(register: sample.shunt),
            amps: Double(Int16(bitPattern: sample.current)) * calibration.currentLSB,
            watts: Double(sample.power) * calibration.powerLSB,
            voltageQuality: voltageQuality,
            currentQuality: currentQuality,
            powerQuality: voltageQuality == .good && currentQuality == .good ? .good : .implausible
        )
    }

    private func error(_ code: INA226Error.Code) -> INA226Error {
        INA226Error(code, bus: self.device.busName, address: self.device.address)
    }
}

// MARK: - Errors

/// An INA226 that cannot be set up as configured, or that answered but did not behave like one, with what a
/// resident can do about it.
public struct INA226Error: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: Error, Sendable, Hashable {
        /// The configured shunt resistance is zero, negative or not a number.
        case shuntNotPositive(ohms: Double)
        /// The configured maximum current is zero, negative or not a number.
        case maximumCurrentNotPositive(amps: Double)
        /// `maximumCurrent · shuntOhms` is more than the 81.92 mV the shunt input can measure.
        case shuntVoltageBeyondRange(volts: Double)
        /// The configured current LSB cannot represent the maximum current (below `maximumCurrent / 2¹⁵`).
        case currentLSBTooSmall(lsb: Double, minimum: Double)
        /// The calibration value does not fit the register (shunt or current LSB far too small or too large).
        case calibrationOutOfRange(value: Int64)
        /// The id registers do not read 0x5449 / 0x226x.
        case wrongChip(manufacturerID: UInt16, dieID: UInt16)
        /// A register read back something other than what was just written.
        case configurationNotAccepted(register: UInt8, wrote: UInt16, read: UInt16)
        /// The conversion-ready flag stayed clear long after a conversion cycle.
        case conversionDidNotFinish
        /// The calibration register lost its value again right after being rewritten.
        case calibrationLost
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
        let at = "INA226 at \(hex(self.address)) on \(self.bus)"
        switch self.code {
        case .shuntNotPositive(let ohms):
            return "\(at): shunt resistance \(ohms) Ω is not usable: set shunt_ohms to the resistor's value "
                + "(R100 printed on it = 0.1 Ω, R010 = 0.01 Ω)"
        case .maximumCurrentNotPositive(let amps):
            return "\(at): maximum current \(amps) A is not usable: set max_current to the largest current expected, in A"
        case .shuntVoltageBeyondRange(let volts):
            return "\(at): the maximum current through the shunt drops \(millivolts(volts)) mV, more than the "
                + "81.92 mV the INA226 measures: check shunt_ohms and max_current, or use a smaller shunt"
        case .currentLSBTooSmall(let lsb, let minimum):
            return "\(at): current LSB \(lsb) A cannot count up to the maximum current; it must be at least \(minimum) A"
        case .calibrationOutOfRange(let value):
            return "\(at): calibration value \(value) does not fit the register: check shunt_ohms and max_current"
        case .wrongChip(let manufacturer, let die):
            let hint =
                manufacturer == 0x0000 || manufacturer == 0xFFFF
                ? " (an INA219 has no id registers; configure it as ina219)" : ""
            return "\(at): id registers read \(hex(manufacturer))/\(hex(die)), expected 0x5449/0x2260: "
                + "this is not an INA226\(hint)"
        case .configurationNotAccepted(let register, let wrote, let read):
            return "\(at): register \(hex(register)) reads \(hex(read)) after writing \(hex(wrote)): check the wiring "
                + "and that nothing else on the bus writes to this chip"
        case .conversionDidNotFinish:
            return "\(at): the chip never reported a finished conversion: power-cycle the sensor"
        case .calibrationLost:
            return "\(at): the calibration is lost as soon as it is written (the chip keeps resetting): "
                + "check its supply voltage and wiring"
        }
    }
}

/// "0x40", "0x5449": how addresses and registers are written in datasheets and `i2cget`.
private func hex(_ value: some FixedWidthInteger) -> String {
    let digits = String(value, radix: 16)
    let width = value.bitWidth / 4
    return "0x" + String(repeating: "0", count: max(0, width - digits.count)) + digits
}

private func millivolts(_ volts: Double) -> Double {
    (volts * 10_000).rounded() / 10
}
