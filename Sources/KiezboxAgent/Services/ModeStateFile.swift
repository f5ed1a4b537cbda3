import Foundation
import KiezboxCore

/// Why the mode file could not be written.
struct ModeStateFileError: Error, CustomStringConvertible {
    var description: String
}

/// The file the daemon keeps its current mode in (`[mode] state_file`): exactly `crisis\n`, `normal\n` or
/// `maintenance\n`. Root's kiezbox-mode.path watches it and starts or stops the emergency Wi-Fi, so the
/// unprivileged daemon needs no right to manage units itself.
struct ModeStateFile: Sendable, Hashable {
    let path: String

    /// What the file holds in `mode`.
    static func contents(_ mode: Mode) -> String { mode.rawValue + "\n" }

    /// Replaces the file in one step (a temporary file renamed over it), so the watcher never reads a
    /// half-written mode: a reader sees the old file or the new one.
    func write(_ mode: Mode) throws(ModeStateFileError) {
        let directory = (self.path as NSString).deletingLastPathComponent
        let temporary = (directory as NSString).appendingPathComponent(".\((self.path as NSString).lastPathComponent).tmp")
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard descriptor >= 0 else { throw self.failure("cannot create \(temporary)") }
        // 0644 whatever the umask (the unit's UMask=0027 would make it 0640): root's watcher runs without
        // CAP_DAC_OVERRIDE and reads it as "other"; a resident may `cat` it. Only the daemon's user writes.
        guard fchmod(descriptor, 0o644) == 0 else {
            let error = self.failure("cannot make \(temporary) readable")
            close(descriptor)
            unlink(temporary)
            throw error
        }
        let bytes = Array(Self.contents(mode).utf8)
        let written = bytes.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
        guard written == bytes.count else {
            let error = self.failure("cannot write \(temporary)")
            close(descriptor)
            unlink(temporary)
            throw error
        }
        close(descriptor)
        guard rename(temporary, self.path) == 0 else {
            let error = self.failure("cannot rename \(temporary) to \(self.path)")
            unlink(temporary)
            throw error
        }
    }

    private func failure(_ what: String) -> ModeStateFileError {
        ModeStateFileError(description: "\(what): \(String(cString: strerror(errno)))")
    }
}
