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
    /// Where the post came from when it was not typed on this box: the origin's name ("kb2-d3-b17" for a
    /// Kiezbox 2.0 pilot box's emergency button, another Kiezbox's id). Nil for a post from this box's portal.
    public var origin: String?

    public init(
        id: Int64, kind: BulletinKind, category: BulletinCategory?, text: String, place: String, createdAt: Date,
        expiresAt: Date, origin: String? = nil
    ) {
        self.id = id
        self.kind = kind
        self.category = category
        self.text = text
        self.place = place
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.origin = origin
    }
}

/// A post that arrived from elsewhere (the LoRa mesh, another box): who sent it and its id there, so a copy that
/// arrives again (a rebroadcast, a second path) is recognised.
public struct BulletinOrigin: Sendable, Hashable {
    /// The origin's name, shown beside the post.
    public var name: String
    /// The post's id at the origin; unique per origin.
    public var reference: String

    public init(name: String, reference: String) {
        self.name = name
        self.reference = reference
    }
}

extension ReadingStore {
    /// Stores a new post, committed at once, and returns it with its id.
    ///
    /// Expired posts are deleted first, in the same transaction; a post that would take the bulletin beyond
    /// ``ReadingStoreConfiguration/bulletin`` is refused (``ReadingStoreError/Code/bulletinFull``): nothing already
    /// posted is pushed out to make room.
    public func addBulletinPost(
        kind: BulletinKind, category: BulletinCategory?, text: String, place: String, createdAt: Date, expiresAt: Date
    ) async throws -> BulletinPost {
        // Without an origin nothing can be a duplicate, so a post is always returned.
        try await self.insertBulletinPost(
            kind: kind, category: category, text: text, place: place, createdAt: createdAt, expiresAt: expiresAt, origin: nil)!
    }

    /// Stores a post that arrived from `origin`, committed at once; nil when the store already has the post with
    /// that origin and reference (expired or not: an old copy heard again does not come back). Budget and expiry
    /// rules as ``addBulletinPost(kind:category:text:place:createdAt:expiresAt:)``, and posts from elsewhere fill at
    /// most half of the bulletin's posts.
    public func addRelayedBulletinPost(
        kind: BulletinKind, category: BulletinCategory?, text: String, place: String, createdAt: Date, expiresAt: Date,
        origin: BulletinOrigin
    ) async throws -> BulletinPost? {
        try await self.insertBulletinPost(
            kind: kind, category: category, text: text, place: place, createdAt: createdAt, expiresAt: expiresAt, origin: origin)
    }

    private func insertBulletinPost(
        kind: BulletinKind, category: BulletinCategory?, text: String, place: String, createdAt: Date, expiresAt: Date,
        origin: BulletinOrigin?
    ) async throws -> BulletinPost? {
        let budget = self.configuration.bulletin
        let id: Int64? = try await self.pool.write { db in
            if let origin,
                try Bool.fetchOne(
                    db, sql: "SELECT 1 FROM bulletin_origin_seen WHERE origin = ? AND reference = ?",
                    arguments: [origin.name, origin.reference]) == true
            {
                return nil
            }
            try db.execute(sql: "DELETE FROM bulletin_post WHERE expires_at <= ?", arguments: [millisecondsSinceEpoch(createdAt)])
            let usage = try Row.fetchOne(db, sql: "SELECT posts, bytes FROM bulletin_usage WHERE id = 1")
            let posts: Int = usage?[0] ?? 0
            let bytes: Int64 = usage?[1] ?? 0
            let cost = Int64(text.utf8.count + place.utf8.count + Schema.bulletinRowOverhead)
            guard posts < budget.maximumPosts, bytes + cost <= budget.maximumBytes else {
                throw ReadingStoreError(
                    .bulletinFull, "the bulletin is full (\(posts) posts, \(bytes) bytes; budget \(budget.maximumPosts) posts, \(budget.maximumBytes) bytes)")
            }
            if origin != nil {
                // Posts from elsewhere (unauthenticated radio traffic, for now) may fill half the bulletin at most,
                // so a flood over LoRa cannot keep the box's own residents from posting.
                let relayed = try Int.fetchOne(db, sql: "SELECT count(*) FROM bulletin_post WHERE origin IS NOT NULL") ?? 0
                guard relayed < budget.maximumPosts / 2 else {
                    throw ReadingStoreError(
                        .bulletinFull, "the bulletin holds \(relayed) posts from elsewhere, the most it takes (half of \(budget.maximumPosts))")
                }
            }
            try db.execute(
                sql: """
                    INSERT INTO bulletin_post(kind, category, text, place, created_at, expires_at, origin, origin_reference)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    kind.rawValue, category?.rawValue, text, place, millisecondsSinceEpoch(createdAt),
                    millisecondsSinceEpoch(expiresAt), origin?.name, origin?.reference,
                ]
            )
            let id = db.lastInsertedRowID
            if let origin {
                // Remembered past the post's expiry (until a day after it), so a late rebroadcast stays out.
                try db.execute(
                    sql: "DELETE FROM bulletin_origin_seen WHERE remember_until <= ?", arguments: [millisecondsSinceEpoch(createdAt)])
                try db.execute(
                    sql: "INSERT INTO bulletin_origin_seen(origin, reference, remember_until) VALUES (?, ?, ?)",
                    arguments: [origin.name, origin.reference, millisecondsSinceEpoch(expiresAt.addingTimeInterval(86_400))])
            }
            return id
        }
        return id.map {
            BulletinPost(
                id: $0, kind: kind, category: category, text: text, place: place, createdAt: createdAt, expiresAt: expiresAt,
                origin: origin?.name)
        }
    }

    /// Deletes the post that arrived from `origin` (its origin withdrew it) and remembers the pair until
    /// `rememberUntil` plus a day, so a late copy of the post stays out; returns whether a post was deleted.
    @discardableResult
    public func removeRelayedBulletinPost(origin: BulletinOrigin, rememberUntil: Date) async throws -> Bool {
        try await self.pool.write { db in
            try db.execute(
                sql: "DELETE FROM bulletin_post WHERE origin = ? AND origin_reference = ?", arguments: [origin.name, origin.reference])
            let deleted = db.changesCount > 0
            try db.execute(
                sql: "INSERT OR REPLACE INTO bulletin_origin_seen(origin, reference, remember_until) VALUES (?, ?, ?)",
                arguments: [origin.name, origin.reference, millisecondsSinceEpoch(rememberUntil.addingTimeInterval(86_400))])
            return deleted
        }
    }

    /// Deletes one post (moderation); returns whether it existed.
    @discardableResult
    public func deleteBulletinPost(id: Int64) async throws -> Bool {
        try await self.pool.write { db in
            try db.execute(sql: "DELETE FROM bulletin_post WHERE id = ?", arguments: [id])
            return db.changesCount > 0
        }
    }

    /// One post by its id, open or expired but not yet deleted; nil when there is none.
    public func bulletinPost(id: Int64) throws -> BulletinPost? {
        try self.pool.read { db in try Self.posts(db, where: "id = ?", order: "id", limit: 1, arguments: [id]).first }
    }

    /// This box's posts the bulletin relay has published and not yet withdrawn (text and place left out: a
    /// removal does not carry them), so a post deleted while the daemon was stopped is withdrawn at its next start.
    public func publishedBulletinPosts() throws -> [BulletinPost] {
        try self.pool.read { db in
            try Self.meta(MetaKey.publishedBulletinPosts, in: db).map { try JSONDecoder().decode([BulletinPost].self, from: Data($0.utf8)) } ?? []
        }
    }

    /// Replaces the record of published posts (see ``publishedBulletinPosts()``).
    public func setPublishedBulletinPosts(_ posts: [BulletinPost]) async throws {
        let withoutContent = posts.sorted { $0.id < $1.id }.map { post in
            var post = post
            post.text = ""
            post.place = ""
            return post
        }
        let json = String(decoding: try JSONEncoder().encode(withoutContent), as: UTF8.self)
        try await self.pool.write { db in try Self.setMeta(MetaKey.publishedBulletinPosts, json, in: db) }
    }

    /// The posts that have not expired at `now`, newest first, at most `limit`, older than post `before` if given.
    public func openBulletinPosts(at now: Date, before: Int64? = nil, limit: Int = 500) throws -> [BulletinPost] {
        try self.pool.read { db in
            try Self.posts(
                db, where: "expires_at > ? AND id < ?", order: "id DESC", limit: limit,
                arguments: [millisecondsSinceEpoch(now), before ?? Int64.max])
        }
    }

    /// Every open post typed on this box (none from elsewhere), oldest first: what the bulletin relay publishes.
    /// Not a page: the bulletin's budget bounds it, and a post left out would look withdrawn to the relay.
    public func openOwnBulletinPosts(at now: Date) throws -> [BulletinPost] {
        try self.pool.read { db in
            try Self.posts(
                db, where: "expires_at > ? AND origin IS NULL", order: "id", limit: self.configuration.bulletin.maximumPosts,
                arguments: [millisecondsSinceEpoch(now)])
        }
    }

    /// A page of open posts in the order the authorities work through them: help requests first, oldest first
    /// (the longest waiting on top, so no volume of newer posts can push them out of the first page), then
    /// offers and check-ins, oldest first. `after` continues after the last post of the previous page.
    public func openBulletinPostsForAuthorities(at now: Date, after: BulletinCursor? = nil, limit: Int) throws -> [BulletinPost] {
        try self.pool.read { db in
            let now = millisecondsSinceEpoch(now)
            var posts: [BulletinPost] = []
            if after?.requestsDone != true {
                posts = try Self.posts(
                    db, where: "expires_at > ? AND kind = 'request' AND id > ?", order: "id", limit: limit,
                    arguments: [now, after?.id ?? 0])
            }
            if posts.count < limit {
                let afterID = after?.requestsDone == true ? after?.id ?? 0 : 0
                posts += try Self.posts(
                    db, where: "expires_at > ? AND kind <> 'request' AND id > ?", order: "id", limit: limit - posts.count,
                    arguments: [now, afterID])
            }
            return posts
        }
    }

    private static func posts(_ db: Database, where condition: String, order: String, limit: Int, arguments: StatementArguments) throws -> [BulletinPost] {
        try Row.fetchAll(
            db,
            sql: """
                SELECT id, kind, category, text, place, created_at, expires_at, origin FROM bulletin_post
                WHERE \(condition) ORDER BY \(order) LIMIT ?
                """,
            arguments: arguments + [limit]
        ).compactMap { row in
            guard let kind = BulletinKind(rawValue: row[1]) else { return nil }
            return BulletinPost(
                id: row[0], kind: kind, category: (row[2] as String?).flatMap(BulletinCategory.init(rawValue:)),
                text: row[3], place: row[4], createdAt: dateFromMilliseconds(row[5]), expiresAt: dateFromMilliseconds(row[6]),
                origin: row[7]
            )
        }
    }

    /// Open posts counted by kind and category, from the database (the `bulletin_post_open` index alone): what
    /// anyone may see without an authority token.
    public func bulletinCounts(at now: Date) throws -> [BulletinCount] {
        try self.pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT kind, category, count(*), max(expires_at) FROM bulletin_post WHERE expires_at > ?
                    GROUP BY kind, category ORDER BY kind, category
                    """,
                arguments: [millisecondsSinceEpoch(now)]
            ).compactMap { row in
                guard let kind = BulletinKind(rawValue: row[0]) else { return nil }
                return BulletinCount(
                    kind: kind, category: (row[1] as String?).flatMap(BulletinCategory.init(rawValue:)), count: row[2],
                    latestExpiry: dateFromMilliseconds(row[3]))
            }
        }
    }

    /// What the bulletin holds against its budget (expired posts not yet deleted included).
    public func bulletinUsage() throws -> (posts: Int, bytes: Int64) {
        try self.pool.read { db in
            let row = try Row.fetchOne(db, sql: "SELECT posts, bytes FROM bulletin_usage WHERE id = 1")
            return (row?[0] ?? 0, row?[1] ?? 0)
        }
    }

    /// The bytes of the pages the bulletin occupies (what retention leaves out of the readings' share).
    func bulletinPageBytes() throws -> Int64 {
        try self.pool.read { db in try Self.bulletinPageBytes(db) }
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

/// Where a page of the authorities' post list ends: the last post shown and whether the help requests are done.
public struct BulletinCursor: Sendable, Hashable {
    public var requestsDone: Bool
    public var id: Int64

    public init(requestsDone: Bool, id: Int64) {
        self.requestsDone = requestsDone
        self.id = id
    }

    /// The cursor after `post` (the last of a page).
    public init(after post: BulletinPost) {
        self.init(requestsDone: post.kind != .request, id: post.id)
    }

    /// As a query value: `r<id>` within the help requests, `o<id>` within the others.
    public var queryValue: String { (self.requestsDone ? "o" : "r") + String(self.id) }

    /// The cursor a query value names; nil for anything else.
    public init?(queryValue: some StringProtocol) {
        guard let first = queryValue.first, first == "r" || first == "o", let id = Int64(String(queryValue.dropFirst())), id >= 0 else { return nil }
        self.init(requestsDone: first == "o", id: id)
    }
}

/// How many open posts there are of one kind and category.
public struct BulletinCount: Sendable, Hashable, Codable {
    public var kind: BulletinKind
    public var category: BulletinCategory?
    public var count: Int
    /// When the last of them expires.
    public var latestExpiry: Date?

    public init(kind: BulletinKind, category: BulletinCategory?, count: Int, latestExpiry: Date? = nil) {
        self.kind = kind
        self.category = category
        self.count = count
        self.latestExpiry = latestExpiry
    }
}
