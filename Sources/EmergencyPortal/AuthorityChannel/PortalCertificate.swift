import Crypto
import Foundation
import KiezboxCore
import SwiftASN1
import X509

/// The box's own TLS certificate for the portal's HTTPS side, where authorities send their bearer tokens.
///
/// No public CA can vouch for a box on a roof with a made-up name, so the box makes a self-signed certificate on its
/// first start and keeps it in its data directory. Authorities do not trust it by a chain but by a pin: the SHA-256
/// of its SubjectPublicKeyInfo (``publicKeyPin``), which the box publishes in its MQTT status, `kiezbox status` and
/// its log. The pin names the key, not the certificate, so re-issuing the certificate (another host name) from the
/// same key keeps every authority's pin valid.
public struct PortalCertificate: Sendable, Hashable {
    /// The certificate, PEM.
    public let certificatePEM: String
    /// The P-256 private key, PEM (PKCS #8); the file holding it is mode 0600.
    public let privateKeyPEM: String
    /// Base64 of the SHA-256 of the certificate's DER SubjectPublicKeyInfo: what `curl --pinnedpubkey sha256//…`
    /// takes after the `sha256//`.
    public let publicKeyPin: String

    /// The folder in the data directory that holds the key and the certificate.
    public static let folderName = "tls"
    public static let certificateFileName = "portal-certificate.pem"
    public static let privateKeyFileName = "portal-key.pem"

    /// What ``loadOrCreate(dataDirectory:hostname:identity:now:)`` had to do.
    public enum Origin: Sendable, Hashable {
        /// Key and certificate were there and fit.
        case reused
        /// The key was there; the certificate was missing, did not fit the key or did not name the host: a new one
        /// from the same key (the pin stays).
        case reissued
        /// First start: a new key and certificate (a new pin).
        case created
    }

    /// The certificate of the box whose data directory is `dataDirectory`: the stored one when its key is there and
    /// it names `hostname`; otherwise a new certificate (from the stored key if there is one), stored for the next
    /// start.
    public static func loadOrCreate(
        dataDirectory: String, hostname: String, identity: BoxIdentity, now: Date = Date()
    ) throws -> (certificate: PortalCertificate, origin: Origin) {
        let folder = (dataDirectory as NSString).appendingPathComponent(self.folderName)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        let keyPath = (folder as NSString).appendingPathComponent(self.privateKeyFileName)
        let certificatePath = (folder as NSString).appendingPathComponent(self.certificateFileName)

        let key: P256.Signing.PrivateKey
        var origin = Origin.reused
        if let keyPEM = try? String(contentsOfFile: keyPath, encoding: .utf8) {
            do {
                key = try P256.Signing.PrivateKey(pemRepresentation: keyPEM)
            } catch {
                throw PortalCertificateError(
                    description: "\(keyPath) is not a P-256 private key (\(error)); move it away and restart to make a new key "
                        + "(authorities then need the new pin)"
                )
            }
            // A key readable by others is no secret: tighten it rather than refuse to start.
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: keyPath)
        } else {
            key = P256.Signing.PrivateKey()
            try self.writeAtomically(key.pemRepresentation, to: keyPath, permissions: 0o600)
            origin = .created
        }

        if origin == .reused, let stored = try? String(contentsOfFile: certificatePath, encoding: .utf8),
            let certificate = try? Certificate(pemEncoded: stored),
            P256.Signing.PublicKey(certificate.publicKey)?.rawRepresentation == key.publicKey.rawRepresentation,
            Self.dnsNames(of: certificate).contains(hostname)
        {
            return (PortalCertificate(certificatePEM: stored, privateKeyPEM: key.pemRepresentation, publicKeyPin: try Self.pin(of: certificate)), .reused)
        }
        if origin == .reused { origin = .reissued }
        let certificate = try Self.issue(key: key, hostname: hostname, identity: identity, now: now)
        let pem = try certificate.serializeAsPEM().pemString + "\n"
        try self.writeAtomically(pem, to: certificatePath, permissions: 0o644)
        return (PortalCertificate(certificatePEM: pem, privateKeyPEM: key.pemRepresentation, publicKeyPin: try Self.pin(of: certificate)), origin)
    }

    /// The pin of the certificate stored in `dataDirectory`, for `kiezbox status`: read from the certificate alone,
    /// so it works without access to the key. `nil` when the box has not made one yet.
    public static func storedPin(dataDirectory: String) throws -> String? {
        let path = ((dataDirectory as NSString).appendingPathComponent(self.folderName) as NSString)
            .appendingPathComponent(self.certificateFileName)
        guard let pem = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return try self.pin(of: Certificate(pemEncoded: pem))
    }

    /// Base64 SHA-256 of the certificate's DER SubjectPublicKeyInfo (RFC 7469's pin, curl's `--pinnedpubkey`).
    public static func pin(of certificate: Certificate) throws -> String {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate.publicKey)
        return Data(SHA256.hash(data: serializer.serializedBytes)).base64EncodedString()
    }

    /// A self-signed server certificate for `hostname` and `localhost`, valid from a day before `now` for 30 years: it
    /// should outlive the box, and a box whose clock is wrong at first start must not make one that is not yet valid
    /// by much. Clients pin the key; the dates matter only to those who check them.
    static func issue(key: P256.Signing.PrivateKey, hostname: String, identity: BoxIdentity, now: Date) throws -> Certificate {
        let name = try DistinguishedName {
            OrganizationName("Kiezbox")
            OrganizationalUnitName(identity.district)
            CommonName("\(identity.boxID) (\(hostname))")
        }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.serverAuth])
            SubjectAlternativeNames(Array(Set([hostname, "localhost"])).sorted().map { .dnsName($0) })
        }
        let notBefore = now.addingTimeInterval(-86_400)
        return try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: notBefore, notValidAfter: notBefore.addingTimeInterval(30 * 365.25 * 86_400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
            issuerPrivateKey: .init(key)
        )
    }

    static func dnsNames(of certificate: Certificate) -> [String] {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return [] }
        return names.compactMap { name in
            if case .dnsName(let dnsName) = name { return dnsName }
            return nil
        }
    }

    /// Writes `text` to a new file beside `path` with `permissions` from the start, syncs it and renames it over
    /// `path`: a power cut leaves the old file or the new one, never half a key.
    static func writeAtomically(_ text: String, to path: String, permissions: mode_t) throws {
        let temporary = path + ".new"
        unlink(temporary)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, permissions)
        guard descriptor >= 0 else { throw PortalCertificateError(description: "cannot create \(temporary): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor)
        close(descriptor)
        guard written == bytes.count, synced == 0, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw PortalCertificateError(description: "cannot write \(path): \(reason)")
        }
    }
}

/// The portal's key or certificate cannot be read or written; says which file and what to do.
public struct PortalCertificateError: Error, Sendable, CustomStringConvertible {
    public var description: String
}
