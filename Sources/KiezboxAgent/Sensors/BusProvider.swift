import SensorDrivers
import Synchronization

/// Where drivers get their buses: the Linux devices of a real box, or the simulated kit.
protocol BusProvider: Sendable {
    /// The I²C bus with this device path ("/dev/i2c-1").
    func i2cBus(_ name: String) throws -> any I2CBus
    /// The GPIO chip with this name, path, number or label ("gpiochip0", "pinctrl-bcm2711").
    func gpioChip(_ name: String) throws -> any GPIOChip
    /// The serial port at `path`, and how a driver on it waits (a simulated port keeps its own time).
    func serialPort(_ path: String, baudRate: SerialBaudRate) throws -> (port: any SerialPort, pause: Pause)
    /// How drivers wait for their chips (conversion times, warm-ups).
    var pause: Pause { get }
}

/// Builds the driver for each configured sensor on the buses of a provider; the same code for hardware and
/// simulation, so a demo runs the production drivers.
struct SensorFactory {
    let buses: any BusProvider
    /// For `doctor`: serial sensors skip their warm-up and take a single reading, so the check is quick; the
    /// protocol on the wire is the same.
    var quickCheck = false

    func makeDriver(for sensor: SensorConfiguration) throws -> any SensorDriver {
        let pause = self.buses.pause
        let options = sensor.options
        switch (sensor.chip, sensor.connection) {
        case (_, .i2c(let bus, let address)):
            let device = try self.buses.i2cBus(bus).device(at: address)
            switch sensor.chip {
            case .bme280: return BME280(device: device, pause: pause)
            case .sht3x: return SHT3x(device: device, pause: pause)
            case .sht4x: return SHT4x(device: device, pause: pause)
            case .scd30: return SCD30(device: device, pause: pause)
            case .scd4x: return SCD4x(device: device, pause: pause)
            case .sps30: return SPS30(device: device, pause: pause)
            case .ina219:
                return INA219(
                    device: device, shuntOhms: options.shuntOhms ?? 0.1, maximumCurrent: options.maximumCurrent ?? 3.2,
                    pause: pause
                )
            case .ina226:
                return INA226(
                    device: device, shuntOhms: options.shuntOhms ?? 0.01, maximumCurrent: options.maximumCurrent ?? 8,
                    pause: pause
                )
            default: break
            }
        case (_, .serial(let path, let baud)):
            let (port, portPause) = try self.buses.serialPort(path, baudRate: try SerialBaudRate(bitsPerSecond: baud))
            switch sensor.chip {
            case .sds011:
                let configuration = self.quickCheck ? SDS011.Configuration(warmUp: .zero, samples: 1) : SDS011.Configuration()
                return SDS011(port: port, configuration: configuration, pause: portPause)
            case .pms5003:
                let configuration = self.quickCheck ? PMS5003.Configuration(warmUp: .zero, samples: 1) : PMS5003.Configuration()
                return PMS5003(port: port, configuration: configuration, pause: portPause)
            case .sps30UART:
                let configuration = self.quickCheck ? SPS30UART.Configuration(warmUp: .zero) : SPS30UART.Configuration()
                return SPS30UART(port: port, configuration: configuration, pause: portPause)
            case .gps: return NMEAGPS(port: port)
            default: break
            }
        case (.gpsd, .network(let host, let port)):
            return GPSD(configuration: GPSD.Configuration(host: host, port: UInt16(clamping: port)))
        case (.rainGauge, .gpio(let chip, let line)):
            return RainGauge(
                chip: try self.buses.gpioChip(chip), line: line,
                millimetresPerTip: options.millimetresPerTip ?? RainGauge.defaultMillimetresPerTip,
                debounce: options.debounce ?? RainGauge.defaultDebounce, consumer: "kiezbox \(sensor.id)"
            )
        case (.mainsFail, .gpio(let chip, let line)):
            return MainsFailInput(
                chip: try self.buses.gpioChip(chip), line: line,
                polarity: options.activeLow == true ? .presentWhenLow : .presentWhenHigh,
                debounce: options.debounce ?? MainsFailInput.defaultDebounce, consumer: "kiezbox \(sensor.id)", pause: pause
            )
        default:
            break
        }
        throw DaemonError(description: "sensor '\(sensor.id)': the \(sensor.chip) driver is not available in this build")
    }

    /// A scheduled sensor per configured one. A driver whose bus cannot be opened yet (I²C not enabled, USB
    /// adapter not plugged in) is built on a later attempt, under the sampler's backoff, so one missing bus
    /// never stops the other sensors.
    func scheduledSensors(_ sensors: [SensorConfiguration]) -> [ScheduledSensor] {
        sensors.map { sensor in
            let factory = self
            let driver = DeferredDriver(chipName: sensor.chip.description) { try factory.makeDriver(for: sensor) }
            return ScheduledSensor(
                id: sensor.id, interval: sensor.interval, offsets: sensor.offsets, driver: driver,
                firstReadingAfterInterval: sensor.chip.watches, isParticulate: sensor.chip.isParticulate
            )
        }
    }
}

/// A driver built on first use, and built again on the next use for as long as building fails.
final class DeferredDriver: WatchingSensorDriver {
    let chipName: String
    private let build: @Sendable () throws -> any SensorDriver
    private let built = Mutex<(any SensorDriver)?>(nil)

    init(chipName: String, build: @escaping @Sendable () throws -> any SensorDriver) {
        self.chipName = chipName
        self.build = build
    }

    /// The driver, building it if it is not built yet.
    func driver() throws -> any SensorDriver {
        try self.built.withLock { built in
            if let driver = built { return driver }
            let driver = try self.build()
            built = driver
            return driver
        }
    }

    func measure() async throws -> [MeasuredValue] {
        try await self.driver().measure()
    }

    /// Watches with the built driver, if it is one that watches; returns at once otherwise.
    func watch() async throws {
        guard let watching = try self.driver() as? any WatchingSensorDriver else { return }
        try await watching.watch()
    }
}
