import KiezboxCore
import SensorDrivers
import Synchronization
import Testing

// TI SBOS547 example (sensors.md §11): 10 A, 2 mΩ, 12 V, current LSB 1 mA.
private enum TIExample {
    static let shuntOhms = 0.002
    static let maximumCurrent = 10.0
    static let currentLSB = 0.001
    static let calibration: UInt16 = 0x0A00
    static let shunt: UInt16 = 0x1F40
    static let bus: UInt16 = 0x2570
    static let current: UInt16 = 0x2710
    static let power: UInt16 = 0x12B8
}

private let instantPause: Pause = { _ in }
private let address: UInt8 = 0x40

private func isClose(_ value: Double, _ expected: Double, tolerance: Double = 1e-9) -> Bool {
    abs(value - expected) <= tolerance
}

/// A chip on a simulated bus with a driver pointed at it (TI example defaults).
private typealias Rig = INA2xxRig<SimulatedINA226, INA226>

private func word(_ pointer: UInt8) -> SimulatedINA226.Transfer { .writeRead([pointer], count: 2) }

private let configurationTransfers: [SimulatedINA226.Transfer] = [
    word(0xFE), word(0xFF),  // manufacturer and die id
    .write([0x00, 0x45, 0x27]),  // configuration 0x4527, MSB first on the wire
    .write([0x05, 0x0A, 0x00]),  // calibration 0x0A00
    word(0x00), word(0x05),  // read back
    word(0x06),  // CVRF poll
]
private let sampleTransfers: [SimulatedINA226.Transfer] = [
    word(0x02), word(0x01), word(0x04), word(0x03), word(0x06), word(0x05),
]

@Suite("INA226 calibration and conversions (TI SBOS547 example)")
struct INA226ConversionTests {
    @Test("TI example: 10 A, 2 mΩ, 1 mA LSB gives calibration 0x0A00 and a 25 mW power LSB")
    func tiCalibration() throws {
        let calibration = try INA226.calibration(
            shuntOhms: TIExample.shuntOhms, maximumCurrent: TIExample.maximumCurrent, currentLSB: TIExample.currentLSB
        )
        #expect(calibration.register == 2560)
        #expect(calibration.register == TIExample.calibration)
        #expect(isClose(calibration.powerLSB, 0.025))
    }

    @Test("Kiezbox example: 10 mΩ and 8 A (the most 81.92 mV allows) choose a 0.5 mA LSB and calibration 1024")
    func kiezboxCalibration() throws {
        let calibration = try INA226.calibration(shuntOhms: 0.01, maximumCurrent: 8)
        #expect(calibration.currentLSB == 0.0005)
        #expect(calibration.register == 1024)
    }

    @Test("register values convert per the datasheet")
    func conversions() {
        #expect(isClose(INA226.shuntVolts(register: TIExample.shunt), 0.020))
        #expect(isClose(INA226.busVolts(register: TIExample.bus), 11.98))
        #expect(isClose(INA226.busVolts(register: 10240), 12.8))
        #expect(isClose(INA226.shuntVolts(register: 0xE0C0), -0.020))
        #expect(INA226.configurationRegister == 0x4527)
    }
}

@Suite("INA226 driver on a simulated bus")
struct INA226DriverTests {
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
        #expect(rig.chip.peekRegister(0x02) == TIExample.bus)
        #expect(rig.chip.peekRegister(0x04) == TIExample.current)
        #expect(rig.chip.peekRegister(0x03) == TIExample.power)
        #expect(rig.driver.chipName == "INA226")
    }

    @Test("Kiezbox example end to end: 1.5 A through 10 mΩ at 12.8 V")
    func kiezboxExample() async throws {
        let chip = SimulatedINA226()
        chip.setLoad(busVolts: 12.8, amps: 1.5, shuntOhms: 0.01)
        let rig = Rig(chip: chip, shuntOhms: 0.01, maximumCurrent: 8, currentLSB: nil)
        let values = try await rig.driver.measure()
        #expect(rig.chip.peekRegister(0x01) == 6000)
        #expect(rig.chip.peekRegister(0x04) == 3000)
        #expect(rig.chip.peekRegister(0x02) == 10240)
        #expect(values.map(\.quantity) == [.voltage, .current, .power])
        #expect(isClose(values[0].value, 12.8))
        #expect(isClose(values[1].value, 1.5))
        #expect(isClose(values[2].value, 19.2))
    }

    @Test("SMBus words are byte-swapped: the bus register 0x2570 arrives from SMBus as 0x7025")
    func byteSwap() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        #expect(try await rig.bus.device(at: address).readWordData(0x02) == 0x7025)
        #expect(try await rig.bus.device(at: address).readWordData(0xFE) == 0x4954)
    }

    @Test("first measure checks the ids, configures, verifies and waits for CVRF; later measures only read")
    func transfersOnTheWire() async throws {
        let pauses = RecordedPauses()
        let rig = Rig(pause: pauses.pause)
        _ = try await rig.driver.measure()
        #expect(rig.chip.transfers == configurationTransfers + sampleTransfers)
        #expect(pauses.all == [.microseconds(35_200)])

        rig.chip.clearTransfers()
        _ = try await rig.driver.measure()
        #expect(rig.chip.transfers == sampleTransfers)
    }

    @Test("a brown-out (calibration reads 0) is detected, the chip set up again and read again")
    func brownOut() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        rig.chip.simulateBrownOut()
        rig.chip.clearTransfers()
        let measurement = try await rig.driver.readMeasurement()
        #expect(isClose(measurement.amps, 10.0))
        #expect(rig.driver.chipResetCount == 1)
        #expect(rig.chip.transfers == sampleTransfers + configurationTransfers + sampleTransfers)
        #expect(rig.chip.peekRegister(0x00) == 0x4527)
    }

    @Test("the configuration's reset bit, written by someone else, is caught the same way")
    func resetBitWritten() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        try await rig.bus.device(at: address).write([0x00, 0x80, 0x00])
        #expect(rig.chip.peekRegister(0x00) == SimulatedINA226.powerOnConfiguration)
        _ = try await rig.driver.measure()
        #expect(rig.driver.chipResetCount == 1)
        #expect(rig.chip.peekRegister(0x05) == TIExample.calibration)
    }

    @Test("a foreign chip at the address is named by its ids, and nothing is written to it")
    func wrongChip() async throws {
        let rig = Rig()
        rig.chip.setIDs(manufacturer: 0x0000, die: 0x0000)
        let error = await #expect(throws: INA226Error.self) { try await rig.driver.measure() }
        #expect(error?.code == .wrongChip(manufacturerID: 0, dieID: 0))
        #expect(error?.description.contains("expected 0x5449/0x2260") == true)
        #expect(error?.description.contains("INA219") == true)
        #expect(rig.chip.transfers == [word(0xFE), word(0xFF)])
    }

    @Test("a later die revision is accepted")
    func dieRevision() async throws {
        let rig = Rig()
        rig.chip.setIDs(manufacturer: 0x5449, die: 0x2261)
        _ = try await rig.driver.measure()
    }

    @Test("math overflow (OVF in mask/enable) flags current and power implausible")
    func mathOverflow() async throws {
        // Automatic 500 µA LSB for 10 A: 30 A gives 60000 counts, beyond the current register.
        let chip = SimulatedINA226()
        chip.setLoad(busVolts: 12, amps: 30, shuntOhms: 0.002)
        let rig = Rig(chip: chip, currentLSB: nil)
        let measurement = try await rig.driver.readMeasurement()
        #expect(rig.chip.peekRegister(0x06) & 0x0004 != 0)
        #expect(measurement.voltageQuality == .good)
        #expect(measurement.currentQuality == .implausible)
        #expect(measurement.powerQuality == .implausible)
    }

    @Test("a shunt register at its limit flags current and power implausible", arguments: [UInt16(0x7FFF), 0x8000])
    func saturatedShunt(raw: UInt16) async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        rig.chip.setStuckRegister(0x01, value: raw)
        let measurement = try await rig.driver.readMeasurement()
        #expect(measurement.currentQuality == .implausible)
        #expect(measurement.powerQuality == .implausible)
        #expect(measurement.voltageQuality == .good)
    }

    @Test("a bus register with bit 15 set (a negative voltage, impossible) or above 36 V is implausible",
          arguments: [UInt16(0x8001), 0x7530])
    func implausibleBus(raw: UInt16) async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        rig.chip.setStuckRegister(0x02, value: raw)
        let measurement = try await rig.driver.readMeasurement()
        #expect(measurement.voltageQuality == .implausible)
        #expect(measurement.powerQuality == .implausible)
        #expect(measurement.currentQuality == .good)
    }

    @Test("a NACK propagates as I2CError and the next measure starts with the id check again")
    func nackThenRecover() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        rig.chip.nackNextTransfers(1)
        let error = await #expect(throws: I2CError.self) { try await rig.driver.measure() }
        #expect(error?.code == .noAcknowledge)
        rig.chip.clearTransfers()
        _ = try await rig.driver.measure()
        #expect(rig.chip.transfers == configurationTransfers + sampleTransfers)
    }

    @Test("a chip that never converts is a typed error")
    func conversionNeverFinishes() async throws {
        let rig = Rig()
        rig.chip.setConversionDuration(reads: 1000)
        let error = await #expect(throws: INA226Error.self) { try await rig.driver.measure() }
        #expect(error?.code == .conversionDidNotFinish)
    }

    @Test("a shunt and current beyond the 81.92 mV input are refused before anything is sent")
    func shuntRange() async throws {
        let rig = Rig(shuntOhms: 0.1, maximumCurrent: 1, currentLSB: nil)
        let error = await #expect(throws: INA226Error.self) { try await rig.driver.measure() }
        #expect(error?.code == .shuntVoltageBeyondRange(volts: 0.1))
        #expect(error?.description.contains("100.0 mV, more than the 81.92 mV") == true)
        #expect(rig.chip.transfers.isEmpty)
    }
}

@Suite("Simulated INA226 register map")
struct SimulatedINA226Tests {
    private func attach(_ chip: SimulatedINA226) -> any I2CDevice {
        let bus = SimulatedI2CBus(name: "sim:i2c-1")
        bus.attach(chip, at: address)
        return bus.device(at: address)
    }

    @Test("power-on values and the id registers")
    func powerOn() async throws {
        let device = self.attach(SimulatedINA226())
        #expect(try await device.readBlockData(0x00, count: 2) == [0x41, 0x27])
        #expect(try await device.readBlockData(0xFE, count: 2) == [0x54, 0x49])
        #expect(try await device.readBlockData(0xFF, count: 2) == [0x22, 0x60])
        #expect(try await device.readBlockData(0x05, count: 2) == [0x00, 0x00])
    }

    @Test("configuration bits 14:12 read 100 whatever is written; calibration bit 15 reads 0")
    func fixedBits() async throws {
        let chip = SimulatedINA226()
        let device = self.attach(chip)
        try await device.write([0x00, 0x05, 0x27])
        #expect(chip.peekRegister(0x00) == 0x4527)
        try await device.write([0x05, 0x8A, 0x00])
        #expect(chip.peekRegister(0x05) == 0x0A00)
    }

    @Test("CVRF is set by a conversion and cleared by reading mask/enable")
    func conversionReadyFlag() async throws {
        let chip = SimulatedINA226(busVolts: 12, shuntVolts: 0)
        let device = self.attach(chip)
        try await device.write([0x00, 0x45, 0x23])  // shunt and bus, triggered
        #expect(chip.peekRegister(0x06) & 0x0008 == 0)
        #expect(try await device.readWordData(0x06).byteSwapped & 0x0008 != 0)
        #expect(try await device.readWordData(0x06).byteSwapped & 0x0008 == 0)
    }

    @Test("mask/enable keeps only its writable bits; alert limit is read/write")
    func maskEnable() async throws {
        let chip = SimulatedINA226()
        let device = self.attach(chip)
        try await device.write([0x06, 0xFF, 0xFF])
        #expect(chip.peekRegister(0x06) & 0xFC03 == 0xFC03)
        try await device.write([0x07, 0x12, 0x34])
        #expect(chip.peekRegister(0x07) == 0x1234)
    }

    @Test("the calibration produces the datasheet's current and power; reset clears it")
    func calibrationAndReset() async throws {
        let chip = SimulatedINA226(busVolts: 11.98, shuntVolts: 0.02)
        let device = self.attach(chip)
        try await device.write([0x05, 0x0A, 0x00])
        #expect(try await device.readBlockData(0x04, count: 2) == [0x27, 0x10])
        #expect(try await device.readBlockData(0x03, count: 2) == [0x12, 0xB8])
        try await device.write([0x00, 0x80, 0x00])
        #expect(chip.peekRegister(0x05) == 0)
        #expect(try await device.readBlockData(0x04, count: 2) == [0x00, 0x00])
    }
}
