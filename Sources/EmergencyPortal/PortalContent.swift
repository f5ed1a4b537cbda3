import Foundation
import KiezboxCore
import Logging
import ReadingStore
import Synchronization

/// Where the portal's snapshot comes from: the store (latest readings, neighbours, bulletin, mode), the
/// configuration (identity, help points) and the announcement desk.
///
/// A snapshot is read at most once per ``maximumAge`` and shared by every request in between: a phone storm after
/// a blackout then costs a few SQLite reads a second, not a few per request. Anything the portal itself changes
/// (a post, an announcement) invalidates it at once, so the person who posted sees their post.
public final class PortalContent: Sendable {
    public let identity: BoxIdentity
    public let settings: PortalSettings
    let store: ReadingStore
    let clients: CaptiveClients
    let announcements: @Sendable (Date) -> [OfficialAnnouncement]
    let logger: Logger
    /// How old a shared snapshot may be.
    public let maximumAge: TimeInterval
    private let cached = Mutex<(snapshot: PortalSnapshot, version: Int, readAt: Date)?>(nil)
    private let versions = Atomic<Int>(0)

    public init(
        identity: BoxIdentity, settings: PortalSettings, store: ReadingStore, clients: CaptiveClients,
        announcements: @escaping @Sendable (Date) -> [OfficialAnnouncement],
        maximumAge: TimeInterval = 2, logger: Logger
    ) {
        self.identity = identity
        self.settings = settings
        self.store = store
        self.clients = clients
        self.announcements = announcements
        self.maximumAge = maximumAge
        self.logger = logger
    }

    /// Marks the snapshot stale: the next request reads a new one.
    public func invalidate() {
        self.cached.withLock { $0 = nil }
    }

    /// The snapshot at `now`, with a version number that changes whenever a new one was read (for page caches).
    public func snapshot(at now: Date) -> (snapshot: PortalSnapshot, version: Int) {
        if let current = self.cached.withLock({ $0 }), now.timeIntervalSince(current.readAt) < self.maximumAge,
            now >= current.readAt
        {
            return (current.snapshot, current.version)
        }
        let snapshot = self.read(at: now)
        let version = self.versions.add(1, ordering: .relaxed).newValue
        self.cached.withLock { $0 = (snapshot, version, now) }
        return (snapshot, version)
    }

    /// How many of the newest posts a snapshot carries: the front page shows at most ``InfoPage/postsOnPage`` of
    /// them and skips any too large for its byte budget, so a few spare ones.
    static let newestPosts = 4 * InfoPage.postsOnPage

    private func read(at now: Date) -> PortalSnapshot {
        // A store that cannot be read right now must not take the portal down: show what is known.
        func attempt<T>(_ what: String, _ fallback: T, _ body: () throws -> T) -> T {
            do { return try body() } catch {
                self.logger.warning("portal could not read \(what)", metadata: ["error": "\(error)"])
                return fallback
            }
        }
        let latest = attempt("latest readings", []) { try self.store.latest() }
        return PortalSnapshot(
            identity: self.identity,
            mode: attempt("mode", .normal) { try self.store.mode() },
            now: now,
            latest: latest,
            power: PowerSummary(latest: latest, battery: self.settings.battery),
            neighbours: attempt("neighbours", []) { try self.store.neighbours() },
            announcements: self.announcements(now),
            helpPoints: self.settings.helpPoints,
            bulletin: attempt("bulletin", []) { try self.store.openBulletinPosts(at: now, limit: Self.newestPosts) },
            bulletinCounts: attempt("bulletin counts", []) { try self.store.bulletinCounts(at: now) },
            clientCount: self.clients.count(seenWithin: 3600, at: now)
        )
    }
}

/// The battery chemistries whose charge the portal can estimate from the resting voltage.
public enum BatteryChemistry: String, Sendable, Hashable, CaseIterable {
    /// 12 V lead-acid / AGM (six cells).
    case leadAcid12V = "lead-acid-12v"
    /// 12.8 V LiFePO4 (four cells).
    case lifepo4_12V = "lifepo4-12v"

    /// (volts, percent) points of the resting-voltage curve, rising. Published typical values for the chemistry;
    /// under load or while charging the estimate is rough, and the page says "about".
    var curve: [(Double, Double)] {
        switch self {
        case .leadAcid12V:
            [(11.31, 10), (11.58, 20), (11.75, 30), (11.90, 40), (12.06, 50), (12.20, 60), (12.32, 70), (12.42, 80), (12.50, 90), (12.70, 100)]
        case .lifepo4_12V:
            [(10.0, 0), (12.0, 9), (12.5, 14), (12.8, 17), (12.9, 20), (13.0, 30), (13.1, 40), (13.2, 70), (13.3, 90), (13.4, 99), (13.6, 100)]
        }
    }

    /// The estimated state of charge at `volts`, 0…100.
    public func percent(atVolts volts: Double) -> Double {
        let curve = self.curve
        guard let first = curve.first, let last = curve.last else { return 0 }
        if volts <= first.0 { return volts < first.0 - 0.5 ? 0 : first.1 * max(0, (volts - (first.0 - 0.5)) / 0.5) }
        if volts >= last.0 { return last.1 }
        for (low, high) in zip(curve, curve.dropFirst()) where volts <= high.0 {
            return low.1 + (high.1 - low.1) * (volts - low.0) / (high.0 - low.0)
        }
        return last.1
    }
}

extension PowerSummary {
    /// The power facts in this box's latest readings: mains from the mains-fail input, the battery's voltage and
    /// power from the power monitor, its charge from a `battery_level` reading or estimated from the voltage.
    init(latest: [StoredReading], battery: BatteryChemistry) {
        func value(_ quantity: Quantity) -> Double? { latest.first { $0.reading.quantity == quantity }?.reading.value }
        let volts = value(.voltage)
        self.init(
            mainsPresent: value(.mainsPresent).map { $0 >= 0.5 },
            batteryVolts: volts,
            batteryPercent: value(.batteryLevel) ?? volts.map { battery.percent(atVolts: $0) },
            watts: value(.power)
        )
    }
}
