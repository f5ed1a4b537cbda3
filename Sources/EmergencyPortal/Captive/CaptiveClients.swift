import Foundation
import Synchronization

/// Which phones have seen the portal and acknowledged it, by address.
///
/// A new client is captive: every probe is redirected to the portal so its sign-in sheet opens. Once the person
/// taps "continue" on the info page, the client is acknowledged for ``acknowledgementLifetime`` and its probes
/// get the exact "online" answers, so the phone stays on the emergency Wi-Fi without nagging. Clients are known by
/// their address: on the box's own access point that is the phone (the DHCP lease holds it stable).
public final class CaptiveClients: Sendable {
    struct Client {
        var firstSeen: Date
        var lastSeen: Date
        var acknowledgedUntil: Date?
    }

    /// How long an acknowledgement holds.
    public let acknowledgementLifetime: TimeInterval
    /// At most this many clients are remembered; beyond it the longest unseen are forgotten (a forgotten client
    /// sees the sign-in sheet once more, nothing worse).
    public let capacity: Int
    private let clients = Mutex<[String: Client]>([:])

    public init(acknowledgementLifetime: TimeInterval = 12 * 3600, capacity: Int = 4096) {
        self.acknowledgementLifetime = acknowledgementLifetime
        self.capacity = capacity
    }

    /// Notes that `address` made a request at `now`; returns whether it is acknowledged.
    @discardableResult
    public func seen(_ address: String, at now: Date) -> Bool {
        self.clients.withLock { clients in
            if clients[address] == nil, clients.count >= self.capacity {
                Self.forgetOldest(&clients, keeping: self.capacity * 3 / 4)
            }
            var client = clients[address] ?? Client(firstSeen: now, lastSeen: now, acknowledgedUntil: nil)
            client.lastSeen = now
            clients[address] = client
            return client.acknowledgedUntil.map { $0 > now } ?? false
        }
    }

    /// The person at `address` has read the portal and wants to carry on.
    public func acknowledge(_ address: String, at now: Date) {
        self.clients.withLock { clients in
            var client = clients[address] ?? Client(firstSeen: now, lastSeen: now, acknowledgedUntil: nil)
            client.lastSeen = now
            client.acknowledgedUntil = now.addingTimeInterval(self.acknowledgementLifetime)
            clients[address] = client
        }
    }

    /// Whether `address` is acknowledged at `now`.
    public func isAcknowledged(_ address: String, at now: Date) -> Bool {
        self.clients.withLock { $0[address]?.acknowledgedUntil.map { $0 > now } ?? false }
    }

    /// Clients seen within `window` before `now`: the "phones on the portal" figure of the situation feed.
    public func count(seenWithin window: TimeInterval, at now: Date) -> Int {
        let since = now.addingTimeInterval(-window)
        return self.clients.withLock { $0.values.count { $0.lastSeen >= since } }
    }

    private static func forgetOldest(_ clients: inout [String: Client], keeping: Int) {
        let keep = clients.sorted { $0.value.lastSeen > $1.value.lastSeen }.prefix(keeping)
        clients = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
    }
}
