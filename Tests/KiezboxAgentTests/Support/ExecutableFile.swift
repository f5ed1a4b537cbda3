import Foundation
import KiezboxTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Writes a script the tests run (a stand-in `systemctl`, a DHCP hook) with its descriptor closed on exec.
///
/// `String.write(toFile:)` opens its file without `O_CLOEXEC`; a daemon or tool another test forks at that
/// moment inherits the write descriptor and keeps it for its lifetime, and every exec of the script then fails
/// with ETXTBSY (status 126 from the shell). Seen on CI: a stand-in `systemctl` that "failed" with 126.
func writeExecutable(_ text: String, to path: String) throws {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
    guard descriptor >= 0 else { throw TestFailure("cannot create \(path): errno \(errno)") }
    defer { close(descriptor) }
    let bytes = Array(text.utf8)
    var written = 0
    while written < bytes.count {
        let count = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard count > 0 else { throw TestFailure("cannot write \(path): errno \(errno)") }
        written += count
    }
    // open() applies the umask to the mode.
    guard fchmod(descriptor, 0o755) == 0 else { throw TestFailure("cannot make \(path) executable: errno \(errno)") }
}
