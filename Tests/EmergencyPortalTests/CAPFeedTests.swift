import EmergencyPortal
import Foundation
import KiezboxCore
import KiezboxTestSupport
import ReadingStore
import Testing

@Suite("CAP 1.2 feed, validated by xmllint against the OASIS schema")
struct CAPFeedTests {
    private let sender = "kiezbox.wrangelkiez-01.friedrichshain-kreuzberg"

    /// The alert, after xmllint has accepted it against the schema.
    private func validAlert(_ snapshot: PortalSnapshot, access: FeedAccess, sender: String? = nil) throws -> Data {
        let alert = CAPFeed.alertsCAP(snapshot, access: access, sender: sender ?? self.sender)
        let result = try XMLLint.validateCAP(alert)
        #expect(result.status == 0, "xmllint rejected the alert:\n\(result.output)\n\(String(decoding: alert, as: UTF8.self))")
        return alert
    }

    private func value(_ element: String, in alert: Data) throws -> String {
        try XMLLint.xpath("string(/*[local-name()='alert']/*[local-name()='\(element)'])", in: alert)
    }

    private func count(_ path: String, in alert: Data) throws -> Int {
        Int(try XMLLint.xpath("count(\(path))", in: alert).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    private let info = "/*[local-name()='alert']/*[local-name()='info']"

    @Test("an empty box in normal mode: a valid System alert without info")
    func emptyBox() throws {
        let alert = try validAlert(FeedFixtures.emptySnapshot(), access: .public)
        #expect(try value("status", in: alert) == "System")
        #expect(try value("msgType", in: alert) == "Alert")
        #expect(try value("scope", in: alert) == "Public")
        #expect(try value("sent", in: alert) == "2025-06-01T12:30:00+00:00")
        #expect(try count(info, in: alert) == 0)
        #expect(try value("note", in: alert).contains("0 official announcement"))
    }

    @Test("maintenance mode is Test, crisis mode Actual")
    func statusFollowsMode() throws {
        #expect(try value("status", in: try validAlert(FeedFixtures.emptySnapshot(mode: .maintenance), access: .public)) == "Test")
        #expect(try value("status", in: try validAlert(FeedFixtures.emptySnapshot(mode: .crisis), access: .public)) == "Actual")
    }

    @Test("a relayed request's area is around its origin box when the neighbour table knows where that is, else around this box")
    func relayedRequestsAtTheirOrigin() throws {
        let alert = try validAlert(FeedFixtures.snapshot(bulletin: FeedFixtures.relayedPosts), access: .authority(name: "Feuerwehr"))
        func request(_ id: Int64, _ child: String) throws -> String {
            let request = "\(info)[*[local-name()='parameter'][*[local-name()='valueName']='bulletin_post_id']/*[local-name()='value']='\(id)']"
            return try XMLLint.xpath("string(\(request)/\(child))", in: alert)
        }
        let positionOf = "*[local-name()='parameter'][*[local-name()='valueName']='position_of']/*[local-name()='value']"
        let circle = "*[local-name()='area']/*[local-name()='circle']"
        #expect(try request(11, circle) == "52.4978,13.428 1")
        #expect(try request(11, positionOf) == "origin_box")
        #expect(try request(11, "*[local-name()='area']/*[local-name()='areaDesc']").contains("Kiezbox Reichenberger"))
        for id: Int64 in [12, 13] {
            #expect(try request(id, circle) == "52.4996,13.4318 1")
            #expect(try request(id, positionOf) == "this_box")
        }
    }

    @Test("crisis with an authority token: one info per announcement and language, one per help request")
    func crisisForAuthority() throws {
        let alert = try validAlert(FeedFixtures.snapshot(), access: .authority(name: "Feuerwehr"))
        #expect(try value("status", in: alert) == "Actual")
        #expect(try value("scope", in: alert) == "Restricted")
        #expect(try !value("restriction", in: alert).isEmpty)
        // Announcement 1 in de and en, announcement 2 in de, 3 requests (the offer and the check-in are not alerts).
        #expect(try count(info, in: alert) == 6)
        let severe = "\(info)[*[local-name()='parameter']/*[local-name()='value']='ba-fk-2025-017']"
        #expect(try count(severe, in: alert) == 2)
        #expect(try XMLLint.xpath("string(\(severe)[1]/*[local-name()='language'])", in: alert) == "de-DE")
        #expect(try XMLLint.xpath("string(\(severe)[2]/*[local-name()='language'])", in: alert) == "en-US")
        #expect(try XMLLint.xpath("string(\(severe)[2]/*[local-name()='headline'])", in: alert) == "Power cut in the Wrangelkiez")
        #expect(try XMLLint.xpath("string(\(severe)[1]/*[local-name()='severity'])", in: alert) == "Severe")
        #expect(try XMLLint.xpath("string(\(severe)[1]/*[local-name()='senderName'])", in: alert) == "Bezirksamt Friedrichshain-Kreuzberg")
        #expect(try XMLLint.xpath("string(\(severe)[1]/*[local-name()='expires'])", in: alert) == "2025-06-02T12:30:00+00:00")
        #expect(
            try XMLLint.xpath("string(\(severe)[1]/*[local-name()='area']/*[local-name()='circle'])", in: alert) == "52.4996,13.4318 1"
        )
        let insulin = "\(info)[*[local-name()='parameter']/*[local-name()='value']='7']"
        #expect(try XMLLint.xpath("string(\(insulin)/*[local-name()='category'])", in: alert) == "Health")
        #expect(try XMLLint.xpath("string(\(insulin)/*[local-name()='urgency'])", in: alert) == "Immediate")
        let description = try XMLLint.xpath("string(\(insulin)/*[local-name()='description'])", in: alert)
        #expect(description.contains("Insulin gebraucht \(FeedFixtures.marker)"))
        #expect(description.contains("Wrangelstr. 12"))
    }

    @Test("crisis without a token: counts per category only, no resident's words")
    func crisisForPublic() throws {
        let alert = try validAlert(FeedFixtures.snapshot(), access: .public)
        #expect(!String(decoding: alert, as: UTF8.self).contains(FeedFixtures.marker))
        #expect(try value("scope", in: alert) == "Public")
        // 3 announcement infos, then medical (2) and water (1).
        #expect(try count(info, in: alert) == 5)
        let counts = "\(info)[*[local-name()='parameter']/*[local-name()='valueName']='request_count']"
        #expect(try count(counts, in: alert) == 2)
        #expect(try XMLLint.xpath("string(\(counts)[1]/*[local-name()='parameter']/*[local-name()='value'])", in: alert) == "2")
        #expect(try XMLLint.xpath("string(\(counts)[1]/*[local-name()='category'])", in: alert) == "Health")
        #expect(try XMLLint.xpath("string(\(counts)[2]/*[local-name()='category'])", in: alert) == "Infra")
    }

    @Test("a box without a position: areas with a description and no circle")
    func boxWithoutPosition() throws {
        let snapshot = FeedFixtures.snapshot(identity: BoxIdentity(district: "neukoelln", boxID: "new-box", name: "Neue Kiezbox"))
        let alert = try validAlert(snapshot, access: .authority(name: "Feuerwehr"))
        #expect(try count("//*[local-name()='circle']", in: alert) == 0)
        let infoCount = try count(info, in: alert)
        #expect(infoCount == 6)
        #expect(try count("//*[local-name()='areaDesc']", in: alert) == infoCount)
    }

    @Test("hostile text (<, &, ]]>, quotes, control characters) is escaped and survives; identifier and sender stay tokens")
    func hostileText() throws {
        let hostile = FeedFixtures.hostileText + " \u{1}\u{8}\u{B}\u{1F}end"
        let survivor = FeedFixtures.hostileText + " end"  // what XML 1.0 can carry: the C0 controls are gone
        var post = FeedFixtures.posts[0]
        post.text = hostile
        post.place = ""
        var announcement = FeedFixtures.announcements[0]
        announcement.issuer = hostile
        announcement.headline = ["de": hostile, "de_AT": "Österreichisch", "not a language!": "?"]
        announcement.id = hostile
        let identity = BoxIdentity(district: "Fried & Kreuz, <Berlin>", boxID: "box 1", name: hostile, position: FeedFixtures.position)
        let snapshot = FeedFixtures.snapshot(identity: identity, announcements: [announcement], bulletin: [post])
        let alert = try validAlert(snapshot, access: .authority(name: "Feuerwehr"), sender: "Kiez box, <Berlin> & more")

        let first = "\(info)[1]"
        #expect(try XMLLint.xpath("string(\(first)/*[local-name()='headline'])", in: alert) == survivor)
        #expect(try XMLLint.xpath("string(\(first)/*[local-name()='senderName'])", in: alert) == survivor)
        let request = "\(info)[*[local-name()='parameter']/*[local-name()='valueName']='bulletin_post_id']"
        #expect(try XMLLint.xpath("string(\(request)/*[local-name()='description'])", in: alert) == survivor)
        let languages = try XMLLint.xpath("\(info)/*[local-name()='language']/text()", in: alert)
        #expect(languages.contains("de-AT"))
        #expect(languages.contains("und"))

        for element in ["identifier", "sender"] {
            let token = try value(element, in: alert)
            #expect(!token.isEmpty)
            #expect(!token.contains { " ,<&>\"'".contains($0) }, "\(element) \(token)")
        }
        #expect(try value("sender", in: alert) == "Kiez-box---Berlin----more")
    }

    @Test("sent and the other date-times match CAP's pattern: +00:00, no Z, no fractions")
    func dateTimes() throws {
        var snapshot = FeedFixtures.snapshot()
        snapshot.now = Date(timeIntervalSince1970: 1_748_781_000.987)
        let alert = try validAlert(snapshot, access: .public)
        #expect(try value("sent", in: alert) == "2025-06-01T12:30:00+00:00")
        let text = String(decoding: alert, as: UTF8.self)
        let dateTimes = text.matches(of: /<(sent|effective|expires)>([^<]*)</).map { String($0.output.2) }
        #expect(!dateTimes.isEmpty)
        for dateTime in dateTimes {
            #expect(dateTime.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00/) != nil, "\(dateTime)")
        }
    }

    @Test("identifiers differ between different pictures and repeat for the same one")
    func identifiers() throws {
        let snapshot = FeedFixtures.snapshot()
        let first = try value("identifier", in: CAPFeed.alertsCAP(snapshot, access: .public, sender: sender))
        let again = try value("identifier", in: CAPFeed.alertsCAP(snapshot, access: .public, sender: sender))
        let restricted = try value("identifier", in: CAPFeed.alertsCAP(snapshot, access: .authority(name: "F"), sender: sender))
        #expect(first == again)
        #expect(first != restricted)
        #expect(first.hasPrefix("kiezbox-friedrichshain-kreuzberg-wrangelkiez-01-20250601T123000-"))
        #expect(CAPFeed.defaultSender(for: FeedFixtures.identity) == sender)
        #expect(CAPFeed.mediaType == "application/cap+xml")
    }

    @Test("the validator bites: Z or fractional seconds in sent, wrong element order, unknown status are rejected")
    func validatorRejectsInvalidAlerts() throws {
        let valid = String(decoding: CAPFeed.alertsCAP(FeedFixtures.snapshot(), access: .public, sender: sender), as: UTF8.self)
        #expect(try XMLLint.validateCAP(Data(valid.utf8)).status == 0)
        let mutations = [
            "Z": valid.replacingOccurrences(of: "<sent>2025-06-01T12:30:00+00:00</sent>", with: "<sent>2025-06-01T12:30:00Z</sent>"),
            "fraction": valid.replacingOccurrences(of: "<sent>2025-06-01T12:30:00+00:00</sent>", with: "<sent>2025-06-01T12:30:00.123+00:00</sent>"),
            "order": valid.replacingOccurrences(of: "<msgType>Alert</msgType>\n", with: "").replacingOccurrences(
                of: "<scope>Public</scope>\n", with: "<scope>Public</scope>\n<msgType>Alert</msgType>\n"
            ),
            "status": valid.replacingOccurrences(of: "<status>Actual</status>", with: "<status>Real</status>"),
            "unescaped": valid.replacingOccurrences(of: "<note>", with: "<note>a & b"),
        ]
        for (name, mutated) in mutations {
            #expect(mutated != valid, "mutation \(name) changed nothing")
            let result = try XMLLint.validateCAP(Data(mutated.utf8))
            #expect(result.status != 0, "xmllint accepted the \(name) mutation")
        }
        let zResult = try XMLLint.validateCAP(Data(mutations["Z"]!.utf8))
        #expect(zResult.output.contains("pattern"), "\(zResult.output)")
    }
}

@Suite("The CAP schema script's output")
struct CAPSchemaScriptTests {
    @Test("the schema path is read from stdout: a warning on stderr after it (pip on the first fetch) is no path")
    func warningOnStandardError() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-cap-script-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let schema = directory.appendingPathComponent("CAP-v1.2.xsd").path
        try Data("<xs:schema/>".utf8).write(to: URL(fileURLWithPath: schema))
        let script = directory.appendingPathComponent("cap-schema.sh").path
        try """
            echo "$0: fetching" >&2
            echo "\(schema)"
            echo "WARNING: Running pip as the 'root' user can result in broken permissions" >&2
            """.write(toFile: script, atomically: true, encoding: .utf8)
        #expect(try XMLLint.capSchema(script: script) == schema)
    }
}
