import SensorDrivers

/// Where drivers get their buses: the Linux devices of a real box, or the simulated kit.
protocol BusProvider: Sendable {
    func i2cBus(_ name: String) throws -> any I2CBus
}

/// Builds the driver for each configured sensor on the buses of a provider; the same code for hardware and
/// simulation, so a demo runs the production drivers.
struct SensorFactory {
    let buses: any BusProvider

    func makeDriver(for sensor: SensorConfiguration) throws -> any SensorDriver {
        switch (sensor.chip, sensor.connection) {
        case (.bme280, .i2c(let bus, let address)):
            return BME280(device: try self.buses.i2cBus(bus).device(at: address))
        default:
            throw DaemonError(description: "sensor '\(sensor.id)': the \(sensor.chip) driver is not available in this build")
        }
    }

    func scheduledSensors(_ sensors: [SensorConfiguration]) throws -> [ScheduledSensor] {
        try sensors.map { sensor in
            ScheduledSensor(id: sensor.id, interval: sensor.interval, offsets: sensor.offsets, driver: try self.makeDriver(for: sensor))
        }
    }
}
