public import Crypto
public import Foundation

/// Signs announcements with a civil-protection private key: what `kiezbox announce sign` uses (and tests).
/// Not `Sendable`: it holds swift-crypto's private key, which is not.
public struct AnnouncementSigner {
    public let keyID: String
    public let privateKey: Curve25519.Signing.PrivateKey

    public init(keyID: String, privateKey: Curve25519.Signing.PrivateKey) {
        self.keyID = keyID
        self.privateKey = privateKey
    }

    /// Checks the payload's limits, then signs its JSON bytes.
    public func sign(_ payload: AnnouncementPayload) throws -> AnnouncementEnvelope {
        try payload.validate()
        return try self.sign(bytes: payload.json())
    }

    /// Signs arbitrary payload bytes, unchecked (tests use it to build malformed but validly signed payloads).
    public func sign(bytes payload: Data) throws -> AnnouncementEnvelope {
        AnnouncementEnvelope(keyID: self.keyID, payload: payload, signature: try self.privateKey.signature(for: payload))
    }
}
