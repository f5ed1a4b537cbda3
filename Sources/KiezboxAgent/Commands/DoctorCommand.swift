import ArgumentParser
import Foundation
import KiezboxCore

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check the kit against the configuration: what is found, missing, wrong or unexpected, and how to fix it.",
        discussion: "Exits with status 0 when everything configured was found, 1 otherwise. Run it while the daemon is stopped: serial sensors can be opened by one program at a time."
    )

    @OptionGroup var data: DataOptions

    @Flag(name: .long, help: "Check the simulated kit instead of the hardware.")
    var simulate = false

    @Argument(help: ArgumentHelp("With --simulate: a fixture file describing the simulated chips.", valueName: "fixture"))
    var fixture: String?

    @Flag(name: .long, help: "Print JSON for scripts.")
    var json = false

    func validate() throws {
        if self.fixture != nil && !self.simulate { throw ValidationError("a fixture file is only used with --simulate") }
    }

    func run() async throws {
        var (configuration, source) = try self.data.resolve()
        if self.simulate { configuration.simulate = true }
        let buses: any BusProvider
        if configuration.simulate {
            let position = configuration.identity.position
            // The configured LoRaWAN modem and Meshtastic radio are part of the simulated kit, as for `kiezbox run`.
            let loRaWAN = configuration.uplinks.loRaWAN
            let kit: SimulatedKit
            if let fixture = self.fixture {
                kit = SimulatedKit(
                    fixture: try SimulationFixture.load(path: fixture), position: position, loRaWAN: loRaWAN,
                    meshtastic: configuration.uplinks.meshtastic)
            } else {
                kit = SimulatedKit(
                    following: configuration.sensors, position: position, loRaWAN: loRaWAN, meshtastic: configuration.uplinks.meshtastic)
            }
            kit.updateWorld(at: Date())
            buses = kit
        } else {
            buses = LinuxBuses()
        }
        let findings = await Doctor(configuration: configuration, buses: buses, simulated: configuration.simulate).examine()
        if self.json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(findings), as: UTF8.self))
        } else {
            let kit = configuration.simulate ? "the simulated kit" + (self.fixture.map { " (\($0))" } ?? "") : "the hardware"
            print("Kiezbox doctor: \(kit) against \(source)\n")
            print(renderFindings(findings), terminator: "")
        }
        let healthy = !findings.contains { [.missing, .wrong, .problem].contains($0.status) }
        if !healthy { throw ExitCode(1) }
    }
}

/// The doctor's table: one line per finding, and the fix indented below it.
func renderFindings(_ findings: [DoctorFinding]) -> String {
    let rows = findings.map { finding in
        [finding.status.rawValue, finding.sensor ?? "-", finding.chip ?? "", finding.place, finding.detail]
    }
    let widths = (0..<4).map { column in rows.map { $0[column].count }.max() ?? 0 }
    var text = ""
    let header = ["STATUS", "SENSOR", "CHIP", "WHERE"]
    let headerWidths = zip(widths, header).map { max($0, $1.count) }
    text += zip(header, headerWidths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ") + "  FINDING\n"
    for (row, finding) in zip(rows, findings) {
        text += (0..<4).map { row[$0].padding(toLength: headerWidths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
        text += "  " + row[4] + "\n"
        if let fix = finding.fix { text += String(repeating: " ", count: headerWidths[0] + 2) + "→ " + fix + "\n" }
    }
    let counts = Dictionary(grouping: findings, by: \.status).mapValues(\.count)
    let summary = [DoctorFinding.Status.found, .missing, .wrong, .unexpected, .problem].compactMap { status in
        counts[status].map { "\($0) \(status.rawValue)" }
    }
    text += "\n" + summary.joined(separator: ", ") + "\n"
    return text
}
