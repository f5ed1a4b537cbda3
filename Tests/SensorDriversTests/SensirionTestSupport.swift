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
