import Foundation
import GRDB

/// What a bulletin post is.
public enum BulletinKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// Someone needs help.
    case request
    /// Someone offers help.
    case offer
    /// "I am safe": a check-in for family and neighbours.
    case safe
}

/// What a help request or offer is about (a check-in has none).
public enum BulletinCategory: String, Sendable, Hashable, Codable, CaseIterable {
    case medical, fire, food, water, power, other
}

/// A post on the neighbourhood bulletin, as stored. Posts carry no name or phone number unless the writer puts
/// one in the text, which is shown to every neighbour.
public struct BulletinPost: Sendable, Hashable, Codable, Identifiable {
    public var id: Int64
    public var kind: BulletinKind
    public var category: BulletinCategory?
    public var text: String
    /// Where, in the writer's words ("Ecke Wrangel-/Falckensteinstraße"); may be empty.
    public var place: String
    public var createdAt: Date
    public var expiresAt: Date

    public init(
        id: Int64, kind: BulletinKind, category: BulletinCategory?, text: String, place: String, createdAt: Date,
        expiresAt: Date
    ) {
        self.id = id
        self.kind = kind
        self.category = category
        self.text = text
        self.place = place
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}

extension ReadingStore {
    /// Stores a new post, committed at once, and returns it with its id.
    public func addBulletinPost(
        kind: BulletinKind, category: BulletinCategory?, text: String, place: String, createdAt: Date, expiresAt: Date
    ) async throws -> BulletinPost {
        let id = try await self.pool.write { db in
            try db.execute(
                sql: "INSERT INTO bulletin_post(kind, category, text, place, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [
                    kind.rawValue, category?.rawValue, text, place, millisecondsSinceEpoch(createdAt),
                    millisecondsSinceEpoch(expiresAt),
                ]
            )
            return db.lastInsertedRowID
        }
        return BulletinPost(id: id, kind: kind, category: category, text: text, place: place, createdAt: createdAt, expiresAt: expiresAt)
    }

    /// The posts that have not expired at `now`, newest first.
    public func openBulletinPosts(at now: Date, limit: Int = 500) throws -> [BulletinPost] {
        try self.pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT id, kind, category, text, place, created_at, expires_at FROM bulletin_post
                    WHERE expires_at > ? ORDER BY id DESC LIMIT ?
                    """,
                arguments: [millisecondsSinceEpoch(now), limit]
            ).compactMap { row in
                guard let kind = BulletinKind(rawValue: row[1]) else { return nil }
                return BulletinPost(
                    id: row[0], kind: kind, category: (row[2] as String?).flatMap(BulletinCategory.init(rawValue:)),
                    text: row[3], place: row[4], createdAt: dateFromMilliseconds(row[5]), expiresAt: dateFromMilliseconds(row[6])
                )
            }
        }
    }

    /// Open posts counted by kind and category: what anyone may see without an authority token.
    public func bulletinCounts(at now: Date) throws -> [BulletinCount] {
        try self.pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT kind, category, count(*) FROM bulletin_post WHERE expires_at > ?
                    GROUP BY kind, category ORDER BY kind, category
                    """,
                arguments: [millisecondsSinceEpoch(now)]
            ).compactMap { row in
                guard let kind = BulletinKind(rawValue: row[0]) else { return nil }
                return BulletinCount(kind: kind, category: (row[1] as String?).flatMap(BulletinCategory.init(rawValue:)), count: row[2])
            }
        }
    }

    /// Deletes posts that expired before `now`; returns how many.
    @discardableResult
    public func deleteExpiredBulletinPosts(at now: Date) async throws -> Int {
        try await self.pool.write { db in
            try db.execute(sql: "DELETE FROM bulletin_post WHERE expires_at <= ?", arguments: [millisecondsSinceEpoch(now)])
            return db.changesCount
        }
    }
}

/// How many open posts there are of one kind and category.
public struct BulletinCount: Sendable, Hashable, Codable {
    public var kind: BulletinKind
    public var category: BulletinCategory?
    public var count: Int

    public init(kind: BulletinKind, category: BulletinCategory?, count: Int) {
        self.kind = kind
        self.category = category
        self.count = count
    }
}
