#if os(Linux)
import Glibc
import KiezboxCore
import SensorDrivers

/// The production rain-gauge and mains-fail drivers on a gpio-sim line, driven through the line's sysfs pull,
/// timed by the kernel's edge timestamps. Both use line 7 in turn; each releases it when done.
enum GPIOSensorChecks {
    static let line: UInt32 = 7

    /// Runs `watch()` in a child task for the duration of `body`.
    static func whileWatching<T: Sendable>(
        _ driver: some WatchingSensorDriver, _ body: @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await driver.watch() }
            defer { group.cancelAll() }
            return try await body()
        }
    }

    /// Waits (bounded) until `condition` holds; gpio events arrive through the driver's event thread.
    static func waitUntil(_ what: String, _ condition: @Sendable () -> Bool) async throws {
        for _ in 0..<200 {
            if condition() { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw CheckFailure("timed out waiting for \(what)")
    }

    static let all: [Check] = [
        Check("rain gauge: five bucket tips (switch to ground, pull-up) counted from kernel edges, 0.2794 mm each") {
            let chip = try SimulatedHardware.gpioSimChip()
            let pin = SimulatedHardware.SimulatedLine(chipName: chip.name, offset: line)
            try pin.pull(up: true)
            let gauge = RainGauge(chip: chip, line: line)
            let values = try await whileWatching(gauge) {
                try await waitUntil("the gauge to watch") { gauge.isWatching }
                for _ in 0..<5 {
                    try pin.pull(up: false)  // the bucket tips: the reed switch closes
                    try await Task.sleep(for: .milliseconds(100))
                    try pin.pull(up: true)
                    try await Task.sleep(for: .milliseconds(100))
                }
                try await waitUntil("five tips") { gauge.tipCount == 5 }
                return try await gauge.measure()
            }
            let rainfall = try unwrap(values.first { $0.quantity == .rainfall }, "rainfall value")
            try expectClose(rainfall.value, 5 * 0.2794, within: 1e-9, "rainfall mm")
            try expect(values.contains { $0.quantity == .rainIntensity }, "an intensity value")
        },
        Check("mains-fail: losing and regaining mains is seen from the line, debounced, with the edge's timestamp") {
            let chip = try SimulatedHardware.gpioSimChip()
            let pin = SimulatedHardware.SimulatedLine(chipName: chip.name, offset: line)
            try pin.pull(up: true)
            let input = MainsFailInput(chip: chip, line: line, debounce: .milliseconds(50))
            try await whileWatching(input) {
                try await waitUntil("the initial state") { input.mainsPresent == true }
                let lost = SimulatedHardware.monotonicNow()
                try pin.pull(up: false)
                try await waitUntil("mains lost") { input.mainsPresent == false }
                let change = try unwrap(input.lastChange, "the recorded change")
                try expect(change.timestamp >= lost, "change stamped at the kernel edge, not before the stimulus")
                try expectEqual(try await input.measure().first?.value, 0, "mains_present while lost")
                try pin.pull(up: true)
                try await waitUntil("mains back") { input.mainsPresent == true }
            }
        },
    ]
}

/// The value, or a check failure naming what was missing.
func unwrap<T>(_ value: T?, _ what: String) throws(CheckFailure) -> T {
    guard let value else { throw CheckFailure("no \(what)") }
    return value
}
#endif
