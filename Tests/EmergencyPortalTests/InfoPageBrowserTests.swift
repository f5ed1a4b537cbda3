import EmergencyPortal
import Foundation
import KiezboxCore
import ReadingStore
import Testing

/// The info page in a real browser at phone size with JavaScript off, as a neighbour's phone shows it.
///
/// The main test loads the page from the live portal over HTTP, as a phone does; the renderer's own fixture page
/// is also loaded as a `file://` URL.
@Suite("Info page in headless Chromium")
struct InfoPageBrowserTests {
    /// Where the browser loads the page for `language`.
    static func pageURL(for language: PortalLanguage, in folder: URL) throws -> URL {
        let html = InfoPage.render(
            snapshot: InfoPageFixtures.crisis(language: language), language: language, form: InfoPageFixtures.form,
            portalURL: InfoPageFixtures.portalURL)
        let file = folder.appendingPathComponent("info-page-\(language.code).html")
        try Data(html.utf8).write(to: file)
        return file
    }

    static func temporaryFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("info-page-browser-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    @Test("The browser really runs with JavaScript off (a script that would change the DOM does not)")
    func javaScriptIsOff() async throws {
        let browser = try HeadlessChromium.installed()
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let probe = folder.appendingPathComponent("probe.html")
        try Data(
            """
            <!DOCTYPE html><html><body><p id="p">static</p>\
            <script>document.getElementById("p").textContent = "script ran";</script></body></html>
            """.utf8
        ).write(to: probe)
        let withScripts = try await HeadlessChromium(javaScriptEnabled: true).dumpDOM(url: probe)
        // The control: the same browser with scripts on runs the script, so the probe can tell.
        #expect(withScripts.contains("<p id=\"p\">script ran</p>"))
        let withoutScripts = try await browser.dumpDOM(url: probe)
        #expect(withoutScripts.contains("<p id=\"p\">static</p>"))
        #expect(!withoutScripts.contains("<p id=\"p\">script ran</p>"))
    }

    /// Puts the running portal's box into a crisis with help points, readings, an official announcement and posts.
    static func prepareCrisis(_ portal: RunningPortal) async throws {
        let now = portal.clock.now
        try await portal.store.setMode(.crisis)
        try await portal.store.record([
            Reading(sensorID: "climate", quantity: .temperature, value: 33.5, measuredAt: now.addingTimeInterval(-120)),
            Reading(sensorID: "climate", quantity: .relativeHumidity, value: 48, measuredAt: now.addingTimeInterval(-120)),
            Reading(sensorID: "particulates", quantity: .pm2_5, value: 41, measuredAt: now.addingTimeInterval(-300)),
            Reading(sensorID: "battery", quantity: .voltage, value: 12.31, measuredAt: now.addingTimeInterval(-10)),
            Reading(sensorID: "mains", quantity: .mainsPresent, value: 0, measuredAt: now.addingTimeInterval(-10)),
        ])
        _ = try await portal.store.flush()
        let posts: [(BulletinKind, BulletinCategory?, String)] = [
            (.request, .water, "Wir brauchen Trinkwasser für 4 Personen, 3. OG links"),
            (.offer, .power, "Powerbank und Solarpanel im Hof, kommt vorbei"),
            (.safe, nil, "Familie Yılmaz: alle wohlauf"),
            (.request, .medical, "<script>alert(1)</script> Insulin gesucht"),
        ]
        for (kind, category, text) in posts {
            _ = try await portal.store.addBulletinPost(
                kind: kind, category: category, text: text, place: "Wrangelstraße", createdAt: now, expiresAt: now.addingTimeInterval(3600))
        }
    }

    @Test("the live portal at 360x640, no JavaScript: banner, direction and forms in the rendered DOM; screenshots kept", arguments: PortalLanguage.allCases)
    func renderedPage(language: PortalLanguage) async throws {
        let browser = try HeadlessChromium.installed()
        let settings = RunningPortal.settings {
            $0.helpPoints = [
                HelpPoint(
                    name: "Kat-Leuchtturm Rathaus Kreuzberg", address: "Yorckstraße 4-11", offers: ["Erste Hilfe", "Trinkwasser", "Notruf"],
                    position: GeoPosition(latitude: 52.4927, longitude: 13.3889))
            ]
        }
        try await withRunningPortal(settings: settings) { portal in
            try await Self.prepareCrisis(portal)
            // The box's own address is the portal, as a phone reaches it after the redirect.
            let url = try #require(URL(string: "http://127.0.0.1:\(portal.port)/?lang=\(language.code)"))
            let strings = PortalStrings.forLanguage(language)

            let dom = try await browser.dumpDOM(url: url)
            #expect(dom.contains("<html lang=\"\(language.code)\" dir=\"\(language.isRightToLeft ? "rtl" : "ltr")\">"))
            #expect(dom.contains("role=\"alert\" id=\"crisis\"><h2>\(strings.crisisHeading)</h2>"))
            #expect(!dom.lowercased().contains("<script"))
            #expect(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt; Insulin gesucht"))
            #expect(dom.contains("Kat-Leuchtturm Rathaus Kreuzberg"))
            #expect(dom.components(separatedBy: "<form method=\"post\" action=\"/bulletin\"").count - 1 == 3)
            for kind in BulletinKind.allCases {
                #expect(dom.contains("name=\"kind\" value=\"\(kind.rawValue)\""))
                #expect(dom.contains("<textarea id=\"\(kind.rawValue)-text\" name=\"text\""))
                #expect(dom.contains("<input id=\"\(kind.rawValue)-place\" name=\"place\""))
            }
            #expect(dom.components(separatedBy: "name=\"category\"").count - 1 == 2)
            // Every form carries this phone's token (32 characters of base64url), and the acknowledge form is there.
            #expect(dom.components(separatedBy: "name=\"token\" value=\"").dropFirst().filter { $0.prefix(33).last == "\"" }.count == 3)
            #expect(dom.contains("action=\"/acknowledge?lang=\(language.code)\""))

            let artefacts = try TestArtefacts.folder()
            let screen = artefacts.appendingPathComponent("info-page-\(language.code).png")
            try await browser.screenshot(url: url, to: screen)
            // The whole page at phone width, for a person reviewing the layout.
            let full = artefacts.appendingPathComponent("info-page-\(language.code)-full.png")
            try await HeadlessChromium(height: 6000).screenshot(url: url, to: full)
            for file in [screen, full] {
                let png = try Data(contentsOf: file)
                #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "\(file.lastPathComponent) is not a PNG")
                // Width from the IHDR chunk: the page was laid out 360 px wide.
                let width = png.dropFirst(16).prefix(4).reduce(0) { $0 << 8 | Int($1) }
                #expect(width == 360)
                Attachment.record(png, named: file.lastPathComponent)
            }
        }
    }

    /// The crisis fixture with `text` as the newest post.
    static func pageWithNewestPost(_ text: String) -> String {
        var snapshot = InfoPageFixtures.crisis(language: .de, posts: 3, postLength: 60)
        snapshot.bulletin[0].text = text
        return InfoPage.render(snapshot: snapshot, language: .de, form: InfoPageFixtures.form, portalURL: InfoPageFixtures.portalURL)
    }

    @Test("a Zalgo post paints nothing over the help points and forms: the screenshot above the post list is unchanged")
    func zalgoPostStaysInItsBox() async throws {
        _ = try HeadlessChromium.installed()
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // Marks stacked up and down on every letter, as stored by a box before the limits (a post's text is shown
        // as stored, so rendering must contain it whatever it is).
        let marks = (0..<40).map { Unicode.Scalar(0x0300 + UInt32($0 % 0x70))! } + (0..<40).map { Unicode.Scalar(0x0316 + UInt32($0 % 10))! }
        let zalgo = String(String.UnicodeScalarView("HILFE HILFE".unicodeScalars.flatMap { [$0] + ($0 == " " ? [] : marks) }))
        let plain = "HILFE HILFE"
        let zalgoFile = folder.appendingPathComponent("zalgo.html")
        let plainFile = folder.appendingPathComponent("plain.html")
        try Data(Self.pageWithNewestPost(zalgo).utf8).write(to: zalgoFile)
        try Data(Self.pageWithNewestPost(plain).utf8).write(to: plainFile)

        // Where the post list begins, measured by a script in a copy of the page for the test only (the page
        // itself has none): the top of the first post's box, in CSS pixels. `--dump-dom` lays the page out at
        // least 500 pixels wide whatever the window size, so the copy is held to the screenshots' 360.
        let measuring = folder.appendingPathComponent("measure.html")
        try Data(
            Self.pageWithNewestPost(plain).replacingOccurrences(of: "</head>", with: "<style>html{width:360px}</style></head>").replacingOccurrences(
                of: "</body>",
                with: "<script>document.body.setAttribute('data-top', String(Math.floor(document.querySelector('#posts ~ ul > li').getBoundingClientRect().top + window.scrollY)));</script></body>"
            ).utf8
        ).write(to: measuring)
        let dom = try await HeadlessChromium(javaScriptEnabled: true).dumpDOM(url: measuring)
        let top = try #require(dom.components(separatedBy: "data-top=\"").dropFirst().first?.prefix { $0.isNumber }).description
        let postsTop = try #require(Int(top))
        #expect(postsTop > 400, "the post list starts at \(postsTop) px, below the help points and forms")

        // Screenshots of everything above the first post: identical whether that post is plain or Zalgo.
        let above = HeadlessChromium(height: postsTop)
        let zalgoShot = folder.appendingPathComponent("zalgo.png")
        let plainShot = folder.appendingPathComponent("plain.png")
        try await above.screenshot(url: zalgoFile, to: zalgoShot)
        try await above.screenshot(url: plainFile, to: plainShot)
        let zalgoPNG = try Data(contentsOf: zalgoShot)
        let plainPNG = try Data(contentsOf: plainShot)
        let artefacts = try TestArtefacts.folder()
        try zalgoPNG.write(to: artefacts.appendingPathComponent("zalgo-above-posts.png"))
        try plainPNG.write(to: artefacts.appendingPathComponent("plain-above-posts.png"))
        // The control: the whole page does differ, so the browser did draw the marks.
        let whole = HeadlessChromium(height: postsTop + 400)
        try await whole.screenshot(url: zalgoFile, to: zalgoShot)
        try await whole.screenshot(url: plainFile, to: plainShot)
        #expect(try Data(contentsOf: zalgoShot) != Data(contentsOf: plainShot))
        #expect(zalgoPNG == plainPNG, "the Zalgo post changed pixels above the post list (see .build/test-artefacts/zalgo-above-posts.png)")
    }

    @Test("the rendered fixture page in the browser matches what the renderer promises (offline, file://)")
    func fixturePage() async throws {
        let browser = try HeadlessChromium.installed()
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let dom = try await browser.dumpDOM(url: try Self.pageURL(for: .ar, in: folder))
        #expect(dom.contains("<html lang=\"ar\" dir=\"rtl\">"))
        #expect(dom.components(separatedBy: "name=\"token\" value=\"\(InfoPageFixtures.form.token)\"").count - 1 == 3)
    }
}

/// Files a test keeps for people to look at: `.build/test-artefacts/` in the package.
enum TestArtefacts {
    static func folder() throws -> URL {
        // This file is Tests/EmergencyPortalTests/InfoPageBrowserTests.swift.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let folder = root.appendingPathComponent(".build/test-artefacts")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }
}
