import Foundation
import Testing

@testable import ReadingStore

@Suite("Bulletin removal by the origin")
struct BulletinRemovalTests {
    let start = Date(timeIntervalSince1970: 1_790_000_000)

    @Test("the origin's removal deletes its post, only that one, and keeps a late copy out")
    func removal() async throws {
        try await withTemporaryDirectory { directory in
            let store = try ReadingStore(directory: directory)
            let expiry = self.start.addingTimeInterval(3600)
            let origin = BulletinOrigin(name: "xhain/box-a", reference: "7")
            _ = try await store.addRelayedBulletinPost(
                kind: .request, category: .food, text: "Brot", place: "", createdAt: self.start, expiresAt: expiry, origin: origin)
            // Same reference from another box, and a local post with the same id text: untouched.
            _ = try await store.addRelayedBulletinPost(
                kind: .request, category: .food, text: "Brot", place: "", createdAt: self.start, expiresAt: expiry,
                origin: BulletinOrigin(name: "xhain/box-b", reference: "7"))
            let local = try await store.addBulletinPost(
                kind: .offer, category: .water, text: "Wasser", place: "", createdAt: self.start, expiresAt: expiry)
            #expect(try await store.removeRelayedBulletinPost(origin: origin, rememberUntil: expiry))
            #expect(try await store.removeRelayedBulletinPost(origin: origin, rememberUntil: expiry) == false)
            let open = try store.openBulletinPosts(at: self.start.addingTimeInterval(1))
            #expect(Set(open.map(\.origin)) == [nil, "xhain/box-b"])
            let late = try await store.addRelayedBulletinPost(
                kind: .request, category: .food, text: "Brot", place: "", createdAt: self.start, expiresAt: expiry, origin: origin)
            #expect(late == nil)
            // A removal heard before its post keeps the post out too.
            let early = BulletinOrigin(name: "xhain/box-c", reference: "1")
            #expect(try await store.removeRelayedBulletinPost(origin: early, rememberUntil: expiry) == false)
            #expect(try await store.addRelayedBulletinPost(
                kind: .safe, category: nil, text: "ok", place: "", createdAt: self.start, expiresAt: expiry, origin: early) == nil)
            #expect(try await store.deleteBulletinPost(id: local.id))
            #expect(try await store.deleteBulletinPost(id: local.id) == false)
        }
    }
}
