#if os(Linux)
import KiezboxCore
import SensorDrivers

/// The production ``INA219`` driver through ``LinuxI2CBus`` on i2c-stub's word map at 0x40.
///
/// i2c-stub keeps one 16-bit word per register and returns it as the SMBus word (low byte first on the wire),
/// so each register is preloaded byte-swapped, exactly as the chip's MSB-first word arrives over SMBus.
/// Values: the TI datasheet example (10 A through 2 mΩ at 12 V; sensors.md §11).
enum INA219Checks {
    static let all: [Check] = [
        Check("ina219: datasheet example through i2c-dev reads 11.98 V, 20 mV, 10.000 A, 119.8 W; config and calibration land") {
            let device = try SimulatedHardware.i2cStubBus().device(at: SimulatedHardware.ina219Address)
            try await device.writeWordData(0x01, 0xD007)  // shunt 0x07D0: 20 mV
            try await device.writeWordData(0x02, 0x9A5D)  // bus 0x5D9A: 11.98 V, conversion ready
            try await device.writeWordData(0x03, 0x6617)  // power 0x1766
            try await device.writeWordData(0x04, 0x1027)  // current 0x2710

            let driver = INA219(device: device, shuntOhms: 0.002, maximumCurrent: 10, currentLSB: 0.001, pause: realPause)
            let measurement = try await driver.readMeasurement()
            try expectClose(measurement.busVolts, 11.98, within: 0.001, "bus voltage V")
            try expectClose(measurement.shuntVolts, 0.020, within: 0.000_01, "shunt voltage V")
            try expectClose(measurement.amps, 10.0, within: 0.0005, "current A")
            try expectClose(measurement.watts, 119.8, within: 0.01, "power W")
            for (quality, what) in [
                (measurement.voltageQuality, "voltage"), (measurement.currentQuality, "current"), (measurement.powerQuality, "power"),
            ] {
                try expectEqual(quality, ReadingQuality.good, "\(what) quality")
            }
            // The driver's configuration and calibration went over the bus, MSB first.
            try expectEqual(try await device.readWordData(0x05).byteSwapped, 0x5000, "calibration register")
        },
        Check("ina219: a calibration register cleared behind the driver's back (brown-out) is detected and rewritten") {
            let device = try SimulatedHardware.i2cStubBus().device(at: SimulatedHardware.ina219Address)
            let driver = INA219(device: device, shuntOhms: 0.002, maximumCurrent: 10, currentLSB: 0.001, pause: realPause)
            _ = try await driver.readMeasurement()
            try await device.writeWordData(0x05, 0x0000)
            let measurement = try await driver.readMeasurement()
            try expectEqual(driver.chipResetCount, 1, "resets detected")
            try expectEqual(try await device.readWordData(0x05).byteSwapped, 0x5000, "calibration rewritten")
            try expectClose(measurement.amps, 10.0, within: 0.0005, "current after the reset A")
        },
    ]
}
#endif
