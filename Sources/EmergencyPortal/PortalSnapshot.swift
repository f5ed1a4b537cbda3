import Foundation
import KiezboxCore
import ReadingStore

/// A place where people get help in a crisis, from the configuration: Berlin's Katastrophenschutz-Leuchttürme,
/// a pharmacy with power, a drinking-water pump.
public struct HelpPoint: Sendable, Hashable, Codable {
    public var name: String
    public var address: String
    /// What is offered there, in the resident's words ("Trinkwasser", "Strom zum Laden", "Notruf").
    public var offers: [String]
    public var position: GeoPosition?

    public init(name: String, address: String, offers: [String], position: GeoPosition?) {
        self.name = name
        self.address = address
        self.offers = offers
        self.position = position
    }
}

/// How serious an official announcement is; the same scale as CAP's `severity`.
public enum AnnouncementSeverity: String, Sendable, Hashable, Codable, CaseIterable {
    case extreme, severe, moderate, minor, unknown
}

/// An announcement whose signature has been checked against a configured authority key: what the portal shows
/// as official and the CAP feed publishes.
public struct OfficialAnnouncement: Sendable, Hashable, Codable {
    /// The issuer's id for it; unique per issuer.
    public var id: String
    /// The configured name of the key that signed it ("Bezirksamt Friedrichshain-Kreuzberg").
    public var issuer: String
    public var severity: AnnouncementSeverity
    /// Headline and text per language code ("de", "en", …); the portal picks the reader's language, else German,
    /// else English, else any.
    public var headline: [String: String]
    public var body: [String: String]
    public var issuedAt: Date
    public var expiresAt: Date
    /// The issuer declares a crisis while this is valid: the box goes into crisis mode.
    public var declaresCrisis: Bool

    public init(
        id: String, issuer: String, severity: AnnouncementSeverity, headline: [String: String], body: [String: String],
        issuedAt: Date, expiresAt: Date, declaresCrisis: Bool = false
    ) {
        self.declaresCrisis = declaresCrisis
        self.id = id
        self.issuer = issuer
        self.severity = severity
        self.headline = headline
        self.body = body
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
    }
}

/// What the box knows about its power, from its latest readings.
public struct PowerSummary: Sendable, Hashable, Codable {
    /// Whether mains power is present (from the mains-fail input), when one is wired.
    public var mainsPresent: Bool?
    public var batteryVolts: Double?
    /// State of charge estimated from the battery voltage, 0…100.
    public var batteryPercent: Double?
    /// Power drawn from the battery, watts, when measured.
    public var watts: Double?
    /// How long the battery lasts at the average draw, from the power model (docs/power.md) when it runs.
    public var hoursLeft: HoursLeft?
    /// The load shedder's step and how many there are (docs/power.md, "Load shedding"), when it runs.
    public var shedStep: Int?
    public var shedSteps: Int?

    public init(
        mainsPresent: Bool? = nil, batteryVolts: Double? = nil, batteryPercent: Double? = nil, watts: Double? = nil,
        hoursLeft: HoursLeft? = nil, shedStep: Int? = nil, shedSteps: Int? = nil
    ) {
        self.shedStep = shedStep
        self.shedSteps = shedSteps
        self.mainsPresent = mainsPresent
        self.batteryVolts = batteryVolts
        self.batteryPercent = batteryPercent
        self.watts = watts
        self.hoursLeft = hoursLeft
    }
}

/// Everything the portal shows at one moment, read once per request from the store and the configuration:
/// the info page, the situation feed and the CAP feed all render from it.
public struct PortalSnapshot: Sendable {
    public var identity: BoxIdentity
    public var mode: Mode
    public var now: Date
    /// This box's newest value per sensor and quantity.
    public var latest: [StoredReading]
    public var power: PowerSummary
    public var neighbours: [NeighbourBox]
    /// Valid, unexpired official announcements, newest first.
    public var announcements: [OfficialAnnouncement]
    public var helpPoints: [HelpPoint]
    /// The newest open (unexpired) bulletin posts, newest first: enough for the front page, not all of them
    /// (`?all=1` and the authorities' feeds page through the store).
    public var bulletin: [BulletinPost]
    /// Every open post counted by kind and category, from the database: no window, however many there are.
    public var bulletinCounts: [BulletinCount]
    /// Phones seen on the portal in the last hour.
    public var clientCount: Int
    /// The box's own heat and heavy-rain warnings, active and recently ended (docs/warnings.md).
    public var warnings: WarningBook

    public init(
        identity: BoxIdentity, mode: Mode, now: Date, latest: [StoredReading], power: PowerSummary,
        neighbours: [NeighbourBox], announcements: [OfficialAnnouncement], helpPoints: [HelpPoint],
        bulletin: [BulletinPost], bulletinCounts: [BulletinCount]? = nil, clientCount: Int, warnings: WarningBook = WarningBook()
    ) {
        self.warnings = warnings
        self.bulletinCounts = BulletinCount.ordered(bulletinCounts ?? BulletinCount.counts(of: bulletin))
        self.identity = identity
        self.mode = mode
        self.now = now
        self.latest = latest
        self.power = power
        self.neighbours = neighbours
        self.announcements = announcements
        self.helpPoints = helpPoints
        self.bulletin = bulletin
        self.clientCount = clientCount
    }
}

extension PortalSnapshot {
    /// How many posts are open.
    public var bulletinTotal: Int { self.bulletinCounts.reduce(0) { $0 + $1.count } }

    /// The box a post relayed from another box was typed on, when the neighbour table knows it with a valid
    /// position (from its retained status); nil for this box's own posts, posts from elsewhere (a pilot box's
    /// button) and origins whose position is unknown: the feeds then place the post at this box.
    public func originBox(of post: BulletinPost) -> BoxIdentity? {
        guard let origin = post.origin else { return nil }
        return self.neighbours.lazy.map(\.identity).first { $0.originName == origin && $0.position?.isValid == true }
    }
}

extension BoxIdentity {
    /// How a post relayed from this box names its origin: `<district>/<box>`.
    var originName: String { "\(self.district)/\(self.boxID)" }
}
