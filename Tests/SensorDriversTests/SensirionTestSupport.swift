import KiezboxCore
import SensorDrivers
import Synchronization

/// A pause that returns at once: tests never wait in real time.
let instantSensirionPause: Pause = { _ in }

/// Records every pause a driver asks for, without waiting.
final class RecordedPauses: Sendable {
    private let durations = Mutex<[Duration]>([])
    var all: [Duration] { self.durations.withLock { $0 } }
    var pause: Pause { { duration in self.durations.withLock { $0.append(duration) } } }
    func clear() { self.durations.withLock { $0.removeAll() } }
    /// The sum of every pause: how long the driver would have taken on real hardware.
    var total: Duration { self.all.reduce(.zero, +) }
}

/// The first value of `quantity` in `values`.
func value(of quantity: Quantity, in values: [MeasuredValue]) -> MeasuredValue? {
    values.first { $0.quantity == quantity }
}

/// A 16-bit command and its argument words with CRCs, as the driver must put them on the wire.
func commandBytes(_ code: UInt16, _ arguments: UInt16...) -> [UInt8] {
    SensirionWords.command(code, arguments: arguments)
}

/// `chip` on a fresh simulated bus at `address`, and the device a driver would reach it through.
func attach<Chip: SimulatedI2CChip>(_ chip: Chip, at address: UInt8) -> (chip: Chip, device: any I2CDevice) {
    let bus = SimulatedI2CBus(name: "sim:i2c-1")
    bus.attach(chip, at: address)
    return (chip, bus.device(at: address))
}

/// A simulated chip on a simulated bus with a driver pointed at it. Each test file gives its chip's rig an
/// initialiser with the driver's settings.
struct SensirionRig<Chip: SimulatedI2CChip, Driver: SensorDriver> {
    let bus = SimulatedI2CBus(name: "sim:i2c-1")
    let chip: Chip
    let driver: Driver

    init(_ chip: Chip, at address: UInt8, driver: (any I2CDevice) -> Driver) {
        self.chip = chip
        self.bus.attach(chip, at: address)
        self.driver = driver(self.bus.device(at: address))
    }
}
