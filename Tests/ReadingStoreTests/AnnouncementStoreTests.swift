import Foundation
import ReadingStore
import Testing

/// The store's side of announcements: one version per (issuer, id), newer replaces, older is stale, and rows
/// are forgotten only after their remember-until time.
@Suite("Announcement store")
struct AnnouncementStoreTests {
    let now = Date(timeIntervalSince1970: 1_790_000_000)

    func announcement(issuer: String = "Bezirksamt", id: String = "a", issuedAt offset: TimeInterval, text: String) -> StoredAnnouncement {
        let issuedAt = self.now.addingTimeInterval(offset)
        return StoredAnnouncement(
            issuer: issuer, id: id, keyID: "k", issuedAt: issuedAt, expiresAt: issuedAt.addingTimeInterval(3600),
            rememberUntil: issuedAt.addingTimeInterval(86_400), payload: Data(text.utf8), envelope: Data("{\(text)}".utf8),
            receivedAt: self.now, receivedVia: "api")
    }

    @Test("identical, newer, older, and forgotten after remember-until")
    func versions() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-announcements-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try ReadingStore(directory: directory)

        let first = self.announcement(issuedAt: 0, text: "v1")
        #expect(try await store.storeAnnouncement(first, now: self.now) == .stored)
        #expect(try await store.storeAnnouncement(first, now: self.now) == .identical)
        let second = self.announcement(issuedAt: 60, text: "v2")
        #expect(try await store.storeAnnouncement(second, now: self.now) == .stored)
        #expect(try await store.storeAnnouncement(first, now: self.now) == .stale(keptIssuedAt: second.issuedAt))
        #expect(try await store.storeAnnouncement(self.announcement(issuer: "Feuerwehr", issuedAt: 0, text: "f"), now: self.now) == .stored)

        #expect(try store.currentAnnouncements(at: self.now.addingTimeInterval(120)).map(\.payload) == [Data("v2".utf8), Data("f".utf8)])
        #expect(try store.currentAnnouncements(at: self.now.addingTimeInterval(3661)).isEmpty)
        #expect(try store.rememberedAnnouncements().count == 2)  // expired, still remembered

        // Past remember-until the next store call forgets them.
        let much = self.now.addingTimeInterval(2 * 86_400)
        #expect(try await store.storeAnnouncement(self.announcement(id: "b", issuedAt: 2 * 86_400, text: "b"), now: much) == .stored)
        #expect(try store.rememberedAnnouncements().map(\.id) == ["b"])
        let kept = try #require(try store.rememberedAnnouncements().first)
        #expect(kept.envelope == Data("{b}".utf8))
        #expect(kept.receivedVia == "api")
    }
}
