import ReadingStore

extension BulletinCount {
    /// Open posts counted by kind and category, in the order of ``BulletinKind`` and ``BulletinCategory`` (posts
    /// without a category first within their kind): the aggregate anyone may see. Computed from the snapshot's
    /// posts so that counts and posts in one response always agree.
    public static func counts(of posts: [BulletinPost]) -> [BulletinCount] {
        var counts: [BulletinKey: Int] = [:]
        for post in posts { counts[BulletinKey(kind: post.kind, category: post.category), default: 0] += 1 }
        return counts.keys.sorted().map { BulletinCount(kind: $0.kind, category: $0.category, count: counts[$0] ?? 0) }
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
