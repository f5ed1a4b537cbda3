import ArgumentParser
import KiezboxCore

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Check a configuration file, or print the default one.",
        subcommands: [Check.self, Default.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a configuration file; on a mistake, print the line, the key and what is expected."
        )

        @Argument(help: ArgumentHelp("The file to check.", valueName: "file"))
        var file: String

        func run() throws {
            let configuration = try KiezboxConfiguration.load(path: self.file)
            let identity = configuration.identity
            print("\(self.file): ok")
            print("  box       \(identity.district)/\(identity.boxID) (\(identity.name))")
            print("  data      \(configuration.dataDirectory)")
            print("  sensors   " + (configuration.sensors.isEmpty ? "none" : configuration.sensors.map { "\($0.id) (\($0.chip), every \(format($0.interval)))" }.joined(separator: ", ")))
            if configuration.simulate { print("  simulate  yes: simulated chips, not the hardware") }
        }
    }

    struct Default: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the embedded default configuration, a starting point for /etc/kiezbox/kiezbox.toml."
        )

        func run() {
            print(KiezboxConfiguration.embeddedDefault, terminator: "")
        }
    }
}
