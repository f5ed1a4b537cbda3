import Foundation
import KiezboxCore
import Synchronization

/// The wall-clock time every open-data test starts at: 2026-09-21T14:13:20Z.
let testStart = Date(timeIntervalSince1970: 1_790_000_000)

/// A box clock standing at ``testStart``, moved only by the test.
func testClock() -> ManualClock { ManualClock(startDate: testStart) }

func stored(
    _ id: Int64, _ sensor: String, _ quantity: Quantity, _ value: Double, at date: Date,
    quality: ReadingQuality = .good
) -> StoredReading {
    StoredReading(id: id, reading: Reading(sensorID: sensor, quantity: quantity, value: value, measuredAt: date, quality: quality))
}

/// Collects log lines from an uplink.
final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])

    var all: [String] { self.lines.withLock { $0 } }

    var sink: @Sendable (String) -> Void {
        { line in self.lines.withLock { $0.append(line) } }
    }
}

/// RFC 3339 UTC with milliseconds, as the uplinks write it.
func rfc3339(_ date: Date) -> String {
    date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
}
