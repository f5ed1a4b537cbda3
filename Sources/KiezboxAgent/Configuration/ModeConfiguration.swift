import KiezboxCore

/// `[mode]`: when the box goes into crisis mode by itself, where it says which mode it is in, and what it runs
/// when the mode changes.
struct ModeConfiguration: Sendable, Hashable {
    var policy = ModePolicy()
    var hooks = ModeHooks()
    /// `state_file`: the file the daemon keeps the current mode in (`/run/kiezbox/mode` on a packaged box), which
    /// root's kiezbox-mode.path watches to start or stop the emergency Wi-Fi. `nil`: no such file.
    var stateFile: ModeStateFile?

    static func parse(_ root: TOMLTableReader) throws(ConfigurationError) -> ModeConfiguration {
        var configuration = ModeConfiguration()
        guard let table = try root.table("mode") else { return configuration }
        try table.rejectUnknownKeys(["crisis_after", "normal_after", "state_file", "on_crisis", "on_normal"])
        if let after = try table.duration("crisis_after", atLeast: .seconds(0)) {
            configuration.policy.crisisAfterMainsLoss = after.timeInterval
        }
        if let after = try table.duration("normal_after", atLeast: .seconds(0)) {
            configuration.policy.normalAfterMainsReturn = after.timeInterval
        }
        if let path = try table.string("state_file") {
            // Relative paths would depend on the daemon's working directory, which systemd sets to /.
            guard path.hasPrefix("/"), !path.hasSuffix("/") else {
                throw table.error("state_file", "'\(path)' is not an absolute file path; the packaged units watch \"/run/kiezbox/mode\"")
            }
            configuration.stateFile = ModeStateFile(path: path)
        }
        for key in ["on_crisis", "on_normal"] {
            let command = try table.strings(key)
            if let executable = command.first, !executable.hasPrefix("/") {
                throw table.error(key, "the command must start with an absolute path, e.g. [\"/usr/local/bin/notify-neighbours\", \"crisis\"]")
            }
            if key == "on_crisis" { configuration.hooks.onCrisis = command } else { configuration.hooks.onNormal = command }
        }
        return configuration
    }
}
