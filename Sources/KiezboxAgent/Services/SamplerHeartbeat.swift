import Synchronization

/// Something that happens once, that tasks can wait for (a service has started).
final class Milestone: Sendable {
    private struct State {
        var reached = false
        var nextToken = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    var isReached: Bool { self.state.withLock { $0.reached } }

    func reach() {
        let waiters = self.state.withLock { state in
            state.reached = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the milestone is reached, or at once when the task is cancelled.
    func reached() async {
        let token = self.state.withLock { state in
            state.nextToken += 1
            return state.nextToken
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = self.state.withLock { state in
                    if state.reached || Task.isCancelled { return true }
                    state.waiters[token] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            self.state.withLock { $0.waiters.removeValue(forKey: token) }?.resume()
        }
    }
}

/// What each of the sampler's sensor loops last did and when it is due back: the watchdog's evidence that the
/// sampler is alive, and the systemd status line's sensor count.
///
/// A loop records, before it sleeps, when its next round begins. A round that has not come back by then plus a
/// margin is hung: a driver that never returns, or a store that blocks the hand-over of readings.
final class SamplerHeartbeat<Instant: InstantProtocol & Sendable>: Sendable {
    enum Outcome: Sendable, Hashable {
        /// Not read yet.
        case starting
        case ok
        case failing
    }

    struct Sensor: Sendable, Hashable {
        var id: String
        var outcome: Outcome
        /// When the loop's current round began, or its next one will.
        var roundDue: Instant
    }

    private let sensors = Mutex<[Sensor]>([])
    /// Reached when the sampler has started every sensor's loop.
    let started = Milestone()

    /// The sampler is running, with these sensors' first rounds due at the given instants.
    func start(_ sensors: [(id: String, firstRound: Instant)]) {
        self.sensors.withLock { $0 = sensors.map { Sensor(id: $0.id, outcome: .starting, roundDue: $0.firstRound) } }
        self.started.reach()
    }

    /// A round ended with `outcome`; the next is due at `nextRound`.
    func beat(_ sensor: String, outcome: Outcome, nextRound: Instant) {
        self.sensors.withLock { sensors in
            guard let index = sensors.firstIndex(where: { $0.id == sensor }) else { return }
            sensors[index].outcome = outcome
            sensors[index].roundDue = nextRound
        }
    }

    var snapshot: [Sensor] { self.sensors.withLock { $0 } }

    /// The sensors whose round began more than `margin` before `now` and has not ended: hung.
    func hung(at now: Instant, margin: Duration) -> [Sensor] where Instant.Duration == Duration {
        self.snapshot.filter { $0.roundDue.advanced(by: margin) < now }
    }
}
