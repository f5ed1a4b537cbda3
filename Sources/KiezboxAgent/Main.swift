import ArgumentParser

/// The `kiezbox` command: the daemon and the tools a resident uses to look at it.
@main
struct Kiezbox: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiezbox",
        abstract: "Neighbourhood sensor box and emergency gateway.",
        discussion: """
            `kiezbox run` starts the daemon. With no configuration file it runs a simulated kit and keeps its data \
            in ./kiezbox-data, so it works out of the box. `kiezbox status` and `kiezbox readings` read the same \
            data while the daemon runs.
            """,
        version: Kiezbox.version,
        subcommands: [
            RunCommand.self, StatusCommand.self, ReadingsCommand.self, DoctorCommand.self, ConfigCommand.self,
            ModeCommand.self, KeysCommand.self, AnnounceCommand.self, TokenCommand.self, WiFiCommand.self, BulletinCommand.self,
        ]
    )
}

/// Options every command that reads the data directory shares.
struct DataOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Configuration file (default: /etc/kiezbox/kiezbox.toml, else the embedded default).", valueName: "file"))
    var config: String?

    @Option(name: .customLong("data-dir"), help: ArgumentHelp("Data directory; overrides store.data_dir.", valueName: "dir"))
    var dataDirectory: String?

    /// The configuration in force and the data directory it points to, with `--data-dir` applied.
    func resolve() throws -> (KiezboxConfiguration, source: String) {
        var (configuration, source) = try KiezboxConfiguration.resolve(explicitPath: self.config)
        if let dataDirectory { configuration.dataDirectory = dataDirectory }
        return (configuration, source)
    }
}
