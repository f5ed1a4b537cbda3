import EmergencyPortal
import Foundation
import KiezboxCore
import ReadingStore

/// Snapshots for the info page tests: the largest realistic crisis (3 announcements, 6 help points, 12 readings,
/// 5 neighbouring boxes, 20 bulletin posts of 280 characters) in the script of the page's language, because
/// Arabic and Cyrillic letters take two bytes each.
enum InfoPageFixtures {
    static let now = Date(timeIntervalSince1970: 1_795_000_000)  // 2026-11-18, noon in Berlin
    static let box = BoxIdentity(
        district: "friedrichshain-kreuzberg", boxID: "wrangelkiez-01", name: "Kiezbox Wrangelstraße",
        position: GeoPosition(latitude: 52.4996, longitude: 13.4318))

    /// A sentence in each language, repeated to the length a neighbour may write.
    static func neighbourText(_ language: PortalLanguage, length: Int) -> String {
        let sentence =
            switch language {
            case .de: "Wir brauchen Wasser und Windeln für ein Baby im dritten Stock, Hinterhaus links. "
            case .en: "We need water and nappies for a baby on the third floor, rear building on the left. "
            case .tr: "Üçüncü kattaki bebek için su ve bez lazım, arka bina sol taraf, zili çalışmıyor. "
            case .ar: "نحتاج إلى ماء وحفاضات لطفل رضيع في الطابق الثالث، المبنى الخلفي على اليسار. "
            case .uk: "Нам потрібна вода й підгузки для немовляти на третьому поверсі, задній будинок ліворуч. "
            }
        return String(String(repeating: sentence, count: length / sentence.count + 1).prefix(length))
    }

    static func crisis(language: PortalLanguage, posts: Int = 20, postLength: Int = BulletinFormContext.maxTextLength) -> PortalSnapshot {
        var texts: [String: String] = [:]
        var bodies: [String: String] = [:]
        for other in PortalLanguage.allCases {
            texts[other.code] = neighbourText(other, length: 70)
            bodies[other.code] = neighbourText(other, length: 300)
        }
        let announcements = (0..<3).map { index in
            OfficialAnnouncement(
                id: "ba-fk-\(index)", issuer: "Bezirksamt Friedrichshain-Kreuzberg",
                severity: index == 0 ? .severe : .moderate, headline: texts, body: bodies,
                issuedAt: now.addingTimeInterval(Double(-600 * (index + 1))), expiresAt: now.addingTimeInterval(6 * 3600))
        }
        let helpPoints = (0..<6).map { index in
            HelpPoint(
                name: "Katastrophenschutz-Leuchtturm \(index + 1)", address: "Musterstraße \(index + 10), 10997 Berlin",
                offers: ["Notruf", "Trinkwasser", "Strom zum Laden", "Erste Hilfe"],
                position: GeoPosition(latitude: 52.4996 + Double(index) * 0.004, longitude: 13.4318 - Double(index) * 0.003))
        }
        let values: [(String, Quantity, Double)] = [
            ("climate", .temperature, 31.4), ("climate", .relativeHumidity, 58), ("climate", .pressure, 1008),
            ("particulates", .pm1, 8), ("particulates", .pm2_5, 14), ("particulates", .pm4, 17), ("particulates", .pm10, 22),
            ("co2", .co2, 431), ("co2", .temperature, 30.9), ("rain", .rainfall, 0.6), ("rain", .rainIntensity, 0),
            ("battery", .voltage, 12.6),
        ]
        let latest = values.enumerated().map { index, value in
            StoredReading(
                id: Int64(index), reading: Reading(sensorID: value.0, quantity: value.1, value: value.2, measuredAt: now.addingTimeInterval(-200)))
        }
        let neighbours = (0..<5).map { index in
            NeighbourBox(
                identity: BoxIdentity(
                    district: "friedrichshain-kreuzberg", boxID: "box-\(index)", name: "Kiezbox Reichenberger Straße \(index + 1)",
                    position: GeoPosition(latitude: 52.495 + Double(index) * 0.002, longitude: 13.42)),
                online: index != 3, mode: .crisis, batteryVolts: 12.4, lastSeen: now.addingTimeInterval(-90), path: "mesh")
        }
        let text = neighbourText(language, length: postLength)
        let place = neighbourText(language, length: BulletinFormContext.maxPlaceLength)
        let bulletin = (0..<posts).map { (index: Int) -> BulletinPost in
            let kind = BulletinKind.allCases[index % 3]
            let category: BulletinCategory? = kind == .safe ? nil : BulletinCategory.allCases[index % 6]
            let createdAt = now.addingTimeInterval(Double(-300 * index))
            return BulletinPost(
                id: Int64(100 - index), kind: kind, category: category, text: text, place: place, createdAt: createdAt,
                expiresAt: now.addingTimeInterval(86_400))
        }
        return PortalSnapshot(
            identity: box, mode: .crisis, now: now, latest: latest,
            power: PowerSummary(mainsPresent: false, batteryVolts: 12.6, batteryPercent: 78, watts: 4.2),
            neighbours: neighbours, announcements: announcements, helpPoints: helpPoints, bulletin: bulletin, clientCount: 40)
    }

    /// A quiet day: normal mode, nothing posted.
    static func normal() -> PortalSnapshot {
        PortalSnapshot(
            identity: box, mode: .normal, now: now, latest: [], power: PowerSummary(), neighbours: [], announcements: [],
            helpPoints: [], bulletin: [], clientCount: 0)
    }

    static let form = BulletinFormContext(token: "tok3n-AbC_123.xyz")
    static let portalURL = "http://kiez.box/"
}
