import Foundation
import KiezboxCore
import KiezboxTestSupport
import ReadingStore
import Testing

@testable import EmergencyPortal

/// A heavy-rain warning that starts, rises, is lowered and ends, as the warning service records it.
enum BoxWarningFixtures {
    static let start = FeedFixtures.now

    static func rainBook() -> WarningBook {
        var book = WarningBook()
        var thresholds = WarningThresholds()
        thresholds.calmAfter = 600
        let steps: [(minute: Double, oneHour: Double, sixHours: Double)] = [
            (0, 16, 16), (10, 26, 26), (20, 41, 41), (30, 20, 41), (40, 10, 41), (60, 0, 10), (70, 0, 5),
        ]
        for step in steps {
            book.evaluate(
                WarningObservation(perceivedCelsius: 20, rainOneHour: step.oneHour, rainSixHours: step.sixHours),
                thresholds: thresholds, at: start + step.minute * 60)
        }
        return book
    }

    /// The ended rain warning and, a minute after its Cancel, an active extreme-heat warning.
    static func rainEndedHeatActiveBook() -> WarningBook {
        var book = rainBook()
        book.evaluate(
            WarningObservation(perceivedCelsius: 39, rainOneHour: 0, rainSixHours: 0), thresholds: WarningThresholds(), at: start + 71 * 60)
        return book
    }
}

@Suite("The box's own warnings: CAP alerts validated by xmllint against the OASIS schema, JSON, portal")
struct BoxWarningFeedTests {
    private let sender = CAPFeed.defaultSender(for: FeedFixtures.identity)
    private let alertPath = "/*[local-name()='alert']"

    private func value(_ path: String, in alert: Data) throws -> String {
        try XMLLint.xpath("string(\(self.alertPath)/\(path))", in: alert)
    }

    @Test("Alert, Update, Update, Update, Cancel: each valid CAP 1.2, each referencing the ones before")
    func capLifecycle() throws {
        let book = BoxWarningFixtures.rainBook()
        let warning = try #require(book.warnings.first)
        #expect(warning.messages.map(\.kind) == [.alert, .update, .update, .update, .cancel])
        #expect(warning.messages.map(\.level) == [1, 2, 3, 2, 2])
        var identifiers: [String] = []
        for message in warning.messages {
            let alert = WarningFeed.alert(warning, message, identity: FeedFixtures.identity, mode: .crisis, sender: self.sender)
            let result = try XMLLint.validateCAP(alert)
            #expect(result.status == 0, "xmllint rejected:\n\(result.output)\n\(String(decoding: alert, as: UTF8.self))")
            #expect(try self.value("*[local-name()='msgType']", in: alert) == message.kind.rawValue)
            #expect(try self.value("*[local-name()='status']", in: alert) == "Actual")
            let identifier = try self.value("*[local-name()='identifier']", in: alert)
            #expect(identifier == WarningFeed.identifier(warning, message, identity: FeedFixtures.identity))
            let references = try self.value("*[local-name()='references']", in: alert)
            #expect(references.split(separator: " ").map { String($0.split(separator: ",")[1]) } == identifiers)
            let info = "*[local-name()='info'][1]"
            #expect(try self.value("\(info)/*[local-name()='category']", in: alert) == "Met")
            #expect(try self.value("\(info)/*[local-name()='event']", in: alert) == "Starkregen")
            #expect(try self.value("\(info)/*[local-name()='certainty']", in: alert) == "Observed")
            let severity = try self.value("\(info)/*[local-name()='severity']", in: alert)
            #expect(severity == (message.kind == .cancel ? "Minor" : ["Moderate", "Severe", "Extreme"][message.level - 1]))
            #expect(try self.value("*[local-name()='info'][2]/*[local-name()='language']", in: alert) == "en-US")
            identifiers.append(identifier)
        }
        #expect(Set(identifiers).count == identifiers.count)
        #expect(identifiers[0].hasPrefix("kiezbox-friedrichshain-kreuzberg-wrangelkiez-01-heavy_rain-20250601T123000-"))
        // Outside a crisis the box is no warning sender: System, as the situation CAP feed.
        let normal = WarningFeed.alert(warning, warning.messages[0], identity: FeedFixtures.identity, mode: .normal, sender: self.sender)
        #expect(try XMLLint.validateCAP(normal).status == 0)
        #expect(try self.value("*[local-name()='status']", in: normal) == "System")
    }

    @Test("strong and extreme heat stress map to Moderate and Severe; event Hitze")
    func heatSeverity() throws {
        var book = WarningBook()
        book.evaluate(WarningObservation(perceivedCelsius: 39, rainOneHour: nil, rainSixHours: nil), thresholds: WarningThresholds(), at: FeedFixtures.now)
        let warning = try #require(book.active.first)
        let alert = WarningFeed.alert(warning, warning.messages[0], identity: FeedFixtures.identity, mode: .crisis, sender: self.sender)
        #expect(try XMLLint.validateCAP(alert).status == 0)
        #expect(try self.value("*[local-name()='info'][1]/*[local-name()='event']", in: alert) == "Hitze")
        #expect(try self.value("*[local-name()='info'][1]/*[local-name()='severity']", in: alert) == "Severe")
        #expect(WarningFeed.severity(.heat, level: 1) == "Moderate")
    }

    @Test("the JSON index names each warning's latest message and where its CAP alert is")
    func jsonIndex() throws {
        let data = WarningFeed.json(BoxWarningFixtures.rainBook(), identity: FeedFixtures.identity, now: FeedFixtures.now)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let warnings = try #require(object["warnings"] as? [[String: Any]])
        #expect(warnings.count == 1)
        #expect(warnings[0]["msg_type"] as? String == "Cancel")
        #expect(warnings[0]["active"] as? Bool == false)
        #expect(warnings[0]["hazard"] as? String == "heavy_rain")
        #expect((warnings[0]["cap"] as? String)?.hasPrefix("/api/v1/warnings/kiezbox-") == true)
    }

    @Test("the info page shows an active warning in every language; an ended one not")
    func infoPage() throws {
        var book = WarningBook()
        book.evaluate(WarningObservation(perceivedCelsius: nil, rainOneHour: 45, rainSixHours: 45), thresholds: WarningThresholds(), at: FeedFixtures.now)
        var snapshot = FeedFixtures.emptySnapshot()
        snapshot.warnings = book
        for language in PortalLanguage.allCases {
            let html = InfoPage.render(snapshot: snapshot, language: language, form: BulletinFormContext(token: "t"), portalURL: "http://kiez.box/")
            let text = PortalStrings.forLanguage(language).boxWarning(.heavyRain, 3)
            #expect(html.contains(text.markupEscaped), "\(language)")
        }
        snapshot.warnings = BoxWarningFixtures.rainBook()
        let html = InfoPage.render(snapshot: snapshot, language: .de, form: BulletinFormContext(token: "t"), portalURL: "http://kiez.box/")
        #expect(!html.contains("Starkregen an der Kiezbox"))
    }

    @Test("the portal serves the index and each message; an unknown identifier is a 404")
    func portalRoutes() async throws {
        try await withRunningPortal { portal in
            try await portal.store.setWarningBook(BoxWarningFixtures.rainBook())
            let index = try await portal.phone().get(WarningFeed.path, host: "kiez.box")
            #expect(index.status == 200)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(index.body)) as? [String: Any])
            let cap = try #require((object["warnings"] as? [[String: Any]])?.first?["cap"] as? String)
            let alert = try await portal.phone().get(cap, host: "kiez.box")
            #expect(alert.status == 200)
            #expect(try XMLLint.validateCAP(Data(alert.body)).status == 0)
            #expect(try self.value("*[local-name()='msgType']", in: Data(alert.body)) == "Cancel")
            #expect(try await portal.phone().get(WarningFeed.path + "/no-such-warning", host: "kiez.box").status == 404)
            // The situation feed over HTTP, without a token: the ended warning is a feature there too.
            let feed = try await portal.phone().get(SituationFeed.path, host: "kiez.box")
            #expect(feed.status == 200)
            let features = try #require((try JSONSerialization.jsonObject(with: Data(feed.body)) as? [String: Any])?["features"] as? [[String: Any]])
            #expect(features.contains { ($0["properties"] as? [String: Any])?["cap"] as? String == cap })
        }
    }

    /// The feeds' snapshot with an ended rain warning and an active heat warning, and the heat warning's latest
    /// message's identifier.
    private func snapshotWithWarnings() throws -> (PortalSnapshot, String) {
        var snapshot = FeedFixtures.snapshot()
        snapshot.warnings = BoxWarningFixtures.rainEndedHeatActiveBook()
        let heat = try #require(snapshot.warnings.active.first)
        return (snapshot, WarningFeed.identifier(heat, try #require(heat.messages.last), identity: FeedFixtures.identity))
    }

    @Test("the situation feed has a feature per warning the box keeps, for everyone, at the box's position with its CAP URL")
    func situationFeedFeatures() throws {
        let (snapshot, heatIdentifier) = try self.snapshotWithWarnings()
        for access in [FeedAccess.public, .authority(name: "Feuerwehr")] {
            let data = SituationFeed.geoJSON(snapshot, access: access)
            let document = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            #expect(RFC7946Checker.violations(in: document) == [])
            let features = try #require(document["features"] as? [[String: Any]])
            let warnings = features.filter { ($0["properties"] as? [String: Any])?["feature"] as? String == "warning" }
            #expect(warnings.count == 2, "\(access)")
            let active = try #require(warnings.first { ($0["properties"] as? [String: Any])?["hazard"] as? String == "heat" })
            #expect(active["id"] as? String == "warning:friedrichshain-kreuzberg/wrangelkiez-01/heat-20250601T134100")
            let coordinates = ((active["geometry"] as? [String: Any])?["coordinates"] as? [Any])?.compactMap(number)
            #expect(coordinates == [13.4318, 52.4996])
            let properties = try #require(active["properties"] as? [String: Any])
            #expect(properties["active"] as? Bool == true)
            #expect(properties["level"].flatMap(number) == 2)
            #expect(properties["severity"] as? String == "Severe")
            #expect(properties["msg_type"] as? String == "Alert")
            #expect(properties["identifier"] as? String == heatIdentifier)
            #expect(properties["cap"] as? String == "/api/v1/warnings/\(heatIdentifier)")
            #expect(properties["perceived_celsius"].flatMap(number) == 39)
            #expect(properties["box"] as? String == "box:friedrichshain-kreuzberg/wrangelkiez-01")
            let ended = try #require(warnings.first { ($0["properties"] as? [String: Any])?["hazard"] as? String == "heavy_rain" })
            let endedProperties = try #require(ended["properties"] as? [String: Any])
            #expect(endedProperties["active"] as? Bool == false)
            #expect(endedProperties["msg_type"] as? String == "Cancel")
        }
    }

    @Test("alerts.cap has an info per active warning and language, category Met, measured values, web to its own CAP message")
    func situationCAPInfos() throws {
        let (snapshot, heatIdentifier) = try self.snapshotWithWarnings()
        for access in [FeedAccess.public, .authority(name: "Feuerwehr")] {
            let alert = CAPFeed.alertsCAP(snapshot, access: access, sender: self.sender)
            let result = try XMLLint.validateCAP(alert)
            #expect(result.status == 0, "xmllint rejected:\n\(result.output)\n\(String(decoding: alert, as: UTF8.self))")
            let met = "*[local-name()='info'][*[local-name()='category']='Met']"
            #expect(try XMLLint.xpath("count(\(self.alertPath)/\(met))", in: alert).trimmingCharacters(in: .whitespacesAndNewlines) == "2")
            #expect(try self.value("\(met)[1]/*[local-name()='event']", in: alert) == "Hitze")
            #expect(try self.value("\(met)[2]/*[local-name()='event']", in: alert) == "Heat")
            #expect(try self.value("\(met)[1]/*[local-name()='severity']", in: alert) == "Severe")
            #expect(try self.value("\(met)[1]/*[local-name()='web']", in: alert) == "/api/v1/warnings/\(heatIdentifier)")
            let perceived = "\(met)[1]/*[local-name()='parameter'][*[local-name()='valueName']='perceived_temperature_celsius']/*[local-name()='value']"
            #expect(try self.value(perceived, in: alert) == "39")
            #expect(try self.value("*[local-name()='note']", in: alert).contains("1 active warning"))
        }
    }

    @Test("every message expires; a warning that lasts is refreshed by an Update before its last message expires")
    func expiryAndRefresh() throws {
        var book = WarningBook()
        let thresholds = WarningThresholds()
        let start = BoxWarningFixtures.start
        // Strong heat stress for 30 hours, evaluated once a minute, then gone for the calm time.
        for minute in stride(from: 0, to: 30 * 60, by: 1) {
            book.evaluate(WarningObservation(perceivedCelsius: 33, rainOneHour: nil, rainSixHours: nil), thresholds: thresholds, at: start + Double(minute) * 60)
        }
        for minute in stride(from: 30 * 60, through: 31 * 60 + 30, by: 1) {
            book.evaluate(WarningObservation(perceivedCelsius: 20, rainOneHour: nil, rainSixHours: nil), thresholds: thresholds, at: start + Double(minute) * 60)
        }
        let warning = try #require(book.warnings.first)
        #expect(warning.messages.map(\.kind) == [.alert, .update, .update, .cancel])
        #expect(warning.messages.map(\.level) == [1, 1, 1, 1])
        #expect(warning.messages.map { $0.sent.timeIntervalSince(start) / 3600 } == [0, 12, 24, 31])
        for message in warning.messages where message.kind != .cancel {
            #expect(message.expires == message.sent + thresholds.expiresAfter)
        }
        // No gap: each message is still valid when the next one comes.
        for (earlier, later) in zip(warning.messages, warning.messages.dropFirst()) {
            #expect(try #require(earlier.expires) > later.sent)
        }
        let cancel = try #require(warning.messages.last)
        #expect(cancel.expires == cancel.sent + thresholds.cancelKept)
        for message in warning.messages {
            let alert = WarningFeed.alert(warning, message, identity: FeedFixtures.identity, mode: .crisis, sender: self.sender)
            let result = try XMLLint.validateCAP(alert)
            #expect(result.status == 0, "xmllint rejected:\n\(result.output)\n\(String(decoding: alert, as: UTF8.self))")
            let expires = try self.value("*[local-name()='info'][1]/*[local-name()='expires']", in: alert)
            #expect(expires == CAPText.dateTime(try #require(message.expires)))
        }
        let index = try #require(try JSONSerialization.jsonObject(with: WarningFeed.json(book, identity: FeedFixtures.identity, now: start)) as? [String: Any])
        let entry = try #require((index["warnings"] as? [[String: Any]])?.first)
        #expect(entry["expires"] as? String == "2025-06-02T20:30:00Z")
    }
}
