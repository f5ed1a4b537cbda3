internal import KiezboxCore
import Synchronization

/// The Bosch BME280 (temperature, relative humidity, pressure) on I²C, and its humidity-less sibling, the BMP280.
///
/// Each ``measure()`` runs one conversion in forced mode with the datasheet's weather-station profile
/// (×1 oversampling on every channel, filter off, §3.5.1), which keeps self-heating negligible at one reading a
/// minute. Values are compensated with the datasheet's integer formulas (§4.2.3, the variant the Linux driver uses).
///
/// The chip is identified and its calibration loaded on the first measurement, and again after any failure,
/// because a failure may mean the sensor rail was power-cycled. A BMP280 (chip id 0x58, often sold as a
/// "BME280") is accepted and reports temperature and pressure only, unless `requireHumidity` is set.
///
/// ```swift
/// let climate = BME280(device: bus.device(at: 0x76))
/// let values = try await climate.measure()   // °C, %, hPa
/// ```
public final class BME280: SensorDriver {
    /// Which of the two register-compatible chips answered.
    public enum Variant: Sendable, Hashable {
        /// Temperature, humidity and pressure (chip id 0x60).
        case bme280
        /// Temperature and pressure only (chip id 0x58; 0x56/0x57 on engineering samples).
        case bmp280

        /// The chip id register value of a production part.
        public var chipID: UInt8 {
            switch self {
            case .bme280: 0x60
            case .bmp280: 0x58
            }
        }

        /// The name residents see in logs.
        public var name: String {
            switch self {
            case .bme280: "BME280"
            case .bmp280: "BMP280"
            }
        }

        /// Whether the chip has a humidity channel.
        public var measuresHumidity: Bool { self == .bme280 }

        /// The variant a chip id register value identifies, or nil for any other chip.
        public init?(chipID: UInt8) {
            switch chipID {
            case 0x60: self = .bme280
            case 0x56, 0x57, 0x58: self = .bmp280
            default: return nil
            }
        }
    }

    /// An oversampling setting (the `osrs_t`, `osrs_p`, `osrs_h` register fields).
    public enum Oversampling: UInt8, Sendable, Hashable, CaseIterable {
        /// The channel is not measured; its data registers hold the "skipped" marker.
        case skipped = 0
        case x1 = 1
        case x2 = 2
        case x4 = 3
        case x8 = 4
        case x16 = 5

        /// Decodes a 3-bit register field; the datasheet defines 110 and 111 as ×16 too.
        public init(field: UInt8) {
            self = Oversampling(rawValue: min(field & 0x07, Oversampling.x16.rawValue)) ?? .x16
        }

        /// How many samples the chip averages.
        public var factor: Int {
            switch self {
            case .skipped: 0
            case .x1: 1
            case .x2: 2
            case .x4: 4
            case .x8: 8
            case .x16: 16
            }
        }
    }

    /// Register addresses and fixed values from the datasheet (§5.3).
    enum Register {
        static let calibration0x88: UInt8 = 0x88
        static let calibration0x88Count = 26
        static let chipID: UInt8 = 0xD0
        static let reset: UInt8 = 0xE0
        static let calibration0xE1: UInt8 = 0xE1
        static let calibration0xE1Count = 7
        static let ctrlHum: UInt8 = 0xF2
        static let status: UInt8 = 0xF3
        static let ctrlMeas: UInt8 = 0xF4
        static let config: UInt8 = 0xF5
        static let data: UInt8 = 0xF7

        /// The only value that triggers a soft reset when written to ``reset``.
        static let resetCommand: UInt8 = 0xB6
        /// Status bit 3: a conversion is running.
        static let statusMeasuring: UInt8 = 0x08
        /// Status bit 0: the calibration NVM is being copied to the image registers.
        static let statusNVMCopying: UInt8 = 0x01
        /// ctrl_meas mode field (bits 1:0): 01 (or 10) starts one forced conversion.
        static let modeForced: UInt8 = 0b01
    }

    /// What the chip puts in the data registers of a channel whose oversampling is "skipped".
    public enum SkipMarker {
        /// 20-bit temperature and pressure channels.
        public static let temperatureOrPressure: Int32 = 0x80000
        /// 16-bit humidity channel.
        public static let humidity: Int32 = 0x8000
    }

    /// The datasheet's weather-station profile (§3.5.1): ×1 everywhere, filter off, forced mode.
    enum WeatherProfile {
        static let oversampling = Oversampling.x1
        static let ctrlHum = oversampling.rawValue
        static let config: UInt8 = 0x00
        static let ctrlMeas = oversampling.rawValue << 5 | oversampling.rawValue << 2 | Register.modeForced
    }

    /// How long to wait after a soft reset before the NVM copy can be polled (datasheet start-up time).
    static let startupTime = Duration.milliseconds(2)
    /// Bosch's driver polls `im_update` five times, 2 ms apart.
    static let nvmCopyPolls = 5
    /// Status polls after the computed conversion time, 1 ms apart: generous, yet a wedged chip fails in ~20 ms.
    static let measurementPolls = 10
    static let measurementPollInterval = Duration.milliseconds(1)

    /// Physical ranges the chip is specified for; values outside are flagged, not dropped.
    static let plausibleCelsius = -40.0...85.0
    static let plausibleHectopascal = 300.0...1100.0

    /// The upper bound of a conversion's duration, per Bosch's `bme280_cal_meas_delay`.
    ///
    /// `1250 + 2300·osT + (2300·osP + 575) + (2300·osH + 575)` µs, which is 9.3 ms at ×1 on every channel.
    public static func maximumMeasurementTime(
        temperature: Oversampling,
        pressure: Oversampling,
        humidity: Oversampling
    ) -> Duration {
        let microseconds = 1250 + 2300 * temperature.factor + (2300 * pressure.factor + 575) + (2300 * humidity.factor + 575)
        return .microseconds(microseconds)
    }

    /// What the driver keeps between measurements.
    private struct State {
        /// The chip as last identified and calibrated; nil means "initialise before the next conversion".
        var chip: IdentifiedChip?
        /// Survives failures so ``chipName`` keeps naming the part that was found.
        var lastVariant: Variant?
    }

    private struct IdentifiedChip {
        var variant: Variant
        var calibration: Calibration
    }

    /// Raw ADC counts as assembled from the data registers.
    private struct RawSample {
        var temperature: Int32
        var pressure: Int32
        var humidity: Int32?

        /// Assembles the counts from a burst of 0xF7…0xFC (and 0xFD…0xFE when `bytes` has 8):
        /// 20 bits for T and P (`msb<<12 | lsb<<4 | xlsb>>4`), 16 bits for H.
        init(dataRegisters bytes: [UInt8]) {
            func byte(_ offset: Int) -> Int32 { offset < bytes.count ? Int32(bytes[offset]) : 0 }
            func twentyBit(at offset: Int) -> Int32 { byte(offset) << 12 | byte(offset + 1) << 4 | byte(offset + 2) >> 4 }
            self.pressure = twentyBit(at: 0)
            self.temperature = twentyBit(at: 3)
            self.humidity = bytes.count >= 8 ? byte(6) << 8 | byte(7) : nil
        }
    }

    private let device: any I2CDevice
    private let pause: Pause
    private let requireHumidity: Bool
    private let state = Mutex(State())

    /// Creates a driver; nothing is sent until the first ``measure()``.
    ///
    /// - Parameters:
    ///   - device: the chip's I²C device, at 0x76 (SDO low) or 0x77 (SDO high).
    ///   - pause: how to wait for the chip; inject an instant pause in tests.
    ///   - requireHumidity: when true, a BMP280 is an error instead of a temperature-and-pressure sensor, for
    ///     setups that were promised humidity.
    public init(device: any I2CDevice, pause: @escaping Pause = realPause, requireHumidity: Bool = false) {
        self.device = device
        self.pause = pause
        self.requireHumidity = requireHumidity
    }

    /// "BME280", or "BMP280" once a BMP280 has been identified.
    public var chipName: String { self.detectedVariant?.name ?? Variant.bme280.name }

    /// The chip identified by the last successful initialisation, if any.
    public var detectedVariant: Variant? { self.state.withLock { $0.lastVariant } }

    /// Runs one forced conversion and returns temperature (°C), relative humidity (%) and pressure (hPa).
    ///
    /// A channel the chip reports as skipped is left out. Values outside the chip's specified range are
    /// returned with quality ``ReadingQuality/implausible``.
    ///
    /// - Throws: ``I2CError`` when the bus fails, ``BME280Error`` when the chip misbehaves. After either, the next
    ///   call identifies the chip and reloads its calibration again.
    public func measure() async throws -> [MeasuredValue] {
        do {
            let chip = try await self.identifiedChip()
            let sample = try await self.convert(on: chip.variant)
            return try self.measuredValues(from: sample, calibration: chip.calibration)
        } catch {
            // Any failure may mean a brown-out or a re-plugged sensor; re-identifying costs five transfers once.
            self.state.withLock { $0.chip = nil }
            throw error
        }
    }

    // MARK: - Initialisation

    private func identifiedChip() async throws -> IdentifiedChip {
        if let chip = self.state.withLock({ $0.chip }) { return chip }
        let chip = try await self.identifyAndCalibrate()
        self.state.withLock { state in
            state.chip = chip
            state.lastVariant = chip.variant
        }
        return chip
    }

    /// The datasheet init sequence: check the id, soft reset, wait for the NVM copy, read the calibration.
    private func identifyAndCalibrate() async throws -> IdentifiedChip {
        let chipID = try await self.device.readRegister(Register.chipID)
        guard let variant = Variant(chipID: chipID) else { throw self.error(.wrongChipID(found: chipID)) }
        if self.requireHumidity, !variant.measuresHumidity { throw self.error(.noHumidityChannel(found: chipID)) }

        // A reset puts the chip in a known state whatever a previous process or glitch left behind.
        try await self.device.writeRegister(Register.reset, Register.resetCommand)
        try await self.waitForNVMCopy()

        let image0x88 = try await self.readRegisters(Register.calibration0x88, count: Register.calibration0x88Count)
        // A floating or shorted bus reads as all zeros or all ones; compensating with that would give nonsense.
        if image0x88.allSatisfy({ $0 == 0x00 }) || image0x88.allSatisfy({ $0 == 0xFF }) {
            throw self.error(.blankCalibration)
        }
        let image0xE1: [UInt8] =
            if variant.measuresHumidity {
                try await self.readRegisters(Register.calibration0xE1, count: Register.calibration0xE1Count)
            } else {
                []
            }
        return IdentifiedChip(variant: variant, calibration: Calibration(registers0x88: image0x88, registers0xE1: image0xE1))
    }

    private func waitForNVMCopy() async throws {
        for _ in 0..<Self.nvmCopyPolls {
            try await self.pause(Self.startupTime)
            let status = try await self.device.readRegister(Register.status)
            if status & Register.statusNVMCopying == 0 { return }
        }
        throw self.error(.calibrationCopyDidNotFinish)
    }

    // MARK: - Conversion

    private func convert(on variant: Variant) async throws -> RawSample {
        let humidityOversampling: Oversampling = variant.measuresHumidity ? WeatherProfile.oversampling : .skipped
        // ctrl_hum only takes effect with the next ctrl_meas write, so it goes first; config is written while the
        // chip sleeps (between forced conversions), because writes in normal mode may be ignored.
        if variant.measuresHumidity {
            try await self.device.writeRegister(Register.ctrlHum, WeatherProfile.ctrlHum)
        }
        try await self.device.writeRegister(Register.config, WeatherProfile.config)
        try await self.device.writeRegister(Register.ctrlMeas, WeatherProfile.ctrlMeas)

        // Waiting the worst-case time first avoids the race where `measuring` is not yet set right after the trigger.
        try await self.pause(
            Self.maximumMeasurementTime(
                temperature: WeatherProfile.oversampling,
                pressure: WeatherProfile.oversampling,
                humidity: humidityOversampling
            )
        )
        try await self.waitForConversion()

        // One burst read: the chip shadows the data registers during a burst, so all channels are from one conversion.
        let bytes = try await self.readRegisters(Register.data, count: variant.measuresHumidity ? 8 : 6)
        return RawSample(dataRegisters: bytes)
    }

    private func waitForConversion() async throws {
        for attempt in 0..<Self.measurementPolls {
            if attempt > 0 { try await self.pause(Self.measurementPollInterval) }
            let status = try await self.device.readRegister(Register.status)
            if status & Register.statusMeasuring == 0 { return }
        }
        throw self.error(.measurementDidNotFinish)
    }

    private func measuredValues(from sample: RawSample, calibration: Calibration) throws -> [MeasuredValue] {
        // Without temperature there is no t_fine, so neither of the other channels can be compensated.
        guard sample.temperature != SkipMarker.temperatureOrPressure else { throw self.error(.temperatureSkipped) }

        let (centiCelsius, tFine) = calibration.compensateTemperature(adcT: sample.temperature)
        let celsius = Double(centiCelsius) / 100
        var values = [MeasuredValue(.temperature, celsius, quality: Self.quality(celsius, plausible: Self.plausibleCelsius))]

        if let adcH = sample.humidity, adcH != SkipMarker.humidity {
            // Clamped to 0…100 % by the compensation, so every value is physically possible; 100 % is fog, not a fault.
            let percent = Double(calibration.compensateHumidity(adcH: adcH, tFine: tFine)) / 1024
            values.append(MeasuredValue(.relativeHumidity, percent))
        }
        if sample.pressure != SkipMarker.temperatureOrPressure {
            let hectopascal = Double(calibration.compensatePressure(adcP: sample.pressure, tFine: tFine)) / 25600
            values.append(MeasuredValue(.pressure, hectopascal, quality: Self.quality(hectopascal, plausible: Self.plausibleHectopascal)))
        }
        return values
    }

    private static func quality(_ value: Double, plausible range: ClosedRange<Double>) -> ReadingQuality {
        range.contains(value) ? .good : .implausible
    }

    // MARK: - Helpers

    /// A burst read that insists on the full length, so parsing never indexes past what arrived.
    private func readRegisters(_ register: UInt8, count: Int) async throws(I2CError) -> [UInt8] {
        let bytes = try await self.device.readRegisters(register, count: count)
        // A short read is what the Linux adapter reports as EIO.
        guard bytes.count == count else { throw I2CError(.io(errno: 5), bus: self.device.busName, address: self.device.address) }
        return bytes
    }

    private func error(_ code: BME280Error.Code) -> BME280Error {
        BME280Error(code, bus: self.device.busName, address: self.device.address)
    }
}

// MARK: - Calibration and compensation

extension BME280 {
    /// The factory trimming constants (`dig_T1` … `dig_H6`) and the datasheet integer compensation that uses them.
    ///
    /// The compensation functions are the datasheet's §4.2.3 formulas transcribed with arithmetic `>>` (floor
    /// division), as the Linux `bmp280-core.c` driver does. Intermediate arithmetic wraps like the kernel's
    /// instead of trapping, so garbage calibration produces an implausible value rather than a crash.
    public struct Calibration: Sendable, Hashable {
        public var t1: UInt16
        public var t2: Int16
        public var t3: Int16
        public var p1: UInt16
        public var p2: Int16
        public var p3: Int16
        public var p4: Int16
        public var p5: Int16
        public var p6: Int16
        public var p7: Int16
        public var p8: Int16
        public var p9: Int16
        public var h1: UInt8
        public var h2: Int16
        public var h3: UInt8
        /// 12-bit signed.
        public var h4: Int16
        /// 12-bit signed.
        public var h5: Int16
        public var h6: Int8

        /// Creates a calibration from its constants; the humidity constants default to zero (a BMP280 has none).
        public init(
            t1: UInt16, t2: Int16, t3: Int16,
            p1: UInt16, p2: Int16, p3: Int16, p4: Int16, p5: Int16, p6: Int16, p7: Int16, p8: Int16, p9: Int16,
            h1: UInt8 = 0, h2: Int16 = 0, h3: UInt8 = 0, h4: Int16 = 0, h5: Int16 = 0, h6: Int8 = 0
        ) {
            (self.t1, self.t2, self.t3) = (t1, t2, t3)
            (self.p1, self.p2, self.p3, self.p4, self.p5, self.p6, self.p7, self.p8, self.p9) = (p1, p2, p3, p4, p5, p6, p7, p8, p9)
            (self.h1, self.h2, self.h3, self.h4, self.h5, self.h6) = (h1, h2, h3, h4, h5, h6)
        }

        /// Parses the calibration register images as read from the chip.
        ///
        /// - Parameters:
        ///   - registers0x88: the 26 bytes at 0x88…0xA1 (T1…P9 little-endian, 0xA0 reserved, H1 at 0xA1).
        ///   - registers0xE1: the 7 bytes at 0xE1…0xE7 (H2…H6); empty for a BMP280.
        ///
        /// Missing bytes read as zero, so a short image gives zero constants instead of a crash.
        public init(registers0x88: [UInt8], registers0xE1: [UInt8]) {
            func byte(_ image: [UInt8], _ offset: Int) -> UInt8 { offset < image.count ? image[offset] : 0 }
            func unsigned16(_ image: [UInt8], _ offset: Int) -> UInt16 {
                UInt16(byte(image, offset)) | UInt16(byte(image, offset + 1)) << 8
            }
            func signed16(_ image: [UInt8], _ offset: Int) -> Int16 { Int16(bitPattern: unsigned16(image, offset)) }

            let low = registers0x88
            self.t1 = unsigned16(low, 0)
            self.t2 = signed16(low, 2)
            self.t3 = signed16(low, 4)
            self.p1 = unsigned16(low, 6)
            self.p2 = signed16(low, 8)
            self.p3 = signed16(low, 10)
            self.p4 = signed16(low, 12)
            self.p5 = signed16(low, 14)
            self.p6 = signed16(low, 16)
            self.p7 = signed16(low, 18)
            self.p8 = signed16(low, 20)
            self.p9 = signed16(low, 22)
            self.h1 = byte(low, 25)

            let high = registers0xE1
            self.h2 = signed16(high, 0)
            self.h3 = byte(high, 2)
            // H4 and H5 are 12-bit values sharing 0xE5: E4 holds H4's upper 8 bits (signed), E5's low nibble its
            // lower 4; E6 holds H5's upper 8 bits (signed), E5's high nibble its lower 4.
            let shared = byte(high, 4)
            self.h4 = Int16(Int8(bitPattern: byte(high, 3))) * 16 | Int16(shared & 0x0F)
            self.h5 = Int16(Int8(bitPattern: byte(high, 5))) * 16 | Int16(shared >> 4)
            self.h6 = Int8(bitPattern: byte(high, 6))
        }

        /// Temperature in 0.01 °C and `t_fine`, the fine temperature the other two channels are corrected with.
        public func compensateTemperature(adcT: Int32) -> (centiCelsius: Int32, tFine: Int32) {
            let t1 = Int32(self.t1)
            let t2 = Int32(self.t2)
            let t3 = Int32(self.t3)
            let var1 = (((adcT >> 3) &- (t1 << 1)) &* t2) >> 11
            let offset = (adcT >> 4) &- t1
            let var2 = (((offset &* offset) >> 12) &* t3) >> 14
            let tFine = var1 &+ var2
            return ((tFine &* 5 &+ 128) >> 8, tFine)
        }

        /// Pressure in Pa as unsigned Q24.8 (divide by 256 for Pa), from the 64-bit datasheet formula.
        ///
        /// Returns 0 when `p1` is zero (the datasheet's division-by-zero guard).
        public func compensatePressure(adcP: Int32, tFine: Int32) -> UInt32 {
            // Swift's `>>` binds tighter than `*` (C's is looser), so every product below is parenthesised.
            var var1 = Int64(tFine) &- 128_000
            var var2 = (var1 &* var1) &* Int64(self.p6)
            var2 = var2 &+ ((var1 &* Int64(self.p5)) << 17)
            var2 = var2 &+ (Int64(self.p4) << 35)
            var1 = (((var1 &* var1) &* Int64(self.p3)) >> 8) &+ ((var1 &* Int64(self.p2)) << 12)
            var1 = (((Int64(1) << 47) &+ var1) &* Int64(self.p1)) >> 33
            guard var1 != 0 else { return 0 }
            var pressure = 1_048_576 &- Int64(adcP)
            let (quotient, overflow) = (((pressure << 31) &- var2) &* 3125).dividedReportingOverflow(by: var1)
            guard !overflow else { return 0 }
            pressure = quotient
            var1 = ((Int64(self.p9) &* (pressure >> 13)) &* (pressure >> 13)) >> 25
            var2 = (Int64(self.p8) &* pressure) >> 19
            pressure = ((pressure &+ var1 &+ var2) >> 8) &+ (Int64(self.p7) << 4)
            // The datasheet casts to u32; clamping instead keeps a negative garbage result from becoming 16 MPa.
            return UInt32(clamping: pressure)
        }

        /// Relative humidity in % as unsigned Q22.10 (divide by 1024 for %), clamped to 0…100 %.
        public func compensateHumidity(adcH: Int32, tFine: Int32) -> UInt32 {
            let h1 = Int32(self.h1)
            let h2 = Int32(self.h2)
            let h3 = Int32(self.h3)
            let h4 = Int32(self.h4)
            let h5 = Int32(self.h5)
            let h6 = Int32(self.h6)
            var x = tFine &- 76_800
            let offsetTerm = ((adcH << 14) &- (h4 << 20) &- (h5 &* x) &+ 16_384) >> 15
            let sensitivityTerm =
                ((((((x &* h6) >> 10) &* (((x &* h3) >> 11) &+ 32_768)) >> 10) &+ 2_097_152) &* h2 &+ 8_192) >> 14
            x = offsetTerm &* sensitivityTerm
            x = x &- (((((x >> 15) &* (x >> 15)) >> 7) &* h1) >> 4)
            // 419430400 is 100 % in Q22.10 before the final >> 12 (the Linux driver's clamp).
            x = min(max(x, 0), 419_430_400)
            return UInt32(x >> 12)
        }
    }
}

// MARK: - Errors

/// A BME280 or BMP280 that answered on the bus but did not behave like one, with what a resident can do about it.
public struct BME280Error: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// The chip id register holds neither the BME280's nor the BMP280's id.
        case wrongChipID(found: UInt8)
        /// A BMP280 answered where humidity was required.
        case noHumidityChannel(found: UInt8)
        /// `im_update` stayed set after a soft reset: the calibration never reached the image registers.
        case calibrationCopyDidNotFinish
        /// The calibration registers read as all 0x00 or all 0xFF.
        case blankCalibration
        /// `measuring` stayed set long after the longest possible conversion.
        case measurementDidNotFinish
        /// The temperature registers held the "skipped" marker 0x80000, so nothing could be compensated.
        case temperatureSkipped
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
        let at = "\(hex(self.address)) on \(self.bus)"
        switch self.code {
        case .wrongChipID(let found):
            return "wrong chip id \(hex(found)) at \(at): expected 0x60 (BME280) or 0x58 (BMP280)"
                + (Self.knownChip(found).map { "; \(hex(found)) is \($0)" } ?? "")
        case .noHumidityChannel(let found):
            return "found chip id \(hex(found)) at \(at): this is a BMP280 (temperature and pressure only, no humidity), "
                + "often sold as a BME280; humidity needs a genuine BME280 (chip id 0x60)"
        case .calibrationCopyDidNotFinish:
            return "calibration NVM copy did not finish at \(at) after a reset: power-cycle the sensor"
        case .blankCalibration:
            return "calibration registers at \(at) read as all 0x00 or all 0xFF: check wiring, pull-ups and power"
        case .measurementDidNotFinish:
            return "measurement did not finish at \(at): the chip stayed busy; power-cycle the sensor"
        case .temperatureSkipped:
            return "no temperature at \(at) (skip marker 0x80000): the chip was probably reset during the measurement; "
                + "it will be set up again"
        }
    }

    /// Other chips residents plug in by mistake, by the value they show in the chip id register.
    private static func knownChip(_ chipID: UInt8) -> String? {
        switch chipID {
        case 0x61: "a BME680 (gas sensor), which this driver does not support"
        case 0x55: "a BMP180/BMP085, which this driver does not support"
        case 0x50: "a BMP388, which this driver does not support"
        case 0x00, 0xFF: "what a floating or shorted bus reads: check wiring, pull-ups and the address"
        default: nil
        }
    }
}

/// "0x5a": how chip ids and addresses are written in datasheets and `i2cdetect`.
private func hex(_ byte: UInt8) -> String {
    let digits = String(byte, radix: 16)
    return "0x" + (digits.count < 2 ? "0" + digits : digits)
}
