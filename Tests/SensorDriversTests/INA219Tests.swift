import KiezboxCore
import SensorDrivers
import Synchronization
import Testing

// TI SBOS448 example (sensors.md §11): 10 A, 2 mΩ, 12 V, current LSB 1 mA.
private enum TIExample {
    static let shuntOhms = 0.002
    static let maximumCurrent = 10.0
    static let currentLSB = 0.001
    static let calibration: UInt16 = 0x5000
    static let shunt: UInt16 = 0x07D0
    static let bus: UInt16 = 0x5D98
    static let current: UInt16 = 0x2710
    static let power: UInt16 = 0x1766
    /// The driver's configuration for 20 mV full current: PGA ±40 mV.
    static let configuration: UInt16 = 0x27FF
}

private let instantPause: Pause = { _ in }
private let address: UInt8 = 0x40

private func isClose(_ value: Double, _ expected: Double, tolerance: Double = 1e-9) -> Bool {
    abs(value - expected) <= tolerance
}

/// A chip on a simulated bus with a driver pointed at it (TI example defaults).
private typealias Rig = INA2xxRig<SimulatedINA219, INA219>

private func word(_ pointer: UInt8) -> SimulatedINA219.Transfer { .writeRead([pointer], count: 2) }

private let configurationTransfers: [SimulatedINA219.Transfer] = [
    .write([0x00, 0x27, 0xFF]),  // configuration 0x27FF, MSB first on the wire
    .write([0x05, 0x50, 0x00]),  // calibration 0x5000
    word(0x00), word(0x05),  // read back
    word(0x02),  // conversion-ready poll
]
private let sampleTransfers: [SimulatedINA219.Transfer] = [word(0x02), word(0x01), word(0x04), word(0x03), word(0x05)]

@Suite("INA219 calibration and conversions (TI SBOS448 example)")
struct INA219ConversionTests {
    @Test("TI example: 10 A, 2 mΩ, 1 mA LSB gives calibration 0x5000 and a 20 mW power LSB")
    func tiCalibration() throws {
        let calibration = try INA219.calibration(
            shuntOhms: TIExample.shuntOhms, maximumCurrent: TIExample.maximumCurrent, currentLSB: TIExample.currentLSB
        )
        #expect(calibration.register == 20480)
        #expect(calibration.register == TIExample.calibration)
        #expect(calibration.currentLSB == 0.001)
        #expect(isClose(calibration.powerLSB, 0.02))
    }

    @Test("Adafruit preset: 0.1 Ω and 3.2 A choose a 100 µA LSB and calibration 4096")
    func adafruitCalibration() throws {
        let calibration = try INA219.calibration(shuntOhms: 0.1, maximumCurrent: 3.2)
        #expect(calibration.currentLSB == 0.0001)
        #expect(calibration.register == 4096)
    }

    @Test("without an explicit LSB, 10 A picks 500 µA from the 1-2-5 series")
    func automaticLSB() throws {
        let calibration = try INA219.calibration(shuntOhms: 0.002, maximumCurrent: 10)
        #expect(calibration.currentLSB == 0.0005)
        #expect(calibration.register == 40960)
        #expect(calibration.largestCurrent >= 10)
    }

    @Test("register values convert per the datasheet")
    func conversions() {
        #expect(isClose(INA219.shuntVolts(register: TIExample.shunt), 0.020))
        #expect(isClose(INA219.shuntVolts(register: 0xFC18), -0.010))
        #expect(isClose(INA219.busVolts(register: TIExample.bus), 11.98))
        // CNVR and OVF do not change the voltage.
        #expect(INA219.busVolts(register: 0x5D9B) == INA219.busVolts(register: TIExample.bus))
        #expect(TIExample.bus >> 3 == 2995)
    }

    @Test("configuration register: 32 V, PGA, 128-sample averages, continuous")
    func configurationRegister() {
        #expect(INA219.configurationRegister(range: .millivolts40) == 0x27FF)
        #expect(INA219.configurationRegister(range: .millivolts320) == 0x3FFF)
        #expect(INA219.ShuntRange.millivolts320.fullScaleCount == 32000)
        #expect(INA219.ShuntRange.millivolts40.fullScaleCount == 4000)
    }

    @Test(
        "the PGA range is the most sensitive one covering maximum current × shunt",
        arguments: [
            (ohms: 0.002, amps: 10.0, range: INA219.ShuntRange.millivolts40),
            (ohms: 0.1, amps: 0.4, range: .millivolts40),
            (ohms: 0.1, amps: 0.5, range: .millivolts80),
            (ohms: 0.1, amps: 1.0, range: .millivolts160),
            (ohms: 0.1, amps: 3.2, range: .millivolts320),
        ]
    )
    func rangeSelection(ohms: Double, amps: Double, range: INA219.ShuntRange) {
        let driver = INA219(device: SimulatedI2CBus(name: "sim").device(at: address), shuntOhms: ohms, maximumCurrent: amps)
        #expect(driver.shuntRange == range)
    }
}

@Suite("INA219 driver on a simulated bus")
struct INA219DriverTests {
    @Test("SMBus words are byte-swapped: 0x985D from SMBus is register 0x5D98")
    func byteSwap() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        // The datasheet's bus word has CNVR clear; a configured driver reads it without waiting for CNVR.
        rig.chip.setStuckRegister(0x02, value: TIExample.bus)
        let device = rig.bus.device(at: address)
        #expect(try await device.readWordData(0x02) == 0x985D)
        #expect(try await device.readBlockData(0x02, count: 2) == [0x5D, 0x98])

        let measurement = try await rig.driver.readMeasurement()
        #expect(isClose(measurement.busVolts, 11.98))
    }

    @Test("TI example end to end: 11.98 V, 20 mV, 10 A, 119.8 W, and the datasheet's register values")
    func tiExampleEndToEnd() async throws {
        let rig = Rig()
        let measurement = try await rig.driver.readMeasurement()
        #expect(isClose(measurement.busVolts, 11.98))
        #expect(isClose(measurement.shuntVolts, 0.02))
        #expect(isClose(measurement.amps, 10.0))
        #expect(isClose(measurement.watts, 119.8))
        #expect(measurement.voltageQuality == .good && measurement.currentQuality == .good && measurement.powerQuality == .good)

        #expect(rig.chip.peekRegister(0x05) == TIExample.calibration)
        #expect(rig.chip.peekRegister(0x01) == TIExample.shunt)
        #expect(rig.chip.peekRegister(0x02) >> 3 == TIExample.bus >> 3)
        #expect(rig.chip.peekRegister(0x04) == TIExample.current)
        #expect(rig.chip.peekRegister(0x03) == TIExample.power)

        let values = try await rig.driver.measure()
        #expect(values.map(\.quantity) == [.voltage, .current, .power])
        #expect(values.allSatisfy { $0.quality == .good })
        #expect(rig.driver.chipName == "INA219")
    }

    @Test("first measure configures, verifies and waits for CNVR; later measures only read")
    func transfersOnTheWire() async throws {
        let pauses = RecordedPauses()
        let rig = Rig(pause: pauses.pause)
        _ = try await rig.driver.measure()
        #expect(rig.chip.transfers == configurationTransfers + sampleTransfers)
        #expect(pauses.all == [.microseconds(136_200)])

        rig.chip.clearTransfers()
        _ = try await rig.driver.measure()
        #expect(rig.chip.transfers == sampleTransfers)
        #expect(pauses.all.count == 1)
    }

    @Test("negative shunt voltage: charging current is negative, power stays positive")
    func chargingCurrent() async throws {
        let rig = Rig(chip: SimulatedINA219())
        rig.chip.setLoad(busVolts: 13.6, amps: -5, shuntOhms: TIExample.shuntOhms)
        let measurement = try await rig.driver.readMeasurement()
        #expect(rig.chip.peekRegister(0x01) == 0xFC18)
        #expect(isClose(measurement.shuntVolts, -0.010))
        #expect(isClose(measurement.amps, -5.0))
        #expect(isClose(measurement.watts, 68.0))
        #expect(measurement.currentQuality == .good)
    }

    @Test("a brown-out (calibration reads 0) is detected, the chip set up again and read again")
    func brownOut() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        rig.chip.simulateBrownOut()
        #expect(rig.chip.peekRegister(0x05) == 0)
        #expect(rig.chip.peekRegister(0x00) == SimulatedINA219.powerOnConfiguration)

        rig.chip.clearTransfers()
        let measurement = try await rig.driver.readMeasurement()
        // Without the re-read, current and power would be 0 from the uncalibrated chip.
        #expect(isClose(measurement.amps, 10.0))
        #expect(isClose(measurement.watts, 119.8))
        #expect(rig.driver.chipResetCount == 1)
        #expect(rig.chip.transfers == sampleTransfers + configurationTransfers + sampleTransfers)
        #expect(rig.chip.peekRegister(0x00) == TIExample.configuration)
    }

    @Test("a calibration that will not stick is a typed error")
    func calibrationLost() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        rig.chip.setStuckRegister(0x05, value: 0)
        let error = await #expect(throws: INA219Error.self) { try await rig.driver.measure() }
        // The configuration's own read-back catches it first on the second set-up.
        #expect(error?.code == .configurationNotAccepted(register: 0x05, wrote: 0x5000, read: 0x0000))
        #expect(rig.driver.chipResetCount == 1)
    }

    @Test("math overflow (OVF) flags current and power implausible, not the voltage")
    func mathOverflow() async throws {
        // Automatic 500 µA LSB: the ±40 mV range reaches 20 A, beyond the 16.4 A the current register holds.
        let rig = Rig(chip: SimulatedINA219(), currentLSB: nil)
        rig.chip.setLoad(busVolts: 12, amps: 18, shuntOhms: TIExample.shuntOhms)
        let measurement = try await rig.driver.readMeasurement()
        #expect(rig.chip.peekRegister(0x02) & 0x0001 == 1)
        #expect(measurement.voltageQuality == .good)
        #expect(measurement.currentQuality == .implausible)
        #expect(measurement.powerQuality == .implausible)
    }

    @Test("a shunt voltage at the end of the PGA range flags current and power implausible")
    func saturatedShunt() async throws {
        let rig = Rig(chip: SimulatedINA219())
        rig.chip.setLoad(busVolts: 12, amps: 25, shuntOhms: TIExample.shuntOhms)  // 50 mV into a ±40 mV range
        let measurement = try await rig.driver.readMeasurement()
        #expect(rig.chip.peekRegister(0x01) == 4000)
        #expect(rig.chip.peekRegister(0x02) & 0x0001 == 0)  // no overflow: 20 A still fits
        #expect(isClose(measurement.amps, 20.0))
        #expect(measurement.currentQuality == .implausible)
        #expect(measurement.powerQuality == .implausible)
    }

    @Test("a bus voltage above the 26 V pin rating is implausible")
    func busAboveRating() async throws {
        let rig = Rig(chip: SimulatedINA219(busVolts: 30, shuntVolts: 0.01))
        let values = try await rig.driver.measure()
        #expect(values.first { $0.quantity == .voltage }?.quality == .implausible)
        #expect(values.first { $0.quantity == .current }?.quality == .good)
        #expect(values.first { $0.quantity == .power }?.quality == .implausible)
    }

    @Test("a NACK propagates as I2CError and the next measure sets the chip up again")
    func nackThenRecover() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        rig.chip.nackNextTransfers(1)
        let error = await #expect(throws: I2CError.self) { try await rig.driver.measure() }
        #expect(error?.code == .noAcknowledge)
        #expect(error?.address == address)

        rig.chip.clearTransfers()
        _ = try await rig.driver.measure()
        #expect(rig.chip.transfers == configurationTransfers + sampleTransfers)
    }

    @Test("the driver polls CNVR until the first conversion is done")
    func pollsConversionReady() async throws {
        let pauses = RecordedPauses()
        let rig = Rig(pause: pauses.pause)
        rig.chip.setConversionDuration(reads: 5)
        let measurement = try await rig.driver.readMeasurement()
        #expect(isClose(measurement.amps, 10.0))
        #expect(pauses.all == [.microseconds(136_200), .milliseconds(10), .milliseconds(10), .milliseconds(10)])
    }

    @Test("a chip that never converts is a typed error, and the driver starts over next time")
    func conversionNeverFinishes() async throws {
        let rig = Rig()
        rig.chip.setConversionDuration(reads: 1000)
        let error = await #expect(throws: INA219Error.self) { try await rig.driver.measure() }
        #expect(error?.code == .conversionDidNotFinish)
        #expect(error?.description.contains("INA219 at 0x40 on sim:i2c-1") == true)

        rig.chip.setConversionDuration(reads: 0)
        rig.chip.clearTransfers()
        _ = try await rig.driver.measure()
        #expect(rig.chip.transfers.first == .write([0x00, 0x27, 0xFF]))
    }

    @Test("an INA226 at the address is caught by the configuration read-back")
    func wrongChip() async throws {
        let bus = SimulatedI2CBus(name: "sim:i2c-1")
        bus.attach(SimulatedINA226(), at: address)
        let driver = INA219(device: bus.device(at: address), shuntOhms: 0.002, maximumCurrent: 10, pause: instantPause)
        let error = await #expect(throws: INA219Error.self) { try await driver.measure() }
        #expect(error?.code == .configurationNotAccepted(register: 0x00, wrote: 0x27FF, read: 0x47FF))
        #expect(error?.description.contains("reads 0x47ff after writing 0x27ff") == true)
    }

    @Test(
        "an impossible configuration is a typed error on measure, with nothing sent",
        arguments: [
            (ohms: 0.0, amps: 1.0, code: INA219Error.Code.shuntNotPositive(ohms: 0)),
            (ohms: -0.1, amps: 1.0, code: .shuntNotPositive(ohms: -0.1)),
            (ohms: 0.1, amps: 0, code: .maximumCurrentNotPositive(amps: 0)),
            (ohms: 0.1, amps: 5.0, code: .shuntVoltageBeyondRange(volts: 0.5)),
        ]
    )
    func impossibleConfiguration(ohms: Double, amps: Double, code: INA219Error.Code) async throws {
        let rig = Rig(shuntOhms: ohms, maximumCurrent: amps, currentLSB: nil)
        let error = await #expect(throws: INA219Error.self) { try await rig.driver.measure() }
        #expect(error?.code == code)
        #expect(rig.chip.transfers.isEmpty)
        #expect(rig.driver.calibration == nil)
    }

    @Test("the range error tells the resident the shunt drop")
    func rangeErrorMessage() async throws {
        let rig = Rig(shuntOhms: 0.1, maximumCurrent: 5, currentLSB: nil)
        let error = await #expect(throws: INA219Error.self) { try await rig.driver.measure() }
        #expect(error?.description.contains("500.0 mV, more than the 320 mV") == true)
    }

    @Test("an explicit current LSB below maximum current / 2¹⁵ is refused")
    func lsbTooSmall() throws {
        #expect(throws: INA219Error.Code.currentLSBTooSmall(lsb: 0.0001, minimum: 10.0 / 32768)) {
            try INA219.calibration(shuntOhms: 0.002, maximumCurrent: 10, currentLSB: 0.0001)
        }
    }
}

@Suite("Simulated INA219 register map")
struct SimulatedINA219Tests {
    private func attach(_ chip: SimulatedINA219) -> any I2CDevice {
        let bus = SimulatedI2CBus(name: "sim:i2c-1")
        bus.attach(chip, at: address)
        return bus.device(at: address)
    }

    @Test("power-on values; current and power read 0 until calibrated")
    func powerOn() async throws {
        let chip = SimulatedINA219(busVolts: 11.98, shuntVolts: 0.02)
        let device = self.attach(chip)
        #expect(try await device.readBlockData(0x00, count: 2) == [0x39, 0x9F])
        #expect(try await device.readBlockData(0x01, count: 2) == [0x07, 0xD0])
        #expect(try await device.readBlockData(0x04, count: 2) == [0x00, 0x00])
        #expect(try await device.readBlockData(0x03, count: 2) == [0x00, 0x00])
        #expect(try await device.readBlockData(0x05, count: 2) == [0x00, 0x00])
    }

    @Test("writing the calibration makes the next conversion compute the datasheet's current and power")
    func calibrationComputes() async throws {
        let chip = SimulatedINA219(busVolts: 11.98, shuntVolts: 0.02)
        let device = self.attach(chip)
        try await device.write([0x05, 0x50, 0x00])
        #expect(try await device.readBlockData(0x04, count: 2) == [0x27, 0x10])
        #expect(try await device.readBlockData(0x03, count: 2) == [0x17, 0x66])
        #expect(try await device.readBlockData(0x02, count: 2) == [0x5D, 0x9A])  // CNVR set
    }

    @Test("config bit 15 resets every register and clears itself")
    func resetBit() async throws {
        let chip = SimulatedINA219(busVolts: 11.98, shuntVolts: 0.02)
        let device = self.attach(chip)
        try await device.write([0x00, 0x27, 0xFF])
        try await device.write([0x05, 0x50, 0x00])
        _ = try await device.readBlockData(0x04, count: 2)
        try await device.write([0x00, 0x80, 0x00])
        #expect(chip.peekRegister(0x00) == 0x399F)
        #expect(chip.peekRegister(0x05) == 0)
        #expect(chip.peekRegister(0x04) == 0)
        #expect(chip.peekRegister(0x03) == 0)
    }

    @Test("calibration bit 0 always reads 0; data registers are read-only")
    func writableBits() async throws {
        let chip = SimulatedINA219()
        let device = self.attach(chip)
        try await device.write([0x05, 0x10, 0x01])
        #expect(chip.peekRegister(0x05) == 0x1000)
        try await device.write([0x04, 0x12, 0x34])
        #expect(chip.peekRegister(0x04) == 0)
    }

    @Test("CNVR: set by a conversion, cleared by reading power and by writing the configuration")
    func conversionReady() async throws {
        let chip = SimulatedINA219(busVolts: 5, shuntVolts: 0)
        let device = self.attach(chip)
        try await device.write([0x00, 0x3F, 0xFB])  // shunt and bus, triggered
        #expect(chip.peekRegister(0x02) & 0b10 == 0)
        #expect(try await device.readWordData(0x02).byteSwapped & 0b10 != 0)
        _ = try await device.readWordData(0x03)
        #expect(chip.peekRegister(0x02) & 0b10 == 0)
        // Triggered: no new conversion until the next configuration write.
        #expect(try await device.readWordData(0x02).byteSwapped & 0b10 == 0)
        chip.setElectrical(busVolts: 6, shuntVolts: 0)
        #expect(try await device.readWordData(0x02).byteSwapped >> 3 == 1250)
        try await device.write([0x00, 0x3F, 0xFB])
        #expect(try await device.readWordData(0x02).byteSwapped >> 3 == 1500)
    }

    @Test("power-down converts nothing")
    func powerDown() async throws {
        let chip = SimulatedINA219(busVolts: 5, shuntVolts: 0)
        let device = self.attach(chip)
        try await device.write([0x00, 0x3F, 0xF8])
        chip.setElectrical(busVolts: 9, shuntVolts: 0)
        #expect(try await device.readWordData(0x02).byteSwapped >> 3 == 0)
    }

    @Test("a pointer-only write selects the register for plain reads; reads do not auto-increment")
    func pointerThenRead() async throws {
        let chip = SimulatedINA219()
        let device = self.attach(chip)
        try await device.write([0x00])
        #expect(try await device.read(count: 4) == [0x39, 0x9F, 0x39, 0x9F])
    }

    @Test("NACK faults refuse transfers, which are not recorded")
    func nack() async throws {
        let chip = SimulatedINA219()
        let device = self.attach(chip)
        chip.nackNextTransfers(2)
        for _ in 0..<2 {
            let error = await #expect(throws: I2CError.self) { try await device.readWordData(0x00) }
            #expect(error?.code == .noAcknowledge)
        }
        #expect(try await device.readWordData(0x00) == 0x9F39)
        #expect(chip.transfers == [.writeRead([0x00], count: 2)])
    }
}
