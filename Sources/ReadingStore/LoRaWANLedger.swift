import Foundation
import GRDB

/// What a LoRaWAN airtime entry stands for.
public enum LoRaWANAirtimeKind: String, Sendable, Hashable, CaseIterable {
    /// One of our uplinks (a box report, a crisis summary).
    case uplink
    /// A join request.
    case join
    /// A frame the modem sent by itself (the RAK3172's empty frame after an oversized payload or a confirmed
    /// downlink): it costs airtime all the same.
    case emptyFrame = "empty-frame"
    /// A downlink received: no uplink airtime, but TTN allows only so many a day.
    case downlink
}

/// One transmission (or received downlink) in the rolling 24-hour ledger.
public struct LoRaWANAirtimeEntry: Sendable, Hashable {
    public var kind: LoRaWANAirtimeKind
    public var at: Date
    /// Time on air; zero for a downlink.
    public var airtime: Duration
    /// EU868 data rate of the frame.
    public var dataRate: Int
    /// Application payload bytes.
    public var payloadLength: Int

    public init(kind: LoRaWANAirtimeKind, at: Date, airtime: Duration, dataRate: Int, payloadLength: Int) {
        self.kind = kind
        self.at = at
        self.airtime = airtime
        self.dataRate = dataRate
        self.payloadLength = payloadLength
    }
}

extension ReadingStore {
    /// How long ledger entries are kept: the 24-hour window, and a day more for `kiezbox status`'s history.
    public static let loRaWANLedgerRetention: TimeInterval = 48 * 3600

    /// Adds `entry` to the ledger and forgets entries older than ``loRaWANLedgerRetention``.
    ///
    /// The commit is fsync'd before this returns (`synchronous=FULL` for this one transaction): the uplink
    /// records a frame *before* it hands it to the modem, so a power cut right after a send cannot make the
    /// box forget airtime it spent and overspend TTN's daily allowance after the reboot. A few hundred
    /// entries a day make the extra fsyncs negligible.
    public func recordLoRaWANAirtime(_ entry: LoRaWANAirtimeEntry) async throws -> Int64 {
        try await self.pool.writeWithoutTransaction { db in
            try Self.durableTransaction(db) {
                try db.execute(
                    sql: "DELETE FROM lorawan_airtime WHERE at < ?",
                    arguments: [millisecondsSinceEpoch(entry.at.addingTimeInterval(-Self.loRaWANLedgerRetention))]
                )
                try db.execute(
                    sql: "INSERT INTO lorawan_airtime(kind, at, airtime_us, data_rate, payload_length) VALUES (?, ?, ?, ?, ?)",
                    arguments: [
                        entry.kind.rawValue, millisecondsSinceEpoch(entry.at), Self.microseconds(entry.airtime), entry.dataRate,
                        entry.payloadLength,
                    ]
                )
                return db.lastInsertedRowID
            }
        }
    }

    /// Takes back an entry recorded for a frame that never went on air (the modem refused it before sending).
    public func withdrawLoRaWANAirtime(id: Int64) async throws {
        try await self.pool.write { db in
            try db.execute(sql: "DELETE FROM lorawan_airtime WHERE id = ?", arguments: [id])
        }
    }

    /// The ledger's entries at or after `since`, oldest first.
    public func loRaWANAirtime(since: Date) throws -> [LoRaWANAirtimeEntry] {
        try self.pool.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT kind, at, airtime_us, data_rate, payload_length FROM lorawan_airtime WHERE at >= ? ORDER BY at, id",
                arguments: [millisecondsSinceEpoch(since)]
            ).compactMap { row in
                guard let kind = LoRaWANAirtimeKind(rawValue: row[0]) else { return nil }
                let microseconds: Int64 = row[2]
                return LoRaWANAirtimeEntry(
                    kind: kind, at: dateFromMilliseconds(row[1]), airtime: .microseconds(microseconds), dataRate: row[3],
                    payloadLength: row[4]
                )
            }
        }
    }

    static func microseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }
}

/// What the running LoRaWAN uplink decided to send next, kept in the store so `kiezbox status` and `/metrics`
/// (other processes and services) can show it.
public struct LoRaWANNextSend: Sendable, Hashable, Codable {
    /// The earliest moment the frame may go (fair use, duty cycle, cadence).
    public var at: Date
    /// "report", "crisis-summary", "join".
    public var frame: String
    /// Why then: "routine", "significant change in pm2_5", "duty cycle", "join backoff"…
    public var reason: String

    public init(at: Date, frame: String, reason: String) {
        self.at = at
        self.frame = frame
        self.reason = reason
    }
}

extension ReadingStore {
    /// Records the uplink's next planned send (nil: nothing planned, e.g. no modem).
    public func setLoRaWANNextSend(_ next: LoRaWANNextSend?) async throws {
        try await self.setMetaJSON(next, key: MetaKey.loRaWANNextSend)
    }

    /// The uplink's last recorded plan, if any.
    public func loRaWANNextSend() throws -> LoRaWANNextSend? {
        try self.metaJSON(LoRaWANNextSend.self, key: MetaKey.loRaWANNextSend)
    }

    /// Stores `value` as JSON under meta `key`; nil deletes the key.
    func setMetaJSON(_ value: (some Encodable)?, key: String) async throws {
        let text = try value.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        try await self.pool.write { db in
            if let text {
                try db.execute(sql: "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", arguments: [key, text])
            } else {
                try db.execute(sql: "DELETE FROM meta WHERE key = ?", arguments: [key])
            }
        }
    }

    /// The JSON under meta `key` as `type`; nil when absent or no longer decodable.
    func metaJSON<Value: Decodable>(_ type: Value.Type, key: String) throws -> Value? {
        let text = try self.pool.read { db in
            try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key])
        }
        return text.flatMap { try? JSONDecoder().decode(Value.self, from: Data($0.utf8)) }
    }
}
