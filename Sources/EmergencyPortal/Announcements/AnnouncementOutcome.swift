public import Foundation

/// Where an announcement envelope reached the box.
public enum AnnouncementSource: String, Sendable, Hashable, Codable, CaseIterable {
    /// Posted by an authority to `POST /api/v1/announcements`.
    case api
    /// Relayed by another box over the district's MQTT topic.
    case mesh
    /// Heard over LoRa from another box, through the Meshtastic radio.
    case lora
}

/// Why an announcement was refused. Each is counted (``AnnouncementDesk/rejectionCounts()``).
public enum AnnouncementRejection: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// Larger than ``AnnouncementEnvelope/maximumBytes``.
    case tooLarge = "too_large"
    /// Not an envelope, or the signed payload is not a valid announcement.
    case malformed
    /// No signature, or an empty one.
    case unsigned
    /// Signed with a key id this box is not configured to trust.
    case unknownKey = "unknown_key"
    /// The signature does not verify with the named key: changed after signing, or signed by another key.
    case forged
    /// Its `expires_at` has passed.
    case expired
    /// Issued further in the future than the allowed clock skew.
    case notYetValid = "not_yet_valid"
    /// A version of an announcement that is not newer than the one the box already has.
    case replayed
    /// Addressed to another district.
    case wrongDistrict = "wrong_district"

    public var description: String { self.rawValue }
}

/// A verified announcement with what the box needs to show and relay it.
public struct AcceptedAnnouncement: Sendable, Hashable {
    public var announcement: OfficialAnnouncement
    /// The key that verified it.
    public var keyID: String
    /// The district it was addressed to ("*" for all).
    public var district: String
    /// The envelope exactly as received: relayed unchanged, so every box verifies the same signature.
    public var envelope: Data
    public var source: AnnouncementSource

    public init(announcement: OfficialAnnouncement, keyID: String, district: String, envelope: Data, source: AnnouncementSource) {
        self.announcement = announcement
        self.keyID = keyID
        self.district = district
        self.envelope = envelope
        self.source = source
    }

    /// The name of its MQTT topic segment, `<key_id>:<id>`: unique across authorities (ids are unique only per
    /// issuer), and ':' appears in neither part.
    public var topicName: String { "\(self.keyID):\(self.announcement.id)" }
}

/// What ``AnnouncementDesk/accept(_:via:now:)`` did with an envelope.
public enum AnnouncementOutcome: Sendable, Hashable {
    /// Verified and stored: shown as official from now on.
    case accepted(AcceptedAnnouncement)
    /// Exactly this version was already accepted (a second copy over the mesh, or a retry): nothing changed.
    case alreadyKnown(OfficialAnnouncement)
    /// Refused, with a sentence saying why (for the authority's HTTP response and the log).
    case rejected(AnnouncementRejection, detail: String)
}
