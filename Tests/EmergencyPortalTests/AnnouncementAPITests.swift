import Crypto
import EmergencyPortal
import Foundation
import ReadingStore
import Testing

/// `POST /api/v1/announcements` over a real socket: the authority's bearer token and the Ed25519 signature are
/// both required; accepted announcements reach the page's snapshot, the situation feed and the CAP feed.
@Suite("Announcements over HTTP")
struct AnnouncementAPITests {
    static let token = "civil-protection-test-token-0123456789abcdef"

    @Test("a signed announcement posted with a token is shown; no token, a wrong token, a forgery or a replay are refused")
    func postAnnouncement() async throws {
        let signer = AnnouncementSigner(keyID: "ba-xhain", privateKey: Curve25519.Signing.PrivateKey())
        let key = AnnouncementKey(keyID: "ba-xhain", issuer: "Bezirksamt Friedrichshain-Kreuzberg", publicKey: signer.privateKey.publicKey)
        let authorities = AuthorityTokens([try AuthorityToken(name: "Lagedienst", tokenSHA256: AuthorityTokens.hash(token: Self.token))])
        try await withRunningPortal(authorities: authorities, keys: [key]) { portal in
            let now = portal.clock.now
            let payload = AnnouncementPayload(
                id: "stromausfall-1", district: "*", issuedAt: now, expiresAt: now.addingTimeInterval(6 * 3600), severity: .severe,
                headline: ["de": "Stromausfall im Wrangelkiez", "en": "Power cut in Wrangelkiez"],
                body: ["de": "Trinkwasser am Leuchtturm Wrangelstraße.", "en": "Drinking water at the Wrangelstraße lighthouse."]
            )
            let envelope = Array(try signer.sign(payload).json())
            let phone = portal.phone(1)
            let bearer = [("Authorization", "Bearer \(Self.token)")]
            let json = "application/json"

            #expect(try await phone.post("/api/v1/announcements", host: "kiez.box", contentType: json, body: envelope).status == 401)
            #expect(
                try await phone.post("/api/v1/announcements", host: "kiez.box", contentType: json, body: envelope, headers: [("Authorization", "Bearer wrong")]).status == 401
            )
            var forged = try signer.sign(payload)
            forged.payload = Data(String(decoding: forged.payload, as: UTF8.self).replacingOccurrences(of: "Trinkwasser", with: "Freibier").utf8)
            let refused = try await phone.post("/api/v1/announcements", host: "kiez.box", contentType: json, body: Array(forged.json()), headers: bearer)
            #expect(refused.status == 422)
            #expect(refused.text.contains("forged"))

            let accepted = try await phone.post("/api/v1/announcements", host: "kiez.box", contentType: json, body: envelope, headers: bearer)
            #expect(accepted.status == 201)
            #expect(try await phone.post("/api/v1/announcements", host: "kiez.box", contentType: json, body: envelope, headers: bearer).status == 200)
            let oversized = [UInt8](repeating: 0x20, count: AnnouncementEnvelope.maximumBytes + 1)
            #expect(try await phone.post("/api/v1/announcements", host: "kiez.box", contentType: json, body: oversized, headers: bearer).status == 413)

            let shown = portal.server.content.snapshot(at: portal.clock.now).snapshot.announcements
            #expect(shown.map(\.id) == ["stromausfall-1"])
            #expect(shown.first?.issuer == "Bezirksamt Friedrichshain-Kreuzberg")

            let cap = try await phone.get("/api/v1/alerts.cap", host: "kiez.box")
            #expect(cap.status == 200)
            #expect(cap.header("Content-Type") == CAPFeed.mediaType)
            #expect(cap.text.contains("Stromausfall im Wrangelkiez"))

            let metrics = try await phone.get("/metrics", host: "kiez.box").text
            #expect(metrics.contains(#"kiezbox_announcements_rejected_total{reason="forged"} 1"#))
            #expect(metrics.contains("kiezbox_announcements_accepted_total 1"))
        }
    }

    @Test("the situation feed: aggregates without a token, posts with one, 401 for an unknown token")
    func situationFeedAccess() async throws {
        let authorities = AuthorityTokens([try AuthorityToken(name: "Lagedienst", tokenSHA256: AuthorityTokens.hash(token: Self.token))])
        try await withRunningPortal(authorities: authorities) { portal in
            let now = portal.clock.now
            _ = try await portal.store.addBulletinPost(
                kind: .request, category: .medical, text: "Insulin needed, Falckensteinstr. 5", place: "Hof", createdAt: now,
                expiresAt: now.addingTimeInterval(3600)
            )
            let phone = portal.phone(2)
            let open = try await phone.get("/api/v1/situation.geojson", host: "kiez.box")
            #expect(open.status == 200)
            #expect(open.header("Content-Type") == "application/geo+json")
            #expect(!open.text.contains("Insulin"))
            #expect(open.text.contains("medical"))
            let authority = try await phone.get("/api/v1/situation.geojson", host: "kiez.box", headers: [("Authorization", "Bearer \(Self.token)")])
            #expect(authority.status == 200)
            #expect(authority.text.contains("Insulin needed"))
            let wrong = try await phone.get("/api/v1/situation.geojson", host: "kiez.box", headers: [("Authorization", "Bearer nope")])
            #expect(wrong.status == 401)
            #expect(wrong.header("WWW-Authenticate")?.hasPrefix("Bearer") == true)
            let feed = try #require(try JSONSerialization.jsonObject(with: Data(authority.body)) as? [String: Any])
            #expect(feed["type"] as? String == "FeatureCollection")
        }
    }
}
