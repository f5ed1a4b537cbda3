// JSON is the one format here not worth hand-writing; FoundationEssentials brings a decoder without ICU data, and
// KiezboxCore links it already. Foundation stays confined to this file.
// POSIX sockets through Glibc: the client exists on Linux, where the daemon runs (as LinuxSerialPort does).
#if canImport(Glibc)
#if canImport(FoundationEssentials)
internal import FoundationEssentials
#else
internal import Foundation
#endif
import Glibc
internal import KiezboxCore
import Synchronization

/// Position from gpsd, the GPS daemon, over its JSON protocol on TCP (gpsd_json(5); sensors.md §13).
///
/// gpsd keeps the receiver's UART free for other clients (chrony, through shared memory) and handles receiver
/// quirks. Each ``measure()`` connects to gpsd (127.0.0.1:2947 by default), sends
/// `?WATCH={"enable":true,"json":true}`, and reads the reports until a `TPV` (time-position-velocity) report with
/// a fix arrives; then it disconnects, so gpsd can stop polling the receiver when nobody else listens.
/// - `mode` 2 (2D fix) gives latitude and longitude; `mode` 3 (3D fix) adds the altitude above mean sea level
///   (`altMSL`, or `alt` from gpsd before 3.20, where it meant the same).
/// - `mode` 0 or 1 means no fix: after ``Configuration/maximumReports`` such reports the measurement fails with
///   ``GPSDError/Code/noFix``, so no position is reported from a receiver that has none.
/// - Lines that are not valid JSON are counted in ``malformedLineCount`` and skipped; other classes (`VERSION`,
///   `DEVICES`, `WATCH`, `SKY`) are skipped.
///
/// The socket is non-blocking and waited on with short `Task.sleep` slices, like ``LinuxSerialPort``, so no
/// cooperative thread blocks.
///
/// ```swift
/// let gps = GPSD()                        // gpsd on this Pi
/// let values = try await gps.measure()    // .latitude, .longitude (, .altitude)
/// ```
public final class GPSD: SensorDriver {
    /// Where gpsd is and how long to listen.
    public struct Configuration: Sendable, Hashable {
        /// An IPv4 address in dotted form.
        public var host: String
        public var port: UInt16
        /// TPV reports without a fix read before giving up.
        public var maximumReports: Int
        /// Lines of any kind read before giving up (gpsd also sends SKY and device reports).
        public var maximumLines: Int
        /// How long gpsd may stay quiet (it reports every second while the receiver sends).
        public var readTimeout: Duration
        /// How long connecting may take.
        public var connectTimeout: Duration

        public init(
            host: String = "127.0.0.1",
            port: UInt16 = 2947,
            maximumReports: Int = 5,
            maximumLines: Int = 100,
            readTimeout: Duration = .seconds(3),
            connectTimeout: Duration = .seconds(2)
        ) {
            self.host = host
            self.port = port
            self.maximumReports = max(1, maximumReports)
            self.maximumLines = max(1, maximumLines)
            self.readTimeout = readTimeout
            self.connectTimeout = connectTimeout
        }
    }

    /// The fields of a gpsd `TPV` report that Kiezbox uses.
    public struct TPVReport: Sendable, Hashable, Decodable {
        /// 0 unknown, 1 no fix, 2 2D fix, 3 3D fix.
        public var mode: Int?
        public var lat: Double?
        public var lon: Double?
        /// Altitude above mean sea level in metres (gpsd 3.20 and later).
        public var altMSL: Double?
        /// Altitude in metres; above mean sea level before gpsd 3.20, deprecated since.
        public var alt: Double?
        /// ISO 8601 UTC time of the fix.
        public var time: String?
        /// The receiver's device path.
        public var device: String?

        public init(
            mode: Int?, lat: Double? = nil, lon: Double? = nil, altMSL: Double? = nil, alt: Double? = nil, time: String? = nil, device: String? = nil
        ) {
            self.mode = mode
            self.lat = lat
            self.lon = lon
            self.altMSL = altMSL
            self.alt = alt
            self.time = time
            self.device = device
        }
    }

    /// The command that makes gpsd stream JSON reports.
    public static let watchCommand = #"?WATCH={"enable":true,"json":true}"# + "\n"
    /// gpsd's TCP port.
    public static let defaultPort: UInt16 = 2947
    /// Altitudes outside this range (metres above sea level) are flagged ``ReadingQuality/implausible``.
    public static let plausibleAltitude = -500.0...9000.0
    /// Lines longer than this (a SKY report with many satellites is a few KiB) are dropped as malformed.
    static let maximumLineLength = 65536

    private struct State {
        var malformedLines = 0
        var lastReport: TPVReport?
    }

    private let configuration: Configuration
    private let state = Mutex(State())

    /// Creates a client; nothing is connected until the first ``measure()``.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    public var chipName: String { "gpsd" }

    /// Lines from gpsd that were not valid JSON (or too long) since the client was created.
    public var malformedLineCount: Int { self.state.withLock { $0.malformedLines } }

    /// The last TPV report with a fix.
    public var lastReport: TPVReport? { self.state.withLock { $0.lastReport } }

    /// Connects, watches, and returns the first fix.
    ///
    /// - Returns: ``Quantity/latitude`` and ``Quantity/longitude`` in degrees and, with a 3D fix,
    ///   ``Quantity/altitude`` in metres above mean sea level.
    /// - Throws: ``GPSDError``.
    public func measure() async throws -> [MeasuredValue] {
        let endpoint = "\(self.configuration.host):\(self.configuration.port)"
        let connection = try await GPSDConnection.connect(
            host: self.configuration.host, port: self.configuration.port, timeout: self.configuration.connectTimeout
        )
        defer { connection.close() }
        try await connection.send(Array(Self.watchCommand.utf8))

        var reports = 0
        var lines = 0
        var lastMode: Int?
        while reports < self.configuration.maximumReports, lines < self.configuration.maximumLines {
            let line = try await connection.readLine(timeout: self.configuration.readTimeout, maximumLength: Self.maximumLineLength)
            lines += 1
            guard let line, let report = Self.decodeReport(line) else {
                self.state.withLock { $0.malformedLines += 1 }
                continue
            }
            guard let tpv = report else { continue }
            reports += 1
            lastMode = tpv.mode
            if let values = Self.values(from: tpv) {
                self.state.withLock { $0.lastReport = tpv }
                return values
            }
        }
        throw GPSDError(.noFix(mode: lastMode), endpoint: endpoint)
    }

    /// Parses one line: nil when it is not a JSON object with a class; `.some(nil)` for a class other than TPV.
    static func decodeReport(_ line: [UInt8]) -> TPVReport?? {
        struct Envelope: Decodable {
            var `class`: String
        }
        let decoder = JSONDecoder()
        let data = Data(line)
        guard let envelope = try? decoder.decode(Envelope.self, from: data) else { return nil }
        guard envelope.class == "TPV" else { return .some(nil) }
        guard let report = try? decoder.decode(TPVReport.self, from: data) else { return nil }
        return .some(report)
    }

    /// The values of a report with a 2D or 3D fix, or nil without one.
    static func values(from report: TPVReport) -> [MeasuredValue]? {
        guard let mode = report.mode, mode >= 2, let latitude = report.lat, let longitude = report.lon else { return nil }
        let onEarth = GeoPosition(latitude: latitude, longitude: longitude).isValid
        let quality: ReadingQuality = onEarth ? .good : .implausible
        var values = [MeasuredValue(.latitude, latitude, quality: quality), MeasuredValue(.longitude, longitude, quality: quality)]
        if mode >= 3, let altitude = report.altMSL ?? report.alt {
            values.append(MeasuredValue(.altitude, altitude, quality: Self.plausibleAltitude.contains(altitude) ? quality : .implausible))
        }
        return values
    }
}

/// gpsd could not give a position, with what a resident can check.
public struct GPSDError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// The host is not an IPv4 address.
        case invalidHost
        /// Nothing listens on the port (ECONNREFUSED): gpsd is not running.
        case notRunning
        /// Connecting took longer than the timeout.
        case connectTimeout
        /// gpsd sent nothing for the read timeout.
        case silent
        /// gpsd closed the connection.
        case closed
        /// gpsd reports no fix; `mode` as in its last TPV report (0 or 1), if any came.
        case noFix(mode: Int?)
        /// Any other socket error, with its errno.
        case socket(errno: Int32)
    }

    public var code: Code
    /// "127.0.0.1:2947".
    public var endpoint: String

    public init(_ code: Code, endpoint: String) {
        self.code = code
        self.endpoint = endpoint
    }

    public var description: String {
        switch self.code {
        case .invalidHost: "gpsd address \(self.endpoint) is not an IPv4 address"
        case .notRunning: "gpsd is not running at \(self.endpoint): sudo systemctl enable --now gpsd.socket"
        case .connectTimeout: "connecting to gpsd at \(self.endpoint) timed out"
        case .silent:
            "gpsd at \(self.endpoint) sends nothing: check DEVICES in /etc/default/gpsd (e.g. \"/dev/serial0\") and the receiver"
        case .closed: "gpsd at \(self.endpoint) closed the connection"
        case .noFix(let mode):
            "gpsd at \(self.endpoint) has no fix" + (mode == nil ? " (no position reports)" : "")
                + ": give the antenna a clear view of the sky; a cold start can take several minutes"
        case .socket(let errno): "socket error \(errno) talking to gpsd at \(self.endpoint)"
        }
    }
}

// MARK: - TCP connection

/// A non-blocking TCP connection to gpsd that reads lines.
///
/// Threading contract: the descriptor lives in a `Mutex` and every system call on it is non-blocking and made under
/// the lock, so ``close()`` cannot race a call; one task reads lines at a time (the measuring one).
private final class GPSDConnection: Sendable {
    private struct State {
        var descriptor: Int32
        var buffer: [UInt8] = []
    }

    private let state: Mutex<State>
    private let endpoint: String

    private init(descriptor: Int32, endpoint: String) {
        self.state = Mutex(State(descriptor: descriptor))
        self.endpoint = endpoint
    }

    deinit {
        self.close()
    }

    static func connect(host: String, port: UInt16, timeout: Duration) async throws(GPSDError) -> GPSDConnection {
        let endpoint = "\(host):\(port)"
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw GPSDError(.invalidHost, endpoint: endpoint) }

        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw GPSDError(.socket(errno: errno), endpoint: endpoint) }
        let connection = GPSDConnection(descriptor: fd, endpoint: endpoint)
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if result != 0 {
            guard errno == EINPROGRESS else { throw GPSDError(code(forErrno: errno), endpoint: endpoint) }
            try await connection.waitUntilConnected(timeout: timeout)
        }
        return connection
    }

    func close() {
        self.state.withLock { state in
            if state.descriptor >= 0 {
                Glibc.close(state.descriptor)
                state.descriptor = -1
            }
        }
    }

    func send(_ bytes: [UInt8]) async throws(GPSDError) {
        var sent = 0
        var waits = 0
        while sent < bytes.count {
            let result: Result<Int, GPSDError> = self.state.withLock { state in
                guard state.descriptor >= 0 else { return .failure(GPSDError(.closed, endpoint: self.endpoint)) }
                let count = bytes[sent...].withUnsafeBytes { Glibc.send(state.descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if count >= 0 { return .success(count) }
                if errno == EAGAIN || errno == EINTR { return .success(0) }
                return .failure(GPSDError(code(forErrno: errno), endpoint: self.endpoint))
            }
            let count = try result.get()
            sent += count
            if count == 0 {
                waits += 1
                guard waits < 1000 else { throw GPSDError(.silent, endpoint: self.endpoint) }
                try? await Task.sleep(for: .milliseconds(2))
            }
        }
    }

    /// What one look at the socket found.
    private enum ReadStep {
        case line([UInt8])
        case overlongLine
        case receivedBytes
        case nothing
    }

    /// The next line without its line end; nil for a line that was too long (dropped).
    func readLine(timeout: Duration, maximumLength: Int) async throws(GPSDError) -> [UInt8]? {
        let clock = ContinuousClock()
        var deadline = clock.now + timeout
        var slice = Duration.milliseconds(1)
        while true {
            switch try self.step(maximumLength: maximumLength) {
            case .line(let line):
                return line
            case .overlongLine:
                return nil
            case .receivedBytes:
                // Part of a line arrived: the rest is on its way.
                deadline = clock.now + timeout
                slice = .milliseconds(1)
            case .nothing:
                guard clock.now < deadline else { throw GPSDError(.silent, endpoint: self.endpoint) }
                do { try await Task.sleep(for: slice) } catch { throw GPSDError(.silent, endpoint: self.endpoint) }
                slice = min(slice * 2, .milliseconds(10))
            }
        }
    }

    /// Takes a buffered line, or reads what the socket has, without waiting.
    private func step(maximumLength: Int) throws(GPSDError) -> ReadStep {
        let result: Result<ReadStep, GPSDError> = self.state.withLock { state in
            if let newline = state.buffer.firstIndex(of: 0x0A) {
                var line = Array(state.buffer[..<newline])
                state.buffer.removeFirst(newline + 1)
                if line.last == 0x0D { line.removeLast() }
                return .success(line.count > maximumLength ? .overlongLine : .line(line))
            }
            if state.buffer.count > maximumLength {
                // Drop the overlong head; the rest of that line ends at its newline as a short garbage line.
                state.buffer.removeAll(keepingCapacity: true)
                return .success(.overlongLine)
            }
            guard state.descriptor >= 0 else { return .failure(GPSDError(.closed, endpoint: self.endpoint)) }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { Glibc.recv(state.descriptor, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                state.buffer.append(contentsOf: chunk.prefix(count))
                return .success(.receivedBytes)
            }
            if count == 0 { return .failure(GPSDError(.closed, endpoint: self.endpoint)) }
            if errno == EAGAIN || errno == EINTR { return .success(.nothing) }
            return .failure(GPSDError(code(forErrno: errno), endpoint: self.endpoint))
        }
        return try result.get()
    }

    private func waitUntilConnected(timeout: Duration) async throws(GPSDError) {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var slice = Duration.milliseconds(1)
        while true {
            let result: Result<Bool, GPSDError> = self.state.withLock { state in
                var descriptor = pollfd(fd: state.descriptor, events: Int16(POLLOUT), revents: 0)
                guard poll(&descriptor, 1, 0) >= 0 else { return .failure(GPSDError(code(forErrno: errno), endpoint: self.endpoint)) }
                guard descriptor.revents != 0 else { return .success(false) }
                var socketError: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                guard getsockopt(state.descriptor, SOL_SOCKET, SO_ERROR, &socketError, &length) == 0 else {
                    return .failure(GPSDError(code(forErrno: errno), endpoint: self.endpoint))
                }
                return socketError == 0 ? .success(true) : .failure(GPSDError(code(forErrno: socketError), endpoint: self.endpoint))
            }
            if try result.get() { return }
            guard clock.now < deadline else { throw GPSDError(.connectTimeout, endpoint: self.endpoint) }
            do { try await Task.sleep(for: slice) } catch { throw GPSDError(.connectTimeout, endpoint: self.endpoint) }
            slice = min(slice * 2, .milliseconds(10))
        }
    }
}

private func code(forErrno number: Int32) -> GPSDError.Code {
    switch number {
    case ECONNREFUSED: .notRunning
    case ETIMEDOUT: .connectTimeout
    case ECONNRESET, EPIPE: .closed
    default: .socket(errno: number)
    }
}
#endif
