import KiezboxCore

/// `[mode]`: when the box goes into crisis mode by itself, where it says which mode it is in, and what it runs
/// when the mode changes.
struct ModeConfiguration: Sendable, Hashable {
    var policy = ModePolicy()
    var hooks = ModeHooks()
    /// `state_file`: the file the daemon keeps the current mode in (`/run/kiezbox/mode` on a packaged box), which
    /// root's kiezbox-mode.path watches to start or stop the emergency Wi-Fi. `nil`: no such file.
    var stateFile: ModeStateFile?
    /// `check_interval`: how often the mode is decided (10 s). A trigger acts within this after its delay.
    var checkInterval: Duration = .seconds(10)

    static func parse(_ root: TOMLTableReader) throws(ConfigurationError) -> ModeConfiguration {
        var configuration = ModeConfiguration()
        guard let table = try root.table("mode") else { return configuration }
        try table.rejectUnknownKeys([
            "crisis_after", "normal_after", "uplink_lost_after", "battery_below", "check_interval", "state_file", "on_crisis", "on_normal",
        ])
        if let after = try table.duration("crisis_after", atLeast: .seconds(0)) {
            configuration.policy.crisisAfterMainsLoss = after.timeInterval
        }
        if let after = try table.duration("normal_after", atLeast: .seconds(0)) {
            configuration.policy.normalAfterMainsReturn = after.timeInterval
        }
        // "off" switches a trigger off; anything else must be a duration or a percentage.
        if (try? table.string("uplink_lost_after")) == "off" {
            configuration.policy.crisisAfterUplinkLoss = nil
        } else if let after = try table.duration("uplink_lost_after", atLeast: .seconds(1)) {
            configuration.policy.crisisAfterUplinkLoss = after.timeInterval
        }
        if (try? table.string("battery_below")) == "off" {
            configuration.policy.crisisBelowBatteryPercent = nil
        } else if let percent = try table.double("battery_below", in: 0...100) {
            configuration.policy.crisisBelowBatteryPercent = percent
        }
        if let interval = try table.duration("check_interval", atLeast: .milliseconds(10)) {
            configuration.checkInterval = interval
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
