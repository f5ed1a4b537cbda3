public import Foundation

/// A signed announcement as it travels: over the API, over MQTT between boxes, and in the store.
///
/// ```json
/// {"key_id": "c0ffee0123456789", "payload": "<base64 payload bytes>", "signature": "<base64 Ed25519 signature>"}
/// ```
///
/// The signature covers exactly the payload bytes, so no JSON canonicalisation is needed: a box verifies the
/// bytes it received and only then decodes them as an ``AnnouncementPayload``. The key id is not signed; it
/// only says which configured key to try, and a wrong one fails verification like any forgery.
public struct AnnouncementEnvelope: Sendable, Hashable {
    /// The largest envelope a box accepts, in bytes: room for a long text in several languages, small enough
    /// that a flood of them cannot fill a box's memory or the broker.
    public static let maximumBytes = 16 * 1024

    /// Which configured authority key signed it (``AnnouncementKey/keyID``).
    public var keyID: String
    /// The signed bytes: an ``AnnouncementPayload`` as JSON.
    public var payload: Data
    /// The 64-byte Ed25519 signature over ``payload``; empty when unsigned.
    public var signature: Data

    public init(keyID: String, payload: Data, signature: Data) {
        self.keyID = keyID
        self.payload = payload
        self.signature = signature
    }

    /// Parses an envelope from its JSON, within ``maximumBytes``. The signature is not checked here.
    public init(json: Data) throws(AnnouncementFormatError) {
        guard json.count <= Self.maximumBytes else { throw .tooLarge(bytes: json.count, limit: Self.maximumBytes) }
        let wire: Wire
        do {
            wire = try JSONDecoder().decode(Wire.self, from: json)
        } catch {
            throw .notJSON("the envelope is not {\"key_id\", \"payload\", \"signature\"} JSON")
        }
        guard AnnouncementIdentifier.isValid(wire.key_id) else { throw .invalidField("key_id", AnnouncementIdentifier.rule) }
        guard let payload = Data(base64Encoded: wire.payload), !payload.isEmpty else {
            throw .invalidField("payload", "base64 of the payload JSON")
        }
        let signatureText = wire.signature ?? ""
        guard let signature = Data(base64Encoded: signatureText) else {
            throw .invalidField("signature", "base64 of a 64-byte Ed25519 signature")
        }
        self.init(keyID: wire.key_id, payload: payload, signature: signature)
    }

    /// The envelope's JSON, keys sorted: what `kiezbox announce sign` prints and the API accepts.
    public func json() -> Data {
        let wire = Wire(key_id: self.keyID, payload: self.payload.base64EncodedString(), signature: self.signature.base64EncodedString())
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Three strings: encoding cannot fail.
        return (try? encoder.encode(wire)) ?? Data()
    }

    private struct Wire: Codable {
        var key_id: String
        var payload: String
        var signature: String?
    }
}

/// Why bytes are not a well-formed announcement envelope or payload.
public enum AnnouncementFormatError: Error, Sendable, Hashable, CustomStringConvertible {
    case tooLarge(bytes: Int, limit: Int)
    case notJSON(String)
    /// A field is missing or breaks its rule: (field, what is expected).
    case invalidField(String, String)
    /// A payload of a version this box does not know.
    case unsupportedVersion(Int)

    public var description: String {
        switch self {
        case .tooLarge(let bytes, let limit): "the announcement has \(bytes) bytes; at most \(limit) are accepted"
        case .notJSON(let detail): detail
        case .invalidField(let field, let rule): "\"\(field)\": expected \(rule)"
        case .unsupportedVersion(let version): "payload version \(version) is not supported (this box knows 1)"
        }
    }
}

/// The rule for announcement ids and key ids: they become MQTT topic segments and database keys.
enum AnnouncementIdentifier {
    static let rule = "1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '-'"

    static func isValid(_ text: String) -> Bool {
        (1...64).contains(text.utf8.count)
            && text.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == 0x2E || byte == 0x5F || byte == 0x2D
            }
    }
}
