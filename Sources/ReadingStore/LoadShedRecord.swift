public import Foundation

/// The load shedder's current step (docs/power.md, "Load shedding"), kept in the store's meta so that
/// `kiezbox status`, `/metrics` and the portal (other processes and services) show it.
public struct LoadShedRecord: Sendable, Hashable, Codable {
    /// 0: nothing shed; 1…``steps``.
    public var step: Int
    /// How many steps the configuration has.
    public var steps: Int
    /// When the box entered this step.
    public var since: Date
    /// Why ("state of charge 34 % below 35 %", "mains present").
    public var reason: String

    public init(step: Int, steps: Int, since: Date, reason: String) {
        self.step = step
        self.steps = steps
        self.since = since
        self.reason = reason
    }
}

extension MetaKey {
    /// The load shedder's step (JSON of ``LoadShedRecord``).
    static let loadShed = "load_shed"
}

extension ReadingStore {
    /// Records the load shedder's step (nil: forget it).
    public func setLoadShedRecord(_ record: LoadShedRecord?) async throws {
        try await self.setMetaJSON(record, key: MetaKey.loadShed)
    }

    /// The last recorded step, if any.
    public func loadShedRecord() throws -> LoadShedRecord? {
        try self.metaJSON(LoadShedRecord.self, key: MetaKey.loadShed)
    }
}
