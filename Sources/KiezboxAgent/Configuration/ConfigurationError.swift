/// A configuration file that cannot be used, said so that a resident can fix it: the file, the line, the
/// key and what was expected.
struct ConfigurationError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The file, or "<embedded default>".
    var file: String
    /// 1-based line, when the place could be found.
    var line: Int?
    var column: Int?
    /// The key as written in TOML ("store.flush_interval", "sensor[2].address"), empty for syntax errors.
    var key: String
    var message: String

    var description: String {
        var place = self.file
        if let line { place += ":\(line)" }
        if let column { place += ":\(column)" }
        let subject = self.key.isEmpty ? "" : "\(self.key): "
        return "\(place): \(subject)\(self.message)"
    }
}
