import EmergencyPortal
import Foundation
import ReadingStore
import Testing

/// The info page in a real browser at phone size with JavaScript off, as a neighbour's phone shows it.
///
/// The pages are rendered to files and loaded as `file://` URLs; ``pageURL(for:)`` is the one place to point the
/// test at the live portal instead.
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

    @Test("360x640, no JavaScript: banner, direction and forms in the rendered DOM; screenshots kept", arguments: PortalLanguage.allCases)
    func renderedPage(language: PortalLanguage) async throws {
        let browser = try HeadlessChromium.installed()
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = try Self.pageURL(for: language, in: folder)
        let strings = PortalStrings.forLanguage(language)

        let dom = try await browser.dumpDOM(url: url)
        #expect(dom.contains("<html lang=\"\(language.code)\" dir=\"\(language.isRightToLeft ? "rtl" : "ltr")\">"))
        #expect(dom.contains("role=\"alert\" id=\"crisis\"><h2>\(strings.crisisHeading)</h2>"))
        #expect(!dom.lowercased().contains("<script"))
        #expect(dom.components(separatedBy: "<form method=\"post\" action=\"/bulletin\"").count - 1 == 3)
        for kind in BulletinKind.allCases {
            #expect(dom.contains("name=\"kind\" value=\"\(kind.rawValue)\""))
            #expect(dom.contains("<textarea id=\"\(kind.rawValue)-text\" name=\"text\""))
            #expect(dom.contains("<input id=\"\(kind.rawValue)-place\" name=\"place\""))
        }
        #expect(dom.components(separatedBy: "name=\"category\"").count - 1 == 2)
        #expect(dom.components(separatedBy: "name=\"token\" value=\"\(InfoPageFixtures.form.token)\"").count - 1 == 3)

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
