import Foundation
import ReadingStore

extension BulletinCount {
    /// Open posts counted by kind and category, in the order of ``BulletinKind`` and ``BulletinCategory`` (posts
    /// without a category first within their kind). The portal takes its counts from the database
    /// (``ReadingStore/bulletinCounts(at:)``); this is for snapshots made from a list of posts.
    public static func counts(of posts: [BulletinPost]) -> [BulletinCount] {
        var counts: [BulletinKey: Int] = [:]
        var expiries: [BulletinKey: Date] = [:]
        for post in posts {
            let key = BulletinKey(kind: post.kind, category: post.category)
            counts[key, default: 0] += 1
            expiries[key] = max(expiries[key] ?? post.expiresAt, post.expiresAt)
        }
        return counts.keys.sorted().map {
            BulletinCount(kind: $0.kind, category: $0.category, count: counts[$0] ?? 0, latestExpiry: expiries[$0])
        }
    }

    /// `counts` in the feeds' order (see ``counts(of:)``).
    public static func ordered(_ counts: [BulletinCount]) -> [BulletinCount] {
        counts.sorted { BulletinKey(kind: $0.kind, category: $0.category) < BulletinKey(kind: $1.kind, category: $1.category) }
    }
}

/// A kind and category, ordered as their enums declare them so that feeds list them the same way every time.
private struct BulletinKey: Hashable, Comparable {
    var kind: BulletinKind
    var category: BulletinCategory?

    private var rank: (Int, Int) {
        let kindRank = BulletinKind.allCases.firstIndex(of: self.kind) ?? 0
        let categoryRank = self.category.flatMap { BulletinCategory.allCases.firstIndex(of: $0) }.map { $0 + 1 } ?? 0
        return (kindRank, categoryRank)
    }

    static func < (lhs: BulletinKey, rhs: BulletinKey) -> Bool { lhs.rank < rhs.rank }
}

/// One page of the open posts an authority sees (help requests first, oldest first) and where the next begins.
public struct BulletinFeedPage: Sendable, Hashable {
    public var posts: [BulletinPost]
    /// After the last post of this page; `nil` on the last page.
    public var next: BulletinCursor?

    public init(posts: [BulletinPost], next: BulletinCursor?) {
        self.posts = posts
        self.next = next
    }
}
