/// How a chip is connected.
public enum ChipInterface: String, Sendable, Hashable, CustomStringConvertible {
    case i2c
    case serial
    case gpio
    /// A local service (gpsd) reached over TCP.
    case network

    public var description: String {
        switch self {
        case .i2c: "an I²C chip"
        case .serial: "a serial (UART) device"
        case .gpio: "a GPIO input"
        case .network: "a network service"
        }
    }
}

/// Every chip Kiezbox has a driver for, by the name used in the configuration.
public enum ChipModel: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Bosch BME280 (temperature, humidity, pressure); a BMP280 is recognised by its chip id.
    case bme280
    /// Sensirion SHT30/31/35 (temperature, humidity).
    case sht3x
    /// Sensirion SHT40/41/45 (temperature, humidity).
    case sht4x
    /// Sensirion SCD30 (NDIR CO₂, temperature, humidity).
    case scd30
    /// Sensirion SCD40/41 (photoacoustic CO₂, temperature, humidity).
    case scd4x
    /// Sensirion SPS30 particulate matter sensor on I²C.
    case sps30
    /// Sensirion SPS30 on its UART (SHDLC) interface.
    case sps30UART = "sps30-uart"
    /// Nova Fitness SDS011 particulate matter sensor (UART).
    case sds011
    /// Plantower PMS5003 particulate matter sensor (UART).
    case pms5003
    /// TI INA219 current, voltage and power monitor.
    case ina219
    /// TI INA226 current, voltage and power monitor.
    case ina226
    /// A GPS receiver speaking NMEA 0183 on a serial port.
    case gps
    /// Position from a local gpsd.
    case gpsd
    /// A tipping-bucket rain gauge on a GPIO input.
    case rainGauge = "rain-gauge"
    /// A mains-present signal on a GPIO input.
    case mainsFail = "mains-fail"

    public var interface: ChipInterface {
        switch self {
        case .bme280, .sht3x, .sht4x, .scd30, .scd4x, .sps30, .ina219, .ina226: .i2c
        case .sps30UART, .sds011, .pms5003, .gps: .serial
        case .rainGauge, .mainsFail: .gpio
        case .gpsd: .network
        }
    }

    /// The addresses the chip can be strapped to, the first being the usual breakout default.
    public var i2cAddresses: [UInt8] {
        switch self {
        case .bme280: [0x76, 0x77]
        case .sht3x: [0x44, 0x45]
        case .sht4x: [0x44, 0x45, 0x46]
        case .scd30: [0x61]
        case .scd4x: [0x62]
        case .sps30: [0x69]
        case .ina219, .ina226: Array(0x40...0x4F)
        default: []
        }
    }

    /// Whether the driver watches its line all the time (``WatchingSensorDriver``) rather than only when measured.
    public var watches: Bool {
        switch self {
        case .rainGauge, .mainsFail: true
        default: false
        }
    }

    /// The serial speed the device talks at (8N1).
    public var baudRate: Int? {
        switch self {
        case .sds011, .pms5003, .gps: 9600
        case .sps30UART: 115_200
        default: nil
        }
    }

    /// A particulate sensor: a fan and a laser run while it measures, the box's largest switchable sensor load.
    public var isParticulate: Bool {
        switch self {
        case .sps30, .sps30UART, .sds011, .pms5003: true
        default: false
        }
    }

    /// How often to read it unless configured otherwise (reference: cadence and warm-up per chip).
    public var defaultInterval: Duration {
        switch self {
        case .bme280, .sht3x, .sht4x, .scd30, .scd4x, .rainGauge: .seconds(60)
        case .sps30, .sps30UART, .sds011, .pms5003: .seconds(300)
        case .ina219, .ina226, .mainsFail: .seconds(10)
        case .gps, .gpsd: .seconds(600)
        }
    }

    public var description: String {
        switch self {
        case .bme280: "BME280"
        case .sht3x: "SHT3x"
        case .sht4x: "SHT4x"
        case .scd30: "SCD30"
        case .scd4x: "SCD4x"
        case .sps30: "SPS30"
        case .sps30UART: "SPS30 (UART)"
        case .sds011: "SDS011"
        case .pms5003: "PMS5003"
        case .ina219: "INA219"
        case .ina226: "INA226"
        case .gps: "NMEA GPS"
        case .gpsd: "gpsd"
        case .rainGauge: "rain gauge"
        case .mainsFail: "mains-fail input"
        }
    }
}
