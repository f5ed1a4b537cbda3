internal import KiezboxCore
import Synchronization

// What the TI INA219 and INA226 drivers share: the register pointers both chips have, the set-up with its
// read-back and conversion-ready wait, the reset detection through the calibration register, the step from
// register values to a ``PowerMeasurement`` with qualities, and the errors with their messages for residents.
// Each chip file holds only its constants, conversions and chip-specific checks.

/// A TI INA2xx power monitor as its driver's errors name it. ``INA219`` and ``INA226`` are the models.
public protocol INA2xxModel: Sendable {
    /// The chip's name in messages ("INA219").
    static var modelName: String { get }
    /// The chip-specific parts of the messages in ``INA2xxError``.
    static var errorWording: INA2xxErrorWording { get }
}

/// The chip-specific parts of an INA2xx driver's messages to residents.
public struct INA2xxErrorWording: Sendable {
    /// How shunt values are printed on the resistor ("R100 printed on it = 0.1 Ω").
    let shuntExamples: String
    /// The shunt input's full scale as written in messages ("320 mV").
    let shuntFullScale: String
    /// What to check when a register does not read back what was written.
    let notAcceptedAdvice: String
}

/// The register pointers every INA2xx has (INA219 datasheet §8.6, INA226 datasheet §7.6).
enum INA2xxRegister {
    static let configuration: UInt8 = 0x00
    static let shuntVoltage: UInt8 = 0x01
    static let busVoltage: UInt8 = 0x02
    static let power: UInt8 = 0x03
    static let current: UInt8 = 0x04
    static let calibration: UInt8 = 0x05
}

/// What an INA2xx driver writes, worked out once from the configured shunt and current.
protocol INA2xxSetup: Sendable {
    var calibration: ShuntCalibration { get }
    /// The configuration register value.
    var configuration: UInt16 { get }
}

/// The registers of one reading, as the chip holds them.
struct INA2xxRawSample {
    var bus: UInt16
    var shunt: UInt16
    var current: UInt16
    var power: UInt16
    /// The flags register read after the power register (INA226 mask/enable), nil on chips without one.
    var flags: UInt16?
}

/// What differs between the INA2xx chips for the shared driver core.
protocol INA2xxChip: INA2xxModel {
    associatedtype Setup: INA2xxSetup

    /// The constants of the datasheet's calibration recipe.
    static var calibrationConstants: ShuntCalibration.ChipConstants { get }
    /// One conversion cycle with the driver's configuration.
    static var conversionCycle: Duration { get }
    /// Conversion-ready polls after the cycle, ``readyPollInterval`` apart.
    static var readyPolls: Int { get }
    static var readyPollInterval: Duration { get }
    /// The register that holds the conversion-ready bit, and the bit.
    static var readyRegister: UInt8 { get }
    static var conversionReady: UInt16 { get }
    /// The register read after the power register with every sample, if any.
    static var flagsRegister: UInt8? { get }

    /// The set-up for a shunt and a maximum current, or why there is none.
    static func setup(shuntOhms: Double, maximumCurrent: Double, currentLSB: Double?) throws(INA2xxErrorCode) -> Setup
    /// Checks, before anything is written, that the chip at the address is this model: nil when it is.
    static func identityProblem(on device: any I2CDevice) async throws(I2CError) -> INA2xxErrorCode?
    /// Converts one reading's registers.
    static func measurement(from sample: INA2xxRawSample, setup: Setup) -> PowerMeasurement
}

extension INA2xxChip {
    static var flagsRegister: UInt8? { nil }

    static func identityProblem(on device: any I2CDevice) async throws(I2CError) -> INA2xxErrorCode? { nil }

    /// The datasheet's calibration (see ``ShuntCalibration``), with its problems as error codes.
    static func checkedCalibration(
        shuntOhms: Double,
        maximumCurrent: Double,
        currentLSB: Double?
    ) throws(INA2xxErrorCode) -> ShuntCalibration {
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
}

extension PowerMeasurement {
    /// One reading from its registers: current and power scaled by the calibration, power no better than the
    /// voltage and current it is made of.
    init(
        sample: INA2xxRawSample,
        calibration: ShuntCalibration,
        busVolts: Double,
        shuntVolts: Double,
        voltagePlausible: Bool,
        currentPlausible: Bool
    ) {
        let voltageQuality: ReadingQuality = voltagePlausible ? .good : .implausible
        let currentQuality: ReadingQuality = currentPlausible ? .good : .implausible
        self.init(
            busVolts: busVolts,
            shuntVolts: shuntVolts,
            amps: Double(Int16(bitPattern: sample.current)) * calibration.currentLSB,
            watts: Double(sample.power) * calibration.powerLSB,
            voltageQuality: voltageQuality,
            currentQuality: currentQuality,
            powerQuality: voltageQuality == .good && currentQuality == .good ? .good : .implausible
        )
    }
}

/// The driver logic every INA2xx shares. It sets the chip up on the first measurement and again after any
/// failure, and after a reading checks the calibration register: one that no longer reads what was written
/// (0 after a power-on reset or brown-out, sensors.md §11) means the current and power just read are
/// worthless, so the chip is set up again and read once more.
final class INA2xxCore<Chip: INA2xxChip>: Sendable {
    private struct State {
        /// False means "(identify,) write configuration and calibration before the next reading".
        var configured = false
        var chipResets = 0
    }

    let device: any I2CDevice
    private let pause: Pause
    let setup: Result<Chip.Setup, INA2xxErrorCode>
    private let state = Mutex(State())

    init(device: any I2CDevice, shuntOhms: Double, maximumCurrent: Double, currentLSB: Double?, pause: @escaping Pause) {
        self.device = device
        self.pause = pause
        self.setup = Result { () throws(INA2xxErrorCode) -> Chip.Setup in
            try Chip.setup(shuntOhms: shuntOhms, maximumCurrent: maximumCurrent, currentLSB: currentLSB)
        }
    }

    var chipResetCount: Int { self.state.withLock { $0.chipResets } }

    func readMeasurement() async throws -> PowerMeasurement {
        let setup = try self.setup.mapError { self.error($0) }.get()
        do {
            if !self.state.withLock({ $0.configured }) { try await self.configure(setup) }
            var sample = try await self.readSample()
            if try await self.calibrationLost(setup) {
                self.state.withLock { $0.chipResets += 1 }
                try await self.configure(setup)
                sample = try await self.readSample()
                if try await self.calibrationLost(setup) { throw self.error(.calibrationLost) }
            }
            return Chip.measurement(from: sample, setup: setup)
        } catch {
            // Any failure may mean a brown-out or a re-plugged module: set the chip up again next time.
            self.state.withLock { $0.configured = false }
            throw error
        }
    }

    // MARK: - Set-up

    private func configure(_ setup: Chip.Setup) async throws {
        if let problem = try await Chip.identityProblem(on: self.device) { throw self.error(problem) }
        let written = [
            (INA2xxRegister.configuration, setup.configuration),
            (INA2xxRegister.calibration, setup.calibration.register),
        ]
        for (register, value) in written {
            try await self.device.writeWordMSBFirst(register, value)
        }
        // Reading back catches a different chip at the address (an INA226 keeps its own reserved bits) and a
        // write lost on the bus.
        for (register, wrote) in written {
            let read = try await self.device.readWordMSBFirst(register)
            guard read == wrote else {
                throw self.error(.configurationNotAccepted(register: register, wrote: wrote, read: read))
            }
        }
        // Writing the configuration restarts the conversion (and averaging); current and power are valid after
        // one full cycle.
        try await self.pause(Chip.conversionCycle)
        for attempt in 0..<Chip.readyPolls {
            if attempt > 0 { try await self.pause(Chip.readyPollInterval) }
            let flags = try await self.device.readWordMSBFirst(Chip.readyRegister)
            if flags & Chip.conversionReady != 0 {
                self.state.withLock { $0.configured = true }
                return
            }
        }
        throw self.error(.conversionDidNotFinish)
    }

    private func calibrationLost(_ setup: Chip.Setup) async throws(I2CError) -> Bool {
        try await self.device.readWordMSBFirst(INA2xxRegister.calibration) != setup.calibration.register
    }

    // MARK: - Reading

    private func readSample() async throws(I2CError) -> INA2xxRawSample {
        // Power after the others: on the INA219 reading it clears CNVR, so the next reading can tell a fresh
        // conversion.
        var sample = INA2xxRawSample(
            bus: try await self.device.readWordMSBFirst(INA2xxRegister.busVoltage),
            shunt: try await self.device.readWordMSBFirst(INA2xxRegister.shuntVoltage),
            current: try await self.device.readWordMSBFirst(INA2xxRegister.current),
            power: try await self.device.readWordMSBFirst(INA2xxRegister.power)
        )
        if let flagsRegister = Chip.flagsRegister {
            sample.flags = try await self.device.readWordMSBFirst(flagsRegister)
        }
        return sample
    }

    func error(_ code: INA2xxErrorCode) -> INA2xxError<Chip> {
        INA2xxError(code, bus: self.device.busName, address: self.device.address)
    }
}

// MARK: - Errors

/// Why an INA2xx cannot be set up as configured, or how it answered but did not behave like one.
public enum INA2xxErrorCode: Error, Sendable, Hashable {
    /// The configured shunt resistance is zero, negative or not a number.
    case shuntNotPositive(ohms: Double)
    /// The configured maximum current is zero, negative or not a number.
    case maximumCurrentNotPositive(amps: Double)
    /// `maximumCurrent · shuntOhms` is more than the shunt input can measure (INA219 320 mV, INA226 81.92 mV).
    case shuntVoltageBeyondRange(volts: Double)
    /// The configured current LSB cannot represent the maximum current (below `maximumCurrent / 2¹⁵`).
    case currentLSBTooSmall(lsb: Double, minimum: Double)
    /// The calibration value does not fit the register (shunt or current LSB far too small or too large).
    case calibrationOutOfRange(value: Int64)
    /// The id registers do not read 0x5449 / 0x226x (INA226 only: an INA219 has no id registers).
    case wrongChip(manufacturerID: UInt16, dieID: UInt16)
    /// A register read back something other than what was just written.
    case configurationNotAccepted(register: UInt8, wrote: UInt16, read: UInt16)
    /// The conversion-ready bit stayed clear long after a conversion cycle.
    case conversionDidNotFinish
    /// The calibration register lost its value again right after being rewritten.
    case calibrationLost
}

/// An INA2xx that cannot be set up as configured, or that answered but did not behave like one, with what a
/// resident can do about it.
public struct INA2xxError<Chip: INA2xxModel>: Error, Sendable, Hashable, CustomStringConvertible {
    public typealias Code = INA2xxErrorCode

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
        let name = Chip.modelName
        let wording = Chip.errorWording
        let at = "\(name) at \(hex(self.address)) on \(self.bus)"
        switch self.code {
        case .shuntNotPositive(let ohms):
            return "\(at): shunt resistance \(ohms) Ω is not usable: set shunt_ohms to the resistor's value "
                + "(\(wording.shuntExamples))"
        case .maximumCurrentNotPositive(let amps):
            return "\(at): maximum current \(amps) A is not usable: set max_current to the largest current expected, in A"
        case .shuntVoltageBeyondRange(let volts):
            return "\(at): the maximum current through the shunt drops \(millivolts(volts)) mV, more than the "
                + "\(wording.shuntFullScale) the \(name) measures: check shunt_ohms and max_current, or use a smaller shunt"
        case .currentLSBTooSmall(let lsb, let minimum):
            return "\(at): current LSB \(lsb) A cannot count up to the maximum current; it must be at least \(minimum) A"
        case .calibrationOutOfRange(let value):
            return "\(at): calibration value \(value) does not fit the register: check shunt_ohms and max_current"
        case .wrongChip(let manufacturer, let die):
            let hint =
                manufacturer == 0x0000 || manufacturer == 0xFFFF
                ? " (an INA219 has no id registers; configure it as ina219)" : ""
            return "\(at): id registers read \(hex(manufacturer))/\(hex(die)), expected 0x5449/0x2260: "
                + "this is not an \(name)\(hint)"
        case .configurationNotAccepted(let register, let wrote, let read):
            return "\(at): register \(hex(register)) reads \(hex(read)) after writing \(hex(wrote)): "
                + wording.notAcceptedAdvice
        case .conversionDidNotFinish:
            return "\(at): the chip never reported a finished conversion: power-cycle the sensor"
        case .calibrationLost:
            return "\(at): the calibration is lost as soon as it is written (the chip keeps resetting): "
                + "check its supply voltage and wiring"
        }
    }
}

/// "0x40", "0x5d98": how addresses and registers are written in datasheets and `i2cget`.
private func hex(_ value: some FixedWidthInteger) -> String {
    let digits = String(value, radix: 16)
    let width = value.bitWidth / 4
    return "0x" + String(repeating: "0", count: max(0, width - digits.count)) + digits
}

private func millivolts(_ volts: Double) -> Double {
    (volts * 10_000).rounded() / 10
}
