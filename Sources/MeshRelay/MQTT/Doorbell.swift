import KiezboxCore
import Synchronization

/// Wakes one waiting task; rings from any thread (libmosquitto's network thread included) never block.
///
/// A ring with nobody waiting is remembered (once), so a ring between "check the state" and "wait" is not
/// lost: waiters loop "check, then wait", and every state change they care about rings.
public final class Doorbell: Sendable {
    private struct State {
        var rung = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    public init() {}

    public func ring() {
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.rung = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns after the next ring (or at once if one is pending), or when the task is cancelled.
    public func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = self.state.withLock { state -> Bool in
                    if state.rung || Task.isCancelled {
                        state.rung = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            self.ring()
        }
    }
}

/// A flag set once, readable from any thread.
final class OnceFlag: Sendable {
    private let value = Atomic<Bool>(false)

    func set() { self.value.store(true, ordering: .releasing) }
    var isSet: Bool { self.value.load(ordering: .acquiring) }
}

/// Evaluates `condition` now and after every ring of `doorbell` until it returns a value; gives up (returning
/// `nil`) once `timeout` has passed on `clock` or the task is cancelled.
func awaitCondition<Value>(
    doorbell: Doorbell, timeout: Duration, clock: any KiezboxClock, _ condition: () -> Value?
) async -> Value? {
    let expired = OnceFlag()
    let timer = Task {
        do { try await clock.sleep(for: timeout) } catch { return }
        expired.set()
        doorbell.ring()
    }
    defer { timer.cancel() }
    while true {
        if let value = condition() { return value }
        if expired.isSet || Task.isCancelled { return nil }
        await doorbell.wait()
    }
}
