import EmergencyPortal
import Foundation
import KiezboxCore
import ReadingStore

/// Snapshots for the feed tests: a box in the Wrangelkiez at lat 52.4996, lon 13.4318 (the two differ, so a
/// swapped coordinate order shows), its neighbours, posts and announcements.
enum FeedFixtures {
    /// 2025-06-01T12:30:00Z.
    static let now = Date(timeIntervalSince1970: 1_748_781_000)

    static let position = GeoPosition(latitude: 52.4996, longitude: 13.4318, altitude: 36)

    static let identity = BoxIdentity(
        district: "friedrichshain-kreuzberg", boxID: "wrangelkiez-01", name: "Kiezbox Wrangelstraße", position: position
    )

    /// Appears only in posts' free text and place: its presence in a public response would be a leak.
    static let marker = "ZEBRA7731MARKER"

    /// Text that breaks naive JSON or XML writers.
    static let hostileText = "\"Hilfe\" </script><script>alert('x')</script> & <b>fett</b> ]]> a\\b \t tab\nnew line 🚒👩‍🚒 ä"

    static let neighbours = [
        NeighbourBox(
            identity: BoxIdentity(
                district: "friedrichshain-kreuzberg", boxID: "reichenberger-02", name: "Kiezbox Reichenberger",
                position: GeoPosition(latitude: 52.4978, longitude: 13.4280)
            ),
            online: true, mode: .crisis, batteryVolts: 12.6, lastSeen: now.addingTimeInterval(-30), path: "mqtt://broker.kiez:1883"
        ),
        NeighbourBox(
            identity: BoxIdentity(district: "neukoelln", boxID: "reuter-01", name: "Kiezbox Reuterplatz", position: nil),
            online: false, mode: nil, batteryVolts: nil, lastSeen: now.addingTimeInterval(-3600), path: "mesh"
        ),
    ]

    static let posts = [
        BulletinPost(
            id: 7, kind: .request, category: .medical, text: "Insulin gebraucht \(marker)", place: "Wrangelstr. 12 \(marker)",
            createdAt: now.addingTimeInterval(-600), expiresAt: now.addingTimeInterval(6 * 3600)
        ),
        BulletinPost(
            id: 6, kind: .request, category: .medical, text: "Rollstuhl, 3. OG, Aufzug steht \(marker)", place: "",
            createdAt: now.addingTimeInterval(-900), expiresAt: now.addingTimeInterval(5 * 3600)
        ),
        BulletinPost(
            id: 5, kind: .request, category: .water, text: "Wasser für 4 Personen \(marker)", place: "Falckensteinstr.",
            createdAt: now.addingTimeInterval(-1200), expiresAt: now.addingTimeInterval(4 * 3600)
        ),
        BulletinPost(
            id: 4, kind: .offer, category: .power, text: "Powerbank laden bei mir \(marker)", place: "Cuvrystr. \(marker)",
            createdAt: now.addingTimeInterval(-1500), expiresAt: now.addingTimeInterval(3 * 3600)
        ),
        BulletinPost(
            id: 3, kind: .safe, category: nil, text: "Familie Yılmaz ist wohlauf \(marker)", place: "",
            createdAt: now.addingTimeInterval(-1800), expiresAt: now.addingTimeInterval(24 * 3600)
        ),
    ]

    /// Requests relayed from other boxes: from a neighbour with a position, from one without, and from a box this
    /// box has not heard of (ids 11, 12, 13).
    static let relayedPosts = [
        ("friedrichshain-kreuzberg/reichenberger-02", Int64(11)), ("neukoelln/reuter-01", 12), ("xhain/unheard-09", 13),
    ].map { origin, id in
        BulletinPost(
            id: id, kind: .request, category: .food, text: "Essen gebraucht \(id)", place: "", createdAt: now.addingTimeInterval(-60),
            expiresAt: now.addingTimeInterval(3600), origin: origin)
    }

    static let announcements = [
        OfficialAnnouncement(
            id: "ba-fk-2025-017", issuer: "Bezirksamt Friedrichshain-Kreuzberg", severity: .severe,
            headline: ["de": "Stromausfall im Wrangelkiez", "en": "Power cut in the Wrangelkiez"],
            body: [
                "de": "Trinkwasser gibt es an der Pumpe Wrangelstraße 50. Notruf über die Kiezbox.",
                "en": "Drinking water at the pump, Wrangelstraße 50. Emergency calls via the Kiezbox.",
            ],
            issuedAt: now.addingTimeInterval(-7200), expiresAt: now.addingTimeInterval(86400)
        ),
        OfficialAnnouncement(
            id: "bf-2025-003", issuer: "Berliner Feuerwehr", severity: .minor,
            headline: ["de": "Leuchtturm Görlitzer Park geöffnet"], body: ["de": "Täglich 8–20 Uhr."],
            issuedAt: now.addingTimeInterval(-3600), expiresAt: now.addingTimeInterval(43200)
        ),
    ]

    static let latest = [
        StoredReading(id: 101, reading: Reading(sensorID: "climate", quantity: .temperature, value: 21.5, measuredAt: now.addingTimeInterval(-90))),
        StoredReading(
            id: 102, reading: Reading(sensorID: "pm-balcony", quantity: .pm2_5, value: 8.25, measuredAt: now.addingTimeInterval(-300), quality: .degraded)
        ),
    ]

    static func snapshot(
        mode: Mode = .crisis, identity: BoxIdentity = identity, latest: [StoredReading] = latest,
        neighbours: [NeighbourBox] = neighbours, announcements: [OfficialAnnouncement] = announcements,
        helpPoints: [HelpPoint] = [HelpPoint(name: "Leuchtturm Görlitzer Park", address: "Görlitzer Str. 1", offers: ["Trinkwasser", "Notruf"], position: GeoPosition(latitude: 52.4965, longitude: 13.4370))],
        bulletin: [BulletinPost] = posts, clientCount: Int = 17
    ) -> PortalSnapshot {
        PortalSnapshot(
            identity: identity, mode: mode, now: now, latest: latest,
            power: PowerSummary(mainsPresent: false, batteryVolts: 12.4, batteryPercent: 71, watts: 6.5),
            neighbours: neighbours, announcements: announcements, helpPoints: helpPoints, bulletin: bulletin,
            clientCount: clientCount
        )
    }

    /// A box that has just been set up: no position, nothing measured, nobody around, nothing to report.
    static func emptySnapshot(mode: Mode = .normal) -> PortalSnapshot {
        snapshot(
            mode: mode, identity: BoxIdentity(district: "neukoelln", boxID: "new-box", name: "Neue Kiezbox"), latest: [],
            neighbours: [], announcements: [], helpPoints: [], bulletin: [], clientCount: 0
        )
    }

    /// The repository root, found from this file's path (Tests/EmergencyPortalTests/FeedFixtures.swift).
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
}
