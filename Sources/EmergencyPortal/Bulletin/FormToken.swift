import Crypto
import Foundation

/// The hidden token in every bulletin form: proof that a post comes from a form this box served to the same
/// client recently, so another web page cannot make a neighbour's browser post, and an old form cannot be replayed
/// for ever. No cookies are needed (the iOS sign-in sheet keeps none).
///
/// A token is the issue time (8 bytes, big-endian seconds) and the first 16 bytes of
/// HMAC-SHA256(secret, client address ‖ issue time), base64url. The secret is random per daemon start: forms
/// served before a restart are refused once and served again with a fresh token.
public struct FormTokens: Sendable {
    /// The HMAC key's bytes (`SymmetricKey` itself is not `Sendable`).
    private let keyBytes: [UInt8]
    /// How long a served form stays valid.
    public let lifetime: TimeInterval

    public init(lifetime: TimeInterval = 2 * 3600, key: SymmetricKey = SymmetricKey(size: .bits256)) {
        self.keyBytes = key.withUnsafeBytes { Array($0) }
        self.lifetime = lifetime
    }

    /// A token for a form served to `client` at `now`.
    public func issue(for client: String, at now: Date) -> String {
        let issued = UInt64(max(0, now.timeIntervalSince1970.rounded(.down)))
        var bytes = withUnsafeBytes(of: issued.bigEndian) { Array($0) }
        bytes += self.mac(client: client, issued: issued)
        return Data(bytes).base64URLEncoded()
    }

    /// Whether `token` was issued by this box to `client` within the lifetime (and not in the future).
    public func isValid(_ token: String, for client: String, at now: Date) -> Bool {
        guard let data = Data(base64URLEncoded: token), data.count == 24 else { return false }
        let bytes = Array(data)
        let issued = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let age = now.timeIntervalSince1970 - Double(issued)
        guard age >= -60, age <= self.lifetime else { return false }
        return AuthorityTokens.constantTimeEqual(self.mac(client: client, issued: issued), Array(bytes[8...]))
    }

    private func mac(client: String, issued: UInt64) -> [UInt8] {
        var message = Array(client.utf8)
        message.append(0)
        message += withUnsafeBytes(of: issued.bigEndian) { Array($0) }
        return Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: self.keyBytes)).prefix(16))
    }
}

extension Data {
    /// Base64url without padding (RFC 4648 §5).
    ///
    /// Mapped byte by byte: every info page carries a fresh token, and Foundation's `replacingOccurrences` (through
    /// NSString on Linux) cost more than the HMAC itself, a tenth of the portal's CPU under load.
    func base64URLEncoded() -> String {
        let encoded = self.base64EncodedData().compactMap { byte -> UInt8? in
            switch byte {
            case UInt8(ascii: "+"): UInt8(ascii: "-")
            case UInt8(ascii: "/"): UInt8(ascii: "_")
            case UInt8(ascii: "="): nil
            default: byte
            }
        }
        return String(decoding: encoded, as: UTF8.self)
    }

    init?(base64URLEncoded text: String) {
        guard text.utf8.count <= 4096, text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            return nil
        }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.utf8.count % 4) % 4)
        self.init(base64Encoded: base64)
    }
}
