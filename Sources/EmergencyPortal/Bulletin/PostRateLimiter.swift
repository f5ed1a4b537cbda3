import Foundation
import Synchronization

/// How many bulletin posts one client may make: a token bucket per client address, so a neighbour can post a
/// request, an offer and a check-in at once, but nobody can flood the bulletin.
public final class PostRateLimiter: Sendable {
    /// Posts a client may make at once.
    public let burst: Double
    /// Posts a client regains per hour.
    public let perHour: Double
    private let buckets = Mutex<[String: (tokens: Double, updated: Date)]>([:])
    private let capacity: Int

    public init(burst: Int = 3, perHour: Int = 6, capacity: Int = 4096) {
        self.burst = Double(burst)
        self.perHour = Double(perHour)
        self.capacity = capacity
    }

    /// Takes one post from `client`'s allowance at `now`; false when it has none left.
    public func allow(_ client: String, at now: Date) -> Bool {
        self.buckets.withLock { buckets in
            if buckets.count >= self.capacity, buckets[client] == nil {
                // Forget clients whose buckets are full again: they have nothing left to limit.
                buckets = buckets.filter { self.refilled($0.value, at: now) < self.burst }
            }
            var tokens = buckets[client].map { self.refilled($0, at: now) } ?? self.burst
            guard tokens >= 1 else {
                buckets[client] = (tokens, now)
                return false
            }
            tokens -= 1
            buckets[client] = (tokens, now)
            return true
        }
    }

    private func refilled(_ bucket: (tokens: Double, updated: Date), at now: Date) -> Double {
        let hours = max(0, now.timeIntervalSince(bucket.updated)) / 3600
        return min(self.burst, bucket.tokens + hours * self.perHour)
    }
}
