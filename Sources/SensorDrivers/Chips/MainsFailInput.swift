internal import KiezboxCore
import Synchronization

/// A mains-present signal on a GPIO input: an optocoupler or a divider on the mains adapter's DC output, or a
/// charger's or USB supply's power-good pin. The daemon switches to crisis mode when mains goes away.
///
/// ``watch()`` requests both edges, reads the level once, then follows the edges. A change counts only once the
/// line has stayed at its new level for `debounce` (default 1 s): a flicker, a contact bounce or a grid
/// auto-reclose interruption is not a blackout, and a box that runs on its battery anyway loses nothing by
/// deciding a second later. Durations are judged by the kernel's edge timestamps wherever both ends are known, so
/// events read late are still judged right; a change still waiting for its confirmation is confirmed by a timer
/// (the injected `pause`) when no edge follows. Each confirmed change is stamped with the kernel timestamp of the
/// edge that started it.
///
/// **Kernel debounce:** the line is also requested with the kernel's debounce (`kernelDebounce`, default 20 ms,
/// never more than `debounce`), so relay-contact bounce and short spikes picked up on the wire never reach user
/// space; 20 ms covers a relay's bounce (up to about 10 ms) and one 50 Hz mains period. The kernel stamps each
/// edge when its period ended, so a change is stamped about 20 ms after the line moved: nothing against a 1 s
/// decision.
///
/// The signal must be steady: an optocoupler driven straight from AC without a smoothing capacitor pulses at
/// 50 Hz, which this filter sees as "still present" only as long as the pulses keep coming, and the kernel's
/// debounce holds such a line at its last steady level, since it never stays put for 20 ms.
///
/// ``measure()`` reports ``Quantity/mainsPresent`` as 1 or 0 (``ReadingQuality/degraded`` while the watch is not
/// running, as the state may be stale); ``changes()`` streams the confirmed changes.
public final class MainsFailInput: WatchingSensorDriver {
    /// Which level means "mains present".
    public enum Polarity: Sendable, Hashable {
        /// High = mains present (a divider on the adapter output, an active-high power-good).
        case presentWhenHigh
        /// Low = mains present (an optocoupler pulling the line to ground while mains is there).
        case presentWhenLow

        func mainsPresent(lineHigh: Bool) -> Bool {
            switch self {
            case .presentWhenHigh: lineHigh
            case .presentWhenLow: !lineHigh
            }
        }
    }

    /// A confirmed change of the mains state.
    public struct Change: Sendable, Hashable {
        public var mainsPresent: Bool
        /// When the line took the new level, in the kernel's edge time base (`CLOCK_MONOTONIC` on Linux); for the
        /// state read when a watch starts, the time it was read.
        public var timestamp: Duration
        /// True for the state read when a watch started rather than a level change seen as an edge.
        public var isInitialState: Bool

        public init(mainsPresent: Bool, timestamp: Duration, isInitialState: Bool = false) {
            self.mainsPresent = mainsPresent
            self.timestamp = timestamp
            self.isInitialState = isInitialState
        }
    }

    /// See the type's documentation for why 1 s.
    public static let defaultDebounce = Duration.seconds(1)
    /// See the type's documentation for why 20 ms.
    public static let defaultKernelDebounce = Duration.milliseconds(20)

    private struct Pending {
        var lineHigh: Bool
        var timestamp: Duration
        var generation: Int
    }

    private struct State {
        var watching = false
        /// The confirmed line level (not yet adjusted for polarity).
        var stableLineHigh: Bool?
        var current: Change?
        var pending: Pending?
        var generation = 0
        var timer: Task<Void, Never>?
        var glitches = 0
        var subscribers: [Int: AsyncStream<Change>.Continuation] = [:]
        var nextSubscriber = 0
    }

    private let chip: any GPIOChip
    private let line: UInt32
    private let polarity: Polarity
    private let bias: GPIOBias
    private let debounce: Duration
    private let kernelDebounce: Duration
    private let consumer: String
    private let pause: Pause
    private let now: @Sendable () -> Duration
    private let state = Mutex(State())

    /// Creates a driver; the line is requested when ``watch()`` runs.
    ///
    /// - Parameters:
    ///   - chip: the GPIO chip the signal is wired to.
    ///   - line: the line offset (the BCM number on the Pi's header chip).
    ///   - polarity: which level means "mains present".
    ///   - bias: the pull to request: pull-up for an open-collector optocoupler, as-is for a driven signal.
    ///   - debounce: how long a new level must hold before it counts.
    ///   - kernelDebounce: the debounce the kernel applies to the line before the edges reach the driver; capped
    ///     at `debounce`, `.zero` for none.
    ///   - consumer: the label `gpioinfo` shows for the line.
    ///   - pause: the timer that confirms a change when no further edge comes; a ``ManualClock``'s sleep in tests.
    ///   - now: now in the edge timestamps' time base, to stamp the state read at the start of a watch:
    ///     ``monotonicNow()`` on Linux, ``SimulatedGPIOChip/timestampNow`` in simulations.
    public init(
        chip: any GPIOChip,
        line: UInt32,
        polarity: Polarity = .presentWhenHigh,
        bias: GPIOBias = .asIs,
        debounce: Duration = MainsFailInput.defaultDebounce,
        kernelDebounce: Duration = MainsFailInput.defaultKernelDebounce,
        consumer: String = "kiezbox mains present",
        pause: @escaping Pause = realPause,
        now: @escaping @Sendable () -> Duration = monotonicNow
    ) {
        self.chip = chip
        self.line = line
        self.polarity = polarity
        self.bias = bias
        self.debounce = debounce
        // The kernel's period never exceeds the driver's: a configured shorter window shortens both.
        self.kernelDebounce = max(.zero, min(kernelDebounce, debounce))
        self.consumer = consumer
        self.pause = pause
        self.now = now
    }

    deinit {
        let (subscribers, timer) = self.state.withLock { state in
            (Array(state.subscribers.values), state.timer)
        }
        timer?.cancel()
        for subscriber in subscribers { subscriber.finish() }
    }

    public var chipName: String { "mains-present input" }

    /// The confirmed mains state, or nil before a watch has read the line.
    public var mainsPresent: Bool? { self.state.withLock { $0.current?.mainsPresent } }

    /// The last confirmed change, or nil before a watch has read the line.
    public var lastChange: Change? { self.state.withLock { $0.current } }

    /// Whether ``watch()`` is running.
    public var isWatching: Bool { self.state.withLock { $0.watching } }

    /// Level changes that did not last `debounce` and were dropped.
    public var glitchCount: Int { self.state.withLock { $0.glitches } }

    /// Confirmed changes: first the current state (when known), then every change as it is confirmed. Each call
    /// returns a new stream; it keeps the newest 64 changes if its reader falls behind.
    public func changes() -> AsyncStream<Change> {
        let (stream, continuation) = AsyncStream.makeStream(of: Change.self, bufferingPolicy: .bufferingNewest(64))
        let id = self.state.withLock { state in
            let id = state.nextSubscriber
            state.nextSubscriber += 1
            return id
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        self.state.withLock { state in
            state.subscribers[id] = continuation
            if let current = state.current { continuation.yield(current) }
        }
        return stream
    }

    /// Requests both edges on the line and follows the mains state until the task is cancelled.
    ///
    /// - Throws: ``GPIOError`` when the line cannot be requested or read, or the event stream fails;
    ///   ``MainsFailInputError`` when the stream ends without cancellation.
    public func watch() async throws {
        // Requesting before reading means no change between the two is missed.
        let events = try self.chip.requestEdgeEvents(
            line: self.line, bias: self.bias, debounce: self.kernelDebounce, consumer: self.consumer
        )
        defer { events.release() }
        let lineHigh = try await events.read()
        let readAt = self.now()
        self.state.withLock { state in
            state.watching = true
            // A restarted watch reports the state only if it changed while nobody watched.
            if state.stableLineHigh != lineHigh || state.current == nil {
                state.stableLineHigh = lineHigh
                self.publish(
                    Change(mainsPresent: self.polarity.mainsPresent(lineHigh: lineHigh), timestamp: readAt, isInitialState: true),
                    in: &state
                )
            }
        }
        defer {
            self.state.withLock { state in
                state.watching = false
                state.pending = nil
                state.timer?.cancel()
                state.timer = nil
            }
        }
        for try await edge in events.edges {
            self.state.withLock { self.handle(edge, in: &$0) }
        }
        if Task.isCancelled { return }
        throw MainsFailInputError(.edgeEventsEnded, chip: self.chip.name, line: self.line)
    }

    /// Reports ``Quantity/mainsPresent``: 1 with mains, 0 without.
    ///
    /// - Throws: ``MainsFailInputError`` when no watch has read the line yet.
    public func measure() async throws -> [MeasuredValue] {
        let (current, watching) = self.state.withLock { ($0.current, $0.watching) }
        guard let current else { throw MainsFailInputError(.stateUnknown, chip: self.chip.name, line: self.line) }
        return [MeasuredValue(.mainsPresent, current.mainsPresent ? 1 : 0, quality: watching ? .good : .degraded)]
    }

    // MARK: - Debouncing

    private func handle(_ edge: GPIOEdge, in state: inout State) {
        let lineHigh = edge.kind == .rising
        if let pending = state.pending {
            // Both ends of the pending level are known now: the kernel timestamps decide whether it lasted.
            if edge.timestamp - pending.timestamp >= self.debounce {
                self.confirm(pending, in: &state)
            } else {
                state.glitches += 1
            }
            state.pending = nil
            state.timer?.cancel()
            state.timer = nil
        }
        guard lineHigh != state.stableLineHigh else { return }
        state.generation += 1
        let generation = state.generation
        state.pending = Pending(lineHigh: lineHigh, timestamp: edge.timestamp, generation: generation)
        // Confirms the change if no edge comes within the window. The timer starts when the edge is handled,
        // not when it happened, so it can only err towards waiting longer.
        state.timer = Task { [pause, debounce] in
            do { try await pause(debounce) } catch { return }
            self.timerFired(generation: generation)
        }
    }

    private func timerFired(generation: Int) {
        self.state.withLock { state in
            guard let pending = state.pending, pending.generation == generation else { return }
            state.pending = nil
            state.timer = nil
            self.confirm(pending, in: &state)
        }
    }

    private func confirm(_ pending: Pending, in state: inout State) {
        state.stableLineHigh = pending.lineHigh
        self.publish(
            Change(mainsPresent: self.polarity.mainsPresent(lineHigh: pending.lineHigh), timestamp: pending.timestamp),
            in: &state
        )
    }

    private func publish(_ change: Change, in state: inout State) {
        state.current = change
        for subscriber in state.subscribers.values { subscriber.yield(change) }
    }
}

/// A mains-present input that cannot report, with what a resident can check.
public struct MainsFailInputError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: Error, Sendable, Hashable {
        /// The edge-event stream ended although nobody cancelled the watch.
        case edgeEventsEnded
        /// No watch has read the line yet.
        case stateUnknown
    }

    public var code: Code
    /// The GPIO chip's name.
    public var chip: String
    public var line: UInt32

    public init(_ code: Code, chip: String, line: UInt32) {
        self.code = code
        self.chip = chip
        self.line = line
    }

    public var description: String {
        let at = "mains-present input on \(self.chip) line \(self.line)"
        switch self.code {
        case .edgeEventsEnded:
            return "\(at): edge events stopped (the line was released or the chip went away); the watch will be restarted"
        case .stateUnknown:
            return "\(at): no mains state yet, because the input is not being watched: check the GPIO chip and line "
                + "in the configuration and the log for GPIO errors"
        }
    }
}
