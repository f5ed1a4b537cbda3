import KiezboxCore

/// `[mode]`: when the box goes into crisis mode by itself, and what it runs when it does.
struct ModeConfiguration: Sendable, Hashable {
    var policy = ModePolicy()
    var hooks = ModeHooks()

    static func parse(_ root: TOMLTableReader) throws(ConfigurationError) -> ModeConfiguration {
        var configuration = ModeConfiguration()
        guard let table = try root.table("mode") else { return configuration }
        try table.rejectUnknownKeys(["crisis_after", "normal_after", "on_crisis", "on_normal"])
        if let after = try table.duration("crisis_after", atLeast: .seconds(0)) {
            configuration.policy.crisisAfterMainsLoss = after.timeInterval
        }
        if let after = try table.duration("normal_after", atLeast: .seconds(0)) {
            configuration.policy.normalAfterMainsReturn = after.timeInterval
        }
        for key in ["on_crisis", "on_normal"] {
            let command = try table.strings(key)
            if let executable = command.first, !executable.hasPrefix("/") {
                throw table.error(key, "the command must start with an absolute path, e.g. [\"/usr/bin/systemctl\", \"start\", \"kiezbox-emergency-wifi.target\"]")
            }
            if key == "on_crisis" { configuration.hooks.onCrisis = command } else { configuration.hooks.onNormal = command }
        }
        return configuration
    }
}
