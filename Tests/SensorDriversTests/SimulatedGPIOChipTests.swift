import KiezboxCore
import SensorDrivers
import Testing

@Suite("Simulated GPIO chip", .timeLimit(.minutes(1)))
struct SimulatedGPIOChipTests {
    @Test("a line can be requested once; a second request is busy until the first is released")
    func busy() throws {
        let chip = SimulatedGPIOChip(name: "sim:gpiochip0", lineCount: 8)
        var input: (any GPIOInput)? = try chip.requestInput(line: 3, bias: .asIs, consumer: "first")
        #expect(chip.consumer(line: 3) == "first")
        let error = #expect(throws: GPIOError.self) { try chip.requestOutput(line: 3, initial: true, consumer: "second") }
        #expect(error?.code == .busy)
        #expect(error?.line == 3)
        #expect(error?.description.contains("sim:gpiochip0 line 3 is in use") == true)
        #expect(input != nil)
        input = nil
        #expect(chip.consumer(line: 3) == nil)
        _ = try chip.requestOutput(line: 3, initial: true, consumer: "second")
    }

    @Test("offsets beyond the chip are noSuchLine; an injected fault fails every request")
    func requestErrors() {
        let chip = SimulatedGPIOChip(lineCount: 4)
        #expect(throws: GPIOError(.noSuchLine, chip: chip.name, line: 4)) {
            try chip.requestInput(line: 4, bias: .asIs, consumer: "test")
        }
        chip.failRequests(with: .permissionDenied)
        #expect(throws: GPIOError(.permissionDenied, chip: chip.name, line: 0)) {
            try chip.requestEdgeEvents(line: 0, bias: .asIs, consumer: "test")
        }
        chip.failRequests(with: nil)
        #expect(throws: Never.self) { _ = try chip.requestInput(line: 0, bias: .asIs, consumer: "test") }
    }

    @Test("outputs are read back")
    func outputs() async throws {
        let chip = SimulatedGPIOChip(lineCount: 8)
        #expect(chip.outputValue(line: 2) == nil)
        let output = try chip.requestOutput(line: 2, initial: true, consumer: "power switch")
        #expect(chip.outputValue(line: 2) == true)
        try await output.write(false)
        #expect(chip.outputValue(line: 2) == false)
    }

    @Test("an undriven input follows its bias; a driven one reads what is driven")
    func inputLevels() async throws {
        let chip = SimulatedGPIOChip(lineCount: 8)
        let pulledUp = try chip.requestInput(line: 0, bias: .pullUp, consumer: "a")
        let pulledDown = try chip.requestInput(line: 1, bias: .pullDown, consumer: "b")
        #expect(try await pulledUp.read() == true)
        #expect(try await pulledDown.read() == false)
        chip.setInput(line: 0, high: false)
        chip.setInput(line: 1, high: true)
        #expect(try await pulledUp.read() == false)
        #expect(try await pulledDown.read() == true)
        chip.stopDriving(line: 0)
        #expect(try await pulledUp.read() == true)
    }

    @Test("edges carry timestamps from the clock the chip was given")
    func clockTimestamps() async throws {
        let clock = ManualClock()
        let chip = SimulatedGPIOChip(lineCount: 8, clock: clock)
        let events = try chip.requestEdgeEvents(line: 5, bias: .pullDown, consumer: "test")
        clock.advance(by: .milliseconds(1500))
        chip.setInput(line: 5, high: true)
        chip.setInput(line: 5, high: true)  // no change, no edge
        clock.advance(by: .milliseconds(20))
        chip.setInput(line: 5, high: false)
        #expect(chip.timestampNow == .milliseconds(1520))

        var iterator = events.edges.makeAsyncIterator()
        #expect(try await iterator.next() == GPIOEdge(.rising, at: .milliseconds(1500)))
        #expect(try await iterator.next() == GPIOEdge(.falling, at: .milliseconds(1520)))
        events.release()
        #expect(try await iterator.next() == nil)
        #expect(chip.consumer(line: 5) == nil)
    }

    @Test("with monotonicNow as time base, edges share the kernel's CLOCK_MONOTONIC")
    func monotonicTimeBase() async throws {
        let chip = SimulatedGPIOChip(lineCount: 8, timeBase: monotonicNow)
        let events = try chip.requestEdgeEvents(line: 0, bias: .pullDown, consumer: "test")
        let before = monotonicNow()
        chip.setInput(line: 0, high: true)
        let after = monotonicNow()
        var iterator = events.edges.makeAsyncIterator()
        let edge = try #require(try await iterator.next())
        #expect(edge.timestamp >= before && edge.timestamp <= after)
        #expect(before > .zero)
        events.release()
    }

    @Test("without a clock, explicit timestamps and advanceTime move the time base")
    func manualTime() async throws {
        let chip = SimulatedGPIOChip(lineCount: 8)
        let events = try chip.requestEdgeEvents(line: 1, bias: .pullUp, consumer: "test")
        let settled = chip.bounce(line: 1, to: false, at: .seconds(2), bounces: 2, interval: .milliseconds(1))
        #expect(settled == .milliseconds(2004))
        chip.advanceTime(by: .seconds(1))
        #expect(chip.timestampNow == .milliseconds(3004))

        var iterator = events.edges.makeAsyncIterator()
        var edges: [GPIOEdge] = []
        for _ in 0..<5 { if let edge = try await iterator.next() { edges.append(edge) } }
        #expect(
            edges == [
                GPIOEdge(.falling, at: .milliseconds(2000)), GPIOEdge(.rising, at: .milliseconds(2001)),
                GPIOEdge(.falling, at: .milliseconds(2002)), GPIOEdge(.rising, at: .milliseconds(2003)),
                GPIOEdge(.falling, at: .milliseconds(2004)),
            ]
        )
        events.release()
    }

    @Test("a bounded event queue drops the newest events, as the kernel FIFO does")
    func queueCapacity() async throws {
        let chip = SimulatedGPIOChip(lineCount: 8, eventQueueCapacity: 2)
        let events = try chip.requestEdgeEvents(line: 0, bias: .pullDown, consumer: "test")
        for index in 1...4 { chip.setInput(line: 0, high: index % 2 == 1, at: .milliseconds(index)) }
        #expect(chip.droppedEdgeCount(line: 0) == 2)
        var iterator = events.edges.makeAsyncIterator()
        #expect(try await iterator.next()?.timestamp == .milliseconds(1))
        #expect(try await iterator.next()?.timestamp == .milliseconds(2))
        events.release()
    }

    @Test("waitForEdgeConsumer returns once the consumer has taken every event")
    func consumerSynchronisation() async throws {
        let chip = SimulatedGPIOChip(lineCount: 8)
        let events = try chip.requestEdgeEvents(line: 0, bias: .pullDown, consumer: "test")
        let consumer = Task {
            var count = 0
            for try await _ in events.edges { count += 1 }
            return count
        }
        await chip.waitForEdgeConsumer(line: 0)
        for index in 1...6 { chip.setInput(line: 0, high: index % 2 == 1, at: .milliseconds(index)) }
        await chip.waitForEdgeConsumer(line: 0)
        events.release()
        #expect(try await consumer.value == 6)
    }

    @Test("a broken event stream throws to its consumer; cancelling the consumer ends it quietly")
    func brokenAndCancelled() async throws {
        let chip = SimulatedGPIOChip(lineCount: 8)
        let events = try chip.requestEdgeEvents(line: 0, bias: .pullDown, consumer: "test")
        let consumer = Task { for try await _ in events.edges {} }
        await chip.waitForEdgeConsumer(line: 0)
        chip.breakEdgeEvents(line: 0)
        await #expect(throws: GPIOError(.io(errno: 5), chip: chip.name, line: 0)) { try await consumer.value }
        events.release()

        let other = try chip.requestEdgeEvents(line: 1, bias: .pullDown, consumer: "test")
        let cancelled = Task { for try await _ in other.edges {} }
        await chip.waitForEdgeConsumer(line: 1)
        cancelled.cancel()
        try await cancelled.value
        other.release()
    }

    // MARK: Debounce, as the kernel does it

    @Test("debounce: a pulse shorter than the period gives no edge; a held level is reported once, when the period ended")
    func debounceEdges() async throws {
        let chip = SimulatedGPIOChip(lineCount: 8)
        let events = try chip.requestEdgeEvents(line: 2, bias: .pullUp, debounce: .milliseconds(10), consumer: "test")
        #expect(chip.debounce(line: 2) == .milliseconds(10))

        chip.setInput(line: 2, high: false, at: .seconds(1))
        chip.setInput(line: 2, high: true, at: .seconds(1) + .milliseconds(4))
        chip.advanceTime(by: .seconds(1))  // the period ran out on the level reported before: no edge

        let settled = chip.bounce(line: 2, to: false, at: .seconds(3), bounces: 3, interval: .milliseconds(2))
        #expect(chip.inputLevel(line: 2) == false)
        #expect(try await events.read() == true)  // every bounce restarted the period
        chip.advanceTime(by: .milliseconds(9))
        #expect(try await events.read() == true)
        chip.advanceTime(by: .milliseconds(1))
        #expect(try await events.read() == false)

        var iterator = events.edges.makeAsyncIterator()
        #expect(try await iterator.next() == GPIOEdge(.falling, at: settled + .milliseconds(10)))
        events.release()
        #expect(try await iterator.next() == nil)
    }

    @Test("debounce on an input: reads return the debounced level; a change on another line also moves time on")
    func debounceInput() async throws {
        let chip = SimulatedGPIOChip(lineCount: 8)
        let input = try chip.requestInput(line: 0, bias: .pullDown, debounce: .milliseconds(5), consumer: "test")
        chip.setInput(line: 0, high: true, at: .seconds(1))
        #expect(try await input.read() == false)
        chip.setInput(line: 1, high: true, at: .seconds(2))
        #expect(try await input.read() == true)
        #expect(chip.debounce(line: 1) == nil)
    }

    @Test("on a chip with a clock the period ends by a timer on that clock; releasing the line stops the timer")
    func debounceOnClock() async throws {
        let clock = ManualClock()
        let chip = SimulatedGPIOChip(lineCount: 8, clock: clock)
        let events = try chip.requestEdgeEvents(line: 3, bias: .pullDown, debounce: .milliseconds(20), consumer: "test")
        clock.advance(by: .seconds(1))
        chip.setInput(line: 3, high: true)
        await clock.waitForSleepers(1)
        clock.advance(by: .milliseconds(20))
        var iterator = events.edges.makeAsyncIterator()
        #expect(try await iterator.next() == GPIOEdge(.rising, at: .milliseconds(1020)))

        chip.setInput(line: 3, high: false)
        await clock.waitForSleepers(1)
        events.release()
        #expect(clock.sleeperCount == 0)
        #expect(try await iterator.next() == nil)
    }

    @Test("on a chip with a real-time time base the period ends in real time")
    func debounceInRealTime() async throws {
        let chip = SimulatedGPIOChip(lineCount: 8, timeBase: monotonicNow)
        let events = try chip.requestEdgeEvents(line: 0, bias: .pullDown, debounce: .milliseconds(1), consumer: "test")
        let before = monotonicNow()
        chip.setInput(line: 0, high: true)
        var iterator = events.edges.makeAsyncIterator()
        let edge = try #require(try await iterator.next())
        #expect(edge.kind == .rising)
        #expect(edge.timestamp >= before + .milliseconds(1))
        events.release()
    }

    @Test(
        "debounce periods are whole microseconds, rounded up, capped at the kernel's 32 bits",
        arguments: [
            (Duration.zero, UInt32(0)), (.seconds(-1), 0), (.nanoseconds(1), 1), (.nanoseconds(1500), 2),
            (.milliseconds(25), 25_000), (.seconds(4294), 4_294_000_000), (.seconds(5000), UInt32.max),
        ]
    )
    func debounceMicroseconds(duration: Duration, microseconds: UInt32) {
        #expect(duration.gpioDebounceMicroseconds == microseconds)
    }
}
