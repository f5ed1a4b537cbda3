import Crypto
import Foundation
import MeshRelay
import ReadingStore
import Testing

@Suite("Signed bulletin messages")
struct BulletinMessageTests {
    static let post = BulletinPost(
        id: 42, kind: .request, category: .water, text: "Wasser für 3 Personen / bitte", place: "Wrangelstr. 12",
        createdAt: Date(timeIntervalSince1970: 1_780_000_000.123), expiresAt: Date(timeIntervalSince1970: 1_780_086_400))
    static let message = BulletinMessage(.post, post: post, district: "xhain", box: "wrangelkiez-01")

    /// The canonical encoding as docs/mqtt.md documents it: sorted keys, no whitespace, integer milliseconds.
    @Test("the canonical encoding is the documented one")
    func canonicalEncoding() throws {
        let canonical = String(decoding: try Self.message.canonicalBytes(), as: UTF8.self)
        #expect(canonical == #"{"action":"post","box":"wrangelkiez-01","category":"water","createdAt":1780000000123,"district":"xhain","expiresAt":1780086400000,"id":"42","kind":"request","place":"Wrangelstr. 12","text":"Wasser für 3 Personen / bitte","version":1}"#)
    }

    @Test("a signed message verifies against its box's key and topic")
    func roundTrip() throws {
        let key = Curve25519.Signing.PrivateKey()
        let envelope = try Self.message.signedEnvelope(with: key)
        let verified = try BulletinMessage.verified(envelope, key: key.publicKey, district: "xhain", box: "wrangelkiez-01", postID: "42")
        #expect(verified == Self.message)
        #expect(verified.expiryDate == Self.post.expiresAt)
    }

    /// The envelope with its signed message replaced by `change` applied to the canonical JSON text.
    func tampered(_ envelope: [UInt8], _ change: (String) -> String) throws -> [UInt8] {
        var object = try #require(JSONSerialization.jsonObject(with: Data(envelope)) as? [String: String])
        let encoded = try #require(object["message"])
        let canonical = String(decoding: try #require(Data(base64Encoded: encoded)), as: UTF8.self)
        object["message"] = Data(change(canonical).utf8).base64EncodedString()
        return Array(try JSONSerialization.data(withJSONObject: object))
    }

    @Test(
        "tampering with any signed field fails verification",
        arguments: [
            ("text", #""text":"Wasser für 3 Personen / bitte""#, #""text":"Wasser für 30 Personen / bitte""#),
            ("expiry", "1780086400000", "1790086400000"),
            ("kind", #""kind":"request""#, #""kind":"offer""#),
            ("box", #""box":"wrangelkiez-01""#, #""box":"wrangelkiez-02""#),
        ])
    func tampering(field: String, original: String, replacement: String) throws {
        let key = Curve25519.Signing.PrivateKey()
        let envelope = try Self.message.signedEnvelope(with: key)
        let forged = try self.tampered(envelope) { $0.replacingOccurrences(of: original, with: replacement) }
        #expect(forged != envelope, "the \(field) replacement changed nothing")
        #expect(throws: BulletinMessageError.badSignature) {
            try BulletinMessage.verified(forged, key: key.publicKey, district: "xhain", box: "wrangelkiez-01", postID: "42")
        }
    }

    @Test("another box's key, another topic, garbage: refused")
    func refusals() throws {
        let key = Curve25519.Signing.PrivateKey()
        let envelope = try Self.message.signedEnvelope(with: key)
        #expect(throws: BulletinMessageError.badSignature) {
            try BulletinMessage.verified(envelope, key: Curve25519.Signing.PrivateKey().publicKey, district: "xhain", box: "wrangelkiez-01", postID: "42")
        }
        // A box re-publishing another box's genuine message under its own topic (or another post id).
        #expect(throws: BulletinMessageError.self) {
            try BulletinMessage.verified(envelope, key: key.publicKey, district: "xhain", box: "wrangelkiez-02", postID: "42")
        }
        #expect(throws: BulletinMessageError.self) {
            try BulletinMessage.verified(envelope, key: key.publicKey, district: "xhain", box: "wrangelkiez-01", postID: "43")
        }
        for garbage in ["", "{}", #"{"message":"","signature":""}"#, "not json"] {
            #expect(throws: BulletinMessageError.self) {
                try BulletinMessage.verified(Array(garbage.utf8), key: key.publicKey, district: "xhain", box: "wrangelkiez-01", postID: "42")
            }
        }
        // An unsigned message (the bare canonical JSON) is no envelope.
        #expect(throws: BulletinMessageError.self) {
            try BulletinMessage.verified(try Self.message.canonicalBytes(), key: key.publicKey, district: "xhain", box: "wrangelkiez-01", postID: "42")
        }
    }

    @Test("a removal names the post but not what it said")
    func removal() throws {
        let removal = BulletinMessage(.removal, post: Self.post, district: "xhain", box: "wrangelkiez-01")
        #expect(removal.text.isEmpty && removal.place.isEmpty)
        #expect(removal.id == "42" && removal.expiresAt == Self.message.expiresAt)
    }

    @Test("bulletin topics")
    func topics() throws {
        let topics = try MQTTTopics(prefix: "kiezbox/v1", district: "xhain", box: "wrangelkiez-01")
        #expect(try topics.bulletinPost(id: "42") == "kiezbox/v1/xhain/wrangelkiez-01/bulletin/42")
        #expect(throws: MQTTUplinkError.self) { try topics.bulletinPost(id: "4/2") }
        #expect(try MQTTTopics.bulletinFilter(prefix: "kiezbox/v1", district: "xhain") == "kiezbox/v1/xhain/+/bulletin/+")
        let parsed = MQTTTopics.bulletinTopicComponents("kiezbox/v1/xhain/wrangelkiez-01/bulletin/42", prefix: "kiezbox/v1")
        #expect(parsed?.district == "xhain" && parsed?.box == "wrangelkiez-01" && parsed?.postID == "42")
        #expect(MQTTTopics.bulletinTopicComponents("kiezbox/v1/xhain/wrangelkiez-01/status", prefix: "kiezbox/v1") == nil)
        #expect(MQTTTopics.bulletinTopicComponents("kiezbox/v1/xhain/wrangelkiez-01/bulletin/42/x", prefix: "kiezbox/v1") == nil)
    }
}
