import Foundation
import GRDB

/// The last crisis command accepted by LoRaWAN downlink from one authority key. The store does not verify
/// anything; the portal's crisis downlink receiver does before it stores.
public struct StoredCrisisCommand: Sendable, Hashable {
    /// The SHA-256 fingerprint of the authority's public key: what the row is kept by.
    public var keyFingerprint: String
    /// The key id the configuration gave the key when the command was accepted.
    public var keyID: String
    /// The configured name of the authority, when the command was accepted.
    public var issuer: String
    /// `true`: a crisis declaration; `false`: the end of one.
    public var declaresCrisis: Bool
    public var districtTag: UInt32
    public var issuedAt: Date
    /// Orders two commands issued in the same second.
    public var sequence: Int
    /// When the command stops being valid (a declaration: when its crisis ends).
    public var validUntil: Date
    public var receivedAt: Date

    public init(
        keyFingerprint: String, keyID: String, issuer: String, declaresCrisis: Bool, districtTag: UInt32, issuedAt: Date,
        sequence: Int, validUntil: Date, receivedAt: Date
    ) {
        self.keyFingerprint = keyFingerprint
        self.keyID = keyID
        self.issuer = issuer
        self.declaresCrisis = declaresCrisis
        self.districtTag = districtTag
        self.issuedAt = issuedAt
        self.sequence = sequence
        self.validUntil = validUntil
        self.receivedAt = receivedAt
    }
}

/// What ``ReadingStore/storeCrisisCommand(_:)`` did with a command.
public enum CrisisCommandStoreOutcome: Sendable, Hashable {
    /// Newer than the last one kept for its key (which it replaced), or the key's first.
    case stored
    /// Not newer than the one kept (issued at `keptIssuedAt` with `keptSequence`): a replay.
    case stale(keptIssuedAt: Date, keptSequence: Int)
}

extension ReadingStore {
    /// Keeps `command` as its key's last unless the key's last is as new or newer (issue time, then sequence), in
    /// one transaction, so two copies arriving at once cannot both count as new.
    public func storeCrisisCommand(_ command: StoredCrisisCommand) async throws -> CrisisCommandStoreOutcome {
        try await self.pool.write { db in
            if let kept = try Row.fetchOne(
                db, sql: "SELECT issued_at, sequence FROM crisis_command WHERE key_fingerprint = ?", arguments: [command.keyFingerprint])
            {
                let keptIssuedAt: Int64 = kept[0]
                let keptSequence: Int = kept[1]
                let issuedAt = millisecondsSinceEpoch(command.issuedAt)
                if (issuedAt, command.sequence) <= (keptIssuedAt, keptSequence) {
                    return .stale(keptIssuedAt: dateFromMilliseconds(keptIssuedAt), keptSequence: keptSequence)
                }
            }
            try db.execute(
                sql: """
                    INSERT OR REPLACE INTO crisis_command(key_fingerprint, key_id, issuer, declares_crisis, district_tag, issued_at,
                      sequence, valid_until, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    command.keyFingerprint, command.keyID, command.issuer, command.declaresCrisis, Int64(command.districtTag),
                    millisecondsSinceEpoch(command.issuedAt), command.sequence, millisecondsSinceEpoch(command.validUntil),
                    millisecondsSinceEpoch(command.receivedAt),
                ]
            )
            return .stored
        }
    }

    /// The last accepted command of every key, newest issued first.
    public func crisisCommands() throws -> [StoredCrisisCommand] {
        try self.pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT key_fingerprint, key_id, issuer, declares_crisis, district_tag, issued_at, sequence, valid_until,
                      received_at FROM crisis_command ORDER BY issued_at DESC, sequence DESC, key_fingerprint
                    """
            ).map { row in
                StoredCrisisCommand(
                    keyFingerprint: row[0], keyID: row[1], issuer: row[2], declaresCrisis: row[3],
                    districtTag: UInt32(truncatingIfNeeded: row[4] as Int64), issuedAt: dateFromMilliseconds(row[5]),
                    sequence: row[6], validUntil: dateFromMilliseconds(row[7]), receivedAt: dateFromMilliseconds(row[8]))
            }
        }
    }
}
