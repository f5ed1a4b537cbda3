internal import KiezboxCore
import Synchronization

/// A GPS receiver that streams NMEA 0183 sentences on a UART (NEO-6M and the like; 9600 8N1 by default).
///
/// Each ``measure()`` throws away what queued up since the last one, then reads fresh sentences until a GGA
/// sentence decides: with a fix it gives latitude, longitude (degrees, WGS 84) and altitude above mean sea level;
/// without one (quality 0) the measurement fails with ``NMEAGPSErrorCode/noFix(satellites:)``, so no position is ever reported
/// from a receiver that has none. A receiver that sends RMC but no GGA gives latitude and longitude from a valid
/// RMC (status `A`, mode not `N`). Any talker (`GP`, `GN`, `GL`, …) is accepted.
///
/// Sentences with a bad checksum are counted in ``checksumErrorCount`` and skipped; the next epoch a second later
/// brings a fresh one. A fix marked estimated, manual or simulated (quality 6–8), or with an HDOP above 20, is
/// ``ReadingQuality/degraded``; an altitude outside −500…9000 m is ``ReadingQuality/implausible``.
///
/// For a stationary box, measure rarely (the position does not change); gpsd (``GPSD``) is the alternative when
/// other programs need the receiver too.
///
/// ```swift
/// let port = try LinuxSerialPort(path: "/dev/serial0", baudRate: NMEAGPS.baudRate)
/// let gps = NMEAGPS(port: port)
/// let values = try await gps.measure()   // .latitude, .longitude, .altitude
/// ```
public final class NMEAGPS: SensorDriver {
    /// How long the driver listens.
    public struct Configuration: Sendable, Hashable {
        /// Sentences read before giving up on a GGA (a receiver sends 5–10 per one-second epoch).
        public var maximumSentences: Int
        /// How long the line may stay quiet before the receiver counts as silent (it sends every second).
        public var silenceTimeout: Duration

        public init(maximumSentences: Int = 40, silenceTimeout: Duration = .seconds(3)) {
            self.maximumSentences = max(1, maximumSentences)
            self.silenceTimeout = silenceTimeout
        }
    }

    /// The usual factory line speed of GPS modules (8N1); some use 4800 or 38400.
    public static let baudRate = SerialBaudRate.b9600
    /// Altitudes outside this range (metres above sea level) are flagged ``ReadingQuality/implausible``.
    public static let plausibleAltitude = -500.0...9000.0
    /// Horizontal dilution of precision above this marks the fix ``ReadingQuality/degraded``.
    public static let maximumGoodHorizontalDilution = 20.0

    private struct State {
        var checksumErrors = 0
        var lastFix: NMEAGGA?
    }

    private let port: any SerialPort
    private let configuration: Configuration
    private let state = Mutex(State())

    /// Creates a driver; nothing is read until the first ``measure()``.
    ///
    /// - Parameters:
    ///   - port: the receiver's serial port, opened at its baud rate (``baudRate`` for most modules).
    ///   - configuration: how long to listen.
    public init(port: any SerialPort, configuration: Configuration = Configuration()) {
        self.port = port
        self.configuration = configuration
    }

    public var chipName: String { "NMEA GPS" }

    /// Sentences received with a wrong checksum since the driver was created.
    public var checksumErrorCount: Int { self.state.withLock { $0.checksumErrors } }

    /// The last GGA fix reported, with satellites and HDOP, for diagnostics.
    public var lastFix: NMEAGGA? { self.state.withLock { $0.lastFix } }

    /// Listens for the next fix.
    ///
    /// - Returns: ``Quantity/latitude`` and ``Quantity/longitude`` in degrees and, from GGA, ``Quantity/altitude`` in
    ///   metres above mean sea level.
    /// - Throws: ``SerialError`` when the port fails, ``NMEAGPSError`` when there is no fix or no usable data.
    public func measure() async throws -> [MeasuredValue] {
        var reader = SerialSession<NMEASentenceFormat>(port: self.port)
        defer {
            let errors = reader.statistics.checksumErrors
            self.state.withLock { $0.checksumErrors += errors }
        }
        // Sentences queued since the last measurement are stale: a fix may have been lost since.
        try await reader.discardPending()

        var validRMC: NMEARMC?
        var sawNoFix = false
        var satellites: Int?
        var sentences = 0
        while sentences < self.configuration.maximumSentences {
            guard let sentence = try await reader.next(timeout: self.configuration.silenceTimeout, { $0 }) else { break }
            sentences += 1
            switch sentence.type {
            case "GGA":
                guard let fix = try? NMEAGGA(sentence) else { continue }
                guard fix.hasFix, let position = fix.position else {
                    throw NMEAGPSError(.noFix(satellites: fix.satellites), port: self.port.name)
                }
                self.state.withLock { $0.lastFix = fix }
                return Self.values(position: position, fixQuality: fix.fixQuality, horizontalDilution: fix.horizontalDilution)
            case "RMC":
                guard let rmc = try? NMEARMC(sentence) else { continue }
                if rmc.isValid { validRMC = rmc } else { sawNoFix = true }
            case "GSV":
                // The satellites in view, for the no-fix message.
                satellites = sentence.fields.count > 2 ? NMEAField.unsigned(sentence.fields[2]) : satellites
            default:
                continue
            }
        }
        if let rmc = validRMC, let position = rmc.position {
            let withoutAltitude = GeoPosition(latitude: position.latitude, longitude: position.longitude)
            return Self.values(position: withoutAltitude, fixQuality: 1, horizontalDilution: nil)
        }
        if sawNoFix { throw NMEAGPSError(.noFix(satellites: satellites), port: self.port.name) }
        if sentences > 0 { throw NMEAGPSError(.noPositionSentences, port: self.port.name) }
        let corrupted = reader.statistics.checksumErrors
        throw NMEAGPSError(corrupted > 0 ? .corruptSentences(count: corrupted) : .silent, port: self.port.name)
    }

    private static func values(position: GeoPosition, fixQuality: Int, horizontalDilution: Double?) -> [MeasuredValue] {
        // Quality 6 (dead reckoning), 7 (manual) and 8 (simulator) are not measurements of where the box is.
        let estimated = fixQuality >= 6 || (horizontalDilution ?? 0) > Self.maximumGoodHorizontalDilution
        let quality: ReadingQuality = estimated ? .degraded : .good
        var values = [MeasuredValue(.latitude, position.latitude, quality: quality), MeasuredValue(.longitude, position.longitude, quality: quality)]
        if let altitude = position.altitude {
            values.append(MeasuredValue(.altitude, altitude, quality: Self.plausibleAltitude.contains(altitude) ? quality : .implausible))
        }
        return values
    }
}

/// A GPS receiver that gave no position, with the port it is on.
public typealias NMEAGPSError = SerialDeviceError<NMEAGPSErrorCode>

/// Why a GPS receiver gave no position, with what a resident can check.
public enum NMEAGPSErrorCode: SerialDeviceFailure {
    /// Nothing arrived on the line.
    case silent
    /// Sentences arrived, but every one had a wrong checksum.
    case corruptSentences(count: Int)
    /// The receiver reports no fix (GGA quality 0 or RMC status V); `satellites` in view or used, if known.
    case noFix(satellites: Int?)
    /// Sentences arrived, but neither GGA nor RMC among them.
    case noPositionSentences

    public func description(port: String) -> String {
        switch self {
        case .silent:
            "no data from the GPS on \(port): check that its TX goes to the Pi's RX, its power, and the baud rate "
                + "(9600 for most modules; some use 4800 or 38400)"
        case .corruptSentences(let count):
            "\(count) sentences from the GPS on \(port) had wrong checksums: check the baud rate and the ground wire"
        case .noFix(let satellites):
            "the GPS on \(port) has no fix yet" + (satellites.map { " (\($0) satellites)" } ?? "")
                + ": give the antenna a clear view of the sky; a cold start can take several minutes"
        case .noPositionSentences:
            "the GPS on \(port) sends no GGA or RMC sentences: enable them in the receiver's configuration"
        }
    }
}
