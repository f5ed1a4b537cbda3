public import Crypto
public import Foundation
public import ReadingStore

/// A bulletin post, or its removal, as its origin box signs it for the district: the body of
/// `kiezbox/v1/<district>/<box>/bulletin/<post-id>` (retained, QoS 1, MQTT 5 message expiry = the post's expiry).
/// Documented in docs/mqtt.md.
///
/// The signed bytes are the **canonical encoding** (``canonicalBytes()``): the fields below as one JSON object,
/// keys sorted, no whitespace, times as integer milliseconds since 1970 UTC, strings as Foundation's
/// `JSONEncoder` writes them with `.sortedKeys` and `.withoutEscapingSlashes`. The envelope carries those bytes
/// verbatim (base64), so a receiver verifies exactly what was signed and never encodes anything again; the
/// signature is Ed25519 over ``signatureDomain`` followed by the canonical bytes (the domain keeps a bulletin
/// signature from passing for any other kind of message signed with the same key).
public struct BulletinMessage: Codable, Sendable, Hashable {
    public enum Action: String, Codable, Sendable, Hashable {
        /// The post itself.
        case post
        /// The origin withdrew the post (moderation, deletion) before it expired.
        case removal
    }

    /// Format version; a receiver refuses what it does not understand.
    public var version: Int
    public var action: Action
    public var district: String
    /// The origin box's id: it must be the box of the topic and of the status the key came from.
    public var box: String
    /// The post's id at the origin (the last topic segment).
    public var id: String
    public var kind: BulletinKind
    public var category: BulletinCategory?
    public var text: String
    public var place: String
    /// Milliseconds since 1970 UTC.
    public var createdAt: Int64
    /// Milliseconds since 1970 UTC; a removal carries the post's expiry (the broker drops both then).
    public var expiresAt: Int64

    public static let currentVersion = 1
    /// What precedes the canonical bytes in the signed message.
    public static let signatureDomain = Array("kiezbox-bulletin/1\n".utf8)

    /// The message for a post typed on this box (`post.origin` is nil), or its removal.
    public init(_ action: Action, post: BulletinPost, district: String, box: String) {
        self.version = Self.currentVersion
        self.action = action
        self.district = district
        self.box = box
        self.id = String(post.id)
        self.kind = post.kind
        self.category = post.category
        // A removal names the post only: what it said need not travel again.
        self.text = action == .post ? post.text : ""
        self.place = action == .post ? post.place : ""
        self.createdAt = Int64((post.createdAt.timeIntervalSince1970 * 1000).rounded())
        self.expiresAt = Int64((post.expiresAt.timeIntervalSince1970 * 1000).rounded())
    }

    public var createdDate: Date { Date(timeIntervalSince1970: Double(self.createdAt) / 1000) }
    public var expiryDate: Date { Date(timeIntervalSince1970: Double(self.expiresAt) / 1000) }

    /// The canonical encoding the signature covers (see the type's documentation).
    public func canonicalBytes() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(self))
    }

    /// The envelope published on MQTT: `{"message":"<base64 canonical bytes>","signature":"<base64>"}`.
    public func signedEnvelope(with key: Curve25519.Signing.PrivateKey) throws -> [UInt8] {
        let canonical = try self.canonicalBytes()
        let signature = try key.signature(for: Self.signatureDomain + canonical)
        let envelope = BulletinEnvelope(message: Data(canonical).base64EncodedString(), signature: signature.base64EncodedString())
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(envelope))
    }

    /// Verifies `envelope` against `key` and returns the message, after checking it is what the topic says: the
    /// district and box of the topic, and the post id of its last segment. Throws ``BulletinMessageError``.
    public static func verified(
        _ envelope: [UInt8], key: Curve25519.Signing.PublicKey, district: String, box: String, postID: String
    ) throws(BulletinMessageError) -> BulletinMessage {
        guard let decoded = try? JSONDecoder().decode(BulletinEnvelope.self, from: Data(envelope)),
            let canonical = Data(base64Encoded: decoded.message), let signature = Data(base64Encoded: decoded.signature)
        else { throw .malformed("not a signed bulletin envelope") }
        guard key.isValidSignature(signature, for: Self.signatureDomain + Array(canonical)) else { throw .badSignature }
        let message: BulletinMessage
        do {
            message = try JSONDecoder().decode(BulletinMessage.self, from: canonical)
        } catch {
            throw .malformed("the signed message does not decode: \(error)")
        }
        guard message.version == Self.currentVersion else { throw .malformed("version \(message.version) is not understood") }
        guard message.district == district, message.box == box, message.id == postID else {
            throw .wrongOrigin(claimed: "\(message.district)/\(message.box)/\(message.id)", topic: "\(district)/\(box)/\(postID)")
        }
        return message
    }
}

/// What travels on the wire: the canonical bytes and the signature over them, both base64.
struct BulletinEnvelope: Codable {
    var message: String
    var signature: String
}

/// Why a bulletin message from the district was refused.
public enum BulletinMessageError: Error, Sendable, Hashable, CustomStringConvertible {
    case malformed(String)
    /// The signature does not verify against the origin box's published key.
    case badSignature
    /// The signed message names another box, district or post than the topic it came on.
    case wrongOrigin(claimed: String, topic: String)

    public var description: String {
        switch self {
        case .malformed(let reason): "malformed: \(reason)"
        case .badSignature: "the signature does not match the origin box's key"
        case .wrongOrigin(let claimed, let topic): "the message claims to be \(claimed) but came on \(topic)"
        }
    }
}
