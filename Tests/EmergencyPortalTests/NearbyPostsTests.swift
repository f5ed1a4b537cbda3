import EmergencyPortal
import Foundation
import KiezboxCore
import ReadingStore
import Testing

/// The front page shows the district's posts nearest first: this box's own, then those of the boxes nearest
/// to it (by the positions in their statuses), then those from origins whose place is unknown.
@Suite("Nearby posts first")
struct NearbyPostsTests {
    @Test("own posts, then the nearer box's, then the farther box's, then unknown origins; newest first within each")
    func nearbyFirst() async throws {
        try await withRunningPortal { portal in
            let now = portal.clock.now
            let here = try #require(RunningPortal.identity.position)
            let district = RunningPortal.identity.district
            // About 0.5 km and 3 km north of this box.
            for (box, metres) in [("near", 500.0), ("far", 3000.0)] {
                try await portal.store.recordNeighbour(NeighbourBox(
                    identity: BoxIdentity(
                        district: district, boxID: box, name: box,
                        position: GeoPosition(latitude: here.latitude + metres / 111_195, longitude: here.longitude)),
                    online: true, mode: .crisis, batteryVolts: nil, lastSeen: now, path: "mqtt://broker:1883"))
            }
            // Posted oldest first: what is near was posted long ago, the far and unknown ones recently.
            let posts: [(text: String, origin: String?)] = [
                ("post-near-old", "\(district)/near"), ("post-own-old", nil), ("post-near-new", "\(district)/near"),
                ("post-far", "\(district)/far"), ("post-pilot", "kb2-d3-b17"), ("post-own-new", nil),
            ]
            for (index, post) in posts.enumerated() {
                let created = now.addingTimeInterval(Double(index - posts.count) * 60)
                if let origin = post.origin {
                    _ = try await portal.store.addRelayedBulletinPost(
                        kind: .request, category: .water, text: post.text, place: "", createdAt: created,
                        expiresAt: now.addingTimeInterval(3600), origin: BulletinOrigin(name: origin, reference: post.text))
                } else {
                    _ = try await portal.store.addBulletinPost(
                        kind: .request, category: .water, text: post.text, place: "", createdAt: created, expiresAt: now.addingTimeInterval(3600))
                }
            }
            let page = try await portal.phone().get("/", host: "kiez.box").text
            let order = page.matches(of: #/post-[a-z]+(-[a-z]+)?/#).map { String($0.output.0) }
            #expect(order == ["post-own-new", "post-own-old", "post-near-new", "post-near-old", "post-far", "post-pilot"])
        }
    }

    static let token = "district-feed-token-0123456789abcdef"

    @Test("the situation feed carries the district's posts: every request with its origin for authorities, counts for everyone")
    func feedCarriesTheDistrict() async throws {
        let authorities = AuthorityTokens([try AuthorityToken(name: "Lagedienst", tokenSHA256: AuthorityTokens.hash(token: Self.token))])
        try await withRunningPortal(authorities: authorities) { portal in
            let now = portal.clock.now
            for box in ["box-b", "box-c"] {
                _ = try await portal.store.addRelayedBulletinPost(
                    kind: .request, category: .medical, text: "help at \(box)", place: "", createdAt: now, expiresAt: now.addingTimeInterval(3600),
                    origin: BulletinOrigin(name: "xhain/\(box)", reference: "1"))
            }
            let authority = try await portal.phone().get(
                "/api/v1/situation.geojson", host: "kiez.box", headers: [("Authorization", "Bearer \(Self.token)")])
            #expect(authority.status == 200)
            let features = try #require(
                (try JSONSerialization.jsonObject(with: Data(authority.body)) as? [String: Any])?["features"] as? [[String: Any]])
            let posts = features.compactMap { $0["properties"] as? [String: Any] }.filter { $0["feature"] as? String == "bulletin_post" }
            #expect(Set(posts.compactMap { $0["origin"] as? String }) == ["xhain/box-b", "xhain/box-c"])
            let anyone = try await portal.phone(2).get("/api/v1/situation.geojson", host: "kiez.box")
            #expect(anyone.status == 200)
            #expect(!anyone.text.contains("help at"))
            #expect(anyone.text.contains("bulletin_counts"))
            let counts = try #require(portal.store.bulletinCounts(at: now).first { $0.kind == .request && $0.category == .medical })
            #expect(counts.count == 2)
        }
    }
}
