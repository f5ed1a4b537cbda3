#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Now on `CLOCK_MONOTONIC`: the time base of Linux GPIO edge-event timestamps (the character-device uAPI v2
/// stamps events with `CLOCK_MONOTONIC` unless a request asks for another clock).
///
/// Drivers that compare "now" with edge timestamps (a rain rate over the last minutes) take it as an injectable
/// `now` closure; this is the default on real hardware, and a ``SimulatedGPIOChip``'s ``SimulatedGPIOChip/timestampNow``
/// is the one to pass in tests.
public func monotonicNow() -> Duration {
    var time = timespec()
    // clock_gettime(CLOCK_MONOTONIC) cannot fail with a valid clock id and pointer.
    _ = clock_gettime(CLOCK_MONOTONIC, &time)
    return .seconds(Int64(time.tv_sec)) + .nanoseconds(Int64(time.tv_nsec))
}
