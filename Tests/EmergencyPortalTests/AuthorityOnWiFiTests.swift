import Crypto
import Foundation
import ReadingStore
import Testing

@testable import EmergencyPortal

/// The authority side of the portal (posting announcements, the feed with residents' words) is not served to the
/// open emergency Wi-Fi: the portal listens on every address, 127.0.0.2 stands in for the box's Wi-Fi address
/// and 127.0.0.1 for the mesh, and the portal goes by the address a request reached.
@Suite("Authority side not on the emergency Wi-Fi")
struct AuthorityOnWiFiTests {
    static let token = "civil-protection-test-token-0123456789abcdef"
    static let wifiAddress = "127.0.0.2"

    static func settings(authorityAPIOnWiFi: Bool) -> PortalSettings {
        RunningPortal.settings {
            $0.bindAddress = "0.0.0.0"
            $0.wifiAddress = Self.wifiAddress
            $0.authorityAPIOnWiFi = authorityAPIOnWiFi
        }
    }

    /// Runs a portal with one authority (token and key) and hands `body` a phone on the Wi-Fi, a client on the mesh,
    /// a signed announcement and the bearer header.
    func withPortal(
        authorityAPIOnWiFi: Bool,
        _ body: (RunningPortal, _ wifi: RawHTTPClient, _ mesh: RawHTTPClient, _ envelope: [UInt8], _ bearer: [(String, String)]) async throws -> Void
    ) async throws {
        let signer = AnnouncementSigner(keyID: "ba-xhain", privateKey: Curve25519.Signing.PrivateKey())
        let key = AnnouncementKey(keyID: "ba-xhain", issuer: "Bezirksamt", publicKey: signer.privateKey.publicKey)
        let authorities = AuthorityTokens([try AuthorityToken(name: "Lagedienst", tokenSHA256: AuthorityTokens.hash(token: Self.token))])
        try await withRunningPortal(settings: Self.settings(authorityAPIOnWiFi: authorityAPIOnWiFi), authorities: authorities, keys: [key]) { portal in
            let now = portal.clock.now
            let payload = AnnouncementPayload(
                id: "wasser-1", district: "*", issuedAt: now, expiresAt: now.addingTimeInterval(3600), severity: .moderate,
                headline: ["de": "Trinkwasser am Leuchtturm"], body: [:]
            )
            _ = try await portal.store.addBulletinPost(
                kind: .request, category: .medical, text: "Insulin needed, Falckensteinstr. 5", place: "Hof", createdAt: now,
                expiresAt: now.addingTimeInterval(3600)
            )
            let wifi = RawHTTPClient(port: portal.port, source: "127.0.0.50", destination: Self.wifiAddress)
            let mesh = RawHTTPClient(port: portal.port, source: "127.0.0.60", destination: "127.0.0.1")
            try await body(portal, wifi, mesh, Array(try signer.sign(payload).json()), [("Authorization", "Bearer \(Self.token)")])
        }
    }

    @Test("from the Wi-Fi: 403 for announcements and for any bearer token on the feeds; the page and the public feed stay")
    func refusedOnWiFi() async throws {
        try await self.withPortal(authorityAPIOnWiFi: false) { portal, wifi, mesh, envelope, bearer in
            let posted = try await wifi.post("/api/v1/announcements", host: "kiez.box", contentType: "application/json", body: envelope, headers: bearer)
            #expect(posted.status == 403)
            #expect(posted.text.contains("not on the emergency Wi-Fi"), "\(posted.text)")
            #expect(posted.text.contains("[wifi] authority_api"), "\(posted.text)")
            #expect(portal.server.content.snapshot(at: portal.clock.now).snapshot.announcements.isEmpty)

            // A wrong token gets the same 403 as a right one: a phone learns nothing about which tokens exist.
            for headers in [bearer, [("Authorization", "Bearer guessed")]] {
                for path in ["/api/v1/situation.geojson", "/api/v1/alerts.cap"] {
                    let feed = try await wifi.get(path, host: "kiez.box", headers: headers)
                    #expect(feed.status == 403, "\(path) \(headers): \(feed.status)")
                    #expect(!feed.text.contains("Insulin"))
                }
            }
            let open = try await wifi.get("/api/v1/situation.geojson", host: "kiez.box")
            #expect(open.status == 200)
            #expect(!open.text.contains("Insulin"))
            #expect(try await wifi.get("/", host: "kiez.box").status == 200)
            // The box's Wi-Fi address typed in by hand is the portal as well.
            #expect(try await wifi.get("/", host: Self.wifiAddress).status == 200)

            // The same requests from the mesh side are served.
            let accepted = try await mesh.post("/api/v1/announcements", host: "kiez.box", contentType: "application/json", body: envelope, headers: bearer)
            #expect(accepted.status == 201, "\(accepted.text)")
            let full = try await mesh.get("/api/v1/situation.geojson", host: "kiez.box", headers: bearer)
            #expect(full.status == 200)
            #expect(full.text.contains("Insulin needed"))
            #expect(try await mesh.get("/api/v1/situation.geojson", host: "kiez.box", headers: [("Authorization", "Bearer guessed")]).status == 401)
        }
    }

    @Test("with [wifi] authority_api = true the Wi-Fi is served like any other network")
    func openedOnWiFi() async throws {
        try await self.withPortal(authorityAPIOnWiFi: true) { _, wifi, _, envelope, bearer in
            let accepted = try await wifi.post("/api/v1/announcements", host: "kiez.box", contentType: "application/json", body: envelope, headers: bearer)
            #expect(accepted.status == 201, "\(accepted.text)")
            let full = try await wifi.get("/api/v1/situation.geojson", host: "kiez.box", headers: bearer)
            #expect(full.status == 200)
            #expect(full.text.contains("Insulin needed"))
        }
    }

    @Test("addresses compare by what they mean: an IPv4 client of a dual-stack socket is its IPv4 address")
    func canonicalAddresses() {
        #expect(canonicalIPAddress("::ffff:10.42.0.1") == "10.42.0.1")
        #expect(canonicalIPAddress("::FFFF:10.42.0.1") == "10.42.0.1")
        #expect(canonicalIPAddress("0:0::1") == "::1")
        #expect(canonicalIPAddress("10.42.0.1") == "10.42.0.1")
        #expect(canonicalIPAddress("kiez.box") == nil)
    }
}
