public import Foundation
public import KiezboxCore

/// The power model's state and its last estimate, kept in the store's meta: the model continues from the state
/// after a restart, and `kiezbox status` and `/metrics` (other processes and services) show the estimate.
public struct BatteryRecord: Sendable, Hashable, Codable {
    public var state: BatteryState
    public var estimate: PowerEstimate
    /// When the estimate was made.
    public var at: Date

    public init(state: BatteryState, estimate: PowerEstimate, at: Date) {
        self.state = state
        self.estimate = estimate
        self.at = at
    }
}

extension MetaKey {
    /// The power model's state and estimate (JSON of ``BatteryRecord``).
    static let battery = "battery"
}

extension ReadingStore {
    /// Records the power model's state and estimate (nil: forget them, e.g. after the battery was replaced).
    public func setBatteryRecord(_ record: BatteryRecord?) async throws {
        try await self.setMetaJSON(record, key: MetaKey.battery)
    }

    /// The last recorded state and estimate, if any (nil too when a newer version's record no longer decodes).
    public func batteryRecord() throws -> BatteryRecord? {
        try self.metaJSON(BatteryRecord.self, key: MetaKey.battery)
    }
}
