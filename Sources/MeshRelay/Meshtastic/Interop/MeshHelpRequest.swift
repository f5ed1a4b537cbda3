import Foundation
public import ReadingStore
import SwiftProtobuf

/// A bulletin post relayed from box to box over LoRa (`RelayedHelpRequest` on PRIVATE_APP): one packet each.
///
/// The origin (district, box, the post's id there) names the post everywhere, so a box that hears it twice, or from two
/// neighbours, can keep one copy. Text and place are cut to fit the 233-byte payload (``payload()``).
public struct MeshHelpRequest: Sendable, Hashable {
    /// The place is cut to this many bytes first, so the text keeps most of the packet.
    public static let maximumPlaceBytes = 48

    public var originDistrict: String
    public var originBox: String
    /// The post as the origin box stores it; its `id` is the origin's post id.
    public var post: BulletinPost

    public init(originDistrict: String, originBox: String, post: BulletinPost) {
        self.originDistrict = originDistrict
        self.originBox = originBox
        self.post = post
    }

    /// The PRIVATE_APP payload, at most ``MeshtasticPayload/maximumLength`` bytes: the place cut to
    /// ``maximumPlaceBytes``, then the text cut to what is left (both at a character boundary, never inside a
    /// UTF-8 sequence, with "…" where something was cut). `truncated` says whether anything was.
    public func payload() throws(KiezboxMeshError) -> (bytes: [UInt8], truncated: Bool) {
        try Self.checkOrigin(district: self.originDistrict, box: self.originBox)
        let limit = MeshtasticPayload.maximumLength
        var message = self.wire(text: "", place: "")
        // A string costs a tag byte and a length (one byte below 128, two above), and may lengthen the length of
        // the enclosing message by one: 3 bytes reserved, and the text shortened further if that was too few.
        let fixed = KiezboxMeshCodec.payload(.helpRequest(message)).count
        message.place = Self.prefix(self.post.place, bytes: min(Self.maximumPlaceBytes, limit - fixed - 3))
        let withPlace = KiezboxMeshCodec.payload(.helpRequest(message)).count
        message.text = Self.prefix(self.post.text, bytes: limit - withPlace - 3)
        var bytes = KiezboxMeshCodec.payload(.helpRequest(message))
        while bytes.count > limit, !message.text.isEmpty {
            message.text = Self.prefix(self.post.text, bytes: message.text.utf8.count - (bytes.count - limit))
            bytes = KiezboxMeshCodec.payload(.helpRequest(message))
        }
        guard bytes.count <= limit else { throw .invalidHelpRequest("origin", "ids short enough for one packet") }
        return (bytes, message.place != self.post.place || message.text != self.post.text)
    }

    /// `text` itself if it has at most `bytes` UTF-8 bytes, else its longest prefix of whole characters that fits
    /// with a trailing "…".
    static func prefix(_ text: String, bytes: Int) -> String {
        guard text.utf8.count > bytes else { return text }
        let ellipsis = "…"
        var budget = bytes - ellipsis.utf8.count
        guard budget > 0 else { return "" }
        var end = text.startIndex
        for index in text.indices {
            let length = text[index].utf8.count
            guard length <= budget else { break }
            budget -= length
            end = text.index(after: index)
        }
        return text[..<end] + ellipsis
    }

    func wire(text: String, place: String) -> Kiezbox_RelayedHelpRequest {
        Kiezbox_RelayedHelpRequest.with {
            $0.originDistrict = self.originDistrict
            $0.originBox = self.originBox
            $0.originPostID = self.post.id
            $0.kind =
                switch self.post.kind {
                case .request: .request
                case .offer: .offer
                case .safe: .safe
                }
            $0.category =
                switch self.post.category {
                case nil: .none
                case .medical: .medical
                case .fire: .fire
                case .food: .food
                case .water: .water
                case .power: .power
                case .other: .other
                }
            $0.text = text
            $0.place = place
            $0.createdAt = Int64(self.post.createdAt.timeIntervalSince1970.rounded(.down))
            $0.expiresAt = Int64(self.post.expiresAt.timeIntervalSince1970.rounded(.down))
        }
    }

    init(_ wire: Kiezbox_RelayedHelpRequest) throws(KiezboxMeshError) {
        try Self.checkOrigin(district: wire.originDistrict, box: wire.originBox)
        let kind: BulletinKind
        switch wire.kind {
        case .request: kind = .request
        case .offer: kind = .offer
        case .safe: kind = .safe
        case .unspecified: throw .invalidHelpRequest("kind", "request, offer or safe")
        case .UNRECOGNIZED(let value): throw .invalidHelpRequest("kind", "request, offer or safe, not \(value)")
        }
        let category: BulletinCategory?
        switch wire.category {
        case .none: category = nil
        case .medical: category = .medical
        case .fire: category = .fire
        case .food: category = .food
        case .water: category = .water
        case .power: category = .power
        case .other: category = .other
        case .UNRECOGNIZED(let value): throw .invalidHelpRequest("category", "a bulletin category, not \(value)")
        }
        guard wire.expiresAt > wire.createdAt else { throw .invalidHelpRequest("expires_at", "a time after created_at") }
        self.init(
            originDistrict: wire.originDistrict, originBox: wire.originBox,
            post: BulletinPost(
                id: wire.originPostID, kind: kind, category: category, text: wire.text, place: wire.place,
                createdAt: Date(timeIntervalSince1970: TimeInterval(wire.createdAt)),
                expiresAt: Date(timeIntervalSince1970: TimeInterval(wire.expiresAt))))
    }

    /// District and box ids are MQTT topic segments on every box: lowercase letters, digits and '-', 1 to 64,
    /// not starting with '-' (the configuration's rule for `[box] id` and `district`).
    static func checkOrigin(district: String, box: String) throws(KiezboxMeshError) {
        for (field, value) in [("origin_district", district), ("origin_box", box)] {
            let allowed = value.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
            guard (1...64).contains(value.utf8.count), allowed, value.utf8.first != 0x2D else {
                throw .invalidHelpRequest(field, "1 to 64 lowercase letters, digits and '-'")
            }
        }
    }
}
