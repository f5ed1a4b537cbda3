import ArgumentParser
import Foundation
import KiezboxCore
import ReadingStore

struct ReadingsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "readings",
        abstract: "Print committed readings as CSV or JSON (works while the daemon runs)."
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case csv
        case json
    }

    @OptionGroup var data: DataOptions

    @Option(help: ArgumentHelp("Only readings measured at or after this time: ISO 8601 (2026-11-26T18:00:00Z) or an age (2h, 30m).", valueName: "time"))
    var since: String?

    @Option(help: ArgumentHelp("Only this sensor's readings.", valueName: "id"))
    var sensor: String?

    @Option(help: "Output format.")
    var format: Format = .csv

    func validate() throws {
        if let since, parseSince(since, now: Date()) == nil {
            throw ValidationError("--since '\(since)' is neither an ISO 8601 time (2026-11-26T18:00:00Z) nor an age (2h, 30m)")
        }
    }

    func run() throws {
        let (configuration, _) = try self.data.resolve()
        let store = try ReadingStore(directory: configuration.dataDirectory, configuration: configuration.store, readOnly: true)
        let since = self.since.flatMap { parseSince($0, now: Date()) }
        var output = BufferedStandardOutput()
        switch self.format {
        case .csv:
            output.write("id,sensor,quantity,value,unit,measured_at,quality\n")
            try store.forEachReading(since: since, sensor: self.sensor) { stored in
                let reading = stored.reading
                output.write(
                    "\(stored.id),\(csvField(reading.sensorID)),\(reading.quantity.rawValue),\(reading.value),"
                        + "\(csvField(reading.unit.symbol)),\(isoTimestamp(reading.measuredAt)),\(reading.quality)\n"
                )
            }
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            var first = true
            output.write("[")
            try store.forEachReading(since: since, sensor: self.sensor) { stored in
                let row = ReadingRow(stored, instanceID: store.instanceID)
                output.write((first ? "\n" : ",\n") + String(decoding: try encoder.encode(row), as: UTF8.self))
                first = false
            }
            output.write(first ? "]\n" : "\n]\n")
        }
        output.flush()
    }
}

/// One reading in `kiezbox readings --format json`.
struct ReadingRow: Encodable {
    var id: Int64
    /// The store run that committed it (0: before runs were counted).
    var run: Int64
    /// The id receivers de-duplicate by: the `observations[].id` of the MQTT message that carried it.
    var globalID: String
    var store: String
    var sensor: String
    var quantity: String
    var value: Double
    var unit: String
    var measuredAt: String
    var quality: String

    init(_ stored: StoredReading, instanceID: String) {
        self.id = stored.id
        self.run = stored.run
        self.globalID = stored.globalID(storeInstance: instanceID)
        self.store = instanceID
        self.sensor = stored.reading.sensorID
        self.quantity = stored.reading.quantity.rawValue
        self.value = stored.reading.value
        self.unit = stored.reading.unit.symbol
        self.measuredAt = isoTimestamp(stored.reading.measuredAt)
        self.quality = stored.reading.quality.description
    }
}

/// "2026-11-26T18:00:00Z", "2026-11-26T18:00:00.250+01:00", "2026-11-26", or an age such as "2h".
func parseSince(_ text: String, now: Date) -> Date? {
    if let age = parseDuration(text) {
        let components = age.components
        return now.addingTimeInterval(-(Double(components.seconds) + Double(components.attoseconds) / 1e18))
    }
    for style in [
        Date.ISO8601FormatStyle(includingFractionalSeconds: true), Date.ISO8601FormatStyle(),
        Date.ISO8601FormatStyle().year().month().day(),
    ] {
        if let date = try? style.parse(text) { return date }
    }
    return nil
}

func isoTimestamp(_ date: Date) -> String {
    date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
}

private func csvField(_ text: String) -> String {
    guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) else { return text }
    return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}

/// Standard output in 64 KiB chunks: a year of readings is millions of lines.
struct BufferedStandardOutput {
    private var buffer: [UInt8] = []

    mutating func write(_ text: String) {
        self.buffer.append(contentsOf: text.utf8)
        if self.buffer.count >= 1 << 16 { self.flush() }
    }

    mutating func flush() {
        FileHandle.standardOutput.write(Data(self.buffer))
        self.buffer.removeAll(keepingCapacity: true)
    }
}
