import Synchronization

/// A BME280 (or BMP280) register map on a simulated I²C bus, modelled on the datasheet rather than on any driver.
///
/// The chip holds a 256-byte register file. Writes are register/value pairs (`[reg, value, reg, value, …]`,
/// datasheet §6.2.1); a write of a single byte only sets the register pointer, from which reads auto-increment.
/// Conversions happen the way the chip does them:
/// - `ctrl_hum` (0xF2) is latched only by the next write to `ctrl_meas` (0xF4);
/// - writing 0xF4 with mode forced runs one conversion into 0xF7…0xFE and returns the chip to sleep;
///   a channel with oversampling "skipped" reads as its marker (0x80000, or 0x8000 for humidity);
/// - in normal mode every read transfer sees a fresh conversion;
/// - writing 0xB6 to 0xE0 resets the control and data registers; the calibration survives (it is NVM).
///
/// The ADC counts come from ``setRawADC(temperature:pressure:humidity:)`` or, via the inverse of the datasheet
/// compensation, from physical values with ``setEnvironment(celsius:hectopascal:percentRH:)``. The counts are
/// served at full 20-bit resolution whatever the oversampling (the real chip loses the low bits at ×1).
///
/// ```swift
/// let chip = SimulatedBME280()                 // pimoroni reference calibration, chip id 0x60
/// chip.setEnvironment(celsius: 21.5, hectopascal: 1013.2, percentRH: 55)
/// bus.attach(chip, at: 0x76)
/// ```
public final class SimulatedBME280: SimulatedI2CChip {
    /// A measurement channel, for faults that concern one channel.
    public enum Channel: Sendable, Hashable, CaseIterable {
        case temperature
        case pressure
        case humidity
    }

    /// Raw ADC counts: 20-bit temperature and pressure, 16-bit humidity.
    public struct RawADC: Sendable, Hashable {
        public var temperature: Int32
        public var pressure: Int32
        public var humidity: Int32

        public init(temperature: Int32, pressure: Int32, humidity: Int32) {
            self.temperature = temperature
            self.pressure = pressure
            self.humidity = humidity
        }
    }

    /// One transfer the chip acknowledged, as it appeared on the wire.
    public enum Transfer: Sendable, Hashable {
        /// A write message.
        case write([UInt8])
        /// A read message of `count` bytes.
        case read(count: Int)
        /// A write, a repeated start and a read of `count` bytes.
        case writeRead([UInt8], count: Int)
    }

    /// Vector B's calibration (pimoroni `bme280-python` test fixture): the default chip's trimming.
    public static let referenceCalibration = BME280.Calibration(
        t1: 28009, t2: 25654, t3: 50,
        p1: 39145, p2: -10750, p3: 3024, p4: 5667, p5: -120, p6: -7, p7: 15500, p8: -14600, p9: 6000,
        h1: 75, h2: 376, h3: 0, h4: 286, h5: 50, h6: 30
    )

    /// Vector B's ADC counts: 24.79 °C, 1006.61 hPa, 68.67 %RH with ``referenceCalibration``.
    public static let referenceADC = RawADC(temperature: 529_191, pressure: 326_816, humidity: 30_281)

    private enum Address {
        static let calibration0x88: UInt8 = 0x88
        static let calibration0xE1: UInt8 = 0xE1
        static let chipID: UInt8 = 0xD0
        static let reset: UInt8 = 0xE0
        static let ctrlHum: UInt8 = 0xF2
        static let status: UInt8 = 0xF3
        static let ctrlMeas: UInt8 = 0xF4
        static let config: UInt8 = 0xF5
        static let pressureMSB: UInt8 = 0xF7
        static let temperatureMSB: UInt8 = 0xFA
        static let humidityMSB: UInt8 = 0xFD
    }

    private struct State {
        var registers = [UInt8](repeating: 0, count: 256)
        var pointer: UInt8 = 0
        let chipID: UInt8
        let hasHumidity: Bool
        var raw: RawADC
        /// osrs_h as latched by the last ctrl_meas write; the value in 0xF2 alone does nothing.
        var latchedHumidityOversampling: UInt8 = 0
        /// Status reads that see `measuring` before a forced conversion completes; nil when none is running.
        var conversionStatusReadsLeft: Int?
        var measuringStatusReads = 0
        var nvmCopyStatusReadsLeft = 0
        var nvmCopyStatusReads = 0
        var nacksLeft = 0
        var corruptedChipID: UInt8?
        var forcedSkips: Set<Channel> = []
        var stuckMeasuring = false
        var transfers: [Transfer] = []

        init(chipID: UInt8, registers0x88: [UInt8], registers0xE1: [UInt8], raw: RawADC) {
            self.chipID = chipID
            self.hasHumidity = BME280.Variant(chipID: chipID)?.measuresHumidity ?? true
            self.raw = raw
            for (offset, byte) in registers0x88.prefix(26).enumerated() { self.registers[0x88 + offset] = byte }
            if self.hasHumidity {
                for (offset, byte) in registers0xE1.prefix(7).enumerated() { self.registers[0xE1 + offset] = byte }
            }
            self.resetControlAndData()
        }

        var mode: UInt8 { self.registers[Int(Address.ctrlMeas)] & 0b11 }

        var calibration: BME280.Calibration {
            BME280.Calibration(
                registers0x88: Array(self.registers[0x88...0xA1]),
                registers0xE1: self.hasHumidity ? Array(self.registers[0xE1...0xE7]) : []
            )
        }

        /// Every transfer starts with the address byte: a NACK fault refuses it before the chip sees anything.
        mutating func acknowledge() throws(I2CError.Code) {
            if self.nacksLeft > 0 {
                self.nacksLeft -= 1
                throw .noAcknowledge
            }
        }

        mutating func receive(_ bytes: [UInt8]) {
            var index = bytes.startIndex
            while index < bytes.endIndex {
                let register = bytes[index]
                self.pointer = register
                let valueIndex = index + 1
                guard valueIndex < bytes.endIndex else { break }
                self.write(bytes[valueIndex], to: register)
                index += 2
            }
        }

        mutating func transmit(count: Int) -> [UInt8] {
            if self.mode == 0b11 { self.convert() }
            var bytes: [UInt8] = []
            bytes.reserveCapacity(count)
            for _ in 0..<count {
                bytes.append(self.read(self.pointer))
                self.pointer &+= 1
            }
            return bytes
        }

        mutating func write(_ value: UInt8, to register: UInt8) {
            switch register {
            case Address.reset:
                // Any value other than 0xB6 is ignored (datasheet §5.4.2).
                if value == 0xB6 { self.softReset() }
            case Address.ctrlHum:
                // A BMP280 has no humidity block: the register does not exist.
                if self.hasHumidity { self.registers[Int(register)] = value & 0x07 }
            case Address.ctrlMeas:
                self.registers[Int(register)] = value
                self.latchedHumidityOversampling = self.registers[Int(Address.ctrlHum)] & 0x07
                if value & 0b11 == 0b01 || value & 0b11 == 0b10 { self.startForcedConversion() }
            case Address.config:
                // "Writes to the config register in normal mode may be ignored": modelled strictly. Bit 1 is reserved.
                if self.mode != 0b11 { self.registers[Int(register)] = value & 0b1111_1101 }
            default:
                // Calibration, chip id, status and data registers are read-only.
                break
            }
        }

        mutating func read(_ register: UInt8) -> UInt8 {
            switch register {
            case Address.chipID: return self.corruptedChipID ?? self.chipID
            case Address.reset: return 0x00
            case Address.status: return self.readStatus()
            default: return self.registers[Int(register)]
            }
        }

        mutating func readStatus() -> UInt8 {
            var status: UInt8 = 0
            if self.nvmCopyStatusReadsLeft > 0 {
                status |= 0x01
                self.nvmCopyStatusReadsLeft -= 1
            }
            if self.stuckMeasuring {
                status |= 0x08
            } else if let left = self.conversionStatusReadsLeft {
                status |= 0x08
                if left <= 1 { self.finishForcedConversion() } else { self.conversionStatusReadsLeft = left - 1 }
            }
            return status
        }

        mutating func startForcedConversion() {
            self.conversionStatusReadsLeft = self.measuringStatusReads
            if self.measuringStatusReads == 0 && !self.stuckMeasuring { self.finishForcedConversion() }
        }

        mutating func finishForcedConversion() {
            self.convert()
            self.conversionStatusReadsLeft = nil
            // Forced mode returns to sleep after its one conversion.
            self.registers[Int(Address.ctrlMeas)] &= 0b1111_1100
        }

        /// Fills the data registers from the raw counts, as the oversampling fields (and skip faults) allow.
        mutating func convert() {
            let ctrlMeas = self.registers[Int(Address.ctrlMeas)]
            func measured(_ channel: Channel, oversampling: UInt8) -> Bool {
                oversampling & 0x07 != 0 && !self.forcedSkips.contains(channel)
            }
            let marker = BME280.SkipMarker.temperatureOrPressure
            let pressure = measured(.pressure, oversampling: ctrlMeas >> 2) ? self.raw.pressure : marker
            let temperature = measured(.temperature, oversampling: ctrlMeas >> 5) ? self.raw.temperature : marker
            self.store20Bit(pressure, at: Address.pressureMSB)
            self.store20Bit(temperature, at: Address.temperatureMSB)
            if self.hasHumidity {
                let humidity =
                    measured(.humidity, oversampling: self.latchedHumidityOversampling)
                    ? self.raw.humidity : BME280.SkipMarker.humidity
                self.registers[Int(Address.humidityMSB)] = UInt8(truncatingIfNeeded: humidity >> 8)
                self.registers[Int(Address.humidityMSB) + 1] = UInt8(truncatingIfNeeded: humidity)
            }
        }

        mutating func store20Bit(_ value: Int32, at msb: UInt8) {
            let index = Int(msb)
            self.registers[index] = UInt8(truncatingIfNeeded: value >> 12)
            self.registers[index + 1] = UInt8(truncatingIfNeeded: value >> 4)
            self.registers[index + 2] = UInt8(truncatingIfNeeded: value << 4)
        }

        mutating func softReset() {
            self.resetControlAndData()
            self.nvmCopyStatusReadsLeft = self.nvmCopyStatusReads
        }

        /// Power-on values (datasheet Table 18): control registers 0, data registers hold the skip markers.
        mutating func resetControlAndData() {
            for register in [Address.ctrlHum, Address.ctrlMeas, Address.config] { self.registers[Int(register)] = 0 }
            self.latchedHumidityOversampling = 0
            self.conversionStatusReadsLeft = nil
            self.store20Bit(BME280.SkipMarker.temperatureOrPressure, at: Address.pressureMSB)
            self.store20Bit(BME280.SkipMarker.temperatureOrPressure, at: Address.temperatureMSB)
            if self.hasHumidity {
                self.registers[Int(Address.humidityMSB)] = 0x80
                self.registers[Int(Address.humidityMSB) + 1] = 0x00
            }
        }
    }

    private let state: Mutex<State>

    /// Creates a chip from raw calibration register images, as dumped from a real part.
    ///
    /// - Parameters:
    ///   - chipID: the chip id register: 0x60 for a BME280, 0x58 (or 0x56/0x57) for a BMP280, which then has no
    ///     humidity registers.
    ///   - registers0x88: the 26 bytes at 0x88…0xA1.
    ///   - registers0xE1: the 7 bytes at 0xE1…0xE7 (ignored for a BMP280).
    ///   - rawADC: the counts the first conversion produces; vector B's by default.
    public init(
        chipID: UInt8 = 0x60,
        registers0x88: [UInt8],
        registers0xE1: [UInt8],
        rawADC: RawADC = SimulatedBME280.referenceADC
    ) {
        self.state = Mutex(State(chipID: chipID, registers0x88: registers0x88, registers0xE1: registers0xE1, raw: rawADC))
    }

    /// Creates a chip whose calibration NVM holds `calibration`, encoded as the datasheet lays it out.
    public convenience init(chipID: UInt8 = 0x60, calibration: BME280.Calibration = SimulatedBME280.referenceCalibration) {
        self.init(chipID: chipID, registers0x88: calibration.registerImage0x88, registers0xE1: calibration.registerImage0xE1)
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

    /// The stored value of a register, without the side effects of a bus read (status countdowns, normal mode).
    public func peekRegister(_ register: UInt8) -> UInt8 {
        self.state.withLock { $0.registers[Int(register)] }
    }

    /// The counts the next conversion will produce.
    public var rawADC: RawADC { self.state.withLock { $0.raw } }

    /// The calibration currently in the NVM image registers.
    public var calibration: BME280.Calibration { self.state.withLock { $0.calibration } }

    // MARK: Environment

    /// Sets the counts the next conversion produces.
    ///
    /// - Parameters:
    ///   - temperature: 20-bit `adc_T`, 0…0xFFFFF.
    ///   - pressure: 20-bit `adc_P`, 0…0xFFFFF.
    ///   - humidity: 16-bit `adc_H`, 0…0xFFFF; a BMP280 ignores it.
    public func setRawADC(temperature: Int32, pressure: Int32, humidity: Int32 = BME280.SkipMarker.humidity) {
        precondition((0...0xF_FFFF).contains(temperature) && (0...0xF_FFFF).contains(pressure), "adc_T and adc_P are 20-bit")
        precondition((0...0xFFFF).contains(humidity), "adc_H is 16-bit")
        self.state.withLock { $0.raw = RawADC(temperature: temperature, pressure: pressure, humidity: humidity) }
    }

    /// Sets the counts that make the datasheet integer compensation report these physical values.
    ///
    /// Each compensation is monotonic in its count, so the counts are found by binary search: `adc_T` for the
    /// temperature, then `adc_P` and `adc_H` with that temperature's `t_fine`. Values the 20/16-bit ADC cannot
    /// represent with this calibration come out as the nearest representable ones. The skip markers are never
    /// chosen, as a driver would rightly read them as "no data".
    ///
    /// - Returns: the counts chosen.
    @discardableResult
    public func setEnvironment(celsius: Double, hectopascal: Double, percentRH: Double) -> RawADC {
        self.state.withLock { state in
            let calibration = state.calibration
            let temperature = Self.closestCount(
                in: 0...0xF_FFFF, avoiding: BME280.SkipMarker.temperatureOrPressure, to: celsius * 5120
            ) { Double(calibration.compensateTemperature(adcT: $0).tFine) }
            let tFine = calibration.compensateTemperature(adcT: temperature).tFine
            // Pressure falls as adc_P rises; searching the negated value keeps the search ascending.
            let pressure = Self.closestCount(
                in: 0...0xF_FFFF, avoiding: BME280.SkipMarker.temperatureOrPressure, to: -hectopascal * 25600
            ) { -Double(calibration.compensatePressure(adcP: $0, tFine: tFine)) }
            let humidity = Self.closestCount(in: 0...0xFFFF, avoiding: BME280.SkipMarker.humidity, to: percentRH * 1024) {
                Double(calibration.compensateHumidity(adcH: $0, tFine: tFine))
            }
            state.raw = RawADC(temperature: temperature, pressure: pressure, humidity: humidity)
            return state.raw
        }
    }

    /// The count in `range` whose value is closest to `target`, for a non-decreasing `value`.
    private static func closestCount(
        in range: ClosedRange<Int32>,
        avoiding marker: Int32,
        to target: Double,
        value: (Int32) -> Double
    ) -> Int32 {
        // The smallest count reaching the target; its predecessor may be closer from below.
        var low = range.lowerBound
        var high = range.upperBound
        while low < high {
            let middle = low + (high - low) / 2
            if value(middle) >= target { high = middle } else { low = middle + 1 }
        }
        var candidates = [low]
        if low > range.lowerBound { candidates.append(low - 1) }
        if candidates.contains(marker) { candidates = [marker - 1, marker + 1].filter { range.contains($0) } }
        return candidates.min { abs(value($0) - target) < abs(value($1) - target) } ?? low
    }

    // MARK: Timing and faults

    /// How many status reads see `measuring` set after a forced trigger before the data registers update
    /// (default 0: the conversion is finished by the first poll).
    public func setMeasuringDuration(statusReads: Int) {
        self.state.withLock { $0.measuringStatusReads = max(0, statusReads) }
    }

    /// How many status reads see `im_update` set after a soft reset (default 0).
    public func setNVMCopyDuration(statusReads: Int) {
        self.state.withLock { $0.nvmCopyStatusReads = max(0, statusReads) }
    }

    /// NACKs the next `count` transfers, as a chip with a loose wire or a brown-out does.
    public func nackNextTransfers(_ count: Int) {
        self.state.withLock { $0.nacksLeft = max(0, count) }
    }

    /// Makes the chip id register read `corruptedID`, as a different or broken chip would.
    public func corruptChipID(reportAs corruptedID: UInt8 = 0x00) {
        self.state.withLock { $0.corruptedChipID = corruptedID }
    }

    /// Makes conversions treat `channels` as oversampling "skipped" (as when a ctrl write was lost), so their data
    /// registers hold the skip markers. An empty set ends the fault.
    public func forceSkipped(_ channels: Set<Channel>) {
        self.state.withLock { $0.forcedSkips = channels }
    }

    /// Makes the status `measuring` bit stay set and forced conversions never complete, or ends that fault.
    public func setStuckMeasuring(_ stuck: Bool) {
        self.state.withLock { $0.stuckMeasuring = stuck }
    }

    /// Ends every injected fault; timing settings and the environment stay.
    public func clearFaults() {
        self.state.withLock { state in
            state.nacksLeft = 0
            state.corruptedChipID = nil
            state.forcedSkips = []
            state.stuckMeasuring = false
        }
    }
}

extension BME280.Calibration {
    /// The 26 bytes of registers 0x88…0xA1 that hold these constants (0xA0 reserved, read as zero).
    public var registerImage0x88: [UInt8] {
        func littleEndian(_ value: UInt16) -> [UInt8] { [UInt8(truncatingIfNeeded: value), UInt8(truncatingIfNeeded: value >> 8)] }
        func littleEndian(_ value: Int16) -> [UInt8] { littleEndian(UInt16(bitPattern: value)) }
        var image = littleEndian(self.t1) + littleEndian(self.t2) + littleEndian(self.t3) + littleEndian(self.p1)
        for constant in [self.p2, self.p3, self.p4, self.p5, self.p6, self.p7, self.p8, self.p9] {
            image += littleEndian(constant)
        }
        return image + [0x00, self.h1]
    }

    /// The 7 bytes of registers 0xE1…0xE7; H4 and H5 are 12-bit, so only their low 12 bits are stored.
    public var registerImage0xE1: [UInt8] {
        let h2 = UInt16(bitPattern: self.h2)
        return [
            UInt8(truncatingIfNeeded: h2), UInt8(truncatingIfNeeded: h2 >> 8),
            self.h3,
            UInt8(truncatingIfNeeded: self.h4 >> 4),
            UInt8(truncatingIfNeeded: self.h4 & 0x0F) | UInt8(truncatingIfNeeded: self.h5 & 0x0F) << 4,
            UInt8(truncatingIfNeeded: self.h5 >> 4),
            UInt8(bitPattern: self.h6),
        ]
    }
}
