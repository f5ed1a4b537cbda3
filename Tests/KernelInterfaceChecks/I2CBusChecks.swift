#if os(Linux)
import SensorDrivers

/// ``LinuxI2CBus`` on i2c-stub: SMBus round trips, discovery, and how kernel errors arrive as typed errors.
enum I2CBusChecks {
    /// A register of the INA219's chip that no driver touches here, for round trips.
    static let scratchAddress = SimulatedHardware.ina219Address
    /// An address i2c-stub serves no chip at; in i2cdetect's receive-byte range (0x50–0x5F).
    static let absentAddress: UInt8 = 0x50

    static let all: [Check] = [
        Check("i2c: the adapter reports SMBus but not plain I²C") {
            let bus = try SimulatedHardware.i2cStubBus()
            let smbus: LinuxI2CBus.Functionality = [.smbusQuick, .smbusByteData, .smbusWordData, .smbusI2CBlock]
            try expect(bus.functionality.contains(smbus), "functionality \(bus.functionality)")
            try expect(!bus.functionality.contains(.plainI2C), "i2c-stub claims plain I²C")
        },
        Check("i2c: SMBus byte, word and block round trips") {
            let device = try SimulatedHardware.i2cStubBus().device(at: scratchAddress)
            try await device.writeByteData(0x10, 0x5A)
            try expectEqual(try await device.readByteData(0x10), 0x5A, "byte at 0x10")
            // i2c-stub keeps a 16-bit word per register; a byte read gives the word's low byte, the first on the wire.
            try await device.writeWordData(0x20, 0xBEEF)
            try expectEqual(try await device.readWordData(0x20), 0xBEEF, "word at 0x20")
            try expectEqual(try await device.readByteData(0x20), 0xEF, "low byte at 0x20")
            let block = (0..<32).map { UInt8($0 * 7 & 0xFF) }
            try await device.writeBlockData(0x30, block)
            try expectEqual(try await device.readBlockData(0x30, count: 32), block, "32-byte block at 0x30")
        },
        Check("i2c: scan finds exactly the stub's chips (0x40, 0x76)") {
            let bus = try SimulatedHardware.i2cStubBus()
            try expectEqual(bus.scan(), [SimulatedHardware.ina219Address, SimulatedHardware.bme280Address], "scan")
            try expect(!bus.probe(address: absentAddress), "probe (receive byte) found a chip at 0x50")
            try expect(!bus.probe(address: 0x77), "probe (quick write) found a chip at 0x77")
        },
        Check("i2c: a read at an absent address is noDevice") {
            let device = try SimulatedHardware.i2cStubBus().device(at: absentAddress)
            try await expectError("read at 0x50", I2CError.self, where: { $0.code == .noDevice && $0.address == absentAddress }) {
                try await device.readByteData(0x00)
            }
        },
        Check("i2c: raw messages on an SMBus-only adapter are plainI2CUnsupported") {
            let device = try SimulatedHardware.i2cStubBus().device(at: SimulatedHardware.bme280Address)
            let unsupported: (I2CError) -> Bool = { $0.code == .plainI2CUnsupported }
            try await expectError("writeRead", I2CError.self, where: unsupported) { try await device.writeRead([0xD0], count: 1) }
            try await expectError("write", I2CError.self, where: unsupported) { try await device.write([0xF4, 0x25]) }
            try await expectError("read", I2CError.self, where: unsupported) { try await device.read(count: 2) }
        },
        Check("i2c: a missing bus is noSuchBus") {
            try await expectError("open /dev/i2c-9", I2CError.self, where: { $0.code == .noSuchBus }) {
                try LinuxI2CBus(busNumber: 9)
            }
        },
    ]
}
#endif
