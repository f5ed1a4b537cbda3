import KiezboxCore
import SensorDrivers
import Testing

private let gaugeLine: UInt32 = 6
private let millimetresPerTip = 0.2794

private func isClose(_ value: Double, _ expected: Double, tolerance: Double = 1e-9) -> Bool {
    abs(value - expected) <= tolerance
}

/// A gauge on a simulated chip with the manual time base, watched by a task the rig owns. Without the kernel's
/// debounce by default, so that every bounce reaches the driver's own quiet-window rule; the tests of the kernel's
/// debounce ask for it.
private struct Rig {
    let chip = SimulatedGPIOChip(name: "sim:gpiochip0", lineCount: 8)
    let gauge: RainGauge

    init(
        debounce: Duration = RainGauge.defaultDebounce,
        kernelDebounce: Duration = .zero,
        intensityWindow: Duration = RainGauge.defaultIntensityWindow,
        millimetresPerTip: Double = RainGauge.defaultMillimetresPerTip,
        tipEdge: GPIOEdge.Kind = .falling,
        bias: GPIOBias = .pullUp
    ) {
        let chip = self.chip
        self.gauge = RainGauge(
            chip: chip,
            line: gaugeLine,
            millimetresPerTip: millimetresPerTip,
            debounce: debounce,
            kernelDebounce: kernelDebounce,
            intensityWindow: intensityWindow,
            tipEdge: tipEdge,
            bias: bias,
            now: { chip.timestampNow }
        )
    }

    /// Starts the watch and waits until it listens.
    func startWatching() async -> Task<Void, any Error> {
        let gauge = self.gauge
        let task = Task { try await gauge.watch() }
        await self.chip.waitForEdgeConsumer(line: gaugeLine)
        return task
    }

    /// One bucket tip: the reed switch closes at `time` with `bounces` bounces 1 ms apart, stays closed for
    /// `closedFor`, and opens with as many bounces.
    func tip(at time: Duration, bounces: Int = 0, closedFor: Duration = .milliseconds(80)) {
        let closed = self.chip.bounce(line: gaugeLine, to: false, at: time, bounces: bounces, interval: .milliseconds(1))
        self.chip.bounce(line: gaugeLine, to: true, at: closed + closedFor, bounces: bounces, interval: .milliseconds(1))
    }

    /// Waits until the watch has handled every edge driven so far.
    func settle() async {
        await self.chip.waitForEdgeConsumer(line: gaugeLine)
    }
}

private func value(_ quantity: Quantity, in values: [MeasuredValue]) -> MeasuredValue? {
    values.first { $0.quantity == quantity }
}

private func stop(_ task: Task<Void, any Error>) async throws {
    task.cancel()
    try await task.value
}

@Suite("Rain gauge", .timeLimit(.minutes(1)))
struct RainGaugeTests {
    @Test("clean tips are counted: rainfall since the previous measure, in mm")
    func counting() async throws {
        let rig = Rig()
        let watch = await rig.startWatching()
        #expect(rig.chip.consumer(line: gaugeLine) == "kiezbox rain gauge")
        #expect(rig.chip.inputLevel(line: gaugeLine) == true)  // pull-up, switch open

        for second in [10, 20, 30] { rig.tip(at: .seconds(second)) }
        await rig.settle()
        let first = try await rig.gauge.measure()
        #expect(isClose(value(.rainfall, in: first)?.value ?? -1, 3 * millimetresPerTip))
        #expect(value(.rainfall, in: first)?.quality == .good)

        rig.tip(at: .seconds(40))
        await rig.settle()
        let second = try await rig.gauge.measure()
        #expect(isClose(value(.rainfall, in: second)?.value ?? -1, millimetresPerTip))

        let third = try await rig.gauge.measure()
        #expect(value(.rainfall, in: third)?.value == 0)
        #expect(rig.gauge.tipCount == 4)
        try await stop(watch)
    }

    @Test("bounce on closing and on opening is ignored, using the kernel timestamps")
    func debounce() async throws {
        let rig = Rig()
        let watch = await rig.startWatching()
        // Each tip: 3 bounces closing (3 extra falling edges) and 3 opening, 80 ms later (3 more).
        for second in [10, 20] { rig.tip(at: .seconds(second), bounces: 3) }
        await rig.settle()
        let values = try await rig.gauge.measure()
        #expect(isClose(value(.rainfall, in: values)?.value ?? -1, 2 * millimetresPerTip))
        #expect(rig.gauge.tipCount == 2)
        #expect(rig.gauge.ignoredEdgeCount == 12)
        try await stop(watch)
    }

    @Test("without the debounce window the same bouncing tips would count seven times each")
    func withoutDebounce() async throws {
        let rig = Rig(debounce: .zero)
        let watch = await rig.startWatching()
        rig.tip(at: .seconds(10), bounces: 3)
        await rig.settle()
        #expect(rig.gauge.tipCount == 7)
        try await stop(watch)
    }

    @Test("with the kernel's debounce the bounce never reaches the driver, and every tip still counts")
    func kernelDebounce() async throws {
        let rig = Rig(kernelDebounce: RainGauge.defaultKernelDebounce)
        let watch = await rig.startWatching()
        #expect(rig.chip.debounce(line: gaugeLine) == .milliseconds(5))
        // 3 bounces 1 ms apart on closing and on opening, as in the test above.
        for second in [10, 20] { rig.tip(at: .seconds(second), bounces: 3) }
        rig.chip.advanceTime(by: .seconds(1))  // past the kernel's period after the last bounce
        await rig.settle()
        #expect(rig.gauge.tipCount == 2)
        #expect(rig.gauge.ignoredEdgeCount == 0)
        try await stop(watch)
    }

    @Test("a configured debounce shorter than the kernel's default caps the kernel's too")
    func kernelDebounceCapped() async throws {
        let rig = Rig(debounce: .milliseconds(2), kernelDebounce: RainGauge.defaultKernelDebounce)
        let watch = await rig.startWatching()
        #expect(rig.chip.debounce(line: gaugeLine) == .milliseconds(2))
        try await stop(watch)
    }

    @Test("opening bounce long after the closing edge is not a second tip (a hold-off after each tip would count it)")
    func longClosure() async throws {
        let rig = Rig()
        let watch = await rig.startWatching()
        rig.tip(at: .seconds(10), bounces: 2, closedFor: .milliseconds(400))
        await rig.settle()
        #expect(rig.gauge.tipCount == 1)
        try await stop(watch)
    }

    @Test("tips a second apart, as in a 1000 mm/h downpour, are all counted")
    func fastTips() async throws {
        let rig = Rig()
        let watch = await rig.startWatching()
        for second in 10..<20 { rig.tip(at: .seconds(second), bounces: 2) }
        await rig.settle()
        #expect(rig.gauge.tipCount == 10)
        try await stop(watch)
    }

    @Test("intensity in mm/h over the last 10 minutes, from the tip timestamps")
    func intensity() async throws {
        let rig = Rig()
        let watch = await rig.startWatching()
        // Let the watch cover a full window first, so the intensity is complete.
        rig.chip.advanceTime(by: .seconds(600))
        for offset in [0, 100, 200, 300, 400, 500] { rig.tip(at: .seconds(600 + offset)) }
        rig.chip.advanceTime(by: .seconds(50))  // now = 1150.08 s
        await rig.settle()
        let values = try await rig.gauge.measure()
        let intensity = try #require(value(.rainIntensity, in: values))
        #expect(isClose(intensity.value, 6 * millimetresPerTip * 6))  // 6 tips in 10 min = 10.06 mm/h
        #expect(intensity.quality == .good)

        // 300 s later the tips at 600 s, 700 s and 800 s have left the window.
        rig.chip.advanceTime(by: .seconds(300))
        let later = try await rig.gauge.measure()
        #expect(isClose(value(.rainIntensity, in: later)?.value ?? -1, 3 * millimetresPerTip * 6))
        #expect(value(.rainfall, in: later)?.value == 0)

        rig.chip.advanceTime(by: .seconds(600))
        #expect(value(.rainIntensity, in: try await rig.gauge.measure())?.value == 0)
        try await stop(watch)
    }

    @Test("the intensity window is configurable")
    func shortWindow() async throws {
        let rig = Rig(intensityWindow: .seconds(60))
        let watch = await rig.startWatching()
        rig.chip.advanceTime(by: .seconds(60))
        for offset in [0, 10, 20] { rig.tip(at: .seconds(60 + offset)) }
        await rig.settle()
        let values = try await rig.gauge.measure()
        #expect(isClose(value(.rainIntensity, in: values)?.value ?? -1, 3 * millimetresPerTip * 60))
        try await stop(watch)
    }

    @Test("a zero intensity window (a configuration slip) falls back to 10 minutes instead of dividing by zero")
    func zeroWindow() async throws {
        let rig = Rig(intensityWindow: .zero)
        let watch = await rig.startWatching()
        rig.tip(at: .seconds(30))
        await rig.settle()
        let values = try await rig.gauge.measure()
        #expect(isClose(value(.rainIntensity, in: values)?.value ?? -1, millimetresPerTip * 6))
        try await stop(watch)
    }

    @Test("the intensity is degraded until the watch has covered a whole window")
    func partialWindow() async throws {
        let rig = Rig()
        let watch = await rig.startWatching()
        rig.tip(at: .seconds(30))
        await rig.settle()
        let values = try await rig.gauge.measure()
        #expect(value(.rainfall, in: values)?.quality == .good)
        #expect(value(.rainIntensity, in: values)?.quality == .degraded)
        try await stop(watch)
    }

    @Test("more than 1000 mm/h is flagged implausible (a chattering contact, not rain)")
    func implausibleRate() async throws {
        let rig = Rig(intensityWindow: .seconds(60))
        let watch = await rig.startWatching()
        rig.chip.advanceTime(by: .seconds(60))
        for index in 0..<100 { rig.tip(at: .seconds(60) + .milliseconds(500 * index), closedFor: .milliseconds(100)) }
        await rig.settle()
        let values = try await rig.gauge.measure()
        #expect(value(.rainIntensity, in: values)?.quality == .implausible)
        #expect(value(.rainfall, in: values)?.quality == .implausible)
        #expect(rig.gauge.tipCount == 100)
        try await stop(watch)
    }

    @Test("millimetres per tip and the wiring (switch to 3.3 V, rising edge, pull-down) are configurable")
    func configuration() async throws {
        let rig = Rig(millimetresPerTip: 0.2, tipEdge: .rising, bias: .pullDown)
        let watch = await rig.startWatching()
        #expect(rig.chip.inputLevel(line: gaugeLine) == false)
        for second in [10, 20] {
            rig.chip.bounce(line: gaugeLine, to: true, at: .seconds(second), bounces: 2, interval: .milliseconds(1))
            rig.chip.setInput(line: gaugeLine, high: false, at: .seconds(second) + .milliseconds(100))
        }
        await rig.settle()
        #expect(isClose(value(.rainfall, in: try await rig.gauge.measure())?.value ?? -1, 0.4))
        try await stop(watch)
    }

    @Test("without a running watch, and after a restart, the readings are degraded")
    func gaps() async throws {
        let rig = Rig()
        let notWatched = try await rig.gauge.measure()
        #expect(notWatched.allSatisfy { $0.quality == .degraded && $0.value == 0 })

        let watch = await rig.startWatching()
        #expect(rig.gauge.isWatching)
        _ = try await rig.gauge.measure()
        try await stop(watch)
        #expect(!rig.gauge.isWatching)
        #expect(rig.chip.consumer(line: gaugeLine) == nil)

        let restarted = await rig.startWatching()
        let afterRestart = try await rig.gauge.measure()
        #expect(value(.rainfall, in: afterRestart)?.quality == .degraded)
        #expect(value(.rainfall, in: try await rig.gauge.measure())?.quality == .good)
        try await stop(restarted)
    }

    @Test("a line held by another program is busy; a broken event stream ends the watch with its error")
    func failures() async throws {
        let rig = Rig()
        let other = try rig.chip.requestInput(line: gaugeLine, bias: .asIs, consumer: "other")
        await #expect(throws: GPIOError(.busy, chip: "sim:gpiochip0", line: gaugeLine)) { try await rig.gauge.watch() }
        #expect(rig.chip.consumer(line: gaugeLine) == "other")
        withExtendedLifetime(other) {}

        let rig2 = Rig()
        let watch = await rig2.startWatching()
        rig2.chip.breakEdgeEvents(line: gaugeLine)
        await #expect(throws: GPIOError.self) { try await watch.value }
        #expect(!rig2.gauge.isWatching)
    }
}
