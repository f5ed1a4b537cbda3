public import KiezboxCore

/// One value a driver measured, before the sampler stamps it with the sensor id and the time.
public struct MeasuredValue: Sendable, Hashable {
    public var quantity: Quantity
    public var value: Double
    public var quality: ReadingQuality

    public init(_ quantity: Quantity, _ value: Double, quality: ReadingQuality = .good) {
        self.quantity = quantity
        self.value = value
        self.quality = quality
    }
}

/// A configured sensor the sampler can ask for a measurement.
///
/// Drivers own their chip's state (calibration, warm-up) and are called by one sampler task at a time.
/// A thrown error means "no valid measurement this time": the sampler logs it and retries with backoff.
public protocol SensorDriver: Sendable {
    /// The chip's name as residents see it in logs and `doctor` ("BME280").
    var chipName: String { get }
    /// Takes one measurement: every quantity the chip measures, converted per its datasheet.
    func measure() async throws -> [MeasuredValue]
}

/// How a driver waits for a conversion to finish. Injected so simulations and tests do not wait in real time.
public typealias Pause = @Sendable (Duration) async throws -> Void

/// The real pause: sleeps on the continuous clock.
public let realPause: Pause = { duration in try await Task.sleep(for: duration) }

/// A driver that must watch its hardware all the time, not only when measured: a rain gauge counting
/// pulses, a mains-fail input waiting for an edge. The daemon runs ``watch()`` as a service for as long as it
/// runs; ``SensorDriver/measure()`` reports what the watch has seen.
public protocol WatchingSensorDriver: SensorDriver {
    /// Watches the hardware until the task is cancelled. Errors are thrown to the daemon, which logs them and
    /// calls `watch()` again after a backoff.
    func watch() async throws
}
