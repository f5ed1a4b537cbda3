import Foundation
import KiezboxCore
import SensorDrivers

/// The simulated hardware behind `kiezbox run --simulate`: one simulated bus per configured bus, a
/// datasheet-faithful simulated chip at each configured address, and the production drivers on top.
struct SimulatedKit: Sendable {
    let buses: [String: SimulatedI2CBus]
    let climateChips: [SimulatedBME280]
    let scheduledSensors: [ScheduledSensor]

    init(sensors: [SensorConfiguration], fixturePath: String?) throws {
        if let fixturePath {
            throw DaemonError(description: "fixture files are not supported yet (\(fixturePath)); run --simulate without one for the demo kit")
        }
        var buses: [String: SimulatedI2CBus] = [:]
        var climateChips: [SimulatedBME280] = []
        var scheduled: [ScheduledSensor] = []
        for sensor in sensors {
            let bus = buses[sensor.bus] ?? SimulatedI2CBus(name: "sim:" + sensor.bus)
            buses[sensor.bus] = bus
            let driver: any SensorDriver
            switch sensor.chip {
            case .bme280:
                let chip = SimulatedBME280()
                bus.attach(chip, at: sensor.address)
                climateChips.append(chip)
                driver = BME280(device: bus.device(at: sensor.address))
            }
            scheduled.append(ScheduledSensor(id: sensor.id, interval: sensor.interval, offsets: sensor.offsets, driver: driver))
        }
        self.buses = buses
        self.climateChips = climateChips
        self.scheduledSensors = scheduled
    }
}
