import Crypto
import Foundation
import SwiftASN1
import Testing
import X509

@testable import EmergencyPortal

@Suite("The portal's own certificate")
struct PortalCertificateTests {
    @Test("made on the first start with a 0600 key, reused after; a new host name re-issues it from the same key, so the pin stays")
    func madeOnceAndPinnedByKey() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-cert-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (first, created) = try PortalCertificate.loadOrCreate(dataDirectory: directory, hostname: "kiez.box", identity: RunningPortal.identity)
        #expect(created == .created)
        let keyPath = directory + "/tls/portal-key.pem"
        #expect(try FileManager.default.attributesOfItem(atPath: keyPath)[.posixPermissions] as? Int == 0o600)

        let (second, reused) = try PortalCertificate.loadOrCreate(dataDirectory: directory, hostname: "kiez.box", identity: RunningPortal.identity)
        #expect(reused == .reused)
        #expect(second == first)
        #expect(try PortalCertificate.storedPin(dataDirectory: directory) == first.publicKeyPin)

        let (renamed, reissued) = try PortalCertificate.loadOrCreate(dataDirectory: directory, hostname: "box7.mesh", identity: RunningPortal.identity)
        #expect(reissued == .reissued)
        #expect(renamed.certificatePEM != first.certificatePEM)
        #expect(renamed.publicKeyPin == first.publicKeyPin)

        // The pin is the SHA-256 of the DER SubjectPublicKeyInfo, as curl and RFC 7469 take it.
        let certificate = try Certificate(pemEncoded: renamed.certificatePEM)
        let key = try P256.Signing.PrivateKey(pemRepresentation: renamed.privateKeyPEM)
        #expect(Data(SHA256.hash(data: key.publicKey.derRepresentation)).base64EncodedString() == renamed.publicKeyPin)
        #expect(PortalCertificate.dnsNames(of: certificate).contains("box7.mesh"))
        #expect(certificate.issuer == certificate.subject)
        #expect(certificate.notValidAfter.timeIntervalSinceNow > 20 * 365 * 86_400)
    }

    @Test("a key that is not a key stops the start with the file named")
    func brokenKey() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-cert-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory + "/tls", withIntermediateDirectories: true)
        try "garbage".write(toFile: directory + "/tls/portal-key.pem", atomically: true, encoding: .utf8)
        #expect {
            try PortalCertificate.loadOrCreate(dataDirectory: directory, hostname: "kiez.box", identity: RunningPortal.identity)
        } throws: { error in
            "\(error)".contains("portal-key.pem is not a P-256 private key")
        }
    }
}
