#if os(Linux)
import KiezboxCore
import SensorDrivers

/// The production ``BME280`` driver through ``LinuxI2CBus`` on i2c-stub's register map at 0x76.
///
/// i2c-stub is a plain 256-byte register file: it holds whatever was written, so the chip's images are
/// preloaded through SMBus writes, and the driver's own writes (reset, ctrl_hum, config, ctrl_meas) simply land
/// in the map. Status 0xF3 reads 0, so the NVM copy and the conversion look finished at once.
enum BME280Checks {
    /// sensors.md §1, vector B: calibration, chip id and one conversion's data registers.
    static let calibration0x88: [UInt8] = [
        0x69, 0x6d, 0x36, 0x64, 0x32, 0x00, 0xe9, 0x98, 0x02, 0xd6, 0xd0, 0x0b, 0x23, 0x16, 0x88, 0xff,
        0xf9, 0xff, 0x8c, 0x3c, 0xf8, 0xc6, 0x70, 0x17, 0x00, 0x4b,
    ]
    static let calibration0xE1: [UInt8] = [0x78, 0x01, 0x00, 0x11, 0x2e, 0x03, 0x1e]
    static let data0xF7: [UInt8] = [0x4f, 0xca, 0x00, 0x81, 0x32, 0x70, 0x76, 0x49]

    static let all: [Check] = [
        Check("bme280: vector B through i2c-dev reads 24.79 °C, 1006.61 hPa, 68.67 %; its writes land in the map") {
            let device = try SimulatedHardware.i2cStubBus().device(at: SimulatedHardware.bme280Address)
            try await device.writeBlockData(0x88, calibration0x88)
            try await device.writeBlockData(0xE1, calibration0xE1)
            try await device.writeByteData(0xD0, 0x60)
            try await device.writeByteData(0xF3, 0x00)
            try await device.writeBlockData(0xF7, data0xF7)

            let driver = BME280(device: device, pause: realPause)
            let values = try await driver.measure()
            func value(_ quantity: Quantity) throws(CheckFailure) -> Double {
                guard let measured = values.first(where: { $0.quantity == quantity }) else {
                    throw CheckFailure("no \(quantity) in \(values)")
                }
                try expectEqual(measured.quality, .good, "\(quantity) quality")
                return measured.value
            }
            // Datasheet integer variant: T 2479 (0.01 °C), P 25769253 (Q24.8 Pa), H 70317 (Q22.10 %).
            try expectClose(try value(.temperature), 24.79, within: 0.005, "temperature °C")
            try expectClose(try value(.pressure), 1006.61, within: 0.01, "pressure hPa")
            try expectClose(try value(.relativeHumidity), 68.67, within: 0.01, "humidity %")
            try expectEqual(driver.detectedVariant, .bme280, "variant")

            // The driver's writes went over the bus into the register map.
            try expectEqual(try await device.readByteData(0xE0), 0xB6, "reset (0xE0)")
            try expectEqual(try await device.readByteData(0xF2), 0x01, "ctrl_hum (0xF2): humidity ×1")
            try expectEqual(try await device.readByteData(0xF5), 0x00, "config (0xF5): filter off")
            try expectEqual(try await device.readByteData(0xF4), 0x25, "ctrl_meas (0xF4): ×1, ×1, forced")
        },
    ]
}
#endif
