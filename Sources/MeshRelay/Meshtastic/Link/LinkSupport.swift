#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import KiezboxCore

/// The link's view of its clock: offsets since the link was made, so deadlines are absolute (a heartbeat due at
/// 300 s fires when the clock passes 300 s, however late its task went to sleep), plus the wall-clock date.
struct LinkTimeline: Sendable {
    let now: @Sendable () -> Duration
    let sleepUntil: @Sendable (Duration) async throws -> Void
    let date: @Sendable () -> Date

    init<C: KiezboxClock>(_ clock: C) {
        let origin = clock.now
        self.now = { origin.duration(to: clock.now) }
        self.sleepUntil = { offset in try await clock.sleep(until: origin.advanced(by: offset), tolerance: nil) }
        self.date = { clock.currentDate() }
    }
}

/// One-shot answers that may arrive before or after someone waits for them: a slot is registered first, then an
/// answer and a waiter meet in it in either order, and the first answer wins.
struct AnswerSlots<Key: Hashable, Value> {
    private enum Slot {
        case pending
        case waiting(CheckedContinuation<Value, Never>)
        case answered(Value)
    }

    private var slots: [Key: Slot] = [:]

    func contains(_ key: Key) -> Bool { self.slots[key] != nil }

    mutating func register(_ key: Key) { self.slots[key] = .pending }

    /// The answer to resume `continuation` with now, or nil when it was parked until the answer comes.
    mutating func attach(_ key: Key, _ continuation: CheckedContinuation<Value, Never>) -> Value? {
        switch self.slots[key] {
        case .answered(let value)?:
            self.slots[key] = nil
            return value
        case .pending?:
            self.slots[key] = .waiting(continuation)
            return nil
        case .waiting?, nil:
            // Not registered (a bug) or attached twice: never leave a waiter hanging.
            preconditionFailure("answer slot attached without registration")
        }
    }

    /// Records `value` as the answer; returns the waiter to resume with it (outside any lock), if one is parked.
    mutating func answer(_ key: Key, _ value: Value) -> CheckedContinuation<Value, Never>? {
        switch self.slots[key] {
        case .pending?:
            self.slots[key] = .answered(value)
            return nil
        case .waiting(let continuation)?:
            self.slots[key] = nil
            return continuation
        case .answered?, nil:
            return nil
        }
    }

    /// Every registered key.
    var registeredKeys: [Key] { Array(self.slots.keys) }

    /// Forgets a slot nobody will wait for.
    mutating func remove(_ key: Key) { self.slots[key] = nil }
}

/// Serialises whole frames onto one transport: the read loop (a new handshake), the heartbeat and any number of
/// senders write, and a frame must never be interleaved with another.
actor MeshtasticFrameWriter {
    let transport: any MeshtasticTransport
    private var busy = false
    private var queued: [CheckedContinuation<Void, Never>] = []

    init(_ transport: any MeshtasticTransport) {
        self.transport = transport
    }

    func write(_ bytes: [UInt8]) async throws(MeshtasticTransportError) {
        while self.busy {
            await withCheckedContinuation { self.queued.append($0) }
        }
        self.busy = true
        defer {
            self.busy = false
            if !self.queued.isEmpty { self.queued.removeFirst().resume() }
        }
        try await self.transport.write(bytes)
    }
}
