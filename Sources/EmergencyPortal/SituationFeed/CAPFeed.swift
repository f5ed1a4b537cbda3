import Crypto
import Foundation
import KiezboxCore
import ReadingStore

/// The CAP 1.2 feed (OASIS Common Alerting Protocol): one `<alert>` per request with the official announcements
/// this box carries and its open help requests, for civil-protection systems that speak CAP rather than GeoJSON.
///
/// Decisions a CAP consumer should know:
/// - `status` is `Actual` only in crisis mode. Kiezbox is not an authorised MoWaS sender: outside a crisis it
///   must not put anything actionable into a warning network, so in normal mode the alert is `System` (a
///   heartbeat of the feed, to be disregarded by people) and in maintenance mode `Test` (a resident is working
///   on the box; what it says may be staged).
/// - `msgType` is always `Alert`: each response is a fresh picture of the box, not an edit of an earlier alert,
///   and the feed keeps no history to put into `references`.
/// - `scope` is `Restricted` for an authority (the alert carries residents' own words, which are for civil
///   protection only) and `Public` for everybody else, who get counts per category.
/// - Official announcements keep their issuer as `senderName`; the alert's `sender` is this box, the relay.
/// - The box's own active heat and heavy-rain warnings (docs/warnings.md) are in it for everyone, one `<info>` per
///   warning and language (German, English) as in the warning's own latest CAP message, whose path on this box
///   its `web` names (``WarningFeed/capPath(_:_:identity:)``). Ended warnings are left out.
public enum CAPFeed {
    /// The media type registered for CAP (IETF draft-barnes-atoca-cap-mime); being `+xml` (RFC 7303), clients that
    /// only know XML still treat it as XML, while CAP-aware ones recognise the format.
    public static let mediaType = "application/cap+xml"

    /// The CAP namespace; also the default namespace of the document.
    public static let namespace = "urn:oasis:names:tc:emergency:cap:1.2"

    /// A `sender` for this box when none is configured: `kiezbox.<box>.<district>`, unique as long as box ids are
    /// unique per district, as the mesh topics already require.
    public static func defaultSender(for identity: BoxIdentity) -> String {
        CAPText.token("kiezbox.\(identity.boxID).\(identity.district)")
    }

    /// The alert `status` for the box's mode; see the type's documentation for why.
    public static func status(for mode: Mode) -> String {
        switch mode {
        case .crisis: "Actual"
        case .normal: "System"
        case .maintenance: "Test"
        }
    }

    /// The alert as UTF-8 XML, valid against the OASIS CAP 1.2 schema.
    ///
    /// - Parameters:
    ///   - sender: who sends it; characters CAP forbids there (space, comma, `<`, `&`, …) become `-`.
    ///   - radiusKilometres: the `circle` drawn around the box's position in every `area`: the neighbourhood the
    ///     box serves. Without a position, areas carry only their description.
    ///   - page: for an authority, the page of open posts to carry (help requests first, oldest first; others are
    ///     left out); without one, the snapshot's newest posts.
    public static func alertsCAP(
        _ snapshot: PortalSnapshot, access: FeedAccess, sender: String, radiusKilometres: Double = 1, page: BulletinFeedPage? = nil
    ) -> Data {
        let area = areaElement(snapshot.identity, radiusKilometres: radiusKilometres)
        var infos = snapshot.announcements.flatMap { announcementInfos($0, area: area) }
        infos += snapshot.warnings.active.flatMap { warning in
            warning.messages.last.map { message in
                let web = WarningFeed.capPath(warning, message, identity: snapshot.identity)
                return WarningFeed.infos(warning, message, identity: snapshot.identity, area: area, web: web)
            } ?? []
        }
        let requestCounts = snapshot.bulletinCounts.filter { $0.kind == .request }
        if access.seesPostText {
            let requests = (page?.posts ?? snapshot.bulletin).filter { $0.kind == .request }
            infos += requests.map { post in
                // A relayed request is placed around the box it was typed on when this box knows where that is.
                let origin = snapshot.originBox(of: post)
                return requestInfo(post, snapshot: snapshot, area: origin.map { areaElement($0, radiusKilometres: radiusKilometres) } ?? area, atOrigin: origin != nil)
            }
        } else {
            infos += requestCountInfos(requestCounts, snapshot: snapshot, area: area)
        }
        let requestCount = requestCounts.reduce(0) { $0 + $1.count }

        var body = ""
        body += element("status", status(for: snapshot.mode))
        body += element("msgType", "Alert")
        body += element("source", "\(snapshot.identity.name) (Kiezbox \(snapshot.identity.district)/\(snapshot.identity.boxID))")
        switch access {
        case .authority:
            body += element("scope", "Restricted")
            body += element("restriction", "For civil-protection authorities only: contains residents' own words.")
        case .public:
            body += element("scope", "Public")
        }
        body += element("note", note(snapshot, requestCount: requestCount))
        body += infos.joined()

        let sent = CAPText.dateTime(snapshot.now)
        // Same picture, same identifier; a different picture within the same second still gets its own.
        let digest = SHA256.hash(data: Data((sent + body).utf8)).prefix(6).map { String(format: "%02x", $0) }.joined()
        let identifier = CAPText.token(
            "kiezbox-\(snapshot.identity.district)-\(snapshot.identity.boxID)-\(CAPText.compactDateTime(snapshot.now))-\(digest)"
        )

        var document = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        document += "<alert xmlns=\"\(namespace)\">\n"
        document += element("identifier", identifier)
        document += element("sender", CAPText.token(sender))
        document += element("sent", sent)
        document += body
        document += "</alert>\n"
        return Data(document.utf8)
    }

    // MARK: - Official announcements

    /// One `<info>` per language the announcement is written in, German first (the box's home language), then
    /// the others alphabetically.
    private static func announcementInfos(_ announcement: OfficialAnnouncement, area: String) -> [String] {
        let languages = Set(announcement.headline.keys).union(announcement.body.keys).sorted { lhs, rhs in
            (lhs == "de" ? 0 : 1, lhs) < (rhs == "de" ? 0 : 1, rhs)
        }
        return languages.map { key in
            let language = CAPText.language(key)
            var info = ""
            info += element("language", language)
            info += element("category", "Safety")
            info += element("event", language.hasPrefix("de") ? "Amtliche Mitteilung" : "Official announcement")
            // Kiezbox relays the issuer's words; it cannot judge how soon or how certain, so it does not pretend to.
            info += element("urgency", "Unknown")
            info += element("severity", capSeverity(announcement.severity))
            info += element("certainty", "Unknown")
            info += element("effective", CAPText.dateTime(announcement.issuedAt))
            info += element("expires", CAPText.dateTime(announcement.expiresAt))
            info += element("senderName", announcement.issuer)
            if let headline = announcement.headline[key] { info += element("headline", headline) }
            if let body = announcement.body[key] { info += element("description", body) }
            info += parameter("announcement_id", announcement.id)
            info += area
            return wrap("info", info)
        }
    }

    private static func capSeverity(_ severity: AnnouncementSeverity) -> String {
        switch severity {
        case .extreme: "Extreme"
        case .severe: "Severe"
        case .moderate: "Moderate"
        case .minor: "Minor"
        case .unknown: "Unknown"
        }
    }

    // MARK: - Help requests

    /// A request in full, for an authority. The box cannot tell which language a resident wrote in; the frame
    /// around the text is German, so the info says de-DE.
    private static func requestInfo(_ post: BulletinPost, snapshot: PortalSnapshot, area: String, atOrigin: Bool) -> String {
        let category = post.category ?? .other
        var description = post.text
        if !post.place.isEmpty { description += "\n\nOrt: \(post.place)" }
        var info = ""
        info += element("language", "de-DE")
        info += element("category", capCategory(category))
        info += element("event", "Hilfeersuchen: \(germanName(category))")
        info += element("urgency", urgency(category))
        // A resident's unverified report: neither its severity nor its certainty is known.
        info += element("severity", "Unknown")
        info += element("certainty", "Unknown")
        info += element("effective", CAPText.dateTime(post.createdAt))
        info += element("expires", CAPText.dateTime(post.expiresAt))
        if let origin = post.origin {
            info += element("senderName", "\(origin) über \(snapshot.identity.name)")
        } else {
            info += element("senderName", "Anwohnende über \(snapshot.identity.name)")
        }
        info += element("headline", "Hilfeersuchen (\(germanName(category))) bei \(snapshot.identity.name)")
        info += element("description", description)
        info += parameter("bulletin_post_id", String(post.id))
        if let origin = post.origin { info += parameter("origin", origin) }
        info += parameter("position_of", atOrigin ? "origin_box" : "this_box")
        info += area
        return wrap("info", info)
    }

    /// Counts only, one `<info>` per category with open requests, for anyone without a token.
    private static func requestCountInfos(_ counts: [BulletinCount], snapshot: PortalSnapshot, area: String) -> [String] {
        let byCategory = Dictionary(grouping: counts) { $0.category ?? .other }
        return BulletinCategory.allCases.compactMap { category in
            guard let counts = byCategory[category] else { return nil }
            let count = counts.reduce(0) { $0 + $1.count }
            let lastExpiry = counts.compactMap(\.latestExpiry).max() ?? snapshot.now
            let noun = count == 1 ? "offenes Hilfeersuchen" : "offene Hilfeersuchen"
            var info = ""
            info += element("language", "de-DE")
            info += element("category", capCategory(category))
            info += element("event", "Hilfeersuchen: \(germanName(category))")
            info += element("urgency", urgency(category))
            info += element("severity", "Unknown")
            info += element("certainty", "Unknown")
            info += element("effective", CAPText.dateTime(snapshot.now))
            info += element("expires", CAPText.dateTime(lastExpiry))
            info += element("senderName", snapshot.identity.name)
            info += element("headline", "\(count) \(noun) (\(germanName(category))) bei \(snapshot.identity.name)")
            info += element(
                "description",
                "\(count) \(noun) der Kategorie \(germanName(category)) am Schwarzen Brett der Kiezbox. "
                    + "Einzelheiten nur für Behörden mit Zugangsschlüssel."
            )
            info += parameter("request_count", String(count))
            info += area
            return wrap("info", info)
        }
    }

    /// CAP's category for a bulletin category: water and power supply are infrastructure; food and the rest have
    /// no CAP counterpart.
    private static func capCategory(_ category: BulletinCategory) -> String {
        switch category {
        case .medical: "Health"
        case .fire: "Fire"
        case .water, .power: "Infra"
        case .food, .other: "Other"
        }
    }

    /// A medical or fire request needs someone now; the others can be planned for.
    private static func urgency(_ category: BulletinCategory) -> String {
        switch category {
        case .medical, .fire: "Immediate"
        case .food, .water, .power, .other: "Expected"
        }
    }

    private static func germanName(_ category: BulletinCategory) -> String {
        switch category {
        case .medical: "Medizin"
        case .fire: "Feuer"
        case .food: "Lebensmittel"
        case .water: "Wasser"
        case .power: "Strom"
        case .other: "Sonstiges"
        }
    }

    // MARK: - Shared parts

    private static func note(_ snapshot: PortalSnapshot, requestCount: Int) -> String {
        "\(snapshot.identity.name), mode \(snapshot.mode.rawValue): "
            + "\(snapshot.announcements.count) official announcement(s), \(snapshot.warnings.active.count) active warning(s), "
            + "\(requestCount) open help request(s)."
    }

    /// The box's neighbourhood: its name and, when it has a position, a circle ("lat,lon radius", latitude first
    /// as CAP wants, unlike GeoJSON).
    private static func areaElement(_ identity: BoxIdentity, radiusKilometres: Double) -> String {
        wrap("area", areaContent(identity, radiusKilometres: radiusKilometres))
    }

    /// What goes inside `<area>`: the description and, with a position, the circle.
    static func areaContent(_ identity: BoxIdentity, radiusKilometres: Double) -> String {
        var area = element("areaDesc", "Umgebung von \(identity.name) (\(identity.district))")
        if let position = identity.position, position.isValid {
            let radius = radiusKilometres.isFinite && radiusKilometres > 0 ? radiusKilometres : 1
            area += element(
                "circle", "\(CAPText.decimal(position.latitude)),\(CAPText.decimal(position.longitude)) \(CAPText.decimal(radius))"
            )
        }
        return area
    }

    static func parameter(_ name: String, _ value: String) -> String {
        wrap("parameter", element("valueName", name) + element("value", value))
    }

    static func element(_ name: String, _ text: String) -> String {
        "<\(name)>\(text.markupEscaped)</\(name)>\n"
    }

    static func wrap(_ name: String, _ content: String) -> String {
        "<\(name)>\n\(content)</\(name)>\n"
    }
}
