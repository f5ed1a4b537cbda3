import Foundation
import KiezboxCore
import SensorDrivers
import Synchronization

/// The simulated hardware behind `kiezbox run --simulate`: simulated buses with datasheet-faithful simulated
/// chips on them, served to the production drivers through the same bus protocols as the Linux devices.
///
/// Without a fixture, the kit puts the configured chip at each configured place, so any configuration runs.
final class SimulatedKit: BusProvider {
    private let i2cBuses: Mutex<[String: SimulatedI2CBus]>
    private let environmentSetters: [@Sendable (SimulatedWeather.Conditions) -> Void]

    init(sensors: [SensorConfiguration], fixturePath: String?) throws {
        if let fixturePath {
            throw DaemonError(description: "fixture files are not supported yet (\(fixturePath)); run --simulate without one for the demo kit")
        }
        var setters: [@Sendable (SimulatedWeather.Conditions) -> Void] = []
        var i2cBuses: [String: SimulatedI2CBus] = [:]
        func i2cBus(_ name: String) -> SimulatedI2CBus {
            if let bus = i2cBuses[name] { return bus }
            let bus = SimulatedI2CBus(name: "sim:" + name)
            i2cBuses[name] = bus
            return bus
        }
        for sensor in sensors {
            switch (sensor.chip, sensor.connection) {
            case (.bme280, .i2c(let bus, let address)):
                let chip = SimulatedBME280()
                i2cBus(bus).attach(chip, at: address)
                setters.append { conditions in
                    chip.setEnvironment(celsius: conditions.celsius, hectopascal: conditions.hectopascal, percentRH: conditions.percentRH)
                }
            default:
                throw DaemonError(description: "sensor '\(sensor.id)': no simulation for a \(sensor.chip) yet")
            }
        }
        self.i2cBuses = Mutex(i2cBuses)
        self.environmentSetters = setters
    }

    /// The simulated bus with this name, created empty on first use.
    func simulatedI2CBus(_ name: String) -> SimulatedI2CBus {
        self.i2cBuses.withLock { buses in
            if let bus = buses[name] { return bus }
            let bus = SimulatedI2CBus(name: "sim:" + name)
            buses[name] = bus
            return bus
        }
    }

    func i2cBus(_ name: String) throws -> any I2CBus { self.simulatedI2CBus(name) }

    func gpioChip(_ name: String) throws -> any GPIOChip {
        throw DaemonError(description: "no simulated GPIO chip '\(name)'")
    }

    /// Sets every simulated chip to the weather of `date`.
    func updateEnvironment(at date: Date) {
        let conditions = SimulatedWeather.conditions(at: date)
        for set in self.environmentSetters { set(conditions) }
    }
}
