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
        let neighbours = attempt("neighbours", []) { try self.store.neighbours() }
        return PortalSnapshot(
            identity: self.identity,
            mode: attempt("mode", .normal) { try self.store.mode() },
            now: now,
            latest: latest,
            power: PowerSummary(
                latest: latest, battery: self.settings.battery,
                model: attempt("power model", nil) { try self.store.batteryRecord() },
                loadShed: attempt("load shedding", nil) { try self.store.loadShedRecord() }, now: now
            ),
            neighbours: neighbours,
            announcements: self.announcements(now),
            helpPoints: self.settings.helpPoints,
            bulletin: Self.nearbyFirst(
                attempt("bulletin", []) { try self.store.openBulletinPosts(at: now, limit: Self.newestPosts) },
                from: self.identity, neighbours: neighbours),
            bulletinCounts: attempt("bulletin counts", []) { try self.store.bulletinCounts(at: now) },
            clientCount: self.clients.count(seenWithin: 3600, at: now),
            warnings: attempt("warnings", WarningBook()) { try self.store.warningBook() }
        )
    }
}

extension PortalContent {
    /// `posts` (newest first) with the nearest first: this box's own, then those of the district's boxes by
    /// their distance from this box (from the position in their status), then those from origins whose place
    /// is not known (a pilot box, a box without a position); newest first within the same distance.
    static func nearbyFirst(_ posts: [BulletinPost], from identity: BoxIdentity, neighbours: [NeighbourBox]) -> [BulletinPost] {
        guard let here = identity.position, posts.contains(where: { $0.origin != nil }) else { return posts }
        var distances: [String: Double] = [:]
        for neighbour in neighbours {
            if let position = neighbour.identity.position {
                distances[neighbour.identity.originName] = here.distance(to: position)
            }
        }
        func distance(_ post: BulletinPost) -> Double {
            guard let origin = post.origin else { return 0 }
            return distances[origin] ?? .infinity
        }
        // Sorting the indices keeps it stable: equal distances stay newest first.
        return posts.indices.sorted { (distance(posts[$0]), $0) < (distance(posts[$1]), $1) }.map { posts[$0] }
    }
}

/// The batteries whose charge the portal can estimate from the voltage when no power model reports one: a
/// chemistry of ``KiezboxCore/BatteryChemistry`` at 12 V, with that chemistry's rested-voltage curve.
public enum PortalBattery: String, Sendable, Hashable, CaseIterable {
    /// 12 V lead-acid / AGM (six cells).
    case leadAcid12V = "lead-acid-12v"
    /// 12.8 V LiFePO4 (four cells).
    case lifepo4_12V = "lifepo4-12v"

    public var chemistry: BatteryChemistry {
        switch self {
        case .leadAcid12V: .leadAcid
        case .lifepo4_12V: .lifePO4
        }
    }

    /// The estimated state of charge at `volts`, 0…100: the rested-voltage curve, so under load or while
    /// charging the estimate is rough, and the page says "about".
    public func percent(atVolts volts: Double) -> Double {
        let chemistry = self.chemistry
        return 100 * chemistry.stateOfCharge(restedVoltsPerCell: volts / Double(chemistry.cellCount(nominalVolts: 12)))
    }
}

extension PowerSummary {
    /// The power model's record counts while it is this fresh; an older one is from a daemon that stopped.
    static let modelFreshness: TimeInterval = 600

    /// The power facts in this box's latest readings: mains from the mains-fail input, the battery's voltage and
    /// power from the power monitor, its charge and hours left from the power model's `model` record when fresh,
    /// else from a `battery_level` reading, else estimated from the voltage.
    init(
        latest: [StoredReading], battery: PortalBattery, model: BatteryRecord? = nil, loadShed: LoadShedRecord? = nil, now: Date = .distantPast
    ) {
        func value(_ quantity: Quantity) -> Double? { latest.first { $0.reading.quantity == quantity }?.reading.value }
        let volts = value(.voltage)
        let estimate = model.flatMap { abs(now.timeIntervalSince($0.at)) <= Self.modelFreshness ? $0.estimate : nil }
        self.init(
            mainsPresent: value(.mainsPresent).map { $0 >= 0.5 },
            batteryVolts: volts,
            batteryPercent: estimate.map { $0.stateOfCharge * 100 } ?? value(.batteryLevel) ?? volts.map { battery.percent(atVolts: $0) },
            watts: value(.power),
            hoursLeft: estimate?.hoursLeft, shedStep: loadShed?.step, shedSteps: loadShed?.steps
        )
    }
}
