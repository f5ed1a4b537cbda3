import Foundation
import GRDB

/// A signed announcement as the store keeps it: the newest accepted version per (issuer, id), with its envelope
/// byte for byte. The store does not verify anything; the portal's announcement desk does before it stores.
public struct StoredAnnouncement: Sendable, Hashable {
    /// The configured name of the authority whose key verified it.
    public var issuer: String
    /// The issuer's id for the announcement.
    public var id: String
    public var keyID: String
    public var issuedAt: Date
    public var expiresAt: Date
    /// Kept (and a replay of an older version refused) until then, also after expiry.
    public var rememberUntil: Date
    /// The signed payload bytes.
    public var payload: Data
    /// The envelope as received, to relay unchanged.
    public var envelope: Data
    public var receivedAt: Date
    /// Where it came from ("api", "mesh").
    public var receivedVia: String

    public init(
        issuer: String, id: String, keyID: String, issuedAt: Date, expiresAt: Date, rememberUntil: Date, payload: Data,
        envelope: Data, receivedAt: Date, receivedVia: String
    ) {
        self.issuer = issuer
        self.id = id
        self.keyID = keyID
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.rememberUntil = rememberUntil
        self.payload = payload
        self.envelope = envelope
        self.receivedAt = receivedAt
        self.receivedVia = receivedVia
    }
}

/// What ``ReadingStore/storeAnnouncement(_:now:)`` did with a version of an announcement.
public enum AnnouncementStoreOutcome: Sendable, Hashable {
    /// New, or newer than the version kept (which it replaced).
    case stored
    /// The version kept has exactly these payload bytes: a second copy, nothing changed.
    case identical
    /// A different version that is not newer than the one kept (issued at `keptIssuedAt`): a replay.
    case stale(keptIssuedAt: Date)
}

extension ReadingStore {
    /// Keeps `announcement` unless the store already has the same or a newer version of it, in one transaction
    /// (so two copies arriving at once cannot both count as new). Forgets announcements whose
    /// ``StoredAnnouncement/rememberUntil`` has passed at `now` on the way.
    public func storeAnnouncement(_ announcement: StoredAnnouncement, now: Date) async throws -> AnnouncementStoreOutcome {
        try await self.pool.write { db in
            try db.execute(sql: "DELETE FROM announcement WHERE remember_until <= ?", arguments: [millisecondsSinceEpoch(now)])
            if let kept = try Row.fetchOne(
                db, sql: "SELECT issued_at, payload FROM announcement WHERE issuer = ? AND id = ?",
                arguments: [announcement.issuer, announcement.id])
            {
                let keptIssuedAt: Int64 = kept[0]
                let keptPayload: Data = kept[1]
                if keptPayload == announcement.payload { return .identical }
                if millisecondsSinceEpoch(announcement.issuedAt) <= keptIssuedAt {
                    return .stale(keptIssuedAt: dateFromMilliseconds(keptIssuedAt))
                }
            }
            try db.execute(
                sql: """
                    INSERT OR REPLACE INTO announcement(issuer, id, key_id, issued_at, expires_at, remember_until, payload,
                      envelope, received_at, received_via) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    announcement.issuer, announcement.id, announcement.keyID, millisecondsSinceEpoch(announcement.issuedAt),
                    millisecondsSinceEpoch(announcement.expiresAt), millisecondsSinceEpoch(announcement.rememberUntil),
                    announcement.payload, announcement.envelope, millisecondsSinceEpoch(announcement.receivedAt),
                    announcement.receivedVia,
                ]
            )
            return .stored
        }
    }

    /// The announcements that have not expired at `now`, newest issued first.
    public func currentAnnouncements(at now: Date) throws -> [StoredAnnouncement] {
        try self.pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT issuer, id, key_id, issued_at, expires_at, remember_until, payload, envelope, received_at,
                      received_via FROM announcement WHERE expires_at > ? ORDER BY issued_at DESC, issuer, id
                    """,
                arguments: [millisecondsSinceEpoch(now)]
            ).map(Self.storedAnnouncement)
        }
    }

    /// Every announcement the store still remembers, expired or not (for tests and diagnostics).
    public func rememberedAnnouncements() throws -> [StoredAnnouncement] {
        try self.pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT issuer, id, key_id, issued_at, expires_at, remember_until, payload, envelope, received_at,
                      received_via FROM announcement ORDER BY issued_at DESC, issuer, id
                    """
            ).map(Self.storedAnnouncement)
        }
    }

    private static func storedAnnouncement(_ row: Row) -> StoredAnnouncement {
        StoredAnnouncement(
            issuer: row[0], id: row[1], keyID: row[2], issuedAt: dateFromMilliseconds(row[3]),
            expiresAt: dateFromMilliseconds(row[4]), rememberUntil: dateFromMilliseconds(row[5]), payload: row[6],
            envelope: row[7], receivedAt: dateFromMilliseconds(row[8]), receivedVia: row[9]
        )
    }
}
