public import Foundation
import KiezboxCore
import GRDB

/// One packet the Meshtastic bridge put on air, in its rolling one-hour ledger.
public struct MeshtasticAirtimeEntry: Sendable, Hashable {
    public var at: Date
    public var airtime: Duration
    /// The traffic class it was charged to ("status", "crisis").
    public var traffic: String
    /// The Meshtastic port number it was sent on.
    public var port: Int
    /// Bytes on air (packet header and payload).
    public var bytes: Int

    public init(at: Date, airtime: Duration, traffic: String, port: Int, bytes: Int) {
        self.at = at
        self.airtime = airtime
        self.traffic = traffic
        self.port = port
        self.bytes = bytes
    }
}

/// A control message from the Kiezbox 2.0 pilot's admin tools, as received: kept for `kiezbox status` and the log.
/// They are unauthenticated, so a box obeys one only where its configuration says so.
public struct PilotControlRecord: Sendable, Hashable {
    public var at: Date
    /// Who sent it: the Meshtastic node ("!a1b2c3d4") and, when the meta names one, the pilot box.
    public var sender: String
    /// What it asked for, in one line.
    public var description: String
    public var obeyed: Bool

    public init(at: Date, sender: String, description: String, obeyed: Bool) {
        self.at = at
        self.sender = sender
        self.description = description
        self.obeyed = obeyed
    }
}

/// The Meshtastic radio link as the bridge last saw it, for `kiezbox status` and `/metrics` (other processes).
public struct MeshtasticLinkRecord: Sendable, Hashable, Codable {
    /// "connecting", "handshaking", "ready", "disconnected".
    public var state: String
    /// Why it is disconnected, when it is.
    public var reason: String?
    /// Where the radio is: "/dev/ttyUSB0", "tcp://127.0.0.1:4403".
    public var endpoint: String
    /// The radio's node number, once a handshake completed.
    public var nodeNumber: UInt32?
    public var firmwareVersion: String?
    /// The radio's channels as "index:name".
    public var channels: [String]
    /// Nodes in the radio's node database.
    public var nodesKnown: Int
    public var changedAt: Date

    public init(
        state: String, reason: String? = nil, endpoint: String, nodeNumber: UInt32? = nil, firmwareVersion: String? = nil,
        channels: [String] = [], nodesKnown: Int = 0, changedAt: Date
    ) {
        self.state = state
        self.reason = reason
        self.endpoint = endpoint
        self.nodeNumber = nodeNumber
        self.firmwareVersion = firmwareVersion
        self.channels = channels
        self.nodesKnown = nodesKnown
        self.changedAt = changedAt
    }
}

extension ReadingStore {
    /// How long airtime entries are kept: the rolling hour and one more for `kiezbox status`.
    public static let meshtasticLedgerRetention: TimeInterval = 2 * 3600
    /// How many pilot control messages are kept.
    public static let pilotControlRetention = 100

    /// Adds `entry` to the airtime ledger and forgets entries past ``meshtasticLedgerRetention``.
    ///
    /// An ordinary commit (not fsync'd like the LoRaWAN ledger): the radio's firmware enforces the band's duty
    /// cycle itself; this ledger keeps the box's own, smaller share, which a power cut can at worst overspend by
    /// the last few packets.
    public func recordMeshtasticAirtime(_ entry: MeshtasticAirtimeEntry) async throws {
        try await self.pool.write { db in
            try db.execute(
                sql: "DELETE FROM meshtastic_airtime WHERE at < ?",
                arguments: [millisecondsSinceEpoch(entry.at.addingTimeInterval(-Self.meshtasticLedgerRetention))])
            try db.execute(
                sql: "INSERT INTO meshtastic_airtime(at, airtime_us, traffic, port, bytes) VALUES (?, ?, ?, ?, ?)",
                arguments: [millisecondsSinceEpoch(entry.at), Self.microseconds(entry.airtime), entry.traffic, entry.port, entry.bytes])
        }
    }

    /// The ledger's entries at or after `since`, oldest first.
    public func meshtasticAirtime(since: Date) throws -> [MeshtasticAirtimeEntry] {
        try self.pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT at, airtime_us, traffic, port, bytes FROM meshtastic_airtime WHERE at >= ? ORDER BY at, id",
                arguments: [millisecondsSinceEpoch(since)]
            ).map { row in
                let microseconds: Int64 = row[1]
                return MeshtasticAirtimeEntry(
                    at: dateFromMilliseconds(row[0]), airtime: .microseconds(microseconds), traffic: row[2], port: row[3], bytes: row[4])
            }
        }
    }

    /// Keeps a control message (the newest ``pilotControlRetention``).
    public func recordPilotControl(_ record: PilotControlRecord) async throws {
        try await self.pool.write { db in
            try db.execute(
                sql: "INSERT INTO pilot_control(at, sender, description, obeyed) VALUES (?, ?, ?, ?)",
                arguments: [millisecondsSinceEpoch(record.at), record.sender, record.description, record.obeyed])
            try db.execute(
                sql: "DELETE FROM pilot_control WHERE id <= (SELECT max(id) FROM pilot_control) - ?",
                arguments: [Self.pilotControlRetention])
        }
    }

    /// The newest control messages first, at most `limit`.
    public func pilotControls(limit: Int = 10) throws -> [PilotControlRecord] {
        try self.pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT at, sender, description, obeyed FROM pilot_control ORDER BY id DESC LIMIT ?", arguments: [limit]
            ).map { row in
                PilotControlRecord(at: dateFromMilliseconds(row[0]), sender: row[1], description: row[2], obeyed: row[3])
            }
        }
    }

    /// Records the radio link's state (nil: no radio configured any more).
    public func setMeshtasticLink(_ record: MeshtasticLinkRecord?) async throws {
        try await self.setMetaJSON(record, key: MetaKey.meshtasticLink)
    }

    /// The radio link's last recorded state.
    public func meshtasticLink() throws -> MeshtasticLinkRecord? {
        try self.metaJSON(MeshtasticLinkRecord.self, key: MetaKey.meshtasticLink)
    }
}

/// The Meshtastic bridge's account as `kiezbox status` and `/metrics` show it: the airtime of the last hour
/// against the box's share of the band, and the radio link.
public struct MeshtasticAccount: Sendable, Hashable, Encodable {
    /// The window the airtime is counted over: the band's duty cycle is one rolling hour.
    public static let window: TimeInterval = 3600

    public var airtimeUsedSeconds: Double
    /// The box's share of the band's allowance per hour.
    public var airtimeLimitSeconds: Double
    /// The band's whole allowance per hour (EU868 sub-band P: 10 %, 360 s).
    public var bandAllowanceSeconds: Double
    /// Airtime by traffic class ("status", "crisis") in the last hour.
    public var airtimeByTraffic: [String: Double]
    public var packetsSent: Int
    public var bytesSent: Int
    /// The radio link as the bridge last recorded it; nil before the daemon first ran with a radio.
    public var link: MeshtasticLinkRecord?

    public var airtimeLeftSeconds: Double { max(0, self.airtimeLimitSeconds - self.airtimeUsedSeconds) }
}

extension ReadingStore {
    /// The account of the hour before `now`, for a box that may use `airtimeShare` of `bandAllowance`.
    public func meshtasticAccount(airtimeShare: Double, bandAllowance: Duration = .seconds(360), now: Date) throws -> MeshtasticAccount {
        let entries = try self.meshtasticAirtime(since: now.addingTimeInterval(-MeshtasticAccount.window)).filter { $0.at <= now }
        var byTraffic: [String: Double] = [:]
        for entry in entries { byTraffic[entry.traffic, default: 0] += entry.airtime.timeInterval }
        return MeshtasticAccount(
            airtimeUsedSeconds: entries.reduce(0) { $0 + $1.airtime.timeInterval },
            airtimeLimitSeconds: bandAllowance.timeInterval * airtimeShare, bandAllowanceSeconds: bandAllowance.timeInterval,
            airtimeByTraffic: byTraffic, packetsSent: entries.count, bytesSent: entries.reduce(0) { $0 + $1.bytes },
            link: try self.meshtasticLink())
    }
}
