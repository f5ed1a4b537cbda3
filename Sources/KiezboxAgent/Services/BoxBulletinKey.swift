import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The box's own Ed25519 key that signs its bulletin posts for the district: `bulletin-key` in the data directory
/// (`/var/lib/kiezbox/bulletin-key`), the raw 32-byte private key, mode 0600, created on the first start and kept
/// across restarts and upgrades. Its public key goes out in the box's retained status (docs/mqtt.md).
enum BoxBulletinKey {
    static let fileName = "bulletin-key"

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The key in `dataDirectory`, created first if there is none. A file that is not a key is an error (never
    /// replaced: the district knows this box by its key); one readable by others is made 0600 again.
    static func loadOrCreate(in dataDirectory: String) throws -> Curve25519.Signing.PrivateKey {
        let path = dataDirectory + "/" + Self.fileName
        if let existing = FileManager.default.contents(atPath: path) {
            guard existing.count == 32, let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: existing) else {
                throw Failure(description: "\(path) is not a bulletin key (32 raw bytes); move it away to make a new key")
            }
            if let mode = (try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int, mode & 0o077 != 0 {
                guard chmod(path, 0o600) == 0 else {
                    throw Failure(description: "cannot make \(path) private: \(String(cString: strerror(errno)))")
                }
            }
            return key
        }
        let key = Curve25519.Signing.PrivateKey()
        if let error = createPrivateFile(atPath: path, contents: Array(key.rawRepresentation)) {
            throw Failure(description: "cannot create \(path): \(String(cString: strerror(error)))")
        }
        return key
    }
}
