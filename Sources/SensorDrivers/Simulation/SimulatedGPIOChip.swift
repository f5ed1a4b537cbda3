public import KiezboxCore
import Synchronization

/// A GPIO chip whose input lines tests and the demo drive, served through the same ``GPIOChip`` protocol as a
/// ``LinuxGPIOChip``, and modelled on the kernel's `gpio-sim`.
///
/// **Lines.** Each line is requested at most once (a second request is ``GPIOError/Code/busy``, as in the kernel)
/// and is freed when its handle is released or deallocated. An input's level is what ``setInput(line:high:)``
/// drives on it, like writing gpio-sim's `pull` attribute; an undriven line follows the requested bias
/// (pull-up reads high; pull-down, disabled and as-is read low, gpio-sim's default pull). An output's value is read
/// back with ``outputValue(line:)``.
///
/// **Edges and time.** A line requested for edge events gets an event for every level change, rising or falling,
/// stamped with the chip's time base, which stands in for the kernel's `CLOCK_MONOTONIC`:
/// - created with a clock (``init(name:lineCount:eventQueueCapacity:clock:)``): the time elapsed on that clock
///   since the chip was created (with a fresh ``ManualClock``, simply its offset);
/// - created with a time base (``init(name:lineCount:eventQueueCapacity:timeBase:)``): whatever it returns, e.g.
///   ``monotonicNow()`` for a demo on a real box, where drivers compare edges with `CLOCK_MONOTONIC`;
/// - created without: a manual time base that starts at zero and moves only with ``advanceTime(by:)`` and with
///   explicit timestamps (``setInput(line:high:at:)``).
/// Timestamps never go backwards: an explicit timestamp earlier than the last event's is a programming error.
///
/// **Debounce** works as in the kernel (see ``GPIOChip``): on a line requested with a debounce period, every level
/// change restarts the period, and once the line has held a level for the whole period that level is reported, as
/// an edge stamped at the end of the period if it differs from the level reported before; reads return the
/// reported level. The period ends when the time base passes it: with the manual time base, at the next
/// ``advanceTime(by:)`` or explicitly timestamped change that reaches it; with a clock or time base, also by a timer
/// sleeping on that clock (a ``ManualClock`` sees it as a sleeper).
///
/// Events queue without limit unless the chip is created with an `eventQueueCapacity`, which then drops the
/// newest events when full, as the kernel's 16-entry FIFO per line does.
///
/// **Synchronisation.** ``waitForEdgeConsumer(line:)`` suspends until the line's consumer has taken every event
/// and waits for the next one, so a test can drive edges and then check what the driver made of them without
/// polling real time. A level change still inside its debounce period is no event yet: end the period first.
///
/// ```swift
/// let chip = SimulatedGPIOChip(name: "sim:gpiochip0", lineCount: 8)
/// // a driver task requests line 17 for edge events …
/// await chip.waitForEdgeConsumer(line: 17)
/// chip.setInput(line: 17, high: false, at: .seconds(5))
/// await chip.waitForEdgeConsumer(line: 17)
/// ```
public final class SimulatedGPIOChip: GPIOChip {
    public let name: String
    public let lineCount: Int

    private enum Role {
        case input(GPIOBias)
        case output
        case edgeEvents(GPIOBias)

        var bias: GPIOBias {
            switch self {
            case .input(let bias), .edgeEvents(let bias): bias
            case .output: .asIs
            }
        }
    }

    private struct Request {
        let id: Int
        let consumer: String
        let role: Role
        /// The debounce period, rounded as the kernel rounds it; zero for none.
        var debounce = Duration.zero
        /// With debounce: the level last reported, which reads return.
        var reportedLevel = false
        /// With debounce: when the line will have held its level for the period, if it changed since.
        var debounceDeadline: Duration?
        /// With debounce on a clock: the timer that ends the period.
        var debounceTimer: Task<Void, Never>?
        var queue: [GPIOEdge] = []
        /// The consumer, suspended until the next event.
        var waiter: CheckedContinuation<GPIOEdge?, any Error>?
        /// Set when the event stream was broken: every later read of it throws.
        var failure: GPIOError?
        var dropped = 0
    }

    private struct Line {
        /// What the outside world drives on the line; nil leaves it to the bias.
        var drivenLevel: Bool?
        var outputValue = false
        var request: Request?

        /// The level on the line itself, before any debounce.
        var inputLevel: Bool {
            if let drivenLevel { return drivenLevel }
            return self.request?.role.bias == .pullUp
        }

        /// The level a read returns: the debounced one when the request has debounce.
        var readLevel: Bool {
            if let request = self.request, request.debounce > .zero { return request.reportedLevel }
            return self.inputLevel
        }
    }

    private typealias Delivery = (consumer: CheckedContinuation<GPIOEdge?, any Error>, edge: GPIOEdge)

    private struct State {
        var lines: [Line]
        var nextRequestID = 1
        var manualTime = Duration.zero
        var lastTimestamp = Duration.zero
        var requestFault: GPIOError.Code?
        var consumerWaiters: [(line: UInt32, continuation: CheckedContinuation<Void, Never>)] = []

        /// Hands `edge` to the line's consumer, or queues it; returns a consumer to resume outside the lock.
        mutating func deliver(
            _ edge: GPIOEdge,
            on line: Int,
            capacity: Int?
        ) -> CheckedContinuation<GPIOEdge?, any Error>? {
            guard var request = self.lines[line].request, case .edgeEvents = request.role else { return nil }
            defer { self.lines[line].request = request }
            if let waiter = request.waiter {
                request.waiter = nil
                return waiter
            }
            if let capacity, request.queue.count >= capacity {
                request.dropped += 1
            } else {
                request.queue.append(edge)
            }
            return nil
        }

        /// Ends the debounce periods that run out by `time`, reporting each line's level if it changed; returns the
        /// consumers to resume outside the lock.
        mutating func settleDebounce(upTo time: Duration, capacity: Int?) -> [Delivery] {
            var deliveries: [Delivery] = []
            for index in self.lines.indices {
                guard var request = self.lines[index].request, let deadline = request.debounceDeadline, deadline <= time
                else { continue }
                request.debounceDeadline = nil
                request.debounceTimer?.cancel()
                request.debounceTimer = nil
                let level = self.lines[index].inputLevel
                let changed = level != request.reportedLevel
                request.reportedLevel = level
                self.lines[index].request = request
                guard changed else { continue }
                // The kernel stamps a debounced edge when its period ends.
                self.lastTimestamp = max(self.lastTimestamp, deadline)
                let edge = GPIOEdge(level ? .rising : .falling, at: deadline)
                if let consumer = self.deliver(edge, on: index, capacity: capacity) { deliveries.append((consumer, edge)) }
            }
            return deliveries
        }

        /// Removes and returns the waiters for `line` if its consumer is idle.
        mutating func idleConsumerWaiters(for line: UInt32) -> [CheckedContinuation<Void, Never>] {
            guard let request = self.lines[Int(line)].request, request.waiter != nil, request.queue.isEmpty else { return [] }
            let ready = self.consumerWaiters.filter { $0.line == line }.map(\.continuation)
            self.consumerWaiters.removeAll { $0.line == line }
            return ready
        }
    }

    private let clockElapsed: (@Sendable () -> Duration)?
    /// Sleeps for a duration of the clock behind `clockElapsed`; the debounce timers use it.
    private let sleep: (@Sendable (Duration) async throws -> Void)?
    private let eventQueueCapacity: Int?
    private let state: Mutex<State>

    /// Creates a chip with a manual time base starting at zero.
    ///
    /// - Parameters:
    ///   - name: the chip's name in errors ("sim:gpiochip0").
    ///   - lineCount: how many lines it has (offsets 0 ..< lineCount); 58 like the Pi 4's `pinctrl-bcm2711`.
    ///   - eventQueueCapacity: how many unread edge events a line holds before dropping new ones; nil for no limit.
    public convenience init(name: String = "sim:gpiochip0", lineCount: Int = 58, eventQueueCapacity: Int? = nil) {
        self.init(name: name, lineCount: lineCount, eventQueueCapacity: eventQueueCapacity, timeBase: nil, sleep: nil)
    }

    /// Creates a chip whose timestamps are the time elapsed on `clock` since now.
    public convenience init<C: KiezboxClock>(
        name: String = "sim:gpiochip0",
        lineCount: Int = 58,
        eventQueueCapacity: Int? = nil,
        clock: C
    ) {
        let start = clock.now
        self.init(
            name: name, lineCount: lineCount, eventQueueCapacity: eventQueueCapacity,
            timeBase: { start.duration(to: clock.now) }, sleep: { try await clock.sleep(for: $0) }
        )
    }

    /// Creates a chip whose timestamps come from `timeBase`. A demo passes ``monotonicNow()``, so that edges share
    /// the kernel's time base and drivers can keep their default `now`. Debounce timers sleep in real time.
    public convenience init(
        name: String = "sim:gpiochip0",
        lineCount: Int = 58,
        eventQueueCapacity: Int? = nil,
        timeBase: @escaping @Sendable () -> Duration
    ) {
        self.init(
            name: name, lineCount: lineCount, eventQueueCapacity: eventQueueCapacity,
            timeBase: timeBase, sleep: { try await Task.sleep(for: $0) }
        )
    }

    private init(
        name: String,
        lineCount: Int,
        eventQueueCapacity: Int?,
        timeBase: (@Sendable () -> Duration)?,
        sleep: (@Sendable (Duration) async throws -> Void)?
    ) {
        self.name = name
        self.lineCount = lineCount
        self.clockElapsed = timeBase
        self.sleep = sleep
        self.eventQueueCapacity = eventQueueCapacity
        self.state = Mutex(State(lines: Array(repeating: Line(), count: max(0, lineCount))))
    }

    // MARK: Time base

    /// Now, in the time base of the edge timestamps (see the type's documentation).
    public var timestampNow: Duration {
        let clockTime = self.clockElapsed?()
        return self.state.withLock { state in max(clockTime ?? state.manualTime, state.lastTimestamp) }
    }

    /// Moves the manual time base forward, ending the debounce periods it passes. Only for a chip created without
    /// a clock.
    public func advanceTime(by duration: Duration) {
        precondition(self.clockElapsed == nil, "this chip's time follows its clock or time base; advance that instead")
        precondition(duration >= .zero, "time does not go backwards")
        let deliveries = self.state.withLock { state in
            state.manualTime += duration
            return state.settleDebounce(upTo: state.manualTime, capacity: self.eventQueueCapacity)
        }
        for delivery in deliveries { delivery.consumer.resume(returning: delivery.edge) }
    }

    // MARK: Driving lines

    /// Drives an input line high or low now, producing an edge event if the level changes.
    public func setInput(line: UInt32, high: Bool) {
        self.drive(line: line, level: high, at: nil)
    }

    /// Drives an input line high or low at `timestamp`, producing an edge event stamped `timestamp` if the level
    /// changes. Without a clock, the time base moves to `timestamp`.
    public func setInput(line: UInt32, high: Bool, at timestamp: Duration) {
        self.drive(line: line, level: high, at: timestamp)
    }

    /// Stops driving a line, so it falls back to its bias (an edge if that changes its level), like a sensor
    /// unplugged from its header pin.
    public func stopDriving(line: UInt32, at timestamp: Duration? = nil) {
        self.drive(line: line, level: nil, at: timestamp)
    }

    /// Drives `line` to `high` the way a mechanical contact does: it reaches the level at `start`, then bounces
    /// back and forth `bounces` times, `interval` apart, and settles at `high`.
    ///
    /// - Returns: the timestamp of the last edge, when the line settled.
    @discardableResult
    public func bounce(line: UInt32, to high: Bool, at start: Duration, bounces: Int, interval: Duration) -> Duration {
        var time = start
        self.setInput(line: line, high: high, at: time)
        for _ in 0..<max(0, bounces) {
            time += interval
            self.setInput(line: line, high: !high, at: time)
            time += interval
            self.setInput(line: line, high: high, at: time)
        }
        return time
    }

    private func drive(line: UInt32, level: Bool?, at explicitTimestamp: Duration?) {
        precondition(Int(line) < self.lineCount, "\(self.name) has no line \(line)")
        let clockTime = self.clockElapsed?()
        let deliveries = self.state.withLock { state -> [Delivery] in
            let timestamp = explicitTimestamp ?? max(clockTime ?? state.manualTime, state.lastTimestamp)
            precondition(timestamp >= state.lastTimestamp, "edge timestamps must not go backwards")
            // Debounce periods that ran out before this change report first.
            var deliveries = state.settleDebounce(upTo: timestamp, capacity: self.eventQueueCapacity)
            state.lastTimestamp = timestamp
            if self.clockElapsed == nil { state.manualTime = max(state.manualTime, timestamp) }

            let index = Int(line)
            let before = state.lines[index].inputLevel
            state.lines[index].drivenLevel = level
            let after = state.lines[index].inputLevel
            guard before != after else { return deliveries }
            if var request = state.lines[index].request, request.debounce > .zero {
                // Every change restarts the period, even one back to the reported level, as in the kernel.
                let deadline = timestamp + request.debounce
                request.debounceDeadline = deadline
                request.debounceTimer?.cancel()
                request.debounceTimer = self.startDebounceTimer(until: deadline)
                state.lines[index].request = request
                return deliveries
            }
            let edge = GPIOEdge(after ? .rising : .falling, at: timestamp)
            if let consumer = state.deliver(edge, on: index, capacity: self.eventQueueCapacity) {
                deliveries.append((consumer, edge))
            }
            return deliveries
        }
        for delivery in deliveries { delivery.consumer.resume(returning: delivery.edge) }
    }

    /// On a chip with a clock or time base: a task that ends the debounce periods due by `deadline` once the time
    /// base reaches it. The manual time base needs none: it moves only when told to.
    private func startDebounceTimer(until deadline: Duration) -> Task<Void, Never>? {
        guard let sleep = self.sleep, let elapsed = self.clockElapsed else { return nil }
        return Task { [weak self] in
            while deadline - elapsed() > .zero {
                do { try await sleep(deadline - elapsed()) } catch { return }
            }
            guard let self else { return }
            let deliveries = self.state.withLock { state in
                state.settleDebounce(upTo: deadline, capacity: self.eventQueueCapacity)
            }
            for delivery in deliveries { delivery.consumer.resume(returning: delivery.edge) }
        }
    }

    // MARK: Inspection

    /// The level on the line now, before any debounce (a debounced request may still read the previous one).
    public func inputLevel(line: UInt32) -> Bool {
        self.state.withLock { $0.lines[Int(line)].inputLevel }
    }

    /// The debounce period the line's current request asked for (rounded as the kernel rounds it), or nil when
    /// the line is free.
    public func debounce(line: UInt32) -> Duration? {
        self.state.withLock { $0.lines[Int(line)].request?.debounce }
    }

    /// The value an output line drives, or nil when the line is not requested as an output.
    public func outputValue(line: UInt32) -> Bool? {
        self.state.withLock { state in
            guard case .output = state.lines[Int(line)].request?.role else { return nil }
            return state.lines[Int(line)].outputValue
        }
    }

    /// The consumer label of whoever holds the line, or nil when it is free.
    public func consumer(line: UInt32) -> String? {
        self.state.withLock { $0.lines[Int(line)].request?.consumer }
    }

    /// How many edge events the line's current request dropped because its queue was full.
    public func droppedEdgeCount(line: UInt32) -> Int {
        self.state.withLock { $0.lines[Int(line)].request?.dropped ?? 0 }
    }

    /// Suspends until `line` is requested for edge events and its consumer has taken every event and waits for the
    /// next one.
    public func waitForEdgeConsumer(line: UInt32) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = self.state.withLock { state -> Bool in
                if let request = state.lines[Int(line)].request, request.waiter != nil, request.queue.isEmpty { return true }
                state.consumerWaiters.append((line, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }

    // MARK: Faults

    /// Makes every request fail with `code` (e.g. ``GPIOError/Code/permissionDenied``), or ends that fault with nil.
    public func failRequests(with code: GPIOError.Code?) {
        self.state.withLock { $0.requestFault = code }
    }

    /// Breaks the edge-event stream of `line`'s current request: its consumer gets `error` (by default an I/O
    /// error), as when the kernel tears a request down.
    public func breakEdgeEvents(line: UInt32, error: GPIOError.Code = .io(errno: 5)) {
        let failure = GPIOError(error, chip: self.name, line: line)
        let waiter = self.state.withLock { state -> CheckedContinuation<GPIOEdge?, any Error>? in
            guard var request = state.lines[Int(line)].request else { return nil }
            defer { state.lines[Int(line)].request = request }
            request.failure = failure
            let waiter = request.waiter
            request.waiter = nil
            return waiter
        }
        waiter?.resume(throwing: failure)
    }

    // MARK: GPIOChip

    public func requestInput(
        line: UInt32,
        bias: GPIOBias,
        debounce: Duration,
        consumer: String
    ) throws(GPIOError) -> any GPIOInput {
        let id = try self.request(line: line, role: .input(bias), debounce: debounce, consumer: consumer)
        return SimulatedGPIOInput(chip: self, line: line, requestID: id)
    }

    public func requestOutput(line: UInt32, initial: Bool, consumer: String) throws(GPIOError) -> any GPIOOutput {
        let id = try self.request(line: line, role: .output, debounce: .zero, consumer: consumer)
        self.state.withLock { $0.lines[Int(line)].outputValue = initial }
        return SimulatedGPIOOutput(chip: self, line: line, requestID: id)
    }

    public func requestEdgeEvents(
        line: UInt32,
        bias: GPIOBias,
        debounce: Duration,
        consumer: String
    ) throws(GPIOError) -> any GPIOEdgeEvents {
        let id = try self.request(line: line, role: .edgeEvents(bias), debounce: debounce, consumer: consumer)
        return SimulatedGPIOEdgeEvents(chip: self, line: line, requestID: id)
    }

    private func request(line: UInt32, role: Role, debounce: Duration, consumer: String) throws(GPIOError) -> Int {
        let result = self.state.withLock { state -> Result<Int, GPIOError> in
            if let fault = state.requestFault { return .failure(GPIOError(fault, chip: self.name, line: line)) }
            guard Int(line) < self.lineCount else { return .failure(GPIOError(.noSuchLine, chip: self.name, line: line)) }
            guard state.lines[Int(line)].request == nil else { return .failure(GPIOError(.busy, chip: self.name, line: line)) }
            let id = state.nextRequestID
            state.nextRequestID += 1
            var request = Request(id: id, consumer: consumer, role: role)
            request.debounce = .microseconds(debounce.gpioDebounceMicroseconds)
            state.lines[Int(line)].request = request
            // The kernel's debouncer starts from the level at the request, with the requested bias applied.
            let level = state.lines[Int(line)].inputLevel
            state.lines[Int(line)].request?.reportedLevel = level
            return .success(id)
        }
        return try result.get()
    }

    // MARK: Handles

    fileprivate func level(line: UInt32, requestID: Int) throws(GPIOError) -> Bool {
        let level = self.state.withLock { state -> Bool? in
            guard state.lines[Int(line)].request?.id == requestID else { return nil }
            return state.lines[Int(line)].readLevel
        }
        guard let level else { throw self.released(line) }
        return level
    }

    fileprivate func setOutput(line: UInt32, requestID: Int, value: Bool) throws(GPIOError) {
        let held = self.state.withLock { state -> Bool in
            guard state.lines[Int(line)].request?.id == requestID else { return false }
            state.lines[Int(line)].outputValue = value
            return true
        }
        guard held else { throw self.released(line) }
    }

    fileprivate func releaseRequest(line: UInt32, requestID: Int) {
        let waiter = self.state.withLock { state -> CheckedContinuation<GPIOEdge?, any Error>? in
            guard let request = state.lines[Int(line)].request, request.id == requestID else { return nil }
            request.debounceTimer?.cancel()
            state.lines[Int(line)].request = nil
            return request.waiter
        }
        waiter?.resume(returning: nil)
    }

    fileprivate func nextEdge(line: UInt32, requestID: Int) async throws -> GPIOEdge? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<GPIOEdge?, any Error>) in
                let (immediate, idle) = self.state.withLock {
                    state -> (Result<GPIOEdge?, any Error>?, [CheckedContinuation<Void, Never>]) in
                    guard var request = state.lines[Int(line)].request, request.id == requestID else { return (.success(nil), []) }
                    defer { state.lines[Int(line)].request = request }
                    if !request.queue.isEmpty { return (.success(request.queue.removeFirst()), []) }
                    if let failure = request.failure { return (.failure(failure), []) }
                    // Cancelled before the handler could see a waiter: end the stream now.
                    if Task.isCancelled { return (.success(nil), []) }
                    precondition(request.waiter == nil, "an edge event stream has one consumer")
                    request.waiter = continuation
                    state.lines[Int(line)].request = request
                    return (nil, state.idleConsumerWaiters(for: line))
                }
                if let immediate { continuation.resume(with: immediate) }
                for waiter in idle { waiter.resume() }
            }
        } onCancel: {
            let waiter = self.state.withLock { state -> CheckedContinuation<GPIOEdge?, any Error>? in
                guard state.lines[Int(line)].request?.id == requestID else { return nil }
                let waiter = state.lines[Int(line)].request?.waiter
                state.lines[Int(line)].request?.waiter = nil
                return waiter
            }
            waiter?.resume(returning: nil)
        }
    }

    private func released(_ line: UInt32) -> GPIOError {
        // EBADF: the request's file descriptor is closed.
        GPIOError(.io(errno: 9), chip: self.name, line: line)
    }
}

/// An input line of a ``SimulatedGPIOChip``; the line is freed when this handle is deallocated.
private final class SimulatedGPIOInput: GPIOInput {
    let chip: SimulatedGPIOChip
    let line: UInt32
    let requestID: Int

    init(chip: SimulatedGPIOChip, line: UInt32, requestID: Int) {
        self.chip = chip
        self.line = line
        self.requestID = requestID
    }

    deinit { self.chip.releaseRequest(line: self.line, requestID: self.requestID) }

    func read() async throws(GPIOError) -> Bool {
        try self.chip.level(line: self.line, requestID: self.requestID)
    }
}

/// An output line of a ``SimulatedGPIOChip``; the line is freed when this handle is deallocated.
private final class SimulatedGPIOOutput: GPIOOutput {
    let chip: SimulatedGPIOChip
    let line: UInt32
    let requestID: Int

    init(chip: SimulatedGPIOChip, line: UInt32, requestID: Int) {
        self.chip = chip
        self.line = line
        self.requestID = requestID
    }

    deinit { self.chip.releaseRequest(line: self.line, requestID: self.requestID) }

    func write(_ value: Bool) async throws(GPIOError) {
        try self.chip.setOutput(line: self.line, requestID: self.requestID, value: value)
    }
}

/// An edge-events line of a ``SimulatedGPIOChip``; the line is freed by ``release()`` or when this handle is
/// deallocated.
private final class SimulatedGPIOEdgeEvents: GPIOEdgeEvents {
    let chip: SimulatedGPIOChip
    let line: UInt32
    let requestID: Int

    init(chip: SimulatedGPIOChip, line: UInt32, requestID: Int) {
        self.chip = chip
        self.line = line
        self.requestID = requestID
    }

    deinit { self.release() }

    func read() async throws(GPIOError) -> Bool {
        try self.chip.level(line: self.line, requestID: self.requestID)
    }

    var edges: AsyncThrowingStream<GPIOEdge, any Error> {
        let (chip, line, requestID) = (self.chip, self.line, self.requestID)
        return AsyncThrowingStream(unfolding: { try await chip.nextEdge(line: line, requestID: requestID) })
    }

    func release() {
        self.chip.releaseRequest(line: self.line, requestID: self.requestID)
    }
}
