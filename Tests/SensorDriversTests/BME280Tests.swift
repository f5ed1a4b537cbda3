import KiezboxCore
import SensorDrivers
import Synchronization
import Testing

// Register images and data from sensors.md §1 (vectors A, B, C).
private enum Vector {
    static let a0x88: [UInt8] = [
        0x70, 0x6b, 0x43, 0x67, 0x18, 0xfc, 0x7d, 0x8e, 0x43, 0xd6, 0xd0, 0x0b, 0x27, 0x0b, 0x8c, 0x00,
        0xf9, 0xff, 0x8c, 0x3c, 0xf8, 0xc6, 0x70, 0x17, 0x00, 0x00,
    ]
    static let aADC = (temperature: Int32(519_888), pressure: Int32(415_148))

    static let b0x88: [UInt8] = [
        0x69, 0x6d, 0x36, 0x64, 0x32, 0x00, 0xe9, 0x98, 0x02, 0xd6, 0xd0, 0x0b, 0x23, 0x16, 0x88, 0xff,
        0xf9, 0xff, 0x8c, 0x3c, 0xf8, 0xc6, 0x70, 0x17, 0x00, 0x4b,
    ]
    static let b0xE1: [UInt8] = [0x78, 0x01, 0x00, 0x11, 0x2e, 0x03, 0x1e]
    static let bData: [UInt8] = [0x4f, 0xca, 0x00, 0x81, 0x32, 0x70, 0x76, 0x49]
    static let bADC = SimulatedBME280.RawADC(temperature: 529_191, pressure: 326_816, humidity: 30_281)

    static let c0xE1: [UInt8] = [0x78, 0x01, 0x00, 0xea, 0x23, 0xfe, 0x1e]
}

private let instantPause: Pause = { _ in }
private let address: UInt8 = 0x76

/// A chip on a simulated bus with a driver pointed at it.
private struct Rig {
    let bus = SimulatedI2CBus(name: "sim:i2c-1")
    let chip: SimulatedBME280
    let driver: BME280

    init(chip: SimulatedBME280 = SimulatedBME280(), pause: @escaping Pause = instantPause, requireHumidity: Bool = false) {
        self.chip = chip
        self.bus.attach(chip, at: address)
        self.driver = BME280(device: self.bus.device(at: address), pause: pause, requireHumidity: requireHumidity)
    }
}

/// Records every pause a driver asks for, without waiting.
private final class PauseRecorder: Sendable {
    private let durations = Mutex<[Duration]>([])
    var recorded: [Duration] { self.durations.withLock { $0 } }
    var pause: Pause { { duration in self.durations.withLock { $0.append(duration) } } }
    func clear() { self.durations.withLock { $0.removeAll() } }
}

private func value(_ quantity: Quantity, in values: [MeasuredValue]) -> MeasuredValue? {
    values.first { $0.quantity == quantity }
}

private let initialisationTransfers: [SimulatedBME280.Transfer] = [
    .writeRead([0xD0], count: 1),
    .write([0xE0, 0xB6]),
    .writeRead([0xF3], count: 1),
    .writeRead([0x88], count: 26),
    .writeRead([0xE1], count: 7),
]

private let measurementTransfers: [SimulatedBME280.Transfer] = [
    .write([0xF2, 0x01]),
    .write([0xF5, 0x00]),
    .write([0xF4, 0x25]),
    .writeRead([0xF3], count: 1),
    .writeRead([0xF7], count: 8),
]

@Suite("BME280 compensation (datasheet integer variant)")
struct BME280CompensationTests {
    @Test("vector A: BMP280 datasheet worked example")
    func vectorA() {
        let calibration = BME280.Calibration(registers0x88: Vector.a0x88, registers0xE1: [])
        #expect(
            calibration
                == BME280.Calibration(
                    t1: 27504, t2: 26435, t3: -1000,
                    p1: 36477, p2: -10685, p3: 3024, p4: 2855, p5: 140, p6: -7, p7: 15500, p8: -14600, p9: 6000
                )
        )
        let (centiCelsius, tFine) = calibration.compensateTemperature(adcT: Vector.aADC.temperature)
        #expect(centiCelsius == 2508)
        #expect(tFine == 128_422)
        // The datasheet prints 25767236; executing its formula gives …233 (sensors.md §1), so allow one Pa.
        let pressure = calibration.compensatePressure(adcP: Vector.aADC.pressure, tFine: tFine)
        #expect(abs(Int64(pressure) - 25_767_233) <= 256)
        #expect(pressure == 25_767_233)
    }

    @Test("vector B: pimoroni fixture with humidity")
    func vectorB() {
        let calibration = BME280.Calibration(registers0x88: Vector.b0x88, registers0xE1: Vector.b0xE1)
        #expect(calibration == SimulatedBME280.referenceCalibration)
        let (centiCelsius, tFine) = calibration.compensateTemperature(adcT: Vector.bADC.temperature)
        #expect(centiCelsius == 2479)
        #expect(tFine == 126_911)
        #expect(calibration.compensatePressure(adcP: Vector.bADC.pressure, tFine: tFine) == 25_769_253)
        #expect(calibration.compensateHumidity(adcH: Vector.bADC.humidity, tFine: tFine) == 70_317)
    }

    @Test("vector C: H4 and H5 are sign-extended 12-bit values sharing 0xE5")
    func vectorC() {
        let calibration = BME280.Calibration(registers0x88: Vector.b0x88, registers0xE1: Vector.c0xE1)
        #expect(calibration.h4 == -349)
        #expect(calibration.h5 == -30)
        #expect(calibration.h2 == 376)
        #expect(calibration.h6 == 30)
        #expect(calibration.registerImage0xE1 == Vector.c0xE1)
    }

    @Test(
        "negative temperatures floor with arithmetic >>",
        arguments: [
            (adcT: Int32(400_000), centiCelsius: Int32(-1472), tFine: Int32?(-75_378)),
            (adcT: Int32(300_000), centiCelsius: Int32(-4529), tFine: nil),
        ]
    )
    func negativeTemperature(adcT: Int32, centiCelsius: Int32, tFine: Int32?) {
        let result = SimulatedBME280.referenceCalibration.compensateTemperature(adcT: adcT)
        #expect(result.centiCelsius == centiCelsius)
        if let tFine { #expect(result.tFine == tFine) }
    }

    @Test("calibration constants encode to the datasheet register images")
    func registerImages() {
        #expect(SimulatedBME280.referenceCalibration.registerImage0x88 == Vector.b0x88)
        #expect(SimulatedBME280.referenceCalibration.registerImage0xE1 == Vector.b0xE1)
        let a = BME280.Calibration(registers0x88: Vector.a0x88, registers0xE1: [])
        #expect(a.registerImage0x88 == Vector.a0x88)
    }

    @Test("a short or empty image gives zero constants instead of trapping")
    func shortImage() {
        let calibration = BME280.Calibration(registers0x88: [0x70], registers0xE1: [])
        #expect(calibration.t1 == 0x70)
        #expect(calibration.p9 == 0)
        #expect(calibration.compensatePressure(adcP: 400_000, tFine: 100_000) == 0)
    }

    @Test("humidity is clamped to 0…100 %")
    func humidityClamp() {
        let calibration = SimulatedBME280.referenceCalibration
        let tFine = calibration.compensateTemperature(adcT: Vector.bADC.temperature).tFine
        #expect(calibration.compensateHumidity(adcH: 0, tFine: tFine) == 0)
        #expect(calibration.compensateHumidity(adcH: 0xFFFF, tFine: tFine) == 100 * 1024)
    }

    @Test("maximum measurement time follows Bosch's formula")
    func measurementTime() {
        #expect(BME280.maximumMeasurementTime(temperature: .x1, pressure: .x1, humidity: .x1) == .microseconds(9300))
        #expect(BME280.maximumMeasurementTime(temperature: .x16, pressure: .x16, humidity: .x16) == .microseconds(112_800))
        #expect(BME280.maximumMeasurementTime(temperature: .x1, pressure: .x1, humidity: .skipped) == .microseconds(7000))
    }
}

@Suite("BME280 driver on a simulated bus")
struct BME280DriverTests {
    @Test("vector B end to end: 24.79 °C, 1006.61 hPa, 68.67 %")
    func vectorBEndToEnd() async throws {
        let chip = SimulatedBME280(registers0x88: Vector.b0x88, registers0xE1: Vector.b0xE1, rawADC: Vector.bADC)
        let rig = Rig(chip: chip)
        let values = try await rig.driver.measure()

        #expect(values.count == 3)
        let temperature = try #require(value(.temperature, in: values))
        let humidity = try #require(value(.relativeHumidity, in: values))
        let pressure = try #require(value(.pressure, in: values))
        #expect(temperature.value == 24.79)
        #expect(pressure.value == 25_769_253.0 / 25600)
        #expect(humidity.value == 70_317.0 / 1024)
        // Against the floating-point reference: the integer variant is within its rounding.
        #expect(abs(temperature.value - 24.7894877676) < 0.01)
        #expect(abs(pressure.value - 1006.61517564) < 0.01)
        #expect(abs(humidity.value - 68.66996648709039) < 0.01)
        #expect(values.allSatisfy { $0.quality == .good })
        #expect(rig.driver.chipName == "BME280")
        #expect(rig.driver.detectedVariant == .bme280)

        // The conversion left vector B's data register image behind.
        let data = try await rig.bus.device(at: address).readRegisters(0xF7, count: 8)
        #expect(data == Vector.bData)
    }

    @Test("first measure: chip id, soft reset, NVM copy poll, calibration, then the weather profile")
    func initialisationOnTheWire() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        #expect(rig.chip.transfers == initialisationTransfers + measurementTransfers)
    }

    @Test("later measures put exactly F2 01, F5 00, F4 25, a status poll and one 8-byte burst at F7 on the wire")
    func measurementOnTheWire() async throws {
        let pauses = PauseRecorder()
        let rig = Rig(pause: pauses.pause)
        _ = try await rig.driver.measure()
        #expect(pauses.recorded == [.milliseconds(2), .microseconds(9300)])

        rig.chip.clearTransfers()
        pauses.clear()
        _ = try await rig.driver.measure()
        #expect(rig.chip.transfers == measurementTransfers)
        #expect(pauses.recorded == [.microseconds(9300)])
        // Forced mode went back to sleep after its conversion.
        #expect(rig.chip.peekRegister(0xF4) == 0x24)
    }

    @Test("the driver polls while the chip still reports measuring")
    func pollsMeasuring() async throws {
        let rig = Rig()
        rig.chip.setMeasuringDuration(statusReads: 3)
        let values = try await rig.driver.measure()
        #expect(value(.temperature, in: values)?.value == 24.79)
        let statusPolls = rig.chip.transfers.filter { $0 == .writeRead([0xF3], count: 1) }
        #expect(statusPolls.count == 1 + 4)  // one NVM-copy poll, four measuring polls
    }

    @Test("a chip stuck in measuring gives a typed error, not a hang", .timeLimit(.minutes(1)))
    func stuckMeasuring() async throws {
        let rig = Rig()
        rig.chip.setStuckMeasuring(true)
        let error = await #expect(throws: BME280Error.self) { try await rig.driver.measure() }
        #expect(error?.code == .measurementDidNotFinish)
        #expect(error?.description.contains("measurement did not finish") == true)

        rig.chip.clearFaults()
        rig.chip.clearTransfers()
        _ = try await rig.driver.measure()
        #expect(rig.chip.transfers.first == .writeRead([0xD0], count: 1))
    }

    @Test("an NVM copy that never finishes gives a typed error")
    func nvmCopyStuck() async throws {
        let rig = Rig()
        rig.chip.setNVMCopyDuration(statusReads: 100)
        let error = await #expect(throws: BME280Error.self) { try await rig.driver.measure() }
        #expect(error?.code == .calibrationCopyDidNotFinish)
        #expect(error?.description.contains("calibration NVM copy did not finish") == true)
    }

    @Test("a short NVM copy is waited for")
    func nvmCopyShort() async throws {
        let rig = Rig()
        rig.chip.setNVMCopyDuration(statusReads: 2)
        let values = try await rig.driver.measure()
        #expect(values.count == 3)
    }

    @Test("BMP280: temperature and pressure only", arguments: [UInt8(0x58), 0x56, 0x57])
    func bmp280(chipID: UInt8) async throws {
        let chip = SimulatedBME280(chipID: chipID, registers0x88: Vector.a0x88, registers0xE1: [])
        chip.setRawADC(temperature: Vector.aADC.temperature, pressure: Vector.aADC.pressure)
        let rig = Rig(chip: chip)
        let values = try await rig.driver.measure()

        #expect(values.map(\.quantity) == [.temperature, .pressure])
        #expect(value(.temperature, in: values)?.value == 25.08)
        #expect(value(.pressure, in: values)?.value == 25_767_233.0 / 25600)
        #expect(rig.driver.chipName == "BMP280")
        #expect(rig.driver.detectedVariant == .bmp280)
        // No humidity calibration, no ctrl_hum, a 6-byte burst.
        #expect(!rig.chip.transfers.contains(.writeRead([0xE1], count: 7)))
        #expect(!rig.chip.transfers.contains(.write([0xF2, 0x01])))
        #expect(rig.chip.transfers.last == .writeRead([0xF7], count: 6))
    }

    @Test("BMP280 where humidity is required: the error says what was found")
    func bmp280WhenHumidityRequired() async throws {
        let rig = Rig(chip: SimulatedBME280(chipID: 0x58), requireHumidity: true)
        let error = await #expect(throws: BME280Error.self) { try await rig.driver.measure() }
        #expect(error?.code == .noHumidityChannel(found: 0x58))
        #expect(error?.description.contains("found chip id 0x58 at 0x76") == true)
        #expect(error?.description.contains("BMP280") == true)
    }

    @Test("a wrong chip id is a typed error naming the id", arguments: [UInt8(0x61), 0x00, 0xFF, 0x5a])
    func wrongChipID(found: UInt8) async throws {
        let rig = Rig()
        rig.chip.corruptChipID(reportAs: found)
        let error = await #expect(throws: BME280Error.self) { try await rig.driver.measure() }
        #expect(error?.code == .wrongChipID(found: found))
        let hex = "0x" + (found < 0x10 ? "0" : "") + String(found, radix: 16)
        #expect(error?.description.contains("wrong chip id \(hex) at 0x76") == true)
        #expect(error?.description.contains("expected 0x60 (BME280) or 0x58 (BMP280)") == true)
        // Nothing is written to a chip that is not a BME280.
        #expect(rig.chip.transfers == [.writeRead([0xD0], count: 1)])
    }

    @Test("a NACK propagates as I2CError, and the next measure re-reads chip id and calibration")
    func nackThenRecover() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()

        // Without a fault the calibration is cached.
        rig.chip.clearTransfers()
        _ = try await rig.driver.measure()
        #expect(rig.chip.transfers == measurementTransfers)

        rig.chip.nackNextTransfers(1)
        let error = await #expect(throws: I2CError.self) { try await rig.driver.measure() }
        #expect(error?.code == .noAcknowledge)
        #expect(error?.address == address)

        rig.chip.clearTransfers()
        let values = try await rig.driver.measure()
        #expect(values.count == 3)
        #expect(rig.chip.transfers == initialisationTransfers + measurementTransfers)
    }

    @Test("a NACK during initialisation is retried from the start")
    func nackDuringInitialisation() async throws {
        let rig = Rig()
        rig.chip.nackNextTransfers(3)
        for _ in 0..<3 {
            await #expect(throws: I2CError.self) { try await rig.driver.measure() }
        }
        rig.chip.clearTransfers()
        _ = try await rig.driver.measure()
        #expect(rig.chip.transfers == initialisationTransfers + measurementTransfers)
    }

    @Test("a skipped humidity channel is omitted")
    func humiditySkipped() async throws {
        let rig = Rig()
        rig.chip.forceSkipped([.humidity])
        let values = try await rig.driver.measure()
        #expect(values.map(\.quantity) == [.temperature, .pressure])
        #expect(rig.chip.peekRegister(0xFD) == 0x80 && rig.chip.peekRegister(0xFE) == 0x00)
    }

    @Test("a skipped pressure channel is omitted")
    func pressureSkipped() async throws {
        let rig = Rig()
        rig.chip.forceSkipped([.pressure])
        let values = try await rig.driver.measure()
        #expect(values.map(\.quantity) == [.temperature, .relativeHumidity])
    }

    @Test("a skipped temperature channel is a typed error, and the chip is set up again")
    func temperatureSkipped() async throws {
        let rig = Rig()
        rig.chip.forceSkipped([.temperature])
        let error = await #expect(throws: BME280Error.self) { try await rig.driver.measure() }
        #expect(error?.code == .temperatureSkipped)

        rig.chip.clearFaults()
        rig.chip.clearTransfers()
        _ = try await rig.driver.measure()
        #expect(rig.chip.transfers == initialisationTransfers + measurementTransfers)
    }

    @Test("blank calibration (all 0x00) is refused")
    func blankCalibration() async throws {
        let chip = SimulatedBME280(registers0x88: [UInt8](repeating: 0, count: 26), registers0xE1: [UInt8](repeating: 0, count: 7))
        let rig = Rig(chip: chip)
        let error = await #expect(throws: BME280Error.self) { try await rig.driver.measure() }
        #expect(error?.code == .blankCalibration)
    }

    @Test(
        "setEnvironment round trip through the driver",
        arguments: [
            (celsius: 21.5, hectopascal: 1013.2, percentRH: 55.0),
            (celsius: -0.3, hectopascal: 1000.0, percentRH: 90.0),
            (celsius: -12.75, hectopascal: 985.4, percentRH: 72.5),
            (celsius: -39.5, hectopascal: 1045.0, percentRH: 30.0),
            (celsius: 38.2, hectopascal: 960.4, percentRH: 15.0),
            (celsius: 22.9, hectopascal: 700.0, percentRH: 75.0),
            (celsius: 84.0, hectopascal: 300.5, percentRH: 5.0),
            (celsius: 5.0, hectopascal: 1099.0, percentRH: 100.0),
            (celsius: 15.0, hectopascal: 1020.0, percentRH: 0.0),
        ]
    )
    func environmentRoundTrip(celsius: Double, hectopascal: Double, percentRH: Double) async throws {
        let rig = Rig()
        let raw = rig.chip.setEnvironment(celsius: celsius, hectopascal: hectopascal, percentRH: percentRH)
        #expect(raw.temperature != 0x80000 && raw.pressure != 0x80000 && raw.humidity != 0x8000)

        let values = try await rig.driver.measure()
        let temperature = try #require(value(.temperature, in: values))
        let pressure = try #require(value(.pressure, in: values))
        let humidity = try #require(value(.relativeHumidity, in: values))
        #expect(abs(temperature.value - celsius) <= 0.01)
        #expect(abs(pressure.value - hectopascal) <= 0.02)
        #expect(abs(humidity.value - percentRH) <= 0.1)
        #expect(values.allSatisfy { $0.quality == .good })
    }

    @Test("a weather day: the driver follows the environment from one measure to the next")
    func weatherDay() async throws {
        let rig = Rig()
        for hour in 0..<24 {
            let celsius = 14.0 + 8.0 * Double(hour) / 23
            let hectopascal = 1008.0 - 0.25 * Double(hour)
            let percentRH = 85.0 - 2.0 * Double(hour)
            rig.chip.setEnvironment(celsius: celsius, hectopascal: hectopascal, percentRH: percentRH)
            let values = try await rig.driver.measure()
            #expect(abs((value(.temperature, in: values)?.value ?? .nan) - celsius) <= 0.01)
            #expect(abs((value(.pressure, in: values)?.value ?? .nan) - hectopascal) <= 0.02)
            #expect(abs((value(.relativeHumidity, in: values)?.value ?? .nan) - percentRH) <= 0.1)
        }
    }

    @Test("values outside the chip's specified range are flagged, not dropped")
    func implausibleValues() async throws {
        let rig = Rig()
        rig.chip.setEnvironment(celsius: 95, hectopascal: 250, percentRH: 50)
        let hot = try await rig.driver.measure()
        let temperature = try #require(value(.temperature, in: hot))
        let pressure = try #require(value(.pressure, in: hot))
        #expect(temperature.value > 85 && temperature.quality == .implausible)
        #expect(pressure.value < 300 && pressure.quality == .implausible)
        #expect(value(.relativeHumidity, in: hot)?.quality == .good)

        rig.chip.setEnvironment(celsius: -45, hectopascal: 1150, percentRH: 100)
        let cold = try await rig.driver.measure()
        #expect(value(.temperature, in: cold)?.quality == .implausible)
        #expect(value(.pressure, in: cold)?.quality == .implausible)
        // 100 % is the clamp bound, which fog really reaches.
        #expect(value(.relativeHumidity, in: cold)?.value == 100)
        #expect(value(.relativeHumidity, in: cold)?.quality == .good)
    }
}

@Suite("SimulatedBME280 register map")
struct SimulatedBME280Tests {
    private let bus = SimulatedI2CBus(name: "sim:i2c-1")

    private func attach(_ chip: SimulatedBME280) -> any I2CDevice {
        self.bus.attach(chip, at: address)
        return self.bus.device(at: address)
    }

    @Test("calibration images, chip id and power-on data registers are readable")
    func powerOn() async throws {
        let chip = SimulatedBME280()
        let device = self.attach(chip)
        #expect(try await device.readRegister(0xD0) == 0x60)
        #expect(try await device.readRegisters(0x88, count: 26) == Vector.b0x88)
        #expect(try await device.readRegisters(0xE1, count: 7) == Vector.b0xE1)
        #expect(try await device.readRegisters(0xF7, count: 8) == [0x80, 0x00, 0x00, 0x80, 0x00, 0x00, 0x80, 0x00])
    }

    @Test("a write is register/value pairs; a single byte only moves the pointer")
    func writeProtocol() async throws {
        let chip = SimulatedBME280()
        let device = self.attach(chip)
        try await device.write([0xF2, 0x01, 0xF5, 0x00, 0xF4, 0x25])
        #expect(try await device.readRegisters(0xF7, count: 8) == Vector.bData)

        try await device.write([0xFA])
        #expect(try await device.read(count: 3) == [0x81, 0x32, 0x70])
    }

    @Test("ctrl_hum takes effect only with the next ctrl_meas write")
    func ctrlHumLatch() async throws {
        let chip = SimulatedBME280()
        let device = self.attach(chip)
        try await device.writeRegister(0xF4, 0x25)  // osrs_h still 000
        #expect(try await device.readRegisters(0xFD, count: 2) == [0x80, 0x00])

        try await device.writeRegister(0xF2, 0x01)  // not latched yet
        #expect(chip.peekRegister(0xF2) == 0x01)
        #expect(try await device.readRegisters(0xFD, count: 2) == [0x80, 0x00])

        try await device.writeRegister(0xF4, 0x25)
        #expect(try await device.readRegisters(0xFD, count: 2) == [0x76, 0x49])
    }

    @Test("in normal mode a ctrl_hum write alone does not switch humidity on or off")
    func ctrlHumLatchInNormalMode() async throws {
        let chip = SimulatedBME280()
        let device = self.attach(chip)
        try await device.writeRegister(0xF4, 0x27)  // normal mode, osrs_h latched as 000
        try await device.writeRegister(0xF2, 0x01)
        #expect(try await device.readRegisters(0xFD, count: 2) == [0x80, 0x00])

        try await device.writeRegister(0xF4, 0x27)
        #expect(try await device.readRegisters(0xFD, count: 2) == [0x76, 0x49])
        try await device.writeRegister(0xF2, 0x00)
        #expect(try await device.readRegisters(0xFD, count: 2) == [0x76, 0x49])
    }

    @Test("soft reset clears control and data registers; calibration (NVM) stays")
    func softReset() async throws {
        let chip = SimulatedBME280()
        let device = self.attach(chip)
        try await device.write([0xF2, 0x01, 0xF5, 0xA0, 0xF4, 0x25])
        try await device.writeRegister(0xE0, 0x12)  // not the reset command: ignored
        #expect(chip.peekRegister(0xF2) == 0x01)

        try await device.writeRegister(0xE0, 0xB6)
        #expect([0xF2, 0xF4, 0xF5].map { chip.peekRegister($0) } == [0, 0, 0])
        #expect(try await device.readRegisters(0xF7, count: 8) == [0x80, 0x00, 0x00, 0x80, 0x00, 0x00, 0x80, 0x00])
        #expect(try await device.readRegisters(0x88, count: 26) == Vector.b0x88)
        #expect(try await device.readRegister(0xE0) == 0x00)
    }

    @Test("forced mode converts once and sleeps; normal mode converts on every read")
    func modes() async throws {
        let chip = SimulatedBME280()
        let device = self.attach(chip)
        try await device.write([0xF2, 0x01, 0xF4, 0x25])
        chip.setRawADC(temperature: 500_000, pressure: 400_000, humidity: 20_000)
        // Still the forced conversion's data: no new trigger.
        #expect(try await device.readRegisters(0xF7, count: 8) == Vector.bData)

        try await device.writeRegister(0xF4, 0x27)
        #expect(try await device.readRegisters(0xF7, count: 8) == [0x61, 0xA8, 0x00, 0x7A, 0x12, 0x00, 0x4E, 0x20])
        chip.setRawADC(temperature: Vector.bADC.temperature, pressure: Vector.bADC.pressure, humidity: Vector.bADC.humidity)
        #expect(try await device.readRegisters(0xF7, count: 8) == Vector.bData)
    }

    @Test("measuring is set for the configured number of status reads, then data appear")
    func measuringStatus() async throws {
        let chip = SimulatedBME280()
        let device = self.attach(chip)
        chip.setMeasuringDuration(statusReads: 2)
        try await device.write([0xF2, 0x01, 0xF4, 0x25])
        #expect(try await device.readRegisters(0xF7, count: 3) == [0x80, 0x00, 0x00])  // not converted yet
        #expect(try await device.readRegister(0xF3) == 0x08)
        #expect(try await device.readRegister(0xF3) == 0x08)
        #expect(try await device.readRegister(0xF3) == 0x00)
        #expect(try await device.readRegisters(0xF7, count: 8) == Vector.bData)
        #expect(chip.peekRegister(0xF4) == 0x24)
    }

    @Test("NACK faults count transfers, and NACKed transfers are not recorded")
    func nack() async throws {
        let chip = SimulatedBME280()
        let device = self.attach(chip)
        chip.nackNextTransfers(2)
        for _ in 0..<2 {
            let error = await #expect(throws: I2CError.self) { try await device.readRegister(0xD0) }
            #expect(error?.code == .noAcknowledge)
        }
        #expect(try await device.readRegister(0xD0) == 0x60)
        #expect(chip.transfers == [.writeRead([0xD0], count: 1)])
    }

    @Test("a BMP280 has no humidity registers")
    func bmp280Map() async throws {
        let chip = SimulatedBME280(chipID: 0x58, calibration: SimulatedBME280.referenceCalibration)
        let device = self.attach(chip)
        #expect(try await device.readRegister(0xD0) == 0x58)
        #expect(try await device.readRegisters(0xE1, count: 7) == [0, 0, 0, 0, 0, 0, 0])
        try await device.write([0xF2, 0x01, 0xF4, 0x25])
        #expect(chip.peekRegister(0xF2) == 0x00)
        #expect(try await device.readRegisters(0xF7, count: 8) == Array(Vector.bData.prefix(6)) + [0x00, 0x00])
    }

    @Test("setEnvironment never picks a skip marker")
    func avoidsMarkers() {
        let chip = SimulatedBME280()
        let calibration = chip.calibration
        // The temperature whose count would be exactly 0x80000.
        let markerCelsius = Double(calibration.compensateTemperature(adcT: 0x80000).tFine) / 5120
        let raw = chip.setEnvironment(celsius: markerCelsius, hectopascal: 1013, percentRH: 50)
        #expect(raw.temperature != 0x80000)
        #expect(abs(raw.temperature - 0x80000) == 1)
    }
}
