import Foundation
import KiezboxCore
import KiezboxTestSupport
import ReadingStore
import Testing

@testable import EmergencyPortal

#if canImport(FoundationXML)
import FoundationXML
#endif

@Suite("Info page rendering")
struct InfoPageTests {
    static func page(_ snapshot: PortalSnapshot, _ language: PortalLanguage, outcome: BulletinOutcome? = nil, all: Bool = false) -> String {
        InfoPage.render(
            snapshot: snapshot, language: language, form: BulletinFormContext(token: InfoPageFixtures.form.token, outcome: outcome),
            portalURL: InfoPageFixtures.portalURL, showAllPosts: all)
    }

    static func document(_ html: String) throws -> XMLDocument {
        try XMLDocument(data: Data(html.utf8), options: [.nodePreserveWhitespace])
    }

    static func nodes(_ document: XMLDocument, _ xpath: String) throws -> [XMLNode] {
        try document.nodes(forXPath: xpath)
    }

    @Test("The largest realistic crisis page fits the first 14 KB in every language", arguments: PortalLanguage.allCases)
    func sizeBudget(language: PortalLanguage) throws {
        let html = Self.page(InfoPageFixtures.crisis(language: language), language)
        if ProcessInfo.processInfo.environment["INFO_PAGE_DUMP"] != nil {
            try Data(html.utf8).write(to: URL(fileURLWithPath: "/tmp/info-page-\(language.code).html"))
        }
        #expect(html.utf8.count <= InfoPage.byteBudget, "\(language): \(html.utf8.count) bytes")
        let shown = try Self.nodes(Self.document(html), "//section[@id='bulletin']//li").count
        // Even when every post is as long as allowed, in a two-byte script, the newest posts are on the page.
        #expect(shown >= 2, "\(language): only \(shown) posts fit")
        // Posts of a typical length (120 characters): at least four fit, three in two-byte scripts (Arabic,
        // Ukrainian: 2 bytes a letter), with the acknowledge button the captive-portal flow needs.
        let typical = Self.page(InfoPageFixtures.crisis(language: language, postLength: 120), language)
        #expect(typical.utf8.count <= InfoPage.byteBudget)
        let typicalShown = try Self.nodes(Self.document(typical), "//section[@id='bulletin']//li").count
        #expect(typicalShown >= ([.ar, .uk].contains(language) ? 3 : 4), "\(language): only \(typicalShown) typical posts fit")
        #expect(html.contains("all=1#posts"))
        let all = Self.page(InfoPageFixtures.crisis(language: language), language, all: true)
        #expect(try Self.nodes(Self.document(all), "//section[@id='bulletin']//li").count == 20)
    }

    @Test("A neighbour's text is shown as text, never as markup")
    func escaping() throws {
        var snapshot = InfoPageFixtures.crisis(language: .en, posts: 0)
        let hostile = "<script>alert(1)</script> & \"onmouseover=alert(2) x='y'"
        snapshot.bulletin = [
            BulletinPost(
                id: 1, kind: .request, category: .other, text: hostile, place: "\"><img src=x onerror=alert(3)>\u{7}",
                createdAt: snapshot.now, expiresAt: snapshot.now + 3600)
        ]
        snapshot.helpPoints[0].name = "<b>bold</b>"
        snapshot.announcements[0].issuer = "Amt \"X\" & <Y>"
        let html = Self.page(snapshot, .en)
        #expect(!html.lowercased().contains("<script"))
        #expect(!html.contains("<img"))
        #expect(!html.contains("<b>bold"))
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;onmouseover=alert(2) x=&#39;y&#39;"))
        #expect(!html.contains("\u{7}"))
        // Parsed, the post's text comes back exactly as typed, as one text node.
        let document = try Self.document(html)
        let texts = try Self.nodes(document, "//section[@id='bulletin']//li/p[@class='t']").map { $0.stringValue ?? "" }
        #expect(texts == [hostile])
        #expect(try Self.nodes(document, "//*[@onmouseover or @onerror]").isEmpty)
    }

    @Test("html lang and dir: right to left only for Arabic", arguments: PortalLanguage.allCases)
    func direction(language: PortalLanguage) {
        let html = Self.page(InfoPageFixtures.normal(), language)
        let expected = "<html lang=\"\(language.code)\" dir=\"\(language == .ar ? "rtl" : "ltr")\">"
        #expect(html.contains(expected))
        #expect(html.contains("<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"/>"))
    }

    @Test("Three forms to POST /bulletin, each field labelled, with the right names; one to acknowledge", arguments: PortalLanguage.allCases)
    func forms(language: PortalLanguage) throws {
        let document = try Self.document(Self.page(InfoPageFixtures.crisis(language: language), language))
        let forms = try Self.nodes(document, "//form[@action='/bulletin']")
        #expect(forms.count == 3)
        #expect(try Self.nodes(document, "//form[@action='/acknowledge?lang=\(language.code)']//button").count == 1)
        for (form, kind) in zip(forms, BulletinKind.allCases) {
            let element = try #require(form as? XMLElement)
            #expect(element.attribute(forName: "method")?.stringValue == "post")
            #expect(element.attribute(forName: "action")?.stringValue == "/bulletin")
            func value(_ name: String) throws -> String? {
                try form.nodes(forXPath: ".//input[@name='\(name)']/@value").first?.stringValue
            }
            #expect(try value("kind") == kind.rawValue)
            #expect(try value("lang") == language.code)
            #expect(try value("token") == InfoPageFixtures.form.token)
            let text = try #require(try form.nodes(forXPath: ".//textarea[@name='text']").first as? XMLElement)
            #expect(text.attribute(forName: "maxlength")?.stringValue == "280")
            let place = try #require(try form.nodes(forXPath: ".//input[@name='place']").first as? XMLElement)
            #expect(place.attribute(forName: "maxlength")?.stringValue == "80")
            let categories = try form.nodes(forXPath: ".//select[@name='category']/option/@value").compactMap(\.stringValue)
            #expect(categories == (kind == .safe ? [] : BulletinCategory.allCases.map(\.rawValue)))
            // Every visible field has a label pointing at it.
            let fields = try form.nodes(forXPath: ".//textarea|.//select|.//input[not(@type='hidden')]")
            let labelled = Set(try form.nodes(forXPath: ".//label/@for").compactMap(\.stringValue))
            for field in fields {
                let id = (field as? XMLElement)?.attribute(forName: "id")?.stringValue ?? ""
                #expect(labelled.contains(id), "\(kind): field \(field.name ?? "?") has no label")
            }
            #expect(try form.nodes(forXPath: ".//button").count == 1)  // a button submits by default
        }
        let privacy = PortalStrings.forLanguage(language).bulletinPrivacy
        #expect(try Self.nodes(document, "//section[@id='bulletin']/p").contains { $0.stringValue == privacy })
    }

    @Test("Crisis banner in crisis, a calm note otherwise", arguments: PortalLanguage.allCases)
    func modeBanner(language: PortalLanguage) throws {
        let strings = PortalStrings.forLanguage(language)
        let crisis = try Self.document(Self.page(InfoPageFixtures.crisis(language: language), language))
        let banner = try Self.nodes(crisis, "//*[@role='alert' and @id='crisis']")
        #expect(banner.count == 1)
        #expect(banner.first?.stringValue?.contains(strings.crisisHeading) == true)
        #expect(banner.first?.stringValue?.contains(strings.emergencyCall) == true)
        let normal = Self.page(InfoPageFixtures.normal(), language)
        #expect(!normal.contains("role=\"alert\""))
        #expect(normal.contains(strings.normalText.markupEscaped))
        #expect(normal.contains(strings.emergencyCall.markupEscaped))
        var maintenance = InfoPageFixtures.normal()
        maintenance.mode = .maintenance
        #expect(Self.page(maintenance, language).contains(strings.maintenanceText.markupEscaped))
    }

    @Test("The outcome of the last post is shown in the reader's language")
    func outcomes() throws {
        for language in PortalLanguage.allCases {
            let strings = PortalStrings.forLanguage(language)
            let posted = try Self.document(Self.page(InfoPageFixtures.normal(), language, outcome: .posted))
            #expect(try Self.nodes(posted, "//*[@id='outcome' and @role='status']").first?.stringValue == strings.posted)
            for refusal in BulletinRefusal.allCases {
                let page = try Self.document(Self.page(InfoPageFixtures.normal(), language, outcome: .refused(refusal)))
                #expect(try Self.nodes(page, "//*[@id='outcome' and @role='alert']").first?.stringValue == strings.refusal(refusal))
            }
        }
        #expect(!Self.page(InfoPageFixtures.normal(), .de).contains("id=\"outcome\""))
    }

    @Test("Outcomes travel through the redirect as one query value")
    func outcomeQueryValues() {
        let all = [BulletinOutcome.posted] + BulletinRefusal.allCases.map(BulletinOutcome.refused)
        for outcome in all {
            #expect(BulletinOutcome(queryValue: outcome.queryValue) == outcome)
        }
        #expect(all.map(\.queryValue) == ["posted", "tooLong", "empty", "rateLimited", "busy", "badToken", "invalid"])
        #expect(BulletinOutcome(queryValue: "<script>") == nil)
        #expect(BulletinOutcome(queryValue: "") == nil)
    }

    @Test("Announcements in the reader's language, else German, else English, marked when falling back")
    func announcementLanguage() throws {
        var snapshot = InfoPageFixtures.normal()
        snapshot.announcements = [
            OfficialAnnouncement(
                id: "1", issuer: "Bezirksamt", severity: .extreme, headline: ["de": "Trinkwasser abkochen", "tr": "Suyu kaynatın"],
                body: ["en": "Boil water before drinking."], issuedAt: snapshot.now - 120, expiresAt: snapshot.now + 3600)
        ]
        let turkish = try Self.document(Self.page(snapshot, .tr))
        #expect(try Self.nodes(turkish, "//article/h3[not(@lang)]").first?.stringValue == "Suyu kaynatın")
        #expect(try Self.nodes(turkish, "//article/p[@lang='en']").first?.stringValue == "Boil water before drinking.")
        let arabic = try Self.document(Self.page(snapshot, .ar))
        #expect(try Self.nodes(arabic, "//article/h3[@lang='de']").first?.stringValue == "Trinkwasser abkochen")
        let meta = try Self.nodes(arabic, "//article/p[@class='m']").first?.stringValue ?? ""
        #expect(meta.contains("خطر شديد جدًا") && meta.contains("Bezirksamt") && meta.contains("13:06"))
        #expect(try Self.nodes(arabic, "//article[@class='x']").count == 1)
    }

    @Test("Help points nearest first with their distance and offers")
    func helpPoints() throws {
        var snapshot = InfoPageFixtures.normal()
        let box = try #require(snapshot.identity.position)
        snapshot.helpPoints = [
            HelpPoint(name: "Far", address: "A", offers: ["Wasser"], position: GeoPosition(latitude: box.latitude + 0.02, longitude: box.longitude)),
            HelpPoint(name: "Unknown", address: "B", offers: [], position: nil),
            HelpPoint(name: "Near", address: "C", offers: ["Strom", "Notruf"], position: GeoPosition(latitude: box.latitude + 0.003, longitude: box.longitude)),
        ]
        let document = try Self.document(Self.page(snapshot, .de))
        let items = try Self.nodes(document, "//section[@id='help']//li").map { $0.stringValue ?? "" }
        #expect(items.count == 3)
        #expect(items[0].hasPrefix("Near 330\u{00A0}m entfernt") && items[0].contains("Strom, Notruf"))
        #expect(items[1].hasPrefix("Far 2,2\u{00A0}km entfernt"))
        #expect(items[2].hasPrefix("Unknown"))
    }

    @Test("Readings with units and age; heat and air warnings in plain words")
    func readingsAndWarnings() throws {
        var snapshot = InfoPageFixtures.normal()
        let now = snapshot.now
        snapshot.latest = [
            (Quantity.temperature, 32.2), (.relativeHumidity, 70), (.pm2_5, 60), (.pm10, 30), (.co2, 420), (.voltage, 12.1),
        ].enumerated().map { index, pair in
            StoredReading(id: Int64(index), reading: Reading(sensorID: "s", quantity: pair.0, value: pair.1, measuredAt: now - 180))
        }
        snapshot.power = PowerSummary(mainsPresent: false, batteryVolts: 12.1, batteryPercent: 55)
        let english = PortalStrings.forLanguage(.en)
        let document = try Self.document(Self.page(snapshot, .en))
        let warnings = try Self.nodes(document, "//section[@id='weather']/p").map { $0.stringValue ?? "" }
        #expect(warnings.contains("feels like 41\u{00A0}°C. " + english.heatWarning(.danger)))
        #expect(warnings.contains("Air quality: very poor. " + english.airQualityAdvice(.veryPoor)!))
        let rows = try Self.nodes(document, "//section[@id='weather']//tr").map { $0.stringValue ?? "" }
        #expect(rows.first == "Temperature32.2\u{00A0}°C")
        #expect(warnings.last == "measured 3 min ago")
        #expect(rows.count == 5)  // the voltage belongs to the power section
        let power = try Self.nodes(document, "//section[@id='power']/p").first?.stringValue
        #expect(power == "Mains power: off (power cut)Box battery: 55\u{00A0}% (12.1\u{00A0}V)")
    }

    @Test("Neighbouring boxes: reachable first, with mode, distance and last contact")
    func neighbourBoxes() throws {
        let snapshot = InfoPageFixtures.crisis(language: .de)
        let items = try Self.nodes(Self.document(Self.page(snapshot, .de)), "//section[@id='boxes']//li").map { $0.stringValue ?? "" }
        #expect(items.count == 5)
        #expect(items.last?.contains("nicht erreichbar") == true)
        #expect(items.first?.contains("erreichbar, Notbetrieb,") == true && items.first?.contains("zuletzt vor 1 Min.") == true)
    }

    @Test("The portal's plain address and the language switcher are plain links")
    func links() throws {
        let document = try Self.document(Self.page(InfoPageFixtures.normal(), .uk))
        #expect(try Self.nodes(document, "//footer//a/@href").first?.stringValue == "http://kiez.box/")
        let switcher = try Self.nodes(document, "//nav/a")
        #expect(switcher.compactMap { ($0 as? XMLElement)?.attribute(forName: "href")?.stringValue } == PortalLanguage.allCases.map { "?lang=\($0.code)" })
        #expect(switcher.map { $0.stringValue ?? "" } == PortalLanguage.allCases.map(\.nativeName))
        #expect(try Self.nodes(document, "//nav/a[@aria-current='page']").first?.stringValue == "Українська")
    }

    @Test("xmllint finds the page well-formed (every element closed) in every language and mode")
    func wellFormed() throws {
        let xmllint = "/usr/bin/xmllint"
        guard FileManager.default.isExecutableFile(atPath: xmllint) else {
            Issue.record("xmllint is missing: apt-get install libxml2-utils (scripts/install-deps.sh tests)")
            return
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("info-page-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var files: [String] = []
        for language in PortalLanguage.allCases {
            for (name, html) in [
                ("crisis", Self.page(InfoPageFixtures.crisis(language: language), language, outcome: .refused(.tooLong))),
                ("normal", Self.page(InfoPageFixtures.normal(), language, outcome: .posted)),
            ] {
                let file = folder.appendingPathComponent("\(language)-\(name).html")
                try Data(html.utf8).write(to: file)
                files.append(file.path)
            }
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: xmllint)
        process.arguments = ["--noout", "--nonet"] + files
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let output = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "xmllint: \(output)")
        #expect(output.isEmpty, "xmllint: \(output)")
    }
}
