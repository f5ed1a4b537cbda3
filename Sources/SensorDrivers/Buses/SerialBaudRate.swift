/// A serial line speed the Linux termios layer can set (the `Bxxx` constants).
///
/// The chips Kiezbox talks to need only two of them: 9600 (SDS011, PMS5003, NMEA GPS) and 115200 (SPS30 over
/// SHDLC). The rest are here for USB adapters and radio modems. A configured number that is not one of these is
/// rejected when the configuration is parsed, with ``UnsupportedBaudRateError``, rather than when the port opens.
///
/// ```swift
/// let rate = try SerialBaudRate(bitsPerSecond: 9600)   // .b9600
/// ```
public enum SerialBaudRate: Int, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case b1200 = 1200
    case b2400 = 2400
    case b4800 = 4800
    case b9600 = 9600
    case b19200 = 19200
    case b38400 = 38400
    case b57600 = 57600
    case b115200 = 115_200
    case b230400 = 230_400
    case b460800 = 460_800
    case b921600 = 921_600

    /// The rate for `bitsPerSecond`, or a typed error naming the rates that exist.
    public init(bitsPerSecond: Int) throws(UnsupportedBaudRateError) {
        guard let rate = SerialBaudRate(rawValue: bitsPerSecond) else {
            throw UnsupportedBaudRateError(requested: bitsPerSecond)
        }
        self = rate
    }

    /// Bits per second.
    public var bitsPerSecond: Int { self.rawValue }

    /// "9600 baud".
    public var description: String { "\(self.rawValue) baud" }
}

/// A baud rate that no Linux serial driver can be set to through termios.
public struct UnsupportedBaudRateError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What was asked for.
    public var requested: Int

    public init(requested: Int) {
        self.requested = requested
    }

    public var description: String {
        let supported = SerialBaudRate.allCases.map { String($0.rawValue) }.joined(separator: ", ")
        return "unsupported baud rate \(self.requested): use one of \(supported) "
            + "(SDS011, PMS5003 and GPS modules use 9600, the SPS30 uses 115200)"
    }
}
