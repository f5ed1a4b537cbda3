import Synchronization

/// An INA226 register map on a simulated I²C bus, modelled on the TI datasheet (SBOS547) rather than on any driver.
///
/// Wire protocol (datasheet §7.5.3): a write message starts with the register pointer; two more bytes (MSB first)
/// write that register; a write of the pointer alone only moves it. Reads return the pointed register, MSB first,
/// without auto-increment.
///
/// | ptr | register | model |
/// |---|---|---|
/// | 00 | configuration | read/write; POR 0x4127; bits 14:12 always read 100; writing bit 15 resets every register |
/// | 01 | shunt voltage | 2.5 µV counts, clipped to ±32767/−32768 |
/// | 02 | bus voltage | 1.25 mV counts, 0…0x7FFF (bit 15 always 0) |
/// | 03 | power | `trunc(|current| · bus / 20000)` |
/// | 04 | current | `trunc(shunt · calibration / 2048)` |
/// | 05 | calibration | read/write; bit 15 always reads 0 |
/// | 06 | mask/enable | bits 15:10, 1, 0 read/write; CVRF (bit 3) set by each conversion and cleared by reading this register or writing the configuration; OVF (bit 2) from the last conversion |
/// | 07 | alert limit | read/write (alert comparisons are not modelled) |
/// | FE | manufacturer id | 0x5449 |
/// | FF | die id | 0x2260 |
///
/// Conversions follow the mode field as on the INA219 model: a configuration write starts one conversion
/// (triggered) or the conversion loop (continuous), taking ``setConversionDuration(reads:)`` read transfers
/// (default 0); in continuous mode every later read sees a fresh conversion. Current and power are computed at the
/// end of a conversion with the calibration in force then, so they read 0 while the calibration is 0.
///
/// ```swift
/// let chip = SimulatedINA226()
/// chip.setLoad(busVolts: 12.8, amps: 1.5, shuntOhms: 0.01)
/// bus.attach(chip, at: 0x40)
/// ```
public final class SimulatedINA226: SimulatedI2CChip {
    /// One transfer the chip acknowledged, as it appeared on the wire.
    public enum Transfer: Sendable, Hashable {
        /// A write message.
        case write([UInt8])
        /// A read message of `count` bytes.
        case read(count: Int)
        /// A write, a repeated start and a read of `count` bytes.
        case writeRead([UInt8], count: Int)
    }

    /// The configuration register after power-on or a reset: 1 sample, 1.1 ms conversions, shunt and bus continuous.
    public static let powerOnConfiguration: UInt16 = 0x4127
    /// The die id register: device 0x226, revision 0.
    public static let dieID: UInt16 = 0x2260

    private enum Pointer {
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
    }

    private enum MaskEnable {
        /// The bits a write changes: the alert functions (15:10), APOL (1) and LEN (0).
        static let writable: UInt16 = 0xFC03
        static let conversionReady: UInt16 = 0x0008
        static let mathOverflow: UInt16 = 0x0004
    }

    private struct State {
        var configuration = SimulatedINA226.powerOnConfiguration
        var calibration: UInt16 = 0
        var shuntRegister: UInt16 = 0
        var busRegister: UInt16 = 0
        var power: UInt16 = 0
        var current: UInt16 = 0
        var maskEnable: UInt16 = 0
        var alertLimit: UInt16 = 0
        var conversionReady = false
        var mathOverflow = false
        var pointer: UInt8 = 0

        /// The analog inputs in ADC counts (2.5 µV, 1.25 mV), before the ADC's range clips them.
        var shuntInput = 0
        var busInput = 0

        var conversionReads = 0
        /// Reads left before the running conversion completes; nil when none is running.
        var readsUntilConversion: Int?

        var nacksLeft = 0
        var stuckRegisters: [UInt8: UInt16] = [:]
        var manufacturerID: UInt16 = INA226.manufacturerID
        var dieID: UInt16 = SimulatedINA226.dieID
        var transfers: [Transfer] = []

        init() {
            self.powerOnReset()
        }

        var mode: UInt16 { self.configuration & 0b111 }
        var isContinuous: Bool { self.mode >= 5 }

        mutating func powerOnReset() {
            self.configuration = SimulatedINA226.powerOnConfiguration
            self.calibration = 0
            self.shuntRegister = 0
            self.busRegister = 0
            self.power = 0
            self.current = 0
            self.maskEnable = 0
            self.alertLimit = 0
            self.conversionReady = false
            self.mathOverflow = false
            self.pointer = 0
            self.readsUntilConversion = self.conversionReads
        }

        mutating func acknowledge() throws(I2CError.Code) {
            if self.nacksLeft > 0 {
                self.nacksLeft -= 1
                throw .noAcknowledge
            }
        }

        mutating func receive(_ bytes: [UInt8]) {
            guard let pointer = bytes.first else { return }
            self.pointer = pointer
            guard bytes.count >= 3 else { return }
            self.write(UInt16(bytes[1]) << 8 | UInt16(bytes[2]), to: pointer)
        }

        mutating func write(_ value: UInt16, to pointer: UInt8) {
            switch pointer {
            case Pointer.configuration:
                if value & 0x8000 != 0 {
                    self.powerOnReset()
                    return
                }
                // Bits 14:12 are fixed at 100.
                self.configuration = 0x4000 | value & 0x0FFF
                self.conversionReady = false
                // 000 and 100 are both power-down.
                self.readsUntilConversion = self.mode == 0 || self.mode == 4 ? nil : self.conversionReads
            case Pointer.calibration:
                self.calibration = value & 0x7FFF
            case Pointer.maskEnable:
                self.maskEnable = value & MaskEnable.writable
            case Pointer.alertLimit:
                self.alertLimit = value
            default:
                break
            }
        }

        mutating func transmit(count: Int) -> [UInt8] {
            self.advanceConversion()
            let value = self.stuckRegisters[self.pointer] ?? self.read(self.pointer)
            if self.pointer == Pointer.maskEnable { self.conversionReady = false }
            let word = [UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
            return (0..<count).map { word[$0 % 2] }
        }

        func read(_ pointer: UInt8) -> UInt16 {
            switch pointer {
            case Pointer.configuration: self.configuration
            case Pointer.shuntVoltage: self.shuntRegister
            case Pointer.busVoltage: self.busRegister
            case Pointer.power: self.power
            case Pointer.current: self.current
            case Pointer.calibration: self.calibration
            case Pointer.maskEnable:
                self.maskEnable | (self.conversionReady ? MaskEnable.conversionReady : 0)
                    | (self.mathOverflow ? MaskEnable.mathOverflow : 0)
            case Pointer.alertLimit: self.alertLimit
            case Pointer.manufacturerID: self.manufacturerID
            case Pointer.dieID: self.dieID
            default: 0
            }
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

        mutating func convert() {
            let mode = self.mode
            if mode & 0b001 != 0 {
                self.shuntRegister = UInt16(bitPattern: Int16(clamping: self.shuntInput))
            }
            if mode & 0b010 != 0 {
                self.busRegister = UInt16(min(max(self.busInput, 0), 0x7FFF))
            }
            let current = Int(Int16(bitPattern: self.shuntRegister)) * Int(self.calibration) / 2048
            let power = current.magnitude * UInt(self.busRegister) / 20000
            self.current = UInt16(bitPattern: Int16(clamping: current))
            self.power = UInt16(clamping: power)
            self.mathOverflow = Int16(exactly: current) == nil || UInt16(exactly: power) == nil
            self.conversionReady = true
        }
    }

    private let state = Mutex(State())

    /// Creates a chip fresh from power-on, with these inputs.
    ///
    /// - Parameters:
    ///   - busVolts: the voltage at VBUS against ground, V.
    ///   - shuntVolts: the voltage from IN+ to IN−, V.
    public init(busVolts: Double = 0, shuntVolts: Double = 0) {
        self.setElectrical(busVolts: busVolts, shuntVolts: shuntVolts)
    }

    // MARK: SimulatedI2CChip

    public func receive(_ bytes: [UInt8]) throws(I2CError.Code) {
        try self.state.withLock { state throws(I2CError.Code) in
            try state.acknowledge()
            state.transfers.append(.write(bytes))
            state.receive(bytes)
        }
    }

    public func transmit(count: Int) throws(I2CError.Code) -> [UInt8] {
        try self.state.withLock { state throws(I2CError.Code) in
            try state.acknowledge()
            state.transfers.append(.read(count: count))
            return state.transmit(count: count)
        }
    }

    /// One combined transfer: acknowledged (or NACKed) once, recorded once, atomic against other threads.
    public func receiveThenTransmit(_ bytes: [UInt8], count: Int) throws(I2CError.Code) -> [UInt8] {
        try self.state.withLock { state throws(I2CError.Code) in
            try state.acknowledge()
            state.transfers.append(.writeRead(bytes, count: count))
            state.receive(bytes)
            return state.transmit(count: count)
        }
    }

    // MARK: Inspection

    /// Every transfer the chip acknowledged since creation or the last ``clearTransfers()``.
    public var transfers: [Transfer] { self.state.withLock { $0.transfers } }

    /// Forgets the recorded transfers.
    public func clearTransfers() {
        self.state.withLock { $0.transfers.removeAll() }
    }

    /// A register's value as a read would return it now, without the side effects of a bus read.
    public func peekRegister(_ pointer: UInt8) -> UInt16 {
        self.state.withLock { $0.stuckRegisters[pointer] ?? $0.read(pointer) }
    }

    // MARK: Inputs

    /// Sets the analog inputs the next conversions measure.
    ///
    /// - Parameters:
    ///   - busVolts: the voltage at VBUS against ground, V (the ADC reads 0 for anything negative).
    ///   - shuntVolts: the voltage from IN+ to IN−, V; negative when current flows backwards (charging).
    public func setElectrical(busVolts: Double, shuntVolts: Double) {
        let bus = counts(busVolts, per: INA226.busVoltageLSB)
        let shunt = counts(shuntVolts, per: INA226.shuntVoltageLSB)
        self.state.withLock { state in
            state.busInput = bus
            state.shuntInput = shunt
        }
    }

    /// Sets the inputs from a load: `amps` through a shunt of `shuntOhms`, with `busVolts` at VBUS.
    public func setLoad(busVolts: Double, amps: Double, shuntOhms: Double) {
        self.setElectrical(busVolts: busVolts, shuntVolts: amps * shuntOhms)
    }

    /// Sets the analog inputs as raw ADC counts: shunt in 2.5 µV, bus in 1.25 mV (clipped by the ranges on conversion).
    public func setRawInputs(shuntCount: Int, busCount: Int) {
        self.state.withLock { state in
            state.shuntInput = shuntCount
            state.busInput = busCount
        }
    }

    // MARK: Timing and faults

    /// How many read transfers a conversion takes before CVRF is set and the result registers update (default 0).
    public func setConversionDuration(reads: Int) {
        self.state.withLock { $0.conversionReads = max(0, reads) }
    }

    /// NACKs the next `count` transfers, as a chip with a loose wire does.
    public func nackNextTransfers(_ count: Int) {
        self.state.withLock { $0.nacksLeft = max(0, count) }
    }

    /// A brown-out: every register returns to its power-on value (calibration 0), as after a supply dip.
    public func simulateBrownOut() {
        self.state.withLock { $0.powerOnReset() }
    }

    /// Makes a register read `value` whatever the chip computes (a stuck or garbled register), or ends that fault
    /// with nil.
    public func setStuckRegister(_ pointer: UInt8, value: UInt16?) {
        self.state.withLock { $0.stuckRegisters[pointer] = value }
    }

    /// Makes the id registers read other values, as a different chip at the address would.
    public func setIDs(manufacturer: UInt16, die: UInt16) {
        self.state.withLock { state in
            state.manufacturerID = manufacturer
            state.dieID = die
        }
    }

    /// Ends every injected fault (NACKs, stuck registers, foreign ids); inputs, registers and timing stay.
    public func clearFaults() {
        self.state.withLock { state in
            state.nacksLeft = 0
            state.stuckRegisters.removeAll()
            state.manufacturerID = INA226.manufacturerID
            state.dieID = SimulatedINA226.dieID
        }
    }
}

/// `volts` in whole ADC counts of `lsb`, bounded so that absurd inputs clip instead of trapping.
private func counts(_ volts: Double, per lsb: Double) -> Int {
    precondition(volts.isFinite, "an input voltage must be a finite number")
    return Int(min(max((volts / lsb).rounded(), -1e9), 1e9))
}
