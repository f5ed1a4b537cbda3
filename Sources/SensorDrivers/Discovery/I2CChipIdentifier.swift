/// What answered at an I²C address, as far as the chip itself says.
public struct I2CChipIdentity: Sendable, Hashable, CustomStringConvertible {
    /// The chip Kiezbox has a driver for, if it is one.
    public var model: ChipModel?
    /// What to call it: "BME280", "BMP280", "BME680", "SHT3x".
    public var name: String
    /// What identified it: "chip id 0x60", "serial 0x0f1e2d3c".
    public var evidence: String

    public init(model: ChipModel?, name: String, evidence: String) {
        self.model = model
        self.name = name
        self.evidence = evidence
    }

    public var description: String { "\(self.name) (\(self.evidence))" }
}

/// Identifies the chips of the kit by address and by what they answer to harmless reads: an ID register
/// (Bosch, TI INA226), or a Sensirion read command whose answer must pass its CRC. Nothing is written that
/// changes a chip's settings.
public enum I2CChipIdentifier {
    /// The chips that can sit at `address`.
    public static func candidates(at address: UInt8) -> [ChipModel] {
        ChipModel.allCases.filter { $0.i2cAddresses.contains(address) }
    }

    /// Asks the device at its address what it is; nil when it does not answer like any chip of the kit.
    public static func identify(_ device: any I2CDevice, pause: Pause = realPause) async -> I2CChipIdentity? {
        let candidates = Self.candidates(at: device.address)
        if candidates.contains(.bme280), let identity = await Self.boschChipID(device) { return identity }
        if candidates.contains(.ina226) || candidates.contains(.ina219), let identity = await Self.texasInstruments(device) {
            return identity
        }
        if candidates.contains(.sht3x),
            await Self.sensirionAnswer(device, command: [0xF3, 0x2D], words: 1, wait: .milliseconds(1), pause: pause) != nil
        {
            return I2CChipIdentity(model: .sht3x, name: "SHT3x", evidence: "status register with valid CRC")
        }
        if candidates.contains(.sht4x),
            let serial = await Self.sensirionAnswer(device, command: [0x89], words: 2, wait: .milliseconds(1), pause: pause)
        {
            return I2CChipIdentity(model: .sht4x, name: "SHT4x", evidence: "serial \(hex(UInt32(serial[0]) << 16 | UInt32(serial[1])))")
        }
        if candidates.contains(.scd30),
            let firmware = await Self.sensirionAnswer(device, command: [0xD1, 0x00], words: 1, wait: .milliseconds(3), pause: pause)
        {
            return I2CChipIdentity(model: .scd30, name: "SCD30", evidence: "firmware \(firmware[0] >> 8).\(firmware[0] & 0xFF)")
        }
        if candidates.contains(.scd4x) {
            if let serial = await Self.sensirionAnswer(device, command: [0x36, 0x82], words: 3, wait: .milliseconds(1), pause: pause) {
                let number = serial.map { String($0, radix: 16) }.joined()
                return I2CChipIdentity(model: .scd4x, name: "SCD4x", evidence: "serial \(number)")
            }
            // A measuring SCD4x ignores every command but stop and read: it acknowledges its address, though.
            return I2CChipIdentity(model: .scd4x, name: "SCD4x?", evidence: "answers at its address; busy measuring")
        }
        if candidates.contains(.sps30),
            let firmware = await Self.sensirionAnswer(device, command: [0xD1, 0x00], words: 1, wait: .milliseconds(1), pause: pause)
        {
            return I2CChipIdentity(model: .sps30, name: "SPS30", evidence: "firmware \(firmware[0] >> 8).\(firmware[0] & 0xFF)")
        }
        return nil
    }

    /// Bosch chip id at 0xD0: 0x60 BME280, 0x56–0x58 BMP280, 0x61 BME680.
    private static func boschChipID(_ device: any I2CDevice) async -> I2CChipIdentity? {
        guard let id = try? await device.readByteData(0xD0) else { return nil }
        let evidence = "chip id \(hex(id))"
        switch id {
        case 0x60: return I2CChipIdentity(model: .bme280, name: "BME280", evidence: evidence)
        case 0x56, 0x57, 0x58: return I2CChipIdentity(model: .bme280, name: "BMP280", evidence: evidence + ": no humidity sensor")
        case 0x61: return I2CChipIdentity(model: nil, name: "BME680", evidence: evidence + ": not supported")
        default: return nil
        }
    }

    /// INA226 by its manufacturer (0xFE = "TI") and die id (0xFF = 0x226x); an INA219 has no id registers, so
    /// a device at 0x40–0x4F whose configuration register reads back is taken for one.
    private static func texasInstruments(_ device: any I2CDevice) async -> I2CChipIdentity? {
        if let manufacturer = try? await device.readWordData(0xFE), manufacturer.byteSwapped == 0x5449,
            let die = try? await device.readWordData(0xFF), die.byteSwapped & 0xFFF0 == 0x2260
        {
            return I2CChipIdentity(model: .ina226, name: "INA226", evidence: "manufacturer id 0x5449, die id \(hex(die.byteSwapped))")
        }
        guard let configuration = try? await device.readWordData(0x00) else { return nil }
        return I2CChipIdentity(
            model: .ina219, name: "INA219?", evidence: "configuration register \(hex(configuration.byteSwapped)); an INA219 has no id register"
        )
    }

    /// Sends a Sensirion read command and returns the answer's words if every CRC is right.
    private static func sensirionAnswer(
        _ device: any I2CDevice, command: [UInt8], words: Int, wait: Duration, pause: Pause
    ) async -> [UInt16]? {
        do {
            try await device.write(command)
            try await pause(wait)
            let bytes = try await device.read(count: words * 3)
            return try SensirionWords.decode(bytes)
        } catch {
            return nil
        }
    }

    private static func hex<I: BinaryInteger>(_ value: I) -> String { "0x" + String(value, radix: 16) }
}
