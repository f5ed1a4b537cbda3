import SensorDrivers

/// Where the Meshtastic radio is: a USB serial port, or a TCP API server (`meshtasticd` on the Pi, a Wi-Fi radio).
public enum MeshtasticEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// A radio on a serial port ("/dev/ttyUSB0", a `/dev/serial/by-id/…` link), 115200 8N1.
    case serial(path: String)
    /// A TCP API server; Meshtastic's port is 4403 (``MeshtasticFraming/tcpPort``).
    case tcp(host: String, port: Int)

    /// "/dev/ttyUSB0", "127.0.0.1:4403", "[::1]:4403".
    public var description: String {
        switch self {
        case .serial(let path): path
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }
}

/// Why a Meshtastic byte stream could not be opened, or broke.
public struct MeshtasticTransportError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// The serial device does not exist (unplugged, wrong path).
        case noSuchPort
        /// No permission for the serial device (not in the dialout group).
        case permissionDenied
        /// The serial device is held by another program.
        case busy
        /// Nothing listens on the TCP port (`meshtasticd` not running).
        case connectionRefused
        /// The TCP connection did not complete in time (wrong host, a firewall dropping packets).
        case connectTimedOut
        /// The host name does not resolve.
        case unknownHost
        /// The other end closed the stream (cable pulled, radio rebooted, `meshtasticd` stopped), or it was closed here.
        case closed
        /// Any other system error, with its errno.
        case io(errno: Int32)
    }

    public var code: Code
    /// The endpoint it happened on, as ``MeshtasticEndpoint/description`` writes it.
    public var endpoint: String

    public init(_ code: Code, endpoint: String) {
        self.code = code
        self.endpoint = endpoint
    }

    /// The serial port's error in the transport's terms.
    public init(_ error: SerialError) {
        let code: Code =
            switch error.code {
            case .noSuchPort: .noSuchPort
            case .permissionDenied: .permissionDenied
            case .busy: .busy
            case .closed: .closed
            case .io(let number): .io(errno: number)
            }
        self.init(code, endpoint: error.port)
    }

    public var description: String {
        switch self.code {
        case .noSuchPort: "no serial port \(self.endpoint)"
        case .permissionDenied: "no permission for \(self.endpoint)"
        case .busy: "\(self.endpoint) is in use by another program"
        case .connectionRefused: "connection to \(self.endpoint) refused: nothing listens there"
        case .connectTimedOut: "connection to \(self.endpoint) timed out"
        case .unknownHost: "the host of \(self.endpoint) does not resolve"
        case .closed: "\(self.endpoint) closed the connection"
        case .io(let number): "I/O error on \(self.endpoint) (errno \(number))"
        }
    }
}

/// A byte stream to a Meshtastic radio: the framed client API runs on it unchanged over serial and TCP.
public protocol MeshtasticTransport: Sendable {
    /// The endpoint, for logs.
    var name: String { get }
    /// The bytes that have arrived, at most `maxCount`, waiting up to `timeout` (real time) for the first one; empty
    /// when nothing arrived. Throws ``MeshtasticTransportError/Code/closed`` once the other end is gone.
    func read(maxCount: Int, timeout: Duration) async throws(MeshtasticTransportError) -> [UInt8]
    /// Writes all of `bytes`.
    func write(_ bytes: [UInt8]) async throws(MeshtasticTransportError)
    /// Closes the stream; later reads and writes fail with ``MeshtasticTransportError/Code/closed``.
    func close()
}

/// The radio on a serial port, with the python client's wake-up before the first frame.
public final class MeshtasticSerialTransport: MeshtasticTransport {
    public let port: any SerialPort
    private let closePort: @Sendable () -> Void

    /// Wraps an open port (a simulated one in the doctor's `--simulate` kit); `close` releases it.
    public init(port: any SerialPort, close: @escaping @Sendable () -> Void = {}) {
        self.port = port
        self.closePort = close
    }

    public var name: String { self.port.name }

    #if canImport(Glibc)
    /// Opens `path` at 115200 8N1 (exclusively, as the python client does) and wakes the radio.
    public static func open(path: String) async throws(MeshtasticTransportError) -> MeshtasticSerialTransport {
        let port: LinuxSerialPort
        do {
            port = try LinuxSerialPort(path: path, baudRate: .b115200)
        } catch {
            throw MeshtasticTransportError(error)
        }
        let transport = MeshtasticSerialTransport(port: port, close: { port.close() })
        do {
            try await transport.wake()
        } catch {
            port.close()
            throw error
        }
        return transport
    }
    #endif

    /// Writes 32 × 0xC3 and waits 100 ms (real time): wakes a sleeping radio and resynchronises its frame parser.
    public func wake() async throws(MeshtasticTransportError) {
        try await self.write(MeshtasticFraming.wakeSequence)
        try? await Task.sleep(for: MeshtasticFraming.wakeSettleTime)
    }

    public func read(maxCount: Int, timeout: Duration) async throws(MeshtasticTransportError) -> [UInt8] {
        do {
            return try await self.port.read(maxCount: maxCount, timeout: timeout)
        } catch {
            throw MeshtasticTransportError(error)
        }
    }

    public func write(_ bytes: [UInt8]) async throws(MeshtasticTransportError) {
        do {
            try await self.port.write(bytes)
        } catch {
            throw MeshtasticTransportError(error)
        }
    }

    public func close() { self.closePort() }
}

#if canImport(Glibc)
/// The radio's TCP API (`meshtasticd`, Wi-Fi radios): the same framing as serial, no wake-up.
public final class MeshtasticTCPTransport: MeshtasticTransport {
    public let name: String
    let stream: NonBlockingSocket

    init(stream: NonBlockingSocket, name: String) {
        self.stream = stream
        self.name = name
    }

    /// Connects to `host:port`, giving up after `timeout` (real time).
    public static func connect(host: String, port: Int, timeout: Duration = .seconds(10)) async throws(MeshtasticTransportError)
        -> MeshtasticTCPTransport
    {
        let name = MeshtasticEndpoint.tcp(host: host, port: port).description
        let socket = try await NonBlockingSocket.connect(host: host, port: port, timeout: timeout, name: name)
        return MeshtasticTCPTransport(stream: socket, name: name)
    }

    public func read(maxCount: Int, timeout: Duration) async throws(MeshtasticTransportError) -> [UInt8] {
        try await self.stream.read(maxCount: maxCount, timeout: timeout)
    }

    public func write(_ bytes: [UInt8]) async throws(MeshtasticTransportError) {
        try await self.stream.write(bytes)
    }

    public func close() { self.stream.close() }
}

extension MeshtasticEndpoint {
    /// Opens the endpoint: the serial port with the wake-up, or a TCP connection bounded by `connectTimeout`.
    public func open(connectTimeout: Duration = .seconds(10)) async throws(MeshtasticTransportError) -> any MeshtasticTransport {
        switch self {
        case .serial(let path): try await MeshtasticSerialTransport.open(path: path)
        case .tcp(let host, let port): try await MeshtasticTCPTransport.connect(host: host, port: port, timeout: connectTimeout)
        }
    }
}
#endif
