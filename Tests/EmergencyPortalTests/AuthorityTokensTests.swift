import EmergencyPortal
import Foundation
import Testing

@Suite("Authority bearer tokens")
struct AuthorityTokensTests {
    private let fireToken = "kT3v9Qm1xZ-_aB8cD7eF6gH5iJ4kL3mN2oP1qR0sT9u"
    private let districtToken = "another-token.with~all+allowed/characters=="

    private func tokens() throws -> AuthorityTokens {
        AuthorityTokens([
            try AuthorityToken(name: "Berliner Feuerwehr", tokenSHA256: AuthorityTokens.hash(token: fireToken)),
            // Upper-case hex is accepted: people paste digests from other tools.
            try AuthorityToken(name: "Bezirksamt", tokenSHA256: AuthorityTokens.hash(token: districtToken).uppercased()),
        ])
    }

    @Test("SHA-256 test vectors (FIPS 180-2)")
    func hashVectors() {
        #expect(AuthorityTokens.hash(token: "abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(AuthorityTokens.hash(token: "") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test("the right token, whatever the scheme's case, gives its authority")
    func rightToken() throws {
        let tokens = try tokens()
        #expect(tokens.authorize(authorizationHeader: "Bearer \(fireToken)") == .authority(name: "Berliner Feuerwehr"))
        #expect(tokens.authorize(authorizationHeader: "bearer \(fireToken)") == .authority(name: "Berliner Feuerwehr"))
        #expect(tokens.authorize(authorizationHeader: "BEARER  \(fireToken) ") == .authority(name: "Berliner Feuerwehr"))
        #expect(tokens.authorize(authorizationHeader: "Bearer \(districtToken)") == .authority(name: "Bezirksamt"))
    }

    @Test(
        "anything else is public",
        arguments: [
            nil, "", "Bearer", "Bearer ", "Bearer wrong-token", "Basic dXNlcjpwYXNz", "Token kT3v9Qm1xZ",
            "BearerkT3v9Qm1xZ-_aB8cD7eF6gH5iJ4kL3mN2oP1qR0sT9u", "Bearer kT3v9Qm1xZ-_aB8cD7eF6gH5iJ4kL3mN2oP1qR0sT9u extra",
            "Bearer kT3v9Qm1xZ-_aB8cD7eF6gH5iJ4kL3mN2oP1qR0sT9", "Bearer kT3v9Qm1xZ-_aB8cD7eF6gH5iJ4kL3mN2oP1qR0sT9u\u{0}",
            "Bearer ====", "Bearer ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ] as [String?]
    )
    func otherwisePublic(header: String?) throws {
        #expect(try tokens().authorize(authorizationHeader: header) == .public)
    }

    @Test("the configured digest itself is no token")
    func digestIsNoToken() throws {
        let tokens = try tokens()
        #expect(tokens.authorize(authorizationHeader: "Bearer \(AuthorityTokens.hash(token: fireToken))") == .public)
    }

    @Test("no authorities configured: everyone is public")
    func noAuthorities() {
        #expect(AuthorityTokens([]).authorize(authorizationHeader: "Bearer \(fireToken)") == .public)
    }

    @Test("generated tokens: 32 random bytes as 43 base64url characters, usable as they are")
    func generatedTokens() throws {
        let first = AuthorityTokens.generateToken()
        let second = AuthorityTokens.generateToken()
        #expect(first != second)
        for token in [first, second] {
            #expect(token.count == 43)
            #expect(token.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }, "\(token)")
            let base64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/") + "="
            #expect(Data(base64Encoded: base64)?.count == 32)
            let tokens = AuthorityTokens([try AuthorityToken(name: "Lagedienst", tokenSHA256: AuthorityTokens.hash(token: token))])
            #expect(tokens.authorize(authorizationHeader: "Bearer \(token)") == .authority(name: "Lagedienst"))
        }
    }

    @Test("a configured token_sha256 must be 64 hex digits; the error says so")
    func digestValidation() throws {
        #expect(try AuthorityTokens.parseDigest(AuthorityTokens.hash(token: "abc")).count == 32)
        #expect(try AuthorityTokens.parseDigest(AuthorityTokens.hash(token: "abc")).first == 0xba)
        for bad in ["", "ba7816bf", fireToken, String(repeating: "g", count: 64), AuthorityTokens.hash(token: "abc") + "0"] {
            #expect {
                try AuthorityTokens.parseDigest(bad)
            } throws: { error in
                (error as? AuthorityTokenError)?.message.contains("64 hexadecimal digits") == true
            }
        }
        #expect(throws: AuthorityTokenError.self) { try AuthorityToken(name: "x", tokenSHA256: " " + AuthorityTokens.hash(token: "abc").dropFirst()) }
    }

    @Test("access levels: only an authority sees post text")
    func accessLevels() {
        #expect(FeedAccess.authority(name: "x").seesPostText)
        #expect(!FeedAccess.public.seesPostText)
    }
}
