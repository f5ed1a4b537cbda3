#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// The clock every scheduled thing in Kiezbox runs on: a Swift `Clock` to sleep on, plus the wall-clock
/// date that readings are stamped with. Injected everywhere, so tests move time instead of sleeping.
public protocol KiezboxClock: Clock<Duration>, Sendable {
    /// The wall-clock time now.
    func currentDate() -> Date
}

/// The real clock: monotonic sleeping, wall-clock dates from the system.
public struct LiveClock: KiezboxClock {
    private let base = ContinuousClock()

    public init() {}

    public var now: ContinuousClock.Instant { self.base.now }
    public var minimumResolution: Duration { self.base.minimumResolution }

    public func sleep(until deadline: ContinuousClock.Instant, tolerance: Duration?) async throws {
        try await self.base.sleep(until: deadline, tolerance: tolerance)
    }

    public func currentDate() -> Date { Date() }
}
