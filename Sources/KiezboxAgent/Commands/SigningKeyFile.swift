import Crypto
import EmergencyPortal
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A civil-protection signing key on disk: a small text file, readable only by its owner, that names the key id
/// and holds the raw 32-byte Ed25519 private key in base64.
///
/// ```
/// # Kiezbox announcement signing key (Ed25519). …
/// key_id = 3f9a0c1d2e4b5a69
/// private_key = <base64>
/// ```
struct SigningKeyFile {
    var keyID: String
    var privateKey: Curve25519.Signing.PrivateKey

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Writes the file with mode 0600; refuses to replace an existing file (a lost key cannot be recovered).
    func save(to path: String) throws {
        let text = """
            # Kiezbox announcement signing key (Ed25519). Keep it secret and backed up: whoever holds it can
            # publish official announcements to every box that trusts key \(self.keyID).
            key_id = \(self.keyID)
            private_key = \(self.privateKey.rawRepresentation.base64EncodedString())

            """
        if let error = createPrivateFile(atPath: path, contents: Array(text.utf8)) {
            let reason = error == EEXIST ? "it already exists; choose another file (a key is never overwritten)" : String(cString: strerror(error))
            throw Failure(description: "cannot write \(path): \(reason)")
        }
    }

    /// Reads a key file written by `kiezbox keys generate`.
    static func read(from path: String) throws -> SigningKeyFile {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw Failure(description: "cannot read the signing key \(path)")
        }
        var fields: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty, !trimmed.hasPrefix("#"), let equals = trimmed.firstIndex(of: "=") else { continue }
            fields[trimmed[..<equals].trimmingCharacters(in: .whitespaces)] =
                trimmed[trimmed.index(after: equals)...].trimmingCharacters(in: .whitespaces)
        }
        guard let encoded = fields["private_key"], let raw = Data(base64Encoded: encoded), raw.count == 32,
            let privateKey = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw)
        else {
            throw Failure(description: "\(path) is not a signing key written by `kiezbox keys generate` (no valid private_key line)")
        }
        let keyID = fields["key_id"] ?? AnnouncementKey.fingerprint(of: privateKey.publicKey)
        return SigningKeyFile(keyID: keyID, privateKey: privateKey)
    }

    /// The `[[authority]]` table a box's configuration needs to trust this key.
    func authorityTable(name: String?) -> String {
        """
        [[authority]]
        name = \(tomlBasicString(name ?? "Name of your authority, as residents should see it"))
        key_id = "\(self.keyID)"
        public_key = "\(self.privateKey.publicKey.rawRepresentation.base64EncodedString())"

        """
    }
}

/// Creates `path` with mode 0600, never replacing a file, and writes `bytes` through to the disk (fsync): for
/// private keys. Returns the errno when it fails (a partly written file is removed).
func createPrivateFile(atPath path: String, contents bytes: [UInt8]) -> Int32? {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard descriptor >= 0 else { return errno }
    defer { close(descriptor) }
    let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    guard written == bytes.count, fsync(descriptor) == 0 else {
        let error = errno
        unlink(path)
        return error
    }
    return nil
}
