import SensorDrivers

/// The drivers' shared initialiser, so one rig serves the INA219 and INA226 tests.
protocol ShuntMonitorDriver: SensorDriver {
    init(device: any I2CDevice, shuntOhms: Double, maximumCurrent: Double, currentLSB: Double?, pause: @escaping Pause)
}

extension INA219: ShuntMonitorDriver {}
extension INA226: ShuntMonitorDriver {}

/// The simulations' shared initialiser.
protocol SimulatedShuntMonitor: SimulatedI2CChip {
    init(busVolts: Double, shuntVolts: Double)
}

extension SimulatedINA219: SimulatedShuntMonitor {}
extension SimulatedINA226: SimulatedShuntMonitor {}

/// A simulated INA2xx at 0x40 on a simulated bus with a driver pointed at it. The defaults are TI's example
/// (sensors.md §11): 11.98 V and 20 mV across a 2 mΩ shunt, 10 A maximum, current LSB 1 mA.
struct INA2xxRig<Chip: SimulatedShuntMonitor, Driver: ShuntMonitorDriver> {
    let bus = SimulatedI2CBus(name: "sim:i2c-1")
    let chip: Chip
    let driver: Driver

    init(
        chip: Chip = Chip(busVolts: 11.98, shuntVolts: 0.02),
        shuntOhms: Double = 0.002,
        maximumCurrent: Double = 10.0,
        currentLSB: Double? = 0.001,
        pause: @escaping Pause = { _ in }
    ) {
        let address: UInt8 = 0x40
        self.chip = chip
        self.bus.attach(chip, at: address)
        self.driver = Driver(
            device: self.bus.device(at: address),
            shuntOhms: shuntOhms,
            maximumCurrent: maximumCurrent,
            currentLSB: currentLSB,
            pause: pause
        )
    }
}
