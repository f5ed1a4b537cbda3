public import Crypto
public import Foundation
import KiezboxCore

/// A civil-protection key a box trusts: announcements that verify with it are shown as official, under
/// ``issuer``. Configured per authority (`[[authority]]` with `name`, `key_id`, `public_key`).
public struct AnnouncementKey: Sendable {
    /// The id an envelope names to select this key.
    public let keyID: String
    /// The authority as residents should see it ("Bezirksamt Friedrichshain-Kreuzberg").
    public let issuer: String
    /// The raw 32-byte Ed25519 public key. Kept as bytes: swift-crypto's key types are not `Sendable`.
    public let publicKeyRaw: Data

    public init(keyID: String, issuer: String, publicKey: Curve25519.Signing.PublicKey) {
        self.keyID = keyID
        self.issuer = issuer
        self.publicKeyRaw = publicKey.rawRepresentation
    }

    /// Whether `signature` is this key's Ed25519 signature over exactly `payload`.
    public func isValidSignature(_ signature: Data, for payload: Data) -> Bool {
        guard let publicKey = try? Curve25519.Signing.PublicKey(rawRepresentation: self.publicKeyRaw) else { return false }
        return publicKey.isValidSignature(signature, for: payload)
    }

    /// A key from its configuration strings: `publicKey` is the base64 of the raw 32-byte Ed25519 public key,
    /// as `kiezbox keys generate` prints it. Throws an error whose description names what is wrong.
    public init(keyID: String, issuer: String, publicKeyBase64 publicKey: String) throws(AnnouncementKeyError) {
        guard AnnouncementIdentifier.isValid(keyID) else { throw .invalidKeyID(keyID) }
        let trimmedIssuer = issuer.trimmingCharacters(in: .whitespaces)
        guard !trimmedIssuer.isEmpty, trimmedIssuer.count <= 200 else { throw .invalidIssuer }
        self.init(keyID: keyID, issuer: trimmedIssuer, publicKey: try Self.parsePublicKey(publicKey))
    }

    /// Parses the base64 of a raw 32-byte Ed25519 public key.
    public static func parsePublicKey(_ text: String) throws(AnnouncementKeyError) -> Curve25519.Signing.PublicKey {
        guard let raw = Data(base64Encoded: text.trimmingCharacters(in: .whitespaces)) else { throw .notBase64 }
        guard raw.count == 32 else { throw .wrongLength(raw.count) }
        do {
            return try Curve25519.Signing.PublicKey(rawRepresentation: raw)
        } catch {
            throw .wrongLength(raw.count)
        }
    }

    /// Whether `keyID` can name a key: 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '-' (it becomes part of
    /// MQTT topics and database keys).
    public static func isValidKeyID(_ keyID: String) -> Bool { AnnouncementIdentifier.isValid(keyID) }

    /// The public key as configuration writes it: base64 of the raw 32 bytes.
    public var publicKeyBase64: String { self.publicKeyRaw.base64EncodedString() }

    /// A default key id for a public key: the first 8 bytes of its SHA-256, in hex. Stable, short, and
    /// different for every key, so a key file and a box configuration cannot disagree about it by accident.
    public static func fingerprint(of publicKey: Curve25519.Signing.PublicKey) -> String {
        Hex.encode(SHA256.hash(data: publicKey.rawRepresentation).prefix(8), uppercase: false)
    }
}

/// Why a configured authority key is not usable.
public enum AnnouncementKeyError: Error, Sendable, Hashable, CustomStringConvertible {
    case notBase64
    case wrongLength(Int)
    case invalidKeyID(String)
    case invalidIssuer

    public var description: String {
        switch self {
        case .notBase64: "public_key is not base64; expected the line `kiezbox keys generate` printed"
        case .wrongLength(let count): "public_key has \(count) bytes; an Ed25519 public key has 32"
        case .invalidKeyID(let id): "key_id \"\(id)\" is not usable: \(AnnouncementIdentifier.rule)"
        case .invalidIssuer: "name must be the authority's name, 1 to 200 characters"
        }
    }
}
