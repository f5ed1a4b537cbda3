public import Foundation
public import KiezboxCore

/// The JSON body of `kiezbox/v1/<district>/<box>/status` (retained, QoS 1): whether a box is reachable and
/// what it is doing. Documented in docs/mqtt.md.
public struct StatusMessage: Codable, Sendable, Hashable {
    public enum State: String, Codable, Sendable, Hashable {
        /// Published after every CONNACK.
        case online
        /// Published before a clean stop, and by the broker as the Last Will when the connection dies.
        case offline
    }

    /// Message format version; a receiver can refuse what it does not understand.
    public var version: Int
    public var state: State
    public var district: String
    public var box: String
    /// The human name of the box.
    public var name: String
    /// Where the box stands; absent when unknown.
    public var position: GeoPosition?
    public var mode: Mode
    /// The box's battery voltage, when it measures one (for the neighbourhood view and the situation map).
    public var batteryVolts: Double?
    /// ISO 8601 UTC with milliseconds. For `online` and a clean `offline`: when it was published. In the Last
    /// Will: when the box connected, i.e. the box was last heard of at or after this time.
    public var time: String
    /// Where the box's portal takes authorities' tokens over HTTPS, and the pin of its key; absent without HTTPS.
    public var portalHTTPS: PortalHTTPS?
    /// The power model's estimate (state of charge, hours left, each with its range); absent without one.
    public var power: Power?

    /// The box's own Ed25519 public key (raw 32 bytes, base64) that signs its bulletin posts; absent from boxes
    /// that do not publish their bulletin.
    public var bulletinKey: String?

    /// The power model's estimate as the status carries it: percentages and hours, rounded for reading.
    public struct Power: Codable, Sendable, Hashable {
        /// State of charge in percent, and its range (about one standard deviation).
        public var stateOfChargePercent: Double
        public var stateOfChargeLowPercent: Double
        public var stateOfChargeHighPercent: Double
        /// Hours left at the average draw, and its range; absent while charging or the draw is unknown.
        public var hoursLeft: Double?
        public var hoursLeftLow: Double?
        /// Absent also when the range is open upwards (a draw too small to say).
        public var hoursLeftHigh: Double?
        /// ISO 8601 UTC: when the model made the estimate.
        public var estimatedAt: String

        public init(_ estimate: PowerEstimate, at date: Date) {
            func rounded(_ value: Double) -> Double { (value * 10).rounded() / 10 }
            self.stateOfChargePercent = rounded(estimate.stateOfCharge * 100)
            self.stateOfChargeLowPercent = rounded(estimate.stateOfChargeLow * 100)
            self.stateOfChargeHighPercent = rounded(estimate.stateOfChargeHigh * 100)
            self.hoursLeft = estimate.hoursLeft.map { rounded($0.likely) }
            self.hoursLeftLow = estimate.hoursLeft.map { rounded($0.low) }
            self.hoursLeftHigh = estimate.hoursLeft?.high.map(rounded)
            self.estimatedAt = date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        }
    }

    /// The HTTPS side of a box's portal as its status announces it.
    public struct PortalHTTPS: Codable, Sendable, Hashable {
        public var port: Int
        /// Base64 SHA-256 of the certificate's SubjectPublicKeyInfo: `curl --pinnedpubkey sha256//<pin>`.
        public var pin: String

        public init(port: Int, pin: String) {
            self.port = port
            self.pin = pin
        }
    }

    public init(
        state: State, box: BoxIdentity, mode: Mode, batteryVolts: Double? = nil, power: Power? = nil, portalHTTPS: PortalHTTPS? = nil,
        bulletinKey: String? = nil, time: Date
    ) {
        self.version = 1
        self.state = state
        self.district = box.district
        self.box = box.boxID
        self.name = box.name
        self.position = box.position
        self.mode = mode
        self.batteryVolts = batteryVolts
        self.power = power
        self.portalHTTPS = portalHTTPS
        self.bulletinKey = bulletinKey
        self.time = time.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}

/// The topics of one box under a prefix ("kiezbox/v1"). Every segment is validated: a district or box id
/// containing `/`, `+`, `#` or NUL, or an empty one, would address other boxes' topics.
public struct MQTTTopics: Sendable, Hashable {
    public let prefix: String
    public let district: String
    public let box: String

    public init(prefix: String, district: String, box: String) throws(MQTTUplinkError) {
        for segment in [district, box] where !Self.isValidSegment(segment) {
            throw .invalidTopicSegment(segment)
        }
        // `<prefix>/<district>/announcements/…` carries the district's signed announcements.
        guard box != Self.announcementsSegment else { throw .invalidTopicSegment(box) }
        guard Self.isPublishable(prefix), !prefix.hasSuffix("/") else {
            throw .invalidTopicSegment(prefix)
        }
        self.prefix = prefix
        self.district = district
        self.box = box
    }

    /// Whether `topic` can be published to: not empty, no wildcard, no NUL.
    static func isPublishable(_ topic: String) -> Bool {
        !topic.isEmpty && !topic.contains(where: { "+#\0".contains($0) })
    }

    static func isValidSegment(_ segment: String) -> Bool {
        !segment.isEmpty && !segment.contains(where: { "/+#\0".contains($0) })
    }

    var boxRoot: String { "\(self.prefix)/\(self.district)/\(self.box)" }
    /// Readings, QoS 1, not retained.
    public var readings: String { self.boxRoot + "/readings" }
    /// Status, QoS 1, retained; also the Last Will topic.
    public var status: String { self.boxRoot + "/status" }
    /// Reserved: announcements of the box (crisis information for residents).
    public var announcements: String { self.boxRoot + "/announcements" }
    /// Reserved: commands to the box.
    public var commands: String { self.boxRoot + "/commands" }
    /// The box's own heat and heavy-rain warnings (retained JSON, docs/mqtt.md).
    public var warnings: String { self.boxRoot + "/warnings" }

    static let bulletinSegment = "bulletin"

    /// `<prefix>/<district>/<box>/bulletin/<post-id>`: one signed post of this box (or its removal), QoS 1, retained.
    public func bulletinPost(id: String) throws(MQTTUplinkError) -> String {
        guard Self.isValidSegment(id) else { throw .invalidTopicSegment(id) }
        return "\(self.boxRoot)/\(Self.bulletinSegment)/\(id)"
    }

    /// `<prefix>/<district>/+/bulletin/+`: every box's signed posts in a district.
    public static func bulletinFilter(prefix: String, district: String) throws(MQTTUplinkError) -> String {
        guard isValidSegment(district) else { throw .invalidTopicSegment(district) }
        return "\(prefix)/\(district)/+/\(bulletinSegment)/+"
    }

    /// The (district, box, post id) of a bulletin topic under `prefix`, or `nil` if `topic` is not one.
    public static func bulletinTopicComponents(_ topic: String, prefix: String) -> (district: String, box: String, postID: String)? {
        guard topic.hasPrefix(prefix + "/") else { return nil }
        let rest = topic.dropFirst(prefix.count + 1).split(separator: "/", omittingEmptySubsequences: false)
        guard rest.count == 4, rest[2] == bulletinSegment, !rest[1].isEmpty, !rest[3].isEmpty else { return nil }
        return (String(rest[0]), String(rest[1]), String(rest[3]))
    }

    /// `kiezbox/v1/<district>/+/status`: the status of every box in a district.
    public static func statusFilter(prefix: String, district: String) throws(MQTTUplinkError) -> String {
        guard isValidSegment(district) else { throw .invalidTopicSegment(district) }
        return "\(prefix)/\(district)/+/status"
    }

    static let announcementsSegment = "announcements"

    /// `<prefix>/<district>/announcements/<name>`: one signed announcement of the district, QoS 1, retained.
    public func announcement(named name: String) throws(MQTTUplinkError) -> String {
        guard Self.isValidSegment(name) else { throw .invalidTopicSegment(name) }
        return "\(self.prefix)/\(self.district)/\(Self.announcementsSegment)/\(name)"
    }

    /// `<prefix>/<district>/announcements/+`: every signed announcement of a district.
    public static func announcementsFilter(prefix: String, district: String) throws(MQTTUplinkError) -> String {
        guard isValidSegment(district) else { throw .invalidTopicSegment(district) }
        return "\(prefix)/\(district)/\(announcementsSegment)/+"
    }

    /// The district of an announcement topic under `prefix`, or `nil` if `topic` is not one.
    public static func announcementTopicDistrict(_ topic: String, prefix: String) -> String? {
        guard topic.hasPrefix(prefix + "/") else { return nil }
        let rest = topic.dropFirst(prefix.count + 1).split(separator: "/", omittingEmptySubsequences: false)
        guard rest.count == 3, rest[1] == announcementsSegment, !rest[2].isEmpty else { return nil }
        return String(rest[0])
    }

    /// The (district, box) of a status topic under `prefix`, or `nil` if `topic` is not one.
    public static func statusTopicComponents(_ topic: String, prefix: String) -> (district: String, box: String)? {
        guard topic.hasPrefix(prefix + "/") else { return nil }
        let rest = topic.dropFirst(prefix.count + 1).split(separator: "/", omittingEmptySubsequences: false)
        guard rest.count == 3, rest[2] == "status" else { return nil }
        return (String(rest[0]), String(rest[1]))
    }
}
