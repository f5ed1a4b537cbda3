#if os(Linux)
import Glibc
import Synchronization

/// A POSIX thread of its own for a loop that blocks in system calls (waiting for GPIO edges, reading a serial
/// port), so the blocking never occupies one of the few threads of Swift's cooperative pool.
///
/// The loop is expected to notice on its own when to stop (a flag it checks between bounded waits); ``join()``
/// then waits for it. A thread that was never joined is detached when this object goes away, so it never leaks
/// as a zombie.
final class DedicatedThread: Sendable {
    /// The thread, until it has been joined or detached.
    private let thread: Mutex<pthread_t?>

    /// Starts `body` on a new thread.
    ///
    /// - Throws: the errno `pthread_create` failed with (EAGAIN: out of threads or memory).
    static func start(_ body: @escaping @Sendable () -> Void) throws(ThreadStartError) -> DedicatedThread {
        let context = Unmanaged.passRetained(ThreadContext(body: body))
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { rawContext in
            guard let rawContext else { return nil }
            let context = Unmanaged<ThreadContext>.fromOpaque(rawContext).takeRetainedValue()
            context.body()
            return nil
        }, context.toOpaque())
        guard result == 0 else {
            context.release()
            throw ThreadStartError(errno: result)
        }
        return DedicatedThread(thread)
    }

    private init(_ thread: pthread_t) {
        self.thread = Mutex(thread)
    }

    deinit {
        if let thread = self.thread.withLock({ $0.take() }) { pthread_detach(thread) }
    }

    /// Waits until the thread's body has returned. Later calls return at once. Called on the thread itself, it
    /// detaches instead of deadlocking.
    func join() {
        guard let thread = self.thread.withLock({ $0.take() }) else { return }
        if pthread_equal(thread, pthread_self()) != 0 {
            pthread_detach(thread)
        } else {
            pthread_join(thread, nil)
        }
    }
}

/// Starting a thread failed, with the errno `pthread_create` returned.
struct ThreadStartError: Error {
    var errno: CInt
}

/// What crosses into the new thread: retained by `start` and released by the thread once it has it.
private final class ThreadContext: Sendable {
    let body: @Sendable () -> Void

    init(body: @escaping @Sendable () -> Void) {
        self.body = body
    }
}
#endif
