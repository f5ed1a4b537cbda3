import KiezboxCore
import SensorDrivers
import Testing

private let mainsLine: UInt32 = 5

/// An input on a simulated chip whose timestamps and debounce timer both run on one ManualClock. Without the
/// kernel's debounce by default, so that the chip adds no timer of its own; the test of the kernel's debounce asks
/// for it.
private struct Rig {
    let clock = ManualClock()
    let chip: SimulatedGPIOChip
    let input: MainsFailInput

    init(
        lineHigh: Bool = true,
        polarity: MainsFailInput.Polarity = .presentWhenHigh,
        debounce: Duration = .seconds(1),
        kernelDebounce: Duration = .zero
    ) {
        let clock = self.clock
        let chip = SimulatedGPIOChip(name: "sim:gpiochip0", lineCount: 8, clock: clock)
        chip.setInput(line: mainsLine, high: lineHigh)
        self.chip = chip
        self.input = MainsFailInput(
            chip: chip,
            line: mainsLine,
            polarity: polarity,
            debounce: debounce,
            kernelDebounce: kernelDebounce,
            pause: { try await clock.sleep(for: $0) },
            now: { chip.timestampNow }
        )
    }

    /// Starts the watch and waits until it listens.
    func startWatching() async -> Task<Void, any Error> {
        let input = self.input
        let task = Task { try await input.watch() }
        await self.chip.waitForEdgeConsumer(line: mainsLine)
        return task
    }

    /// Drives the line now and waits until the watch has handled the edge.
    func drive(high: Bool) async {
        self.chip.setInput(line: mainsLine, high: high)
        await self.chip.waitForEdgeConsumer(line: mainsLine)
    }

    /// Lets the debounce timer that the last edge started run out.
    func confirm() async {
        await self.clock.waitForSleepers(1)
        self.clock.advance(by: .seconds(1))
    }
}

private func stop(_ task: Task<Void, any Error>) async throws {
    task.cancel()
    try await task.value
}

@Suite("Mains-fail input", .timeLimit(.minutes(1)))
struct MainsFailInputTests {
    @Test("the state read at the start is reported at once; a loss is confirmed after the debounce, stamped with its edge")
    func lossAndReturn() async throws {
        let rig = Rig()
        var changes = rig.input.changes().makeAsyncIterator()
        let watch = await rig.startWatching()

        #expect(await changes.next() == MainsFailInput.Change(mainsPresent: true, timestamp: .zero, isInitialState: true))
        #expect(try await rig.input.measure() == [MeasuredValue(.mainsPresent, 1)])

        rig.clock.advance(by: .seconds(10))
        await rig.drive(high: false)
        #expect(rig.input.mainsPresent == true)  // not yet: it might be a glitch
        await rig.confirm()
        #expect(await changes.next() == MainsFailInput.Change(mainsPresent: false, timestamp: .seconds(10)))
        #expect(rig.input.mainsPresent == false)
        #expect(try await rig.input.measure() == [MeasuredValue(.mainsPresent, 0)])

        rig.clock.advance(by: .seconds(3600))
        await rig.drive(high: true)
        await rig.confirm()
        #expect(await changes.next() == MainsFailInput.Change(mainsPresent: true, timestamp: .seconds(3611)))
        try await stop(watch)
    }

    @Test("a glitch shorter than the debounce is not a blackout")
    func glitch() async throws {
        let rig = Rig()
        var changes = rig.input.changes().makeAsyncIterator()
        let watch = await rig.startWatching()
        _ = await changes.next()

        rig.clock.advance(by: .seconds(10))
        await rig.drive(high: false)
        await rig.clock.waitForSleepers(1)
        rig.clock.advance(by: .milliseconds(300))
        await rig.drive(high: true)
        #expect(rig.clock.sleeperCount == 0)  // the timer was cancelled
        #expect(rig.input.mainsPresent == true)
        #expect(rig.input.glitchCount == 1)

        // The next change reported is a real one, not the glitch.
        rig.clock.advance(by: .seconds(5))
        await rig.drive(high: false)
        await rig.confirm()
        #expect(await changes.next() == MainsFailInput.Change(mainsPresent: false, timestamp: .milliseconds(15_300)))
        try await stop(watch)
    }

    @Test("a bouncing contact is confirmed once, stamped when it settled")
    func bounce() async throws {
        let rig = Rig()
        var changes = rig.input.changes().makeAsyncIterator()
        let watch = await rig.startWatching()
        _ = await changes.next()

        let settled = rig.chip.bounce(line: mainsLine, to: false, at: .seconds(20), bounces: 3, interval: .milliseconds(2))
        await rig.chip.waitForEdgeConsumer(line: mainsLine)
        await rig.clock.waitForSleepers(1)
        rig.clock.advance(by: .seconds(22))
        #expect(await changes.next() == MainsFailInput.Change(mainsPresent: false, timestamp: settled))
        #expect(rig.input.glitchCount == 3)
        try await stop(watch)
    }

    @Test("with the kernel's debounce a spike shorter than it never reaches the driver; a loss is stamped when it ended")
    func kernelDebounce() async throws {
        let rig = Rig(kernelDebounce: MainsFailInput.defaultKernelDebounce)
        var changes = rig.input.changes().makeAsyncIterator()
        let watch = await rig.startWatching()
        _ = await changes.next()
        #expect(rig.chip.debounce(line: mainsLine) == .milliseconds(20))

        // A 5 ms spike: the chip's debounce timer is the one sleeper, and runs out on the restored level.
        rig.clock.advance(by: .seconds(10))
        rig.chip.setInput(line: mainsLine, high: false)
        await rig.clock.waitForSleepers(1)
        rig.clock.advance(by: .milliseconds(5))
        rig.chip.setInput(line: mainsLine, high: true)
        await rig.clock.waitForSleepers(1)
        rig.clock.advance(by: .milliseconds(20))

        // A loss that holds: the kernel reports it 20 ms later, then the driver's own second confirms it.
        rig.clock.advance(by: .seconds(5))
        rig.chip.setInput(line: mainsLine, high: false)
        await rig.clock.waitForSleepers(1)
        rig.clock.advance(by: .milliseconds(20))
        await rig.clock.waitForSleepers(1)
        #expect(rig.input.mainsPresent == true)
        rig.clock.advance(by: .seconds(1))
        #expect(await changes.next() == MainsFailInput.Change(mainsPresent: false, timestamp: .milliseconds(15_045)))
        #expect(rig.input.glitchCount == 0)
        try await stop(watch)
    }

    @Test("edges read late are judged by their kernel timestamps: a level that lasted is confirmed without the timer")
    func lateEvents() async throws {
        let rig = Rig()
        var changes = rig.input.changes().makeAsyncIterator()
        let watch = await rig.startWatching()
        _ = await changes.next()

        // Both edges reach the driver before any time passes on the timer's clock.
        rig.chip.setInput(line: mainsLine, high: false, at: .seconds(10))
        rig.chip.setInput(line: mainsLine, high: true, at: .milliseconds(11_500))
        await rig.chip.waitForEdgeConsumer(line: mainsLine)
        #expect(await changes.next() == MainsFailInput.Change(mainsPresent: false, timestamp: .seconds(10)))
        #expect(rig.input.mainsPresent == false)
        #expect(rig.input.glitchCount == 0)
        try await stop(watch)
    }

    @Test("polarity: with an optocoupler pulling low while mains is there, low is present")
    func activeLow() async throws {
        let rig = Rig(lineHigh: false, polarity: .presentWhenLow)
        var changes = rig.input.changes().makeAsyncIterator()
        let watch = await rig.startWatching()
        #expect(await changes.next()?.mainsPresent == true)

        rig.clock.advance(by: .seconds(1))
        await rig.drive(high: true)
        await rig.confirm()
        #expect(await changes.next() == MainsFailInput.Change(mainsPresent: false, timestamp: .seconds(1)))
        #expect(try await rig.input.measure() == [MeasuredValue(.mainsPresent, 0)])
        try await stop(watch)
    }

    @Test("starting without mains reports the blackout at once")
    func startsInBlackout() async throws {
        let rig = Rig(lineHigh: false)
        let watch = await rig.startWatching()
        #expect(rig.input.mainsPresent == false)
        #expect(rig.input.lastChange?.isInitialState == true)
        try await stop(watch)
    }

    @Test("a late subscriber gets the current state first")
    func lateSubscriber() async throws {
        let rig = Rig()
        let watch = await rig.startWatching()
        rig.clock.advance(by: .seconds(2))
        await rig.drive(high: false)
        await rig.confirm()
        // The confirmation runs on the timer's task: wait for it through a stream that was there before.
        var early = rig.input.changes().makeAsyncIterator()
        while await early.next()?.mainsPresent != false {}

        var late = rig.input.changes().makeAsyncIterator()
        #expect(await late.next() == MainsFailInput.Change(mainsPresent: false, timestamp: .seconds(2)))
        try await stop(watch)
    }

    @Test("before any watch the state is unknown; after the watch stops it is reported as degraded")
    func notWatched() async throws {
        let rig = Rig()
        let error = await #expect(throws: MainsFailInputError.self) { try await rig.input.measure() }
        #expect(error?.code == .stateUnknown)
        #expect(error?.description.contains("mains-present input on sim:gpiochip0 line 5") == true)

        let watch = await rig.startWatching()
        #expect(rig.chip.consumer(line: mainsLine) == "kiezbox mains present")
        try await stop(watch)
        #expect(!rig.input.isWatching)
        #expect(rig.chip.consumer(line: mainsLine) == nil)
        #expect(try await rig.input.measure() == [MeasuredValue(.mainsPresent, 1, quality: .degraded)])
    }

    @Test("a change while nobody watched is reported when the watch restarts")
    func changeWhileNotWatching() async throws {
        let rig = Rig()
        try await stop(await rig.startWatching())
        rig.clock.advance(by: .seconds(30))
        rig.chip.setInput(line: mainsLine, high: false)
        let watch = await rig.startWatching()
        #expect(rig.input.lastChange == MainsFailInput.Change(mainsPresent: false, timestamp: .seconds(30), isInitialState: true))
        try await stop(watch)
    }

    @Test("a busy line and a broken event stream are GPIO errors from watch()")
    func failures() async throws {
        let rig = Rig()
        let other = try rig.chip.requestOutput(line: mainsLine, initial: false, consumer: "other")
        let error = await #expect(throws: GPIOError.self) { try await rig.input.watch() }
        #expect(error?.code == .busy)
        withExtendedLifetime(other) {}

        let rig2 = Rig()
        let watch = await rig2.startWatching()
        rig2.chip.breakEdgeEvents(line: mainsLine)
        await #expect(throws: GPIOError.self) { try await watch.value }
        #expect(!rig2.input.isWatching)
    }
}
