public import Foundation
import KiezboxCore

/// TTN's fair-use limits as the box applies them, and how much of them it keeps for a crisis.
public struct LoRaWANFairUse: Sendable, Hashable {
    /// Uplink time on air allowed in any 24 hours (TTN: 30 s per device).
    public var uplinkAirtimePerDay: Duration
    /// Downlinks allowed in any 24 hours (TTN: 10 per device, acknowledgements included).
    public var downlinksPerDay: Int
    /// The share of ``uplinkAirtimePerDay`` routine reports leave untouched, so that a crisis summary can
    /// always go out, even late in a day of normal reports.
    public var crisisReserve: Double

    public init(uplinkAirtimePerDay: Duration = .seconds(30), downlinksPerDay: Int = 10, crisisReserve: Double = 0.25) {
        self.uplinkAirtimePerDay = uplinkAirtimePerDay
        self.downlinksPerDay = downlinksPerDay
        self.crisisReserve = min(max(crisisReserve, 0), 0.9)
    }

    /// What routine reports may spend in 24 hours.
    public var routineAirtimePerDay: Duration { self.uplinkAirtimePerDay * (1 - self.crisisReserve) }
}

/// The rolling 24-hour account of uplink airtime and downlinks at one moment, from the ledger the store keeps
/// (``ReadingStore/loRaWANAirtime(since:)``).
///
/// TTN states its fair use as an average per day; the box treats it as a hard limit on every 24-hour window,
/// which is stricter and therefore always within the policy.
public struct LoRaWANAirtimeBudget: Sendable, Hashable {
    public static let window: TimeInterval = 24 * 3600

    public let fairUse: LoRaWANFairUse
    public let now: Date
    /// The entries of the last 24 hours, oldest first.
    public let entries: [LoRaWANAirtimeEntry]

    public init(fairUse: LoRaWANFairUse, now: Date, ledger: [LoRaWANAirtimeEntry]) {
        self.fairUse = fairUse
        self.now = now
        let start = now.addingTimeInterval(-Self.window)
        self.entries = ledger.filter { $0.at > start && $0.at <= now }.sorted { $0.at < $1.at }
    }

    /// Uplink airtime spent in the last 24 hours (joins and the modem's own empty frames included).
    public var airtimeUsed: Duration {
        self.entries.filter { $0.kind != .downlink }.reduce(.zero) { $0 + $1.airtime }
    }

    /// Uplink airtime left in the current 24-hour window.
    public var airtimeLeft: Duration { max(.zero, self.fairUse.uplinkAirtimePerDay - self.airtimeUsed) }

    /// Downlinks received in the last 24 hours.
    public var downlinksReceived: Int { self.entries.filter { $0.kind == .downlink }.count }

    /// Uplinks sent in the last 24 hours (reports and summaries; not joins or empty frames).
    public var uplinksSent: Int { self.entries.filter { $0.kind == .uplink }.count }

    /// The earliest moment, not before ``now``, at which a frame of `cost` keeps the airtime of the 24 hours
    /// before it within `cap`: now, or when enough of the past frames have left the window. Nil when `cost`
    /// alone exceeds `cap`.
    public func earliestSend(cost: Duration, cap: Duration) -> Date? {
        guard cost <= cap else { return nil }
        var used = self.airtimeUsed
        if used + cost <= cap { return self.now }
        for entry in self.entries where entry.kind != .downlink {
            used -= entry.airtime
            if used + cost <= cap { return entry.at.addingTimeInterval(Self.window) }
        }
        return self.now
    }

    /// The spacing of routine reports that spends exactly the routine allowance in a day with frames of `cost`,
    /// or `minimum` when that is longer: a cadence that lasts the whole day whatever the data rate.
    public func pacedInterval(cost: Duration, minimum: Duration) -> Duration {
        let routine = self.fairUse.routineAirtimePerDay
        guard routine > .zero else { return .seconds(Self.window) }
        let reportsPerDay = routine / cost
        guard reportsPerDay >= 1 else { return .seconds(Self.window) }
        return max(minimum, .seconds(Self.window / reportsPerDay))
    }
}

/// The LoRaWAN uplink's account as `kiezbox status` and `/metrics` show it: the rolling 24 hours and the
/// running uplink's plan.
public struct LoRaWANAccount: Sendable, Hashable, Encodable {
    public var airtimeUsedSeconds: Double
    public var airtimeLeftSeconds: Double
    public var airtimeLimitSeconds: Double
    public var uplinksSent: Int
    public var joins: Int
    public var downlinksReceived: Int
    public var downlinksLimit: Int
    /// The running uplink's next planned send; nil when none is planned (or the daemon is not running).
    public var nextSend: LoRaWANNextSend?
}

extension ReadingStore {
    /// The account of the 24 hours before `now` under `fairUse`.
    public func loRaWANAccount(fairUse: LoRaWANFairUse, now: Date) throws -> LoRaWANAccount {
        let budget = LoRaWANAirtimeBudget(
            fairUse: fairUse, now: now, ledger: try self.loRaWANAirtime(since: now.addingTimeInterval(-LoRaWANAirtimeBudget.window)))
        return LoRaWANAccount(
            airtimeUsedSeconds: budget.airtimeUsed.timeInterval, airtimeLeftSeconds: budget.airtimeLeft.timeInterval,
            airtimeLimitSeconds: fairUse.uplinkAirtimePerDay.timeInterval, uplinksSent: budget.uplinksSent,
            joins: budget.entries.filter { $0.kind == .join }.count, downlinksReceived: budget.downlinksReceived,
            downlinksLimit: fairUse.downlinksPerDay, nextSend: try self.loRaWANNextSend()
        )
    }
}
