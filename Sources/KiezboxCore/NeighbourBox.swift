#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// Another box of the district, as last heard of over the mesh: what the neighbourhood view, `kiezbox status`,
/// the portal and the situation feed show of it.
public struct NeighbourBox: Sendable, Hashable, Codable {
    public var identity: BoxIdentity
    /// "online" while its connection is up; "offline" once its Last Will or its goodbye arrived.
    public var online: Bool
    public var mode: Mode?
    /// Battery voltage, when the box measures one.
    public var batteryVolts: Double?
    /// When this box last heard from it.
    public var lastSeen: Date
    /// How its status reached this box: "mqtt://broker.kiez:1883", "mesh".
    public var path: String

    public init(identity: BoxIdentity, online: Bool, mode: Mode?, batteryVolts: Double?, lastSeen: Date, path: String) {
        self.identity = identity
        self.online = online
        self.mode = mode
        self.batteryVolts = batteryVolts
        self.lastSeen = lastSeen
        self.path = path
    }
}
