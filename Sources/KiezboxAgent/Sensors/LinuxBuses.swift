import SensorDrivers
import Synchronization

/// The buses of a real box: `/dev/i2c-N` adapters and `/dev/gpiochipN` chips, each opened once and shared by
/// every sensor on it.
final class LinuxBuses: BusProvider {
    private let i2cBuses = Mutex<[String: LinuxI2CBus]>([:])
    private let gpioChips = Mutex<[String: LinuxGPIOChip]>([:])

    var pause: Pause { realPause }

    /// Each serial sensor has a port of its own, opened (and claimed exclusively) when its driver is built.
    func serialPort(_ path: String, baudRate: SerialBaudRate) throws -> (port: any SerialPort, pause: Pause) {
        (try LinuxSerialPort(path: path, baudRate: baudRate), realPause)
    }

    func i2cBus(_ name: String) throws -> any I2CBus {
        try self.i2cBuses.withLock { buses throws(I2CError) -> LinuxI2CBus in
            if let bus = buses[name] { return bus }
            let bus = try LinuxI2CBus(path: name)
            buses[name] = bus
            return bus
        }
    }

    func gpioChip(_ name: String) throws -> any GPIOChip {
        try self.gpioChips.withLock { chips throws(GPIOError) -> LinuxGPIOChip in
            if let chip = chips[name] { return chip }
            let chip = try LinuxGPIOChip(name)
            chips[name] = chip
            return chip
        }
    }
}
