import EmergencyPortal
import Foundation
import ReadingStore
import Testing

/// The bulletin's forms posted to the real server: what is stored, what is refused and how.
@Suite("Bulletin posts")
struct BulletinTests {
    static let form = "application/x-www-form-urlencoded"

    /// The hidden form token of the first form in `html`.
    static func formToken(in html: String) throws -> String {
        let tags = html.components(separatedBy: "<input").dropFirst().map { $0.prefix { $0 != ">" } }
        let tag = try #require(tags.first { $0.contains("name=\"token\"") || $0.contains("name=token") })
        let value = try #require(tag.range(of: "value=\"")).upperBound
        return String(tag[value...].prefix { $0 != "\"" })
    }

    static func encode(_ fields: [(String, String)]) -> [UInt8] {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._*")
        let text = fields.map { name, value in
            let encoded = value.addingPercentEncoding(withAllowedCharacters: allowed)!
            return "\(name)=\(encoded)"
        }.joined(separator: "&")
        return Array(text.utf8)
    }

    func token(_ phone: RawHTTPClient) async throws -> String {
        let page = try await phone.get("/", host: "kiez.box")
        #expect(page.status == 200)
        return try Self.formToken(in: page.text)
    }

    @Test("a help request, an offer and a check-in are stored and shown; the page redirects after posting")
    func posts() async throws {
        try await withRunningPortal { portal in
            let phone = portal.phone(1)
            let token = try await self.token(phone)
            let request = try await phone.post(
                "/bulletin", host: "kiez.box", contentType: Self.form,
                body: Self.encode([
                    ("kind", "request"), ("category", "water"), ("text", "Wir brauchen 10 l Trinkwasser, 3. OG"),
                    ("place", "Wrangelstr. 12"), ("lang", "de"), ("token", token),
                ])
            )
            #expect(request.status == 303)
            #expect(request.header("Location") == "/?lang=de&outcome=posted#outcome")
            let offer = try await phone.post(
                "/bulletin", host: "kiez.box", contentType: Self.form,
                body: Self.encode([("kind", "offer"), ("category", "power"), ("text", "Powerbank zum Laden, Hof"), ("token", token)])
            )
            #expect(offer.status == 303)
            let safe = try await phone.post(
                "/bulletin", host: "kiez.box", contentType: Self.form,
                body: Self.encode([("kind", "safe"), ("text", ""), ("token", token)])
            )
            #expect(safe.status == 303)

            let posts = try portal.store.openBulletinPosts(at: portal.clock.now)
            #expect(posts.map(\.kind) == [.safe, .offer, .request])
            #expect(posts.last?.category == .water)
            #expect(posts.last?.text == "Wir brauchen 10 l Trinkwasser, 3. OG")
            #expect(posts.last?.place == "Wrangelstr. 12")
            #expect(posts.last?.expiresAt == portal.clock.now.addingTimeInterval(24 * 3600))

            let page = try await phone.get("/?lang=de", host: "kiez.box")
            #expect(page.text.contains("Wir brauchen 10 l Trinkwasser"))

            // Posts expire.
            portal.clock.advance(by: 24 * 3600 + 1)
            #expect(try portal.store.openBulletinPosts(at: portal.clock.now).isEmpty)
        }
    }

    @Test("refused: a bad or foreign token, too long, empty, unknown kind or category, control characters; nothing stored")
    func refusals() async throws {
        try await withRunningPortal { portal in
            let phone = portal.phone(2)
            let token = try await self.token(phone)
            let otherPhonesToken = try await self.token(portal.phone(3))
            let cases: [(fields: [(String, String)], status: Int)] = [
                ([("kind", "request"), ("category", "food"), ("text", "Brot"), ("token", "x")], 403),
                ([("kind", "request"), ("category", "food"), ("text", "Brot"), ("token", otherPhonesToken)], 403),
                ([("kind", "request"), ("category", "food"), ("text", "Brot")], 403),
                ([("kind", "request"), ("category", "food"), ("text", String(repeating: "a", count: 281)), ("token", token)], 400),
                ([("kind", "request"), ("category", "food"), ("text", "Brot"), ("place", String(repeating: "b", count: 81)), ("token", token)], 400),
                ([("kind", "request"), ("category", "food"), ("text", "   \n "), ("token", token)], 400),
                ([("kind", "gossip"), ("category", "food"), ("text", "Brot"), ("token", token)], 400),
                ([("kind", "request"), ("category", "beer"), ("text", "Brot"), ("token", token)], 400),
                ([("kind", "request"), ("text", "Brot"), ("token", token)], 400),
                ([("kind", "request"), ("category", "food"), ("text", "Brot\u{0}"), ("token", token)], 400),
                ([("kind", "request"), ("category", "food"), ("text", "\u{202E}tordnu"), ("token", token)], 400),
                ([("kind", "request"), ("category", "food"), ("text", "Brot"), ("place", "a\nb"), ("token", token)], 400),
                ([("kind", "request"), ("category", "food"), ("text", "Brot"), ("admin", "1"), ("token", token)], 400),
            ]
            for (fields, status) in cases {
                let answer = try await phone.post("/bulletin", host: "kiez.box", contentType: Self.form, body: Self.encode(fields))
                #expect(answer.status == status, "\(fields)")
            }
            // Malformed bodies: a bad percent-escape, invalid UTF-8, a repeated field, the wrong media type, too large.
            let raw: [(contentType: String, body: [UInt8], status: Int)] = [
                (Self.form, Array("kind=request&category=food&text=%zz&token=\(token)".utf8), 400),
                (Self.form, Array("kind=request&category=food&token=\(token)&text=".utf8) + [0xC3, 0x28], 400),
                (Self.form, Array("kind=request&category=food&text=%C3%28&token=\(token)".utf8), 400),
                (Self.form, Array("kind=request&kind=offer&category=food&text=a&token=\(token)".utf8), 400),
                ("application/json", Array("{\"kind\":\"request\"}".utf8), 415),
                (Self.form, Array("kind=request&category=food&token=\(token)&text=".utf8) + [UInt8](repeating: 0x61, count: 40_000), 413),
            ]
            for (contentType, body, status) in raw {
                let answer = try await phone.post("/bulletin", host: "kiez.box", contentType: contentType, body: body)
                #expect(answer.status == status, "\(String(decoding: body.prefix(60), as: UTF8.self))")
            }
            #expect(try portal.store.openBulletinPosts(at: portal.clock.now).isEmpty)
        }
    }

    @Test("a form older than its lifetime, or from before a restart, is refused; a fresh one works")
    func tokenLifetime() async throws {
        try await withRunningPortal { portal in
            let phone = portal.phone(4)
            let token = try await self.token(phone)
            portal.clock.advance(by: 2 * 3600 + 1)
            let fields = [("kind", "offer"), ("category", "food"), ("text", "Suppe"), ("token", token)]
            #expect(try await phone.post("/bulletin", host: "kiez.box", contentType: Self.form, body: Self.encode(fields)).status == 403)
            let fresh = try await self.token(phone)
            let again = [("kind", "offer"), ("category", "food"), ("text", "Suppe"), ("token", fresh)]
            #expect(try await phone.post("/bulletin", host: "kiez.box", contentType: Self.form, body: Self.encode(again)).status == 303)
        }
    }

    @Test("one phone may post three at once, then one every ten minutes; others are not affected")
    func rateLimit() async throws {
        try await withRunningPortal { portal in
            let phone = portal.phone(5)
            let token = try await self.token(phone)
            func post(_ phone: RawHTTPClient, _ token: String) async throws -> Int {
                try await phone.post(
                    "/bulletin", host: "kiez.box", contentType: Self.form,
                    body: Self.encode([("kind", "safe"), ("text", "ok"), ("token", token)])
                ).status
            }
            var statuses: [Int] = []
            for _ in 0..<4 { statuses.append(try await post(phone, token)) }
            #expect(statuses == [303, 303, 303, 429])
            let other = portal.phone(6)
            #expect(try await post(other, try await self.token(other)) == 303)
            portal.clock.advance(by: 600)
            #expect(try await post(phone, token) == 303)
            #expect(try await post(phone, token) == 429)
            #expect(try portal.store.openBulletinPosts(at: portal.clock.now).count == 5)
        }
    }

    @Test("/metrics shows requests, refusals, the bulletin and the mode in Prometheus text format")
    func metrics() async throws {
        try await withRunningPortal { portal in
            let phone = portal.phone(7)
            _ = try await phone.get("/generate_204", host: "connectivitycheck.gstatic.com")
            let token = try await self.token(phone)
            _ = try await phone.post("/bulletin", host: "kiez.box", contentType: Self.form, body: Self.encode([("kind", "safe"), ("token", token)]))
            _ = try await phone.post("/bulletin", host: "kiez.box", contentType: Self.form, body: Self.encode([("kind", "safe"), ("token", "bad")]))
            let metrics = try await phone.get("/metrics", host: "kiez.box")
            #expect(metrics.status == 200)
            #expect(metrics.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
            let text = metrics.text
            #expect(text.contains(#"kiezbox_http_requests_total{route="probe:android",status="302"} 1"#))
            #expect(text.contains(#"kiezbox_bulletin_refused_total{reason="badToken"} 1"#))
            #expect(text.contains(#"kiezbox_bulletin_open{kind="safe",category="none"} 1"#))
            #expect(text.contains(#"kiezbox_mode{mode="normal"} 1"#))
            #expect(text.contains(#"kiezbox_mode{mode="crisis"} 0"#))
            #expect(text.contains("kiezbox_readings_stored 0"))
            #expect(text.contains("kiezbox_portal_clients 1"))
        }
    }
}
