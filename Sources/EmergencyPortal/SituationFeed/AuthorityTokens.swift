import Crypto
import Foundation
import KiezboxCore

/// A configured civil-protection authority and the SHA-256 of its bearer token. Only the digest is configured, so a
/// leaked configuration file (a box stands on a roof) does not leak a working token.
public struct AuthorityToken: Sendable, Hashable {
    /// The authority's name as configured ("Feuerwehr Berlin, Lagedienst"); what ``FeedAccess/authority(name:)``
    /// carries.
    public var name: String
    /// The 32 bytes of SHA-256 of the token.
    public var digest: [UInt8]

    /// Checks `tokenSHA256` (see ``AuthorityTokens/parseDigest(_:)``).
    public init(name: String, tokenSHA256: String) throws(AuthorityTokenError) {
        self.name = name
        self.digest = try AuthorityTokens.parseDigest(tokenSHA256)
    }
}

/// A configured `token_sha256` that is not a SHA-256 digest; ``message`` says what is expected, for the
/// configuration error that names the file, line and key.
public struct AuthorityTokenError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public var description: String { self.message }
}

/// The authorities allowed to see residents' posts, and the check of a request's `Authorization` header against
/// them.
public struct AuthorityTokens: Sendable {
    public let authorities: [AuthorityToken]

    public init(_ authorities: [AuthorityToken]) {
        self.authorities = authorities
    }

    /// What a request may see: ``FeedAccess/authority(name:)`` for `Authorization: Bearer <token>` whose SHA-256
    /// is configured, ``FeedAccess/public`` for anything else (no header, another scheme, a malformed or unknown
    /// token). The scheme is case-insensitive (RFC 9110 §11.1); the token must be an RFC 6750 `b64token`.
    ///
    /// The presented token is hashed and compared with every configured digest in constant time, always all of
    /// them, so the response time says nothing about how close a guess was or which authority matched.
    public func authorize(authorizationHeader: String?) -> FeedAccess {
        guard let token = Self.bearerToken(authorizationHeader) else { return .public }
        let presented = Array(SHA256.hash(data: Data(token.utf8)))
        var match: String?
        for authority in self.authorities {
            if Self.constantTimeEqual(presented, authority.digest), match == nil { match = authority.name }
        }
        return match.map { .authority(name: $0) } ?? .public
    }

    /// The token of a `Bearer` credential, or nil when the header is missing, uses another scheme or is malformed.
    static func bearerToken(_ header: String?) -> String? {
        guard let header else { return nil }
        let trimmed = header.trimmingCharacters(in: CharacterSet(charactersIn: " \t"))
        guard let space = trimmed.firstIndex(where: { $0 == " " || $0 == "\t" }) else { return nil }
        let scheme = trimmed[..<space]
        let token = trimmed[space...].trimmingCharacters(in: CharacterSet(charactersIn: " \t"))
        guard scheme.lowercased() == "bearer", isB64Token(token) else { return nil }
        return token
    }

    /// RFC 6750 §2.1: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
    private static func isB64Token(_ token: String) -> Bool {
        var withoutPadding = Substring(token)
        while withoutPadding.last == "=" { withoutPadding.removeLast() }
        guard !withoutPadding.isEmpty else { return false }
        return withoutPadding.allSatisfy { character in
            character.isASCII && (character.isLetter || character.isNumber || "-._~+/".contains(character))
        }
    }

    /// Whether two byte strings are equal, in a time that depends only on their length.
    static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }

    /// The lowercase hex SHA-256 of a token: what goes into the configuration as `token_sha256`.
    public static func hash(token: String) -> String {
        Hex.encode(SHA256.hash(data: Data(token.utf8)), uppercase: false)
    }

    /// A new token: 32 bytes from the system's secure random source, base64url without padding (43 characters),
    /// which is a valid bearer token as it stands.
    public static func generateToken() -> String {
        let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        return bytes.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// The digest bytes of a configured `token_sha256`: exactly 64 hexadecimal digits (upper case accepted).
    public static func parseDigest(_ text: String) throws(AuthorityTokenError) -> [UInt8] {
        let digits = Array(text.utf8)
        guard digits.count == 64 else {
            throw AuthorityTokenError(
                message: "expected the SHA-256 of the token as 64 hexadecimal digits, found \(digits.count) characters "
                    + "(create one with `kiezbox token generate --name NAME`; the token itself does not belong here)"
            )
        }
        guard let bytes = Hex.decode(text) else {
            throw AuthorityTokenError(
                message: "expected the SHA-256 of the token as 64 hexadecimal digits (0-9, a-f), found other characters"
            )
        }
        return bytes
    }
}
