import KiezboxCore
import Logging
import ReadingStore
import ServiceLifecycle
import Synchronization

/// What the store tells the status line, read in the notify service's store round trip.
struct StoreFacts: Sendable, Hashable {
    var mode: Mode
    /// Committed readings the furthest-behind uplink has still to deliver; `nil` without uplinks.
    var backlog: Int64?

    /// The daemon's round trip: the writer answers (no write is stuck), then the mode and the backlog are read.
    static func roundTrip(to store: ReadingStore) async throws -> StoreFacts {
        try await store.probeWriter()
        return StoreFacts(mode: try store.mode(), backlog: try store.uplinkProgress().map(\.undelivered).max())
    }
}

/// Keeps systemd informed (`Type=notify`): `READY=1` once the services run, a one-line `STATUS=`, `WATCHDOG=1`
/// while the daemon is healthy by its own measure, and `STOPPING=1` when it shuts down.
///
/// READY waits for the ``startup`` milestones: the sampler has started every sensor loop, and the portal has made
/// its first attempt to listen (successful or not: a box that cannot serve the portal still samples). The store
/// is open before any service runs, and READY goes out with the first status line, after a store round trip.
///
/// Healthy means: every sensor loop came round within ``samplerMargin`` of its schedule, and the store's round
/// trip (the writer answering, then the mode and backlog) has not been outstanding for longer than
/// ``storeMargin``. Otherwise the watchdog ping is withheld, so systemd restarts a daemon that hangs.
///
/// Listed last in the service group, so it is the first to hear of a graceful shutdown and sends STOPPING=1
/// before the others stop.
struct SystemdNotifyService<C: KiezboxClock>: Service where C.Instant: Sendable {
    let notifier: SystemdNotifier
    let clock: C
    let heartbeat: SamplerHeartbeat<C.Instant>
    /// What has to have happened before READY=1.
    let startup: [Milestone]
    /// The portal's state for the status line; `nil` when the portal is off.
    let portal: PortalListening?
    /// Returns when the store answers (never while it is stuck) with what the status line shows.
    let storeRoundTrip: @Sendable () async throws -> StoreFacts
    let logger: Logger
    /// How often the store is asked and the status line recomputed (and resent when it changed).
    var statusInterval: Duration = .seconds(10)
    /// How late a sensor loop may be before it counts as hung: a particulate sensor's read spins its fan up for
    /// 30 s and more.
    var samplerMargin: Duration = .seconds(120)
    /// How long the store round trip may be outstanding before the store counts as hung.
    var storeMargin: Duration = .seconds(20)

    func run() async throws {
        let state = NotifyState<C.Instant>()
        await cancelWhenGracefulShutdown {
            for milestone in self.startup { await milestone.reached() }
            guard !Task.isCancelled else { return }
            await withDiscardingTaskGroup { group in
                group.addTask { await self.reportStatus(state) }
                group.addTask { await self.pingWatchdog(state) }
            }
        }
        self.send(["STOPPING=1"])
        self.logger.debug("told systemd the daemon is stopping")
    }

    /// Every ``statusInterval``: the store round trip, then the status line when it changed (READY=1 with the
    /// first one).
    private func reportStatus(_ state: NotifyState<C.Instant>) async {
        var deadline = self.clock.now
        var storeFailing = false
        while !Task.isCancelled {
            state.storeRoundBegan(at: self.clock.now)
            do {
                let facts = try await abandoningOnCancellation(self.storeRoundTrip)
                state.storeAnswered(facts)
                if storeFailing { self.logger.notice("the store answers the status round trip again") }
                storeFailing = false
            } catch {
                if Task.isCancelled { return }
                state.storeAnswered(nil)
                if !storeFailing { self.logger.warning("the store's status round trip failed", metadata: ["error": "\(error)"]) }
                storeFailing = true
            }
            if let status = state.statusToSend(self.statusLine(state)) {
                let first = !state.ready.isReached
                self.send((first ? ["READY=1"] : []) + ["STATUS=" + status])
                if first {
                    // Only now may the watchdog ping: READY=1 comes first.
                    state.ready.reach()
                    self.logger.info("told systemd the daemon is ready", metadata: ["status": "\(status)"])
                }
            }
            deadline = self.next(after: deadline, every: self.statusInterval)
            do { try await self.clock.sleep(until: deadline, tolerance: nil) } catch { return }
        }
    }

    /// Every half watchdog timeout (sd_watchdog_enabled(3)): WATCHDOG=1 if healthy; otherwise nothing, the
    /// reason logged once and shown in the status line.
    private func pingWatchdog(_ state: NotifyState<C.Instant>) async {
        guard let timeout = self.notifier.watchdogTimeout else { return }
        await state.ready.reached()
        let interval = timeout / 2
        var deadline = self.clock.now
        var withheldFor: Set<String> = []
        while !Task.isCancelled {
            let problems = self.healthProblems(state, at: self.clock.now)
            if problems.isEmpty {
                self.send(["WATCHDOG=1"])
                if !withheldFor.isEmpty { self.logger.notice("the daemon is healthy again; watchdog pings resume") }
            } else if Set(problems.keys) != withheldFor {
                self.logger.error(
                    "withholding the systemd watchdog ping: systemd restarts the daemon unless it recovers",
                    metadata: ["problems": "\(problems.values.sorted().joined(separator: "; "))"]
                )
                if let status = state.statusToSend(self.statusLine(state)) { self.send(["STATUS=" + status]) }
            }
            withheldFor = Set(problems.keys)
            deadline = self.next(after: deadline, every: interval)
            do { try await self.clock.sleep(until: deadline, tolerance: nil) } catch { return }
        }
    }

    /// What is hung, by name, with a description: empty when the daemon is healthy.
    private func healthProblems(_ state: NotifyState<C.Instant>, at now: C.Instant) -> [String: String] {
        var problems: [String: String] = [:]
        for sensor in self.heartbeat.hung(at: now, margin: self.samplerMargin) {
            problems["sensor " + sensor.id] = "sensor \(sensor.id)'s round has not ended \(format(sensor.roundDue.duration(to: now))) after it began"
        }
        if let since = state.storeRoundOutstanding(at: now, longerThan: self.storeMargin) {
            problems["store"] = "the store has not answered for \(format(since.duration(to: now)))"
        }
        return problems
    }

    /// `crisis · sensors 7/8 ok (rain failing) · backlog 1234 · portal :80`
    private func statusLine(_ state: NotifyState<C.Instant>) -> String {
        let now = self.clock.now
        let hung = Set(self.heartbeat.hung(at: now, margin: self.samplerMargin).map(\.id))
        let facts = state.facts
        var parts = [facts?.mode.rawValue ?? "mode unknown"]
        parts.append(Self.sensorSummary(self.heartbeat.snapshot, hung: hung))
        if let backlog = facts?.backlog { parts.append("backlog \(backlog)") }
        parts.append(self.portal.map { $0.summary } ?? "portal off")
        if state.storeRoundOutstanding(at: now, longerThan: self.storeMargin) != nil { parts.append("store not answering") }
        return parts.joined(separator: " · ")
    }

    static func sensorSummary(_ sensors: [SamplerHeartbeat<C.Instant>.Sensor], hung: Set<String>) -> String {
        guard !sensors.isEmpty else { return "no sensors" }
        let ok = sensors.filter { $0.outcome == .ok && !hung.contains($0.id) }.count
        var notes = sensors.compactMap { sensor -> String? in
            if hung.contains(sensor.id) { return "\(sensor.id) hung" }
            return sensor.outcome == .failing ? "\(sensor.id) failing" : nil
        }
        let starting = sensors.filter { $0.outcome == .starting && !hung.contains($0.id) }.count
        if starting > 0 { notes.append("\(starting) starting") }
        return "sensors \(ok)/\(sensors.count) ok" + (notes.isEmpty ? "" : " (\(notes.joined(separator: ", ")))")
    }

    /// The next deadline on a fixed cadence; slots already past are skipped rather than sent in a burst.
    private func next(after deadline: C.Instant, every interval: Duration) -> C.Instant {
        let next = deadline.advanced(by: interval)
        let now = self.clock.now
        return next < now ? now : next
    }

    /// Sends; a failure is logged, never thrown: systemd's absence must not stop the box.
    private func send(_ assignments: [String]) {
        do {
            try self.notifier.send(assignments)
        } catch {
            self.logger.warning("could not notify systemd", metadata: ["error": "\(error)", "message": "\(assignments.joined(separator: " "))"])
        }
    }
}

/// What the notify service's two loops share.
private final class NotifyState<Instant: InstantProtocol & Sendable>: Sendable where Instant.Duration == Duration {
    private struct State {
        var facts: StoreFacts?
        var storeRoundSince: Instant?
        var lastStatus: String?
    }

    private let state = Mutex(State())
    /// Reached when READY=1 has been sent (by the status loop, the only one to send it): the watchdog pings only
    /// after it.
    let ready = Milestone()

    var facts: StoreFacts? { self.state.withLock { $0.facts } }

    func storeRoundBegan(at now: Instant) { self.state.withLock { $0.storeRoundSince = now } }

    /// The round trip ended: with the store's facts, or with `nil` when it failed (the last known facts stay).
    func storeAnswered(_ facts: StoreFacts?) {
        self.state.withLock { state in
            state.storeRoundSince = nil
            if let facts { state.facts = facts }
        }
    }

    /// When the outstanding store round trip began, if it has been outstanding for longer than `margin`.
    func storeRoundOutstanding(at now: Instant, longerThan margin: Duration) -> Instant? {
        self.state.withLock { state in
            state.storeRoundSince.flatMap { $0.advanced(by: margin) < now ? $0 : nil }
        }
    }

    /// `status` if it differs from the last one sent (and is now the last one sent), else `nil`.
    func statusToSend(_ status: String) -> String? {
        self.state.withLock { state in
            guard state.lastStatus != status else { return nil }
            state.lastStatus = status
            return status
        }
    }
}

/// Runs `operation` in a task of its own and waits for it; when the caller is cancelled, returns at once
/// (throwing `CancellationError`) even if the operation ignores cancellation, as a SQLite call stuck on a dead
/// SD card does. The operation is then left to end on its own.
func abandoningOnCancellation<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    let (results, continuation) = AsyncStream.makeStream(of: Result<T, any Error>.self)
    let task = Task {
        do {
            continuation.yield(.success(try await operation()))
        } catch {
            continuation.yield(.failure(error))
        }
        continuation.finish()
    }
    return try await withTaskCancellationHandler {
        for await result in results { return try result.get() }
        throw CancellationError()
    } onCancel: {
        task.cancel()
    }
}
