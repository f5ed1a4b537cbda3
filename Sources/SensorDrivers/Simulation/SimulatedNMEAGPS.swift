import Synchronization

/// A GPS receiver at the far end of a simulated serial line, streaming NMEA 0183 like a u-blox NEO-6M.
///
/// Every ``interval`` (one epoch, 1 s by default) it sends RMC, VTG, GGA and GSV sentences with the talker set by
/// ``setTalker(_:)``, built from the position, fix and time it has been given:
/// - with a fix: RMC status `A`, mode `A`; GGA quality 1 (or as set), satellites, HDOP and altitude;
/// - without a fix but with time: empty position fields, RMC `V` / mode `N`, GGA quality 0;
/// - on a cold start (no time yet): exactly `$GPRMC,,V,,,,,,,,,,N*53` and `$GPGGA,,,,,,0,00,99.99,,,,,,*48`.
///
/// Commands sent to it (`$PMTK…`, UBX) are recorded and otherwise ignored. Faults: corrupted checksums, noise
/// between sentences, cut sentences and silence.
public final class SimulatedNMEAGPS: SimulatedSerialDevice {
    /// What the receiver knows.
    public enum FixState: Sendable, Hashable {
        /// No time and no position yet.
        case coldStart
        /// Time from the satellites, but no position.
        case noFix
        /// A position fix of the given GGA quality (1 GPS, 2 DGPS, 6 estimated, …).
        case fix(quality: Int)
    }

    /// Time between epochs.
    public let interval: Duration

    private struct State {
        var fixState = FixState.fix(quality: 1)
        var latitude = 52.5008
        var longitude = 13.4363
        var altitude = 38.2
        var geoidSeparation = 44.6
        var satellites = 8
        var horizontalDilution = 0.9
        var talker = "GP"
        /// UTC seconds since midnight at simulated time zero, and the date then.
        var startSecondOfDay = 12 * 3600 + 35 * 60 + 19
        var date = (day: 14, month: 1, year: 2026)
        var nextEpochAt: Duration
        var received: [UInt8] = []
        var corruptSentencesLeft = 0
        var cutSentencesLeft = 0
        var noiseBetweenSentences: [UInt8] = []
        var isSilent = false

        mutating func epoch(at time: Duration) -> [UInt8] {
            if self.isSilent { return [] }
            var bytes: [UInt8] = []
            for line in self.sentences(at: time) {
                var sentence = Array(line.utf8)
                if self.corruptSentencesLeft > 0 {
                    self.corruptSentencesLeft -= 1
                    // Change a digit of the checksum (two hex digits before CR LF).
                    let index = sentence.count - 3
                    sentence[index] = sentence[index] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
                }
                if self.cutSentencesLeft > 0 {
                    self.cutSentencesLeft -= 1
                    sentence = Array(sentence.prefix(sentence.count / 2))
                }
                bytes += sentence + self.noiseBetweenSentences
            }
            return bytes
        }

        func sentences(at time: Duration) -> [String] {
            let t = self.talker
            if self.fixState == .coldStart {
                return [
                    NMEASentence(talker: t, type: "RMC", fields: ["", "V", "", "", "", "", "", "", "", "", "", "N"]).line,
                    NMEASentence(talker: t, type: "VTG", fields: ["", "", "", "", "", "", "", "", "N"]).line,
                    NMEASentence(talker: t, type: "GGA", fields: ["", "", "", "", "", "0", "00", "99.99", "", "", "", "", "", ""]).line,
                    NMEASentence(talker: t, type: "GSV", fields: ["1", "1", "00"]).line,
                ]
            }
            let seconds = (self.startSecondOfDay + Int(min(time / .seconds(1), 1e9))) % 86400
            let utc = twoDigits(seconds / 3600) + twoDigits(seconds / 60 % 60) + twoDigits(seconds % 60) + ".00"
            let date = twoDigits(self.date.day) + twoDigits(self.date.month) + twoDigits(self.date.year % 100)
            let satellites = twoDigits(self.satellites)
            guard case .fix(let quality) = self.fixState else {
                return [
                    NMEASentence(talker: t, type: "RMC", fields: [utc, "V", "", "", "", "", "", "", date, "", "", "N"]).line,
                    NMEASentence(talker: t, type: "VTG", fields: ["", "T", "", "M", "", "N", "", "K", "N"]).line,
                    NMEASentence(talker: t, type: "GGA", fields: [utc, "", "", "", "", "0", satellites, "99.99", "", "", "", "", "", ""]).line,
                    NMEASentence(talker: t, type: "GSV", fields: ["1", "1", satellites]).line,
                ]
            }
            let latitude = formatCoordinate(self.latitude, degreeDigits: 2)
            let longitude = formatCoordinate(self.longitude, degreeDigits: 3)
            let north = self.latitude >= 0 ? "N" : "S"
            let east = self.longitude >= 0 ? "E" : "W"
            return [
                NMEASentence(talker: t, type: "RMC", fields: [utc, "A", latitude, north, longitude, east, "0.011", "", date, "", "", "A"]).line,
                NMEASentence(talker: t, type: "VTG", fields: ["", "T", "", "M", "0.011", "N", "0.020", "K", "A"]).line,
                NMEASentence(
                    talker: t, type: "GGA",
                    fields: [
                        utc, latitude, north, longitude, east, String(quality), satellites,
                        formatFixed(self.horizontalDilution, decimals: 2), formatFixed(self.altitude, decimals: 1), "M",
                        formatFixed(self.geoidSeparation, decimals: 1), "M", "", "",
                    ]
                ).line,
                NMEASentence(talker: t, type: "GSV", fields: ["1", "1", satellites]).line,
            ]
        }
    }

    private let state: Mutex<State>

    /// - Parameter interval: time between epochs (1 s for most receivers at their default rate).
    public init(interval: Duration = .seconds(1)) {
        self.interval = max(interval, .milliseconds(1))
        self.state = Mutex(State(nextEpochAt: self.interval))
    }

    // MARK: SimulatedSerialDevice

    public func received(_ bytes: [UInt8], at time: Duration) -> [UInt8] {
        self.state.withLock { $0.received += bytes }
        return []
    }

    public func transmissions(upTo time: Duration) -> [UInt8] {
        self.state.withLock { state in
            var bytes: [UInt8] = []
            // After a long silence only the last epochs matter: the UART buffer would have overrun anyway.
            let window = self.interval * 5
            if time - state.nextEpochAt > window { state.nextEpochAt = time - window }
            while state.nextEpochAt <= time {
                bytes += state.epoch(at: state.nextEpochAt)
                state.nextEpochAt += self.interval
            }
            return bytes
        }
    }

    public func nextTransmissionTime() -> Duration? {
        self.state.withLock { $0.isSilent ? nil : $0.nextEpochAt }
    }

    // MARK: Physical values

    /// Sets where the receiver is: degrees (south and west negative) and metres above mean sea level.
    public func setPosition(latitude: Double, longitude: Double, altitude: Double) {
        self.state.withLock { state in
            state.latitude = latitude
            state.longitude = longitude
            state.altitude = altitude
        }
    }

    /// Sets what the receiver knows.
    public func setFixState(_ fixState: FixState) {
        self.state.withLock { $0.fixState = fixState }
    }

    /// Sets the satellites used and the horizontal dilution of precision.
    public func setSatellites(_ count: Int, horizontalDilution: Double) {
        self.state.withLock { state in
            state.satellites = max(0, min(99, count))
            state.horizontalDilution = horizontalDilution
        }
    }

    /// Sets the talker id ("GP" GPS, "GN" multi-constellation, "GL" GLONASS, …).
    public func setTalker(_ talker: String) {
        self.state.withLock { $0.talker = talker }
    }

    // MARK: Inspection

    /// Every byte the host wrote to the receiver.
    public var receivedBytes: [UInt8] { self.state.withLock { $0.received } }

    // MARK: Faults

    /// Sends the next `count` sentences with a wrong checksum digit.
    public func corruptNextSentences(_ count: Int) {
        self.state.withLock { $0.corruptSentencesLeft = max(0, count) }
    }

    /// Sends only the first half of the next `count` sentences, without their line end.
    public func cutNextSentences(_ count: Int) {
        self.state.withLock { $0.cutSentencesLeft = max(0, count) }
    }

    /// Sends `noise` after every sentence (empty: none).
    public func setNoiseBetweenSentences(_ noise: [UInt8]) {
        self.state.withLock { $0.noiseBetweenSentences = noise }
    }

    /// Sends nothing while set (a receiver without power or a broken wire).
    public func setSilent(_ silent: Bool) {
        self.state.withLock { $0.isSilent = silent }
    }

    /// Ends every fault.
    public func clearFaults() {
        self.state.withLock { state in
            state.corruptSentencesLeft = 0
            state.cutSentencesLeft = 0
            state.noiseBetweenSentences = []
            state.isSilent = false
        }
    }
}

private func twoDigits(_ value: Int) -> String {
    value < 10 ? "0" + String(value) : String(value)
}

/// A non-negative or negative number with a fixed number of decimals, without Foundation.
private func formatFixed(_ value: Double, decimals: Int) -> String {
    let scale = (0..<decimals).reduce(1) { value, _ in value * 10 }
    let units = Int((abs(value) * Double(scale)).rounded())
    let whole = String(units / scale)
    let fraction = String(units % scale)
    let padded = String(repeating: "0", count: max(0, decimals - fraction.count)) + fraction
    return (value < 0 && units != 0 ? "-" : "") + whole + (decimals > 0 ? "." + padded : "")
}

/// Degrees as NMEA's `ddmm.mmmmm` (latitude) or `dddmm.mmmmm` (longitude), without the sign.
private func formatCoordinate(_ degrees: Double, degreeDigits: Int) -> String {
    let hundredThousandthsOfMinute = Int((abs(degrees) * 60 * 100_000).rounded())
    let wholeDegrees = hundredThousandthsOfMinute / 6_000_000
    let minutes = formatFixed(Double(hundredThousandthsOfMinute % 6_000_000) / 100_000, decimals: 5)
    let degreeText = String(wholeDegrees)
    return String(repeating: "0", count: max(0, degreeDigits - degreeText.count)) + degreeText
        + (minutes.count < 8 ? String(repeating: "0", count: 8 - minutes.count) : "") + minutes
}
