import ArgumentParser
import KiezboxCore
import ReadingStore

/// `kiezbox mode`: shows the box's mode, or sets it by hand (a drill, maintenance on the roof).
struct ModeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mode",
        abstract: "Show the box's mode, or set it by hand: crisis, normal, maintenance, or auto (the box decides again).",
        discussion: """
            By itself the box goes into crisis mode when mains power has been lost for a while ([mode] crisis_after, \
            2 min) or an authority declares a crisis in a signed announcement, and back when mains has stayed on \
            ([mode] normal_after, 10 min). A mode set here holds until `kiezbox mode auto`; the running daemon \
            applies it within 10 s.
            """
    )

    @OptionGroup var data: DataOptions

    @Argument(help: ArgumentHelp("crisis, normal, maintenance or auto; none: show the mode.", valueName: "mode"))
    var mode: String?

    func run() async throws {
        let (configuration, _) = try self.data.resolve()
        guard let requested = self.mode else {
            let store = try ReadingStore(directory: configuration.dataDirectory, configuration: configuration.store, readOnly: true)
            let override = try store.modeOverride()
            print("mode: \(try store.mode().rawValue)" + (override.map { " (set by hand: \($0.rawValue); `kiezbox mode auto` gives control back)" } ?? " (automatic)"))
            return
        }
        let override: Mode?
        if requested == "auto" {
            override = nil
        } else if let mode = Mode(rawValue: requested) {
            override = mode
        } else {
            throw ValidationError("unknown mode '\(requested)'; expected crisis, normal, maintenance or auto")
        }
        let store = try ReadingStore(directory: configuration.dataDirectory, configuration: configuration.store)
        try await store.setModeOverride(override)
        try store.close()
        print(override.map { "mode set by hand: \($0.rawValue) (the daemon applies it within 10 s)" } ?? "mode: automatic again")
    }
}
