import Logging
import Synchronization

/// A log handler that keeps every line, so a test can read what the portal logged.
struct RecordingLogHandler: LogHandler {
    /// The lines logged so far: level, message and metadata as "key=value".
    final class Lines: Sendable {
        private let lines = Mutex<[String]>([])
        func append(_ line: String) { self.lines.withLock { $0.append(line) } }
        var all: [String] { self.lines.withLock { $0 } }
    }

    let lines: Lines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let fields = (self.metadata.merging(event.metadata ?? [:]) { $1 }).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        self.lines.append(([event.level.rawValue, event.message.description] + fields).joined(separator: " "))
    }

    /// A logger whose lines end up in the returned ``Lines``.
    static func logger() -> (Logger, Lines) {
        let lines = Lines()
        return (Logger(label: "portal-test") { _ in RecordingLogHandler(lines: lines) }, lines)
    }
}
