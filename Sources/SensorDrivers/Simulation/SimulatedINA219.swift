import Synchronization

/// An INA219 register map on a simulated I²C bus, modelled on the TI datasheet (SBOS448) rather than on any driver.
///
/// Wire protocol (datasheet §8.5.6): a write message starts with the register pointer; two more bytes (MSB first)
/// write that register; a write of the pointer alone only moves it. Reads return the pointed register, MSB first,
/// without auto-increment. Six registers:
///
/// | ptr | register | model |
/// |---|---|---|
/// | 00 | configuration | read/write; POR 0x399F; writing bit 15 resets every register, the bit clears itself |
/// | 01 | shunt voltage | 10 µV counts, clipped to the PGA range (±4000 × 2^PG) |
/// | 02 | bus voltage | count of 4 mV in bits 15:3 (clipped to 16 V or 32 V by BRNG), CNVR bit 1, OVF bit 0 |
/// | 03 | power | `trunc(|current| · bus / 5000)`; reading it clears CNVR |
/// | 04 | current | `trunc(shunt · calibration / 4096)` |
/// | 05 | calibration | read/write; bit 0 always reads 0 |
///
/// Conversions follow the mode field: a configuration write clears CNVR and starts one conversion (triggered
/// modes) or the conversion loop (continuous modes); power-down and ADC-off convert nothing. A conversion takes
/// ``setConversionDuration(reads:)`` read transfers (default 0: done by the next read); in continuous mode every
/// later read then sees a fresh conversion, as a driver polling every second would. Current and power are
/// computed at the end of a conversion with the calibration in force then, so they read 0 while the calibration
/// is 0 (after power-on); OVF is set when either does not fit its register. The analog inputs come from
/// ``setElectrical(busVolts:shuntVolts:)`` or ``setLoad(busVolts:amps:shuntOhms:)``. The ADCs are modelled at
/// 12-bit resolution whatever BADC/SADC say.
///
/// ```swift
/// let chip = SimulatedINA219()
/// chip.setLoad(busVolts: 12.6, amps: 1.2, shuntOhms: 0.1)
/// bus.attach(chip, at: 0x40)
/// ```
public final class SimulatedINA219: SimulatedI2CChip {
    /// One transfer the chip acknowledged, as it appeared on the wire.
    public enum Transfer: Sendable, Hashable {
        /// A write message.
        case write([UInt8])
        /// A read message of `count` bytes.
        case read(count: Int)
        /// A write, a repeated start and a read of `count` bytes.
        case writeRead([UInt8], count: Int)
    }

    /// The configuration register after power-on or a reset: 32 V, PGA /8, 12 bit, shunt and bus continuous.
    public static let powerOnConfiguration: UInt16 = 0x399F

    private enum Pointer {
        static let configuration: UInt8 = 0x00
        static let shuntVoltage: UInt8 = 0x01
        static let busVoltage: UInt8 = 0x02
        static let power: UInt8 = 0x03
        static let current: UInt8 = 0x04
        static let calibration: UInt8 = 0x05
    }

    private struct State {
        var configuration = SimulatedINA219.powerOnConfiguration
        var calibration: UInt16 = 0
        var shuntRegister: UInt16 = 0
        /// The bus voltage count (bits 15:3 of the register), without the flags.
        var busCount: UInt16 = 0
        var power: UInt16 = 0
        var current: UInt16 = 0
        var conversionReady = false
        var mathOverflow = false
        var pointer: UInt8 = 0

        /// The analog inputs in ADC counts (10 µV, 4 mV), before the ADC's range clips them.
        var shuntInput = 0
        var busInput = 0

        /// Read transfers a conversion takes.
        var conversionReads = 0
        /// Reads left before the running conversion completes; nil when none is running.
        var readsUntilConversion: Int?

        var nacksLeft = 0
        var stuckRegisters: [UInt8: UInt16] = [:]
        var transfers: [Transfer] = []

        init() {
            self.powerOnReset()
        }

        var mode: UInt16 { self.configuration & 0b111 }
        var isContinuous: Bool { self.mode >= 5 }

        /// Every register to its power-on value; the chip starts converting continuously at once.
        mutating func powerOnReset() {
            self.configuration = SimulatedINA219.powerOnConfiguration
            self.calibration = 0
            self.shuntRegister = 0
            self.busCount = 0
            self.power = 0
            self.current = 0
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
            case Pointer.configuration:
                if value & 0x8000 != 0 {
                    self.powerOnReset()
                    return
                }
                self.configuration = value
                self.conversionReady = false
                // Power-down (000) and ADC off (100) convert nothing.
                self.readsUntilConversion = self.mode == 0 || self.mode == 4 ? nil : self.conversionReads
            case Pointer.calibration:
                // FS0 is a void bit: it always reads 0.
                self.calibration = value & 0xFFFE
            default:
                // Shunt, bus, power and current are read-only.
                break
            }
        }

        mutating func transmit(count: Int) -> [UInt8] {
            self.advanceConversion()
            let value = self.stuckRegisters[self.pointer] ?? self.read(self.pointer)
            // Reading the power register clears CNVR (datasheet §8.6.3.2).
            if self.pointer == Pointer.power { self.conversionReady = false }
            let word = [UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
            return (0..<count).map { word[$0 % 2] }
        }

        func read(_ pointer: UInt8) -> UInt16 {
            switch pointer {
            case Pointer.configuration: self.configuration
            case Pointer.shuntVoltage: self.shuntRegister
            case Pointer.busVoltage:
                self.busCount << 3 | (self.conversionReady ? 0b10 : 0) | (self.mathOverflow ? 0b01 : 0)
            case Pointer.power: self.power
            case Pointer.current: self.current
            case Pointer.calibration: self.calibration
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

        /// One conversion of the channels the mode selects, then the current and power calculations.
        mutating func convert() {
            let mode = self.mode
            if mode & 0b001 != 0 {
                let range = Int(INA219.ShuntRange(rawValue: self.configuration >> 11 & 0b11)?.fullScaleCount ?? 32000)
                self.shuntRegister = UInt16(bitPattern: Int16(min(max(self.shuntInput, -range), range)))
            }
            if mode & 0b010 != 0 {
                let fullScale = self.configuration & 0x2000 != 0 ? 8000 : 4000
                self.busCount = UInt16(min(max(self.busInput, 0), fullScale))
            }
            let current = Int(Int16(bitPattern: self.shuntRegister)) * Int(self.calibration) / 4096
            let power = current.magnitude * UInt(self.busCount) / 5000
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
    ///   - busVolts: the voltage at IN− against ground, V.
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

    /// A register's value as a read would return it now, without the side effects of a bus read (no conversion
    /// step, CNVR not cleared).
    public func peekRegister(_ pointer: UInt8) -> UInt16 {
        self.state.withLock { $0.stuckRegisters[pointer] ?? $0.read(pointer) }
    }

    // MARK: Inputs

    /// Sets the analog inputs the next conversions measure.
    ///
    /// - Parameters:
    ///   - busVolts: the voltage at IN− against ground, V (the ADC reads 0 for anything negative).
    ///   - shuntVolts: the voltage from IN+ to IN−, V; negative when current flows backwards (charging).
    public func setElectrical(busVolts: Double, shuntVolts: Double) {
        let bus = counts(busVolts, per: INA219.busVoltageLSB)
        let shunt = counts(shuntVolts, per: INA219.shuntVoltageLSB)
        self.state.withLock { state in
            state.busInput = bus
            state.shuntInput = shunt
        }
    }

    /// Sets the inputs from a load: `amps` through a shunt of `shuntOhms`, with `busVolts` on its load side.
    public func setLoad(busVolts: Double, amps: Double, shuntOhms: Double) {
        self.setElectrical(busVolts: busVolts, shuntVolts: amps * shuntOhms)
    }

    /// Sets the analog inputs as raw ADC counts: shunt in 10 µV, bus in 4 mV (clipped by the ranges on conversion).
    public func setRawInputs(shuntCount: Int, busCount: Int) {
        self.state.withLock { state in
            state.shuntInput = shuntCount
            state.busInput = busCount
        }
    }

    // MARK: Timing and faults

    /// How many read transfers a conversion takes before CNVR is set and the result registers update (default 0).
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

    /// Ends every injected fault; inputs, registers and timing stay.
    public func clearFaults() {
        self.state.withLock { state in
            state.nacksLeft = 0
            state.stuckRegisters.removeAll()
        }
    }
}

/// `volts` in whole ADC counts of `lsb`, bounded so that absurd inputs clip instead of trapping.
private func counts(_ volts: Double, per lsb: Double) -> Int {
    precondition(volts.isFinite, "an input voltage must be a finite number")
    return Int(min(max((volts / lsb).rounded(), -1e9), 1e9))
}
