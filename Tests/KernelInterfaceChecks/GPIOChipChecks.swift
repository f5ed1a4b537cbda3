#if os(Linux)
import Glibc
import SensorDrivers
import Synchronization

/// ``LinuxGPIOChip`` on gpio-sim: opening, bias, inputs, both-edge events from the event thread, outputs, and
/// how kernel errors arrive as typed errors. Each check uses lines of its own.
enum GPIOChipChecks {
    static let consumer = "kernel-interface-checks"

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
        },
        Check("gpio: input bias flags reach the kernel (gpio-sim applies a bias as its pull)") {
            let chip = try SimulatedHardware.gpioSimChip()
            for (bias, expected) in [(GPIOBias.pullUp, true), (.pullDown, false), (.pullUp, true)] {
                let input = try chip.requestInput(line: 0, bias: bias, consumer: consumer)
                try expectEqual(try await input.read(), expected, "line 0 with \(bias.rawValue)")
            }
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
        Check("gpio: rising on pull-up, falling on pull-down, with increasing kernel timestamps") {
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
            try await expectError("line 6 again", GPIOError.self, where: { $0.code == .busy && $0.line == 6 }) {
                try chip.requestInput(line: 6, bias: .asIs, consumer: consumer)
            }
            try await expectError("line 8 of 8", GPIOError.self, where: { $0.code == .noSuchLine && $0.line == 8 }) {
                try chip.requestInput(line: 8, bias: .asIs, consumer: consumer)
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
        try await self.poll(within: limit, "\(count) edges") { state in state.edges.count >= count ? state.edges : nil }
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
