import Synchronization

// The register map both simulated TI power monitors (``SimulatedINA219``, ``SimulatedINA226``) share: pointer
// writes and MSB-first words, the conversion timing driven by the mode field, the current and power
// calculations, power-on reset, and the injected faults. Each chip file holds only its parameters
// (``SimulatedINA2xxModel``) and its own setters.

/// One transfer a simulated INA2xx acknowledged, as it appeared on the wire.
public enum SimulatedINA2xxTransfer: Sendable, Hashable {
    /// A write message.
    case write([UInt8])
    /// A read message of `count` bytes.
    case read(count: Int)
    /// A write, a repeated start and a read of `count` bytes.
    case writeRead([UInt8], count: Int)
}

/// What differs between the simulated INA2xx register maps.
struct SimulatedINA2xxModel: Sendable {
    /// The configuration register after power-on or a reset.
    var powerOnConfiguration: UInt16
    /// Configuration bits that always read the same (INA226 bits 14:12 = 100), and the bits a write sets.
    var configurationFixedBits: UInt16 = 0
    var configurationWritableBits: UInt16 = 0xFFFF
    /// The calibration register's stored bits.
    var calibrationMask: UInt16
    /// Volts per count of the shunt and bus ADCs.
    var shuntLSB: Double
    var busLSB: Double
    /// The shunt register's range for a configuration (the INA219's PGA).
    var shuntBounds: @Sendable (_ configuration: UInt16) -> ClosedRange<Int>
    /// The largest bus count for a configuration (the INA219's BRNG).
    var busFullScale: @Sendable (_ configuration: UInt16) -> Int
    /// `current = shunt · calibration / currentDivisor`, `power = |current| · bus / powerDivisor`.
    var currentDivisor: Int
    var powerDivisor: UInt
    /// Where the bus count sits in the bus voltage register (INA219: bits 15:3).
    var busShift: UInt16 = 0
    /// The register that shows the conversion-ready and math-overflow flags, and their bits.
    var flagsRegister: UInt8
    var conversionReadyBit: UInt16
    var mathOverflowBit: UInt16
    /// The register whose read clears the conversion-ready flag.
    var readyClearedBy: UInt8
    /// Further read/write registers (power-on value 0) with the bits a write changes.
    var otherRegisters: [UInt8: UInt16] = [:]
    /// Read-only id registers and their values.
    var idRegisters: [UInt8: UInt16] = [:]
}

/// A simulated INA2xx: the chip-specific class holds a ``SimulatedINA2xxRegisters`` and gets the bus side,
/// inspection, inputs and faults from this protocol's extension.
public protocol SimulatedINA2xxChip: SimulatedI2CChip {
    /// The chip's register map.
    var registers: SimulatedINA2xxRegisters { get }
}

/// The state of a simulated INA2xx, shared by its bus side and its setters. Opaque outside the package.
public final class SimulatedINA2xxRegisters: Sendable {
    private let state: Mutex<State>
    let model: SimulatedINA2xxModel

    init(_ model: SimulatedINA2xxModel) {
        self.model = model
        self.state = Mutex(State(model: model))
    }

    func withState<Result>(_ body: (inout State) throws(I2CError.Code) -> Result) throws(I2CError.Code) -> Result {
        try self.state.withLock { state throws(I2CError.Code) in try body(&state) }
    }

    func withState<Result>(_ body: (inout State) -> Result) -> Result {
        self.state.withLock { body(&$0) }
    }

    struct State {
        let model: SimulatedINA2xxModel
        var configuration: UInt16
        var calibration: UInt16 = 0
        var shuntRegister: UInt16 = 0
        /// The bus voltage count, without the flags.
        var busCount: UInt16 = 0
        var power: UInt16 = 0
        var current: UInt16 = 0
        var conversionReady = false
        var mathOverflow = false
        var pointer: UInt8 = 0
        var otherRegisters: [UInt8: UInt16] = [:]
        var idRegisters: [UInt8: UInt16]

        /// The analog inputs in ADC counts, before the ADC's range clips them.
        var shuntInput = 0
        var busInput = 0

        /// Read transfers a conversion takes.
        var conversionReads = 0
        /// Reads left before the running conversion completes; nil when none is running.
        var readsUntilConversion: Int?

        var nacksLeft = 0
        var stuckRegisters: [UInt8: UInt16] = [:]
        var transfers: [SimulatedINA2xxTransfer] = []

        init(model: SimulatedINA2xxModel) {
            self.model = model
            self.configuration = model.powerOnConfiguration
            self.idRegisters = model.idRegisters
            self.powerOnReset()
        }

        var mode: UInt16 { self.configuration & 0b111 }
        var isContinuous: Bool { self.mode >= 5 }

        /// Every register to its power-on value; the chip starts converting continuously at once.
        mutating func powerOnReset() {
            self.configuration = self.model.powerOnConfiguration
            self.calibration = 0
            self.shuntRegister = 0
            self.busCount = 0
            self.power = 0
            self.current = 0
            self.otherRegisters = self.model.otherRegisters.mapValues { _ in 0 }
            self.conversionReady = false
            self.mathOverflow = false
            self.pointer = 0
            self.readsUntilConversion = self.conversionReads
        }

        /// Every transfer starts with the address byte: a NACK fault refuses it before the chip sees anything.
        mutating func acknowledge() throws(I2CError.Code) {
            if self.nacksLeft > 0 {
                self.nacksLeft -= 1
                throw .noAcknowledge
            }
        }

        mutating func receive(_ bytes: [UInt8]) {
            guard let pointer = bytes.first else { return }
            self.pointer = pointer
            // A pointer with only one data byte is an incomplete write: the chip ignores it.
            guard bytes.count >= 3 else { return }
            self.write(UInt16(bytes[1]) << 8 | UInt16(bytes[2]), to: pointer)
        }

        mutating func write(_ value: UInt16, to pointer: UInt8) {
            switch pointer {
            case INA2xxRegister.configuration:
                if value & 0x8000 != 0 {
                    self.powerOnReset()
                    return
                }
                self.configuration = self.model.configurationFixedBits | value & self.model.configurationWritableBits
                self.conversionReady = false
                // Power-down (000) and ADC off / power-down (100) convert nothing.
                self.readsUntilConversion = self.mode == 0 || self.mode == 4 ? nil : self.conversionReads
            case INA2xxRegister.calibration:
                self.calibration = value & self.model.calibrationMask
            default:
                // Shunt, bus, power, current and the ids are read-only.
                if let writable = self.model.otherRegisters[pointer] {
                    self.otherRegisters[pointer] = value & writable
                }
            }
        }

        mutating func transmit(count: Int) -> [UInt8] {
            self.advanceConversion()
            let value = self.stuckRegisters[self.pointer] ?? self.read(self.pointer)
            if self.pointer == self.model.readyClearedBy { self.conversionReady = false }
            let word = [UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
            return (0..<count).map { word[$0 % 2] }
        }

        func read(_ pointer: UInt8) -> UInt16 {
            let value: UInt16 =
                switch pointer {
                case INA2xxRegister.configuration: self.configuration
                case INA2xxRegister.shuntVoltage: self.shuntRegister
                case INA2xxRegister.busVoltage: self.busCount << self.model.busShift
                case INA2xxRegister.power: self.power
                case INA2xxRegister.current: self.current
                case INA2xxRegister.calibration: self.calibration
                default: self.otherRegisters[pointer] ?? self.idRegisters[pointer] ?? 0
                }
            guard pointer == self.model.flagsRegister else { return value }
            return value | (self.conversionReady ? self.model.conversionReadyBit : 0)
                | (self.mathOverflow ? self.model.mathOverflowBit : 0)
        }

        mutating func advanceConversion() {
            guard let left = self.readsUntilConversion else { return }
            if left > 0 {
                self.readsUntilConversion = left - 1
                return
            }
            self.convert()
            self.readsUntilConversion = self.isContinuous ? self.conversionReads : nil
        }

        /// One conversion of the channels the mode selects, then the current and power calculations.
        mutating func convert() {
            let mode = self.mode
            if mode & 0b001 != 0 {
                let bounds = self.model.shuntBounds(self.configuration)
                self.shuntRegister = UInt16(bitPattern: Int16(min(max(self.shuntInput, bounds.lowerBound), bounds.upperBound)))
            }
            if mode & 0b010 != 0 {
                self.busCount = UInt16(min(max(self.busInput, 0), self.model.busFullScale(self.configuration)))
            }
            let current = Int(Int16(bitPattern: self.shuntRegister)) * Int(self.calibration) / self.model.currentDivisor
            let power = current.magnitude * UInt(self.busCount) / self.model.powerDivisor
            self.current = UInt16(bitPattern: Int16(clamping: current))
            self.power = UInt16(clamping: power)
            self.mathOverflow = Int16(exactly: current) == nil || UInt16(exactly: power) == nil
            self.conversionReady = true
        }
    }
}

extension SimulatedINA2xxChip {
    /// One transfer the chip acknowledged, as it appeared on the wire.
    public typealias Transfer = SimulatedINA2xxTransfer

    // MARK: SimulatedI2CChip

    public func receive(_ bytes: [UInt8]) throws(I2CError.Code) {
        try self.registers.withState { state throws(I2CError.Code) in
            try state.acknowledge()
            state.transfers.append(.write(bytes))
            state.receive(bytes)
        }
    }

    public func transmit(count: Int) throws(I2CError.Code) -> [UInt8] {
        try self.registers.withState { state throws(I2CError.Code) in
            try state.acknowledge()
            state.transfers.append(.read(count: count))
            return state.transmit(count: count)
        }
    }

    /// One combined transfer: acknowledged (or NACKed) once, recorded once, atomic against other threads.
    public func receiveThenTransmit(_ bytes: [UInt8], count: Int) throws(I2CError.Code) -> [UInt8] {
        try self.registers.withState { state throws(I2CError.Code) in
            try state.acknowledge()
            state.transfers.append(.writeRead(bytes, count: count))
            state.receive(bytes)
            return state.transmit(count: count)
        }
    }

    // MARK: Inspection

    /// Every transfer the chip acknowledged since creation or the last ``clearTransfers()``.
    public var transfers: [Transfer] { self.registers.withState { $0.transfers } }

    /// Forgets the recorded transfers.
    public func clearTransfers() {
        self.registers.withState { $0.transfers.removeAll() }
    }

    /// A register's value as a read would return it now, without the side effects of a bus read (no conversion
    /// step, conversion-ready flag not cleared).
    public func peekRegister(_ pointer: UInt8) -> UInt16 {
        self.registers.withState { $0.stuckRegisters[pointer] ?? $0.read(pointer) }
    }

    // MARK: Inputs

    /// Sets the analog inputs the next conversions measure.
    ///
    /// - Parameters:
    ///   - busVolts: the voltage at the bus input against ground, V (the ADC reads 0 for anything negative).
    ///   - shuntVolts: the voltage from IN+ to IN−, V; negative when current flows backwards (charging).
    public func setElectrical(busVolts: Double, shuntVolts: Double) {
        let bus = counts(busVolts, per: self.registers.model.busLSB)
        let shunt = counts(shuntVolts, per: self.registers.model.shuntLSB)
        self.registers.withState { state in
            state.busInput = bus
            state.shuntInput = shunt
        }
    }

    /// Sets the inputs from a load: `amps` through a shunt of `shuntOhms`, with `busVolts` on its load side.
    public func setLoad(busVolts: Double, amps: Double, shuntOhms: Double) {
        self.setElectrical(busVolts: busVolts, shuntVolts: amps * shuntOhms)
    }

    /// Sets the analog inputs as raw ADC counts of the shunt and bus LSBs (clipped by the ranges on conversion).
    public func setRawInputs(shuntCount: Int, busCount: Int) {
        self.registers.withState { state in
            state.shuntInput = shuntCount
            state.busInput = busCount
        }
    }

    // MARK: Timing and faults

    /// How many read transfers a conversion takes before the conversion-ready flag is set and the result
    /// registers update (default 0).
    public func setConversionDuration(reads: Int) {
        self.registers.withState { $0.conversionReads = max(0, reads) }
    }

    /// NACKs the next `count` transfers, as a chip with a loose wire does.
    public func nackNextTransfers(_ count: Int) {
        self.registers.withState { $0.nacksLeft = max(0, count) }
    }

    /// A brown-out: every register returns to its power-on value (calibration 0), as after a supply dip.
    public func simulateBrownOut() {
        self.registers.withState { $0.powerOnReset() }
    }

    /// Makes a register read `value` whatever the chip computes (a stuck or garbled register), or ends that fault
    /// with nil.
    public func setStuckRegister(_ pointer: UInt8, value: UInt16?) {
        self.registers.withState { $0.stuckRegisters[pointer] = value }
    }

    /// Ends every injected fault (NACKs, stuck registers, foreign ids); inputs, registers and timing stay.
    public func clearFaults() {
        self.registers.withState { state in
            state.nacksLeft = 0
            state.stuckRegisters.removeAll()
            state.idRegisters = state.model.idRegisters
        }
    }
}

/// `volts` in whole ADC counts of `lsb`, bounded so that absurd inputs clip instead of trapping.
private func counts(_ volts: Double, per lsb: Double) -> Int {
    precondition(volts.isFinite, "an input voltage must be a finite number")
    return Int(min(max((volts / lsb).rounded(), -1e9), 1e9))
}
