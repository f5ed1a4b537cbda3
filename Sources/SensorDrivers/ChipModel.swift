/// How a chip is connected.
public enum ChipInterface: String, Sendable, Hashable {
    case i2c
    case serial
    case gpio
}

/// Every chip Kiezbox has a driver for, by the name used in the configuration.
public enum ChipModel: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Bosch BME280 (temperature, humidity, pressure); a BMP280 is recognised by its chip id.
    case bme280

    public var interface: ChipInterface {
        switch self {
        case .bme280: .i2c
        }
    }

    /// The addresses the chip can be strapped to, the first being the usual breakout default.
    public var i2cAddresses: [UInt8] {
        switch self {
        case .bme280: [0x76, 0x77]
        }
    }

    public var description: String {
        switch self {
        case .bme280: "BME280"
        }
    }
}
