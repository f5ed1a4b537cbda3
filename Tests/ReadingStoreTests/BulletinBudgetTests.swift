import Foundation
import KiezboxCore
import Testing

@testable import ReadingStore

/// The bulletin keeps to its own budget in the store, and no number of posts evicts a reading.
@Suite("Bulletin budget in the store")
struct BulletinBudgetTests {
    static let start = Date(timeIntervalSince1970: 1_790_000_000)

    /// A post as large as the portal accepts: 280 characters of four-byte emoji… here 1,120 bytes of text.
    static let largestText = String(repeating: "🆘", count: 280)

    @Test("a flood of posts into a small store drops no undelivered reading")
    func floodKeepsReadings() async throws {
        try await withTemporaryDirectory { directory in
            // 8 MiB, as in the experiment.
            let store = try ReadingStore(directory: directory, configuration: .init(maximumBytes: 8 << 20))
            try await store.registerUplink("mqtt")
            // Undelivered readings (the uplink is unreachable), up to 6 MiB: within what readings may use.
            var recorded = 0
            while try store.statistics().usedBytes < 6 << 20 {
                try await store.record(makeReadings(5000, start: Self.start.addingTimeInterval(Double(recorded) * 10)))
                try await store.flush()
                recorded += 5000
                #expect(try await store.enforceRetention().droppedUndelivered == 0)
            }
            let readingsBefore = try store.statistics().readingsStored

            // The flood: far more posts than the bulletin may hold, each as large as the portal allows.
            let posts = try await Self.flood(store, posts: 3000)
            let outcome = try await store.enforceRetention()
            let statistics = try store.statistics()
            print("bulletin flood into an 8 MiB store: \(posts.stored) posts stored, \(posts.refused) refused; readings \(readingsBefore) before, "
                + "\(statistics.readingsStored) after, \(outcome.droppedUndelivered) dropped; \(statistics.usedBytes) bytes used")
            #expect(outcome.droppedUndelivered == 0)
            #expect(statistics.readingsStored == readingsBefore)
            #expect(statistics.droppedReadings == 0)
            #expect(statistics.usedBytes <= 8 << 20)
            // Posts already stored stay: the earliest is still there.
            let open = try store.openBulletinPosts(at: Self.start, limit: 10_000)
            #expect(open.count == posts.stored)
            #expect(open.last?.text.hasPrefix("0 ") == true)
        }
    }

    /// Posts `posts` of the largest size; counts those stored and those refused for a full bulletin.
    static func flood(_ store: ReadingStore, posts: Int) async throws -> (stored: Int, refused: Int) {
        var stored = 0
        var refused = 0
        for number in 0..<posts {
            do {
                _ = try await store.addBulletinPost(
                    kind: .request, category: .other, text: "\(number) " + Self.largestText, place: "Wrangelstraße",
                    createdAt: Self.start, expiresAt: Self.start.addingTimeInterval(24 * 3600))
                stored += 1
            } catch let error as ReadingStoreError where "\(error.code)" == "bulletinFull" {
                refused += 1
            }
        }
        return (stored, refused)
    }

    @Test("the bulletin stops at its budget (posts and bytes); readings keep the store's limit less the bulletin's share")
    func budget() async throws {
        try await withTemporaryDirectory { directory in
            let store = try ReadingStore(directory: directory, configuration: .init(maximumBytes: 8 << 20))
            let budget = store.configuration.bulletin
            #expect(budget == BulletinBudget(maximumPosts: 5000, maximumBytes: 1 << 20))
            #expect(store.configuration.readingBytes == 7 << 20)
            let posts = try await Self.flood(store, posts: 1000)
            let usage = try store.bulletinUsage()
            #expect(posts.refused > 0)
            #expect(usage.posts == posts.stored)
            #expect(usage.bytes <= budget.maximumBytes)
            #expect(usage.bytes + Int64(Self.largestText.utf8.count + 20 + Schema.bulletinRowOverhead) > budget.maximumBytes)
            // The pages the bulletin occupies are measured apart from the readings'.
            let pages = try store.bulletinPageBytes()
            #expect(pages >= usage.bytes / 2 && pages <= usage.bytes * 2)
        }
    }

    @Test("the usage counters follow inserts and deletions; expired posts make room for new ones")
    func usageFollowsPosts() async throws {
        try await withTemporaryDirectory { directory in
            let store = try ReadingStore(
                directory: directory,
                configuration: .init(bulletin: BulletinBudget(maximumPosts: 3, maximumBytes: 1 << 20)))
            for number in 0..<3 {
                _ = try await store.addBulletinPost(
                    kind: .safe, category: nil, text: "post \(number)", place: "", createdAt: Self.start,
                    expiresAt: Self.start.addingTimeInterval(Double(number + 1) * 60))
            }
            #expect(try store.bulletinUsage().posts == 3)
            await #expect(throws: ReadingStoreError.self) {
                _ = try await store.addBulletinPost(
                    kind: .safe, category: nil, text: "one too many", place: "", createdAt: Self.start, expiresAt: Self.start.addingTimeInterval(60))
            }
            // Once the first has expired, a new post takes its place (the expired one is deleted in the same commit).
            let later = Self.start.addingTimeInterval(61)
            _ = try await store.addBulletinPost(kind: .safe, category: nil, text: "after", place: "", createdAt: later, expiresAt: later.addingTimeInterval(60))
            let usage = try store.bulletinUsage()
            #expect(usage.posts == 3)
            let expectedBytes = ["post 1", "post 2", "after"].reduce(0) { $0 + $1.utf8.count + Schema.bulletinRowOverhead }
            #expect(usage.bytes == Int64(expectedBytes))
            #expect(try store.bulletinCounts(at: later).map(\.count) == [3])
        }
    }

    @Test("the authorities' order: open help requests first, oldest first, then the rest; pages meet without gaps")
    func authorityOrder() async throws {
        try await withTemporaryDirectory { directory in
            let store = try ReadingStore(directory: directory)
            var expected: [Int64] = []
            var others: [Int64] = []
            for number in 0..<25 {
                let kind: BulletinKind = number % 3 == 0 ? .request : (number % 3 == 1 ? .offer : .safe)
                let post = try await store.addBulletinPost(
                    kind: kind, category: kind == .safe ? nil : .water, text: "\(number)", place: "", createdAt: Self.start,
                    expiresAt: Self.start.addingTimeInterval(3600))
                if kind == .request { expected.append(post.id) } else { others.append(post.id) }
            }
            expected += others
            var seen: [Int64] = []
            var cursor: BulletinCursor?
            repeat {
                let page = try store.openBulletinPostsForAuthorities(at: Self.start, after: cursor, limit: 4)
                seen += page.map(\.id)
                cursor = page.count == 4 ? page.last.map(BulletinCursor.init(after:)) : nil
            } while cursor != nil
            #expect(seen == expected)
        }
    }
}
