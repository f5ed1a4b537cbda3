import ArgumentParser
import Foundation
import KiezboxCore
import Logging

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the daemon in the foreground: sample the sensors into the store until SIGTERM or SIGINT.",
        discussion: "Logs go to standard error. On SIGTERM the buffered readings are committed and kiezbox exits with status 0."
    )

    @OptionGroup var data: DataOptions

    @Flag(name: .long, help: "Use simulated chips instead of the hardware buses.")
    var simulate = false

    @Argument(help: ArgumentHelp("With --simulate: a fixture file describing the simulated chips (default: the built-in demo kit).", valueName: "fixture"))
    var fixture: String?

    func validate() throws {
        if self.fixture != nil && !self.simulate {
            throw ValidationError("a fixture file is only used with --simulate")
        }
    }

    func run() async throws {
        var (configuration, source) = try self.data.resolve()
        if self.simulate { configuration.simulate = true }
        let level = configuration.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "kiezbox")
        logger.info("configuration loaded", metadata: ["source": "\(source)", "data_dir": "\(configuration.dataDirectory)"])
        try await Daemon(configuration: configuration, fixturePath: self.fixture, clock: LiveClock(), logger: logger).run()
    }
}
