/// What went wrong on a serial port, with what a resident can check.
public struct SerialError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: Error, Sendable, Hashable {
        /// The device does not exist (`/dev/serial0` without `enable_uart=1`, an unplugged USB adapter).
        case noSuchPort
        /// Permission denied: the user is not in the `dialout` group.
        case permissionDenied
        /// The port is open in another program (a serial console, gpsd, ModemManager).
        case busy
        /// The port was closed (or the adapter unplugged) while in use.
        case closed
        /// Any other error, with its errno.
        case io(errno: Int32)
    }

    public var code: Code
    public var port: String

    public init(_ code: Code, port: String) {
        self.code = code
        self.port = port
    }

    public var description: String {
        switch self.code {
        case .noSuchPort: "no serial port \(self.port): enable the UART (enable_uart=1) or check the USB adapter"
        case .permissionDenied: "no permission for \(self.port): add the kiezbox user to the dialout group"
        case .busy: "\(self.port) is in use by another program (serial console, gpsd, ModemManager?)"
        case .closed: "\(self.port) was closed or unplugged"
        case .io(let errno): "serial error on \(self.port) (errno \(errno))"
        }
    }
}

/// A serial port: 8 data bits, no parity, 1 stop bit, at a fixed baud rate, with no flow control and no
/// line discipline (raw bytes).
public protocol SerialPort: Sendable {
    /// "/dev/ttyAMA0", "/dev/pts/3", "sim:/dev/serial0".
    var name: String { get }
    /// Reads the bytes that have arrived, at most `maxCount`, waiting up to `timeout` for the first one.
    /// Returns an empty array when nothing arrived in time.
    func read(maxCount: Int, timeout: Duration) async throws(SerialError) -> [UInt8]
    /// Writes all of `bytes`.
    func write(_ bytes: [UInt8]) async throws(SerialError)
}
