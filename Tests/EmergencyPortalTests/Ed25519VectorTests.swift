import Crypto
import Foundation
import Testing

/// The primitive is standard Ed25519: swift-crypto reproduces RFC 8032, section 7.1, TEST 1 and TEST 2.
@Suite("Ed25519 (RFC 8032 vectors)")
struct Ed25519VectorTests {
    struct Vector: Sendable, CustomTestStringConvertible {
        var name: String
        var secretKey: String
        var publicKey: String
        var message: String
        var signature: String
        var testDescription: String { self.name }
    }

    static let vectors = [
        Vector(
            name: "TEST 1 (empty message)",
            secretKey: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            publicKey: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            message: "",
            signature: "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        ),
        Vector(
            name: "TEST 2 (one byte)",
            secretKey: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            publicKey: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            message: "72",
            signature: "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        ),
    ]

    @Test("the public key derived from the RFC secret, and the RFC signature verifying", arguments: vectors)
    func vector(_ vector: Vector) throws {
        let privateKey = try Curve25519.Signing.PrivateKey(rawRepresentation: hex(vector.secretKey))
        #expect(privateKey.publicKey.rawRepresentation == hex(vector.publicKey))

        let publicKey = try Curve25519.Signing.PublicKey(rawRepresentation: hex(vector.publicKey))
        let message = hex(vector.message)
        let signature = hex(vector.signature)
        #expect(publicKey.isValidSignature(signature, for: message))

        // Our own signature verifies too (it may differ from the RFC's where signing is randomised).
        #expect(publicKey.isValidSignature(try privateKey.signature(for: message), for: message))

        var flipped = signature
        flipped[0] ^= 0x01
        #expect(!publicKey.isValidSignature(flipped, for: message))
        #expect(!publicKey.isValidSignature(signature, for: message + Data([0])))
    }
}

func hex(_ text: String) -> Data {
    var bytes = Data()
    var index = text.startIndex
    while index < text.endIndex {
        let next = text.index(index, offsetBy: 2)
        bytes.append(UInt8(text[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}
