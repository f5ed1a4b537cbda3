public import Foundation
public import KiezboxCore

/// One automatic or declared change of the box's mode: when, into which mode, and why (`kiezbox status`).
public struct CrisisTrigger: Sendable, Hashable, Codable {
    public var at: Date
    public var mode: Mode
    /// What caused it, for residents: "uplink lost for 31 min", "battery 18 % below 20 % with mains lost".
    public var reason: String

    public init(at: Date, mode: Mode, reason: String) {
        self.at = at
        self.mode = mode
        self.reason = reason
    }
}

extension MetaKey {
    /// The newest mode changes, newest first (JSON of `[CrisisTrigger]`).
    static let crisisHistory = "crisis_history"
    /// When any configured uplink last reached the other side (JSON of a `Date`).
    static let uplinkContactAt = "uplink_contact_at"
}

extension ReadingStore {
    /// How many mode changes ``crisisHistory()`` keeps.
    public static let crisisHistoryLimit = 20

    /// Puts `trigger` first in the crisis history, dropping the oldest beyond ``crisisHistoryLimit``.
    public func recordCrisisTrigger(_ trigger: CrisisTrigger) async throws {
        let history = [trigger] + ((try? self.crisisHistory()) ?? [])
        try await self.setMetaJSON(Array(history.prefix(Self.crisisHistoryLimit)), key: MetaKey.crisisHistory)
    }

    /// The recorded mode changes, newest first (empty before the first).
    public func crisisHistory() throws -> [CrisisTrigger] {
        try self.metaJSON([CrisisTrigger].self, key: MetaKey.crisisHistory) ?? []
    }

    /// Records that an uplink reached the other side at `date` (kept across restarts, so an outage that spans
    /// one is counted whole). An earlier date than the recorded one is ignored.
    public func recordUplinkContact(at date: Date) async throws {
        if let recorded = try self.uplinkContact(), recorded >= date { return }
        try await self.setMetaJSON(date, key: MetaKey.uplinkContactAt)
    }

    /// When an uplink last reached the other side, as recorded; nil before the first record.
    public func uplinkContact() throws -> Date? {
        try self.metaJSON(Date.self, key: MetaKey.uplinkContactAt)
    }
}
