import Crypto
import EmergencyPortal
import Foundation
import KiezboxCore
import ReadingStore
import Testing

/// The info page as the live server sends it, for the largest realistic crisis, held in the store: the whole
/// first response — status line, headers and page — fits in 14 KB, the initial congestion window (ten segments).
@Suite("Info page on the wire")
struct PageOnTheWireTests {
    @Test("the first response is at most 14,000 bytes in every language, with the phone's token in", arguments: PortalLanguage.allCases)
    func firstResponse(language: PortalLanguage) async throws {
        let fixture = InfoPageFixtures.crisis(language: language)
        let signer = AnnouncementSigner(keyID: "ba-fk", privateKey: Curve25519.Signing.PrivateKey())
        let key = AnnouncementKey(keyID: "ba-fk", issuer: "Bezirksamt Friedrichshain-Kreuzberg", publicKey: signer.privateKey.publicKey)
        try await withRunningPortal(settings: RunningPortal.settings { $0.helpPoints = fixture.helpPoints }, keys: [key]) { portal in
            let now = portal.clock.now
            try await portal.store.setMode(.crisis)
            try await portal.store.record(fixture.latest.map { stored in
                var reading = stored.reading
                reading.measuredAt = now.addingTimeInterval(-200)
                return reading
            })
            _ = try await portal.store.flush()
            for neighbour in fixture.neighbours { try await portal.store.recordNeighbour(neighbour) }
            for post in fixture.bulletin.reversed() {
                _ = try await portal.store.addBulletinPost(
                    kind: post.kind, category: post.category, text: post.text, place: post.place, createdAt: now,
                    expiresAt: now.addingTimeInterval(3600))
            }
            let desk = try #require(portal.server.desk)
            for announcement in fixture.announcements {
                let payload = AnnouncementPayload(
                    id: announcement.id, issuedAt: now, expiresAt: now.addingTimeInterval(3600), severity: announcement.severity,
                    headline: announcement.headline, body: announcement.body)
                let outcome = try await desk.accept(try signer.sign(payload).json(), via: .api, now: now)
                guard case .accepted = outcome else { Issue.record("announcement not accepted: \(outcome)"); return }
            }
            portal.server.content.invalidate()

            let answer = try await portal.phone(1).get(
                "/", host: "kiez.box", headers: [("Accept-Language", "\(language.code);q=1"), ("User-Agent", "CaptiveNetworkSupport-443.40.1 wispr")])
            #expect(answer.status == 200)
            #expect(answer.header("Content-Language") == language.code)
            #expect(answer.text.contains("role=\"alert\" id=\"crisis\""))
            #expect(answer.text.contains(fixture.bulletin[0].text.prefix(40)))
            #expect(answer.wireBytes <= 14_000, "\(language): \(answer.wireBytes) bytes on the wire")
            print("info page on the wire, \(language.code): \(answer.wireBytes) bytes (page \(answer.body.count))")
        }
    }
}
