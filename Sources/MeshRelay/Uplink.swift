public import Foundation
public import KiezboxCore

/// Somewhere readings go: an MQTT broker over the mesh, an open-data platform, a LoRa modem.
///
/// The relay hands an uplink the oldest readings its cursor has not passed, oldest first, and advances the
/// cursor over exactly the ids the uplink reports. An uplink sends a batch in the order given and stops at the
/// first reading it cannot send (MQTT QoS 1 on one connection does this by itself): then each sensor's readings
/// reach the receiver in the order they were measured, and what comes again is a duplicate the receiver drops
/// by its id. An uplink reports a reading only when the other side has
/// acknowledged it (MQTT PUBACK, HTTP 2xx, LoRaWAN TX done) — or when the uplink has deliberately decided it
/// will never send it (a live-only platform and a reading too old for it), so the cursor can move on.
public protocol Uplink: Sendable {
    /// A stable name, also the name of the uplink's cursor in the store ("mqtt", "opensensemap").
    var name: String { get }
    /// The most readings one ``deliver(_:)`` call may be given.
    var maximumBatch: Int { get }
    /// Delivers `batch` and returns the ids of the readings the uplink is done with.
    ///
    /// Returning fewer ids than were given is normal (a connection that broke half-way); the rest come again.
    /// Throws when nothing could be delivered (broker unreachable, HTTP 5xx), so the relay backs off.
    func deliver(_ batch: [StoredReading]) async throws -> Set<Int64>

    /// Connects, or whatever the uplink needs before the first delivery. The relay calls it once, first.
    func start() async throws
    /// Says goodbye (an MQTT uplink publishes "offline" and disconnects). The relay calls it once, last.
    func stop() async

    /// When the other side was last known to be reachable: now while an MQTT broker connection is up, the last
    /// request an open-data platform accepted, the last frame a joined LoRaWAN modem sent. `nil`: never since the
    /// daemon started, or the uplink cannot tell (a Meshtastic mesh reaches only the neighbours' radios). The
    /// mode controller's "uplink lost" trigger reads it (``UplinkContactService`` in the daemon).
    var lastContact: Date? { get }
    /// Whether ``lastContact`` means anything for this uplink; the "uplink lost" trigger ignores uplinks that
    /// cannot tell, and never fires on a box where none can.
    var reportsContact: Bool { get }
}

extension Uplink {
    public func start() async throws {}
    public func stop() async {}
    /// By default an uplink cannot tell.
    public var lastContact: Date? { nil }
    public var reportsContact: Bool { false }
}

/// Who is sending: what every uplink puts in its messages so receivers know the box and can drop duplicates.
public struct SenderIdentity: Sendable, Hashable {
    public var box: BoxIdentity
    /// The store's permanent instance id; with a reading's id it names the reading uniquely.
    public var storeInstance: String

    public init(box: BoxIdentity, storeInstance: String) {
        self.box = box
        self.storeInstance = storeInstance
    }

    /// The globally unique id of a stored reading (``StoredReading/globalID(storeInstance:)``).
    public func readingID(_ stored: StoredReading) -> String {
        stored.globalID(storeInstance: self.storeInstance)
    }
}
