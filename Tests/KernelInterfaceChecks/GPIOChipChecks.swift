#if os(Linux)
import Glibc
import SensorDrivers
import Synchronization

/// ``LinuxGPIOChip`` on gpio-sim: opening, bias, inputs, both-edge events from the event thread, the kernel's
/// debounce, outputs, and how kernel errors arrive as typed errors. Each check uses lines of its own, except the
/// two debounce checks, which take lines 4 and 1 after earlier checks have freed them.
enum GPIOChipChecks {
    static let consumer = "kernel-interface-checks"
    /// Debounce and edge timestamps come from kernel timers, which run in whole ticks: Debian's kernels tick at
    /// 250 Hz (4 ms), so a debounce period can end up to a tick before the period has passed in nanoseconds.
    /// Allowing 10 ms also covers 100 Hz kernels.
    static let kernelTick = Duration.milliseconds(10)

    static let all: [Check] = [
        Check("gpio: open by label, name, path and number; an absent label is noSuchChip") {
            let chip = try SimulatedHardware.gpioSimChip()
            try expectEqual(chip.label, SimulatedHardware.gpioSimLabel, "label")
            try expectEqual(chip.lineCount, 8, "line count")
            let number = String(chip.name.dropFirst("gpiochip".count))
            for descriptor in [chip.name, "/dev/\(chip.name)", number, SimulatedHardware.gpioSimLabel] {
                try expectEqual(try LinuxGPIOChip(descriptor).name, chip.name, "chip opened as '\(descriptor)'")
            }
            try await expectError("label pinctrl-bcm2711", GPIOError.self, where: { $0.code == .noSuchChip }) {
                try LinuxGPIOChip(label: "pinctrl-bcm2711")
            }
            try await expectError("the Raspberry Pi header", GPIOError.self, where: { $0.code == .noSuchChip }) {
                try LinuxGPIOChip.openRaspberryPiHeader()
            }
            let firstFound = try LinuxGPIOChip.open(anyLabelOf: ["pinctrl-rp1", SimulatedHardware.gpioSimLabel])
            try expectEqual(firstFound.label, SimulatedHardware.gpioSimLabel, "the first label present")
            try await expectError("/dev/null", GPIOError.self, where: { $0.code == .noSuchChip }) {
                try LinuxGPIOChip("/dev/null")
            }
        },
        Check("gpio: each bias reaches the kernel: the line info shows it, gpio-sim applies pull-up and pull-down") {
            let chip = try SimulatedHardware.gpioSimChip()
            let pin = SimulatedHardware.SimulatedLine(chipName: chip.name, offset: 0)
            // gpio-sim cannot disable its pull (-ENOTSUPP, which gpiolib ignores), and "as is" asks for nothing:
            // both leave the pull the line had, here pull-down.
            let sequence: [(GPIOBias, pull: String)] = [
                (.pullUp, "pull-up"), (.pullDown, "pull-down"), (.disabled, "pull-down"), (.asIs, "pull-down"),
                (.pullUp, "pull-up"),
            ]
            for (bias, pull) in sequence {
                let input = try chip.requestInput(line: 0, bias: bias, consumer: consumer)
                let info = try chip.lineInfo(line: 0)
                try expectEqual(info.bias, bias, "line info bias after requesting \(bias.rawValue)")
                try expect(info.isUsed && !info.isOutput && info.consumer == consumer, "line info of an input: \(info)")
                try expectEqual(info.debounce, .zero, "line info debounce")
                try expectEqual(try pin.appliedPull(), pull, "gpio-sim's pull with \(bias.rawValue)")
                try expectEqual(try await input.read(), pull == "pull-up", "line 0 with \(bias.rawValue)")
            }
            let free = try chip.lineInfo(line: 0)
            try expect(!free.isUsed && free.consumer.isEmpty, "line info after release: \(free)")
        },
        Check("gpio: an input follows the simulated pull") {
            let chip = try SimulatedHardware.gpioSimChip()
            let pin = SimulatedHardware.SimulatedLine(chipName: chip.name, offset: 1)
            let input = try chip.requestInput(line: 1, bias: .asIs, consumer: consumer)
            for up in [true, false, true, false] {
                try pin.pull(up: up)
                try expectEqual(try await input.read(), up, "line 1 after pull-\(up ? "up" : "down")")
            }
        },
        Check("gpio: rising on pull-up, falling on pull-down, stamped on CLOCK_MONOTONIC between stimulus and receipt") {
            let chip = try SimulatedHardware.gpioSimChip()
            let pin = SimulatedHardware.SimulatedLine(chipName: chip.name, offset: 2)
            try pin.pull(up: false)
            let events = try chip.requestEdgeEvents(line: 2, bias: .asIs, consumer: consumer)
            defer { events.release() }
            let collector = EdgeCollector(events.edges)
            try expectEqual(try await events.read(), false, "level before any edge")
            try await Task.sleep(for: .milliseconds(100))
            try expectEqual(collector.edges.count, 0, "edges before any stimulus")

            let start = SimulatedHardware.monotonicNow()
            try pin.pull(up: true)
            let rising = try await collector.waitFor(count: 1)
            try expectEqual(rising[0].kind, .rising, "edge after pull-up")
            try expectEqual(try await events.read(), true, "level after pull-up")
            try pin.pull(up: false)
            let edges = try await collector.waitFor(count: 2)
            try expectEqual(edges[1].kind, .falling, "edge after pull-down")
            let end = SimulatedHardware.monotonicNow()
            try expect(start < edges[0].timestamp, "rising edge at \(edges[0].timestamp), before the pull-up at \(start)")
            try expect(edges[0].timestamp < edges[1].timestamp, "timestamps not increasing: \(edges)")
            try expect(edges[1].timestamp <= end, "falling edge at \(edges[1].timestamp), after \(end)")
        },
        Check("gpio: a burst of 25 pulses arrives complete and in order") {
            let pulses = 25
            let chip = try SimulatedHardware.gpioSimChip()
            let pin = SimulatedHardware.SimulatedLine(chipName: chip.name, offset: 3)
            try pin.pull(up: false)
            let events = try chip.requestEdgeEvents(line: 3, bias: .asIs, consumer: consumer)
            defer { events.release() }
            let collector = EdgeCollector(events.edges)
            // 1 ms half-periods: far faster than a rain gauge's reed switch (a few pulses a second at most).
            for _ in 0..<pulses {
                try pin.pull(up: true)
                try await Task.sleep(for: .milliseconds(1))
                try pin.pull(up: false)
                try await Task.sleep(for: .milliseconds(1))
            }
            let edges = try await collector.waitFor(count: 2 * pulses)
            for (index, edge) in edges.enumerated() {
                try expectEqual(edge.kind, index.isMultiple(of: 2) ? .rising : .falling, "edge \(index)")
                if index > 0 {
                    try expect(edges[index - 1].timestamp < edge.timestamp, "timestamp of edge \(index) not increasing")
                }
            }
            try await Task.sleep(for: .milliseconds(100))
            try expectEqual(collector.edges.count, 2 * pulses, "edges after the burst")
        },
        Check("gpio: release ends the edge stream and frees the line") {
            let chip = try SimulatedHardware.gpioSimChip()
            let events = try chip.requestEdgeEvents(line: 4, bias: .asIs, consumer: consumer)
            let collector = EdgeCollector(events.edges)
            events.release()
            try await collector.waitForEnd()
            try await expectError("read after release", GPIOError.self, where: { $0.code == .io(errno: EBADF) }) {
                try await events.read()
            }
            let again = try chip.requestEdgeEvents(line: 4, bias: .asIs, consumer: consumer)
            again.release()
        },
        Check("gpio: kernel debounce drops a pulse shorter than the period; a held level is reported once it held") {
            let period = Duration.milliseconds(250)
            let chip = try SimulatedHardware.gpioSimChip()
            let pin = SimulatedHardware.SimulatedLine(chipName: chip.name, offset: 4)
            try pin.pull(up: true)
            let events = try chip.requestEdgeEvents(line: 4, bias: .asIs, debounce: period, consumer: consumer)
            defer { events.release() }
            let info = try chip.lineInfo(line: 4)
            try expectEqual(info.debounce, period, "line info debounce")
            try expectEqual(info.edgeDetection, [.rising, .falling], "line info edge detection")
            let collector = EdgeCollector(events.edges)

            // Two sysfs writes back to back: far shorter than the period, unless the VM stalls between them.
            let pulseStart = SimulatedHardware.monotonicNow()
            try pin.pull(up: false)
            try pin.pull(up: true)
            let pulse = SimulatedHardware.monotonicNow() - pulseStart
            try expect(pulse < period / 2, "inconclusive: the pulse took \(pulse), the VM stalled; run again")

            let heldLow = SimulatedHardware.monotonicNow()
            try pin.pull(up: false)
            _ = try await collector.waitFor(count: 1)
            try expectEqual(try await events.read(), false, "debounced level once reported")
            let heldHigh = SimulatedHardware.monotonicNow()
            try pin.pull(up: true)
            // Events arrive in order: once an edge after the last stimulus is in, every earlier one is.
            let edges = try await collector.waitFor { $0.contains { $0.timestamp > heldHigh } }
            try expectEqual(edges.map(\.kind), [.falling, .rising], "edges (the pulse must not appear)")
            for (edge, stimulus) in zip(edges, [heldLow, heldHigh]) {
                try expect(
                    edge.timestamp >= stimulus + period - kernelTick,
                    "\(edge.kind) edge stamped \(edge.timestamp - stimulus) after its stimulus, before the period ended"
                )
            }
            try expect(edges[1].timestamp <= SimulatedHardware.monotonicNow(), "edge stamped in the future: \(edges)")
            // For the record (the rig's README quotes it): how late the kernel stamped the debounced edges.
            let delays = zip(edges, [heldLow, heldHigh]).map { edge, stimulus in edge.timestamp - stimulus }
            print("     debounce \(period): edges stamped \(delays) after their stimulus; the pulse took \(pulse)")
        },
        Check("gpio: a debounced input reads the debounced level; the line info shows the period") {
            let chip = try SimulatedHardware.gpioSimChip()
            let pin = SimulatedHardware.SimulatedLine(chipName: chip.name, offset: 1)
            try pin.pull(up: false)
            let input = try chip.requestInput(line: 1, bias: .asIs, debounce: .milliseconds(30), consumer: consumer)
            try expectEqual(try chip.lineInfo(line: 1).debounce, .milliseconds(30), "line info debounce")
            try expectEqual(try await input.read(), false, "level at the request")
            try pin.pull(up: true)
            // Hang guard only: the kernel reports the new level once it has held for 30 ms.
            let deadline = ContinuousClock.now + .seconds(5)
            while try await input.read() == false {
                try expect(ContinuousClock.now < deadline, "the debounced level never followed the pull-up")
                try await Task.sleep(for: .milliseconds(5))
            }
        },
        Check("gpio: an output drives the simulated line") {
            let chip = try SimulatedHardware.gpioSimChip()
            let pin = SimulatedHardware.SimulatedLine(chipName: chip.name, offset: 5)
            let output = try chip.requestOutput(line: 5, initial: true, consumer: consumer)
            try expectEqual(try pin.level(), true, "line 5 after requesting it high")
            for value in [false, true, false] {
                try await output.write(value)
                try expectEqual(try pin.level(), value, "line 5 after writing \(value)")
            }
        },
        Check("gpio: a held line is busy; an offset past the end is noSuchLine") {
            let chip = try SimulatedHardware.gpioSimChip()
            let held = try chip.requestOutput(line: 6, initial: false, consumer: consumer)
            let info = try chip.lineInfo(line: 6)
            try expect(info.isUsed && info.isOutput && info.consumer == consumer, "line info of the output: \(info)")
            try await expectError("line 6 again", GPIOError.self, where: { $0.code == .busy && $0.line == 6 }) {
                try chip.requestInput(line: 6, bias: .asIs, consumer: consumer)
            }
            // Through another open of the chip, as another program would.
            try await expectError("line 6 for edges", GPIOError.self, where: { $0.code == .busy && $0.line == 6 }) {
                try SimulatedHardware.gpioSimChip().requestEdgeEvents(line: 6, bias: .asIs, consumer: consumer)
            }
            try await expectError("line 8 of 8", GPIOError.self, where: { $0.code == .noSuchLine && $0.line == 8 }) {
                try chip.requestInput(line: 8, bias: .asIs, consumer: consumer)
            }
            try await expectError("line info of line 8", GPIOError.self, where: { $0.code == .noSuchLine }) {
                try chip.lineInfo(line: 8)
            }
            withExtendedLifetime(held) {}
        },
    ]
}

/// Iterates a line's edge stream on a task of its own, so a check can wait for a number of edges with a deadline.
final class EdgeCollector: Sendable {
    private struct State {
        var edges: [GPIOEdge] = []
        var ended = false
        var failure: (any Error)?
    }

    private let state = Mutex(State())

    init(_ stream: AsyncThrowingStream<GPIOEdge, any Error>) {
        Task {
            do {
                for try await edge in stream { self.state.withLock { $0.edges.append(edge) } }
            } catch {
                self.state.withLock { $0.failure = error }
            }
            self.state.withLock { $0.ended = true }
        }
    }

    var edges: [GPIOEdge] { self.state.withLock { $0.edges } }

    /// The edges so far, once there are at least `count`; fails after `limit` with what did arrive.
    func waitFor(count: Int, within limit: Duration = .seconds(5)) async throws -> [GPIOEdge] {
        try await self.waitFor(within: limit, "\(count) edges") { $0.count >= count }
    }

    /// The edges so far, once `ready` holds for them; fails after `limit` (a hang guard) with what did arrive.
    func waitFor(
        within limit: Duration = .seconds(5),
        _ what: String = "the expected edges",
        _ ready: @escaping ([GPIOEdge]) -> Bool
    ) async throws -> [GPIOEdge] {
        try await self.poll(within: limit, what) { state in ready(state.edges) ? state.edges : nil }
    }

    /// Returns once the stream has finished without an error.
    func waitForEnd(within limit: Duration = .seconds(2)) async throws {
        try await self.poll(within: limit, "the end of the stream") { state in state.ended ? () : nil }
        if let failure = self.state.withLock({ $0.failure }) { throw CheckFailure("the stream ended with \(failure)") }
    }

    private func poll<T>(within limit: Duration, _ what: String, _ ready: (State) -> T?) async throws -> T {
        let deadline = ContinuousClock.now + limit
        while true {
            let (result, snapshot) = self.state.withLock { state in (ready(state), state.edges) }
            if let result { return result }
            guard ContinuousClock.now < deadline else {
                throw CheckFailure("waited \(limit) for \(what); got \(snapshot.count): \(snapshot.map(\.kind))")
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
#endif
