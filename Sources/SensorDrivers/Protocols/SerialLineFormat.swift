/// Text lines ended by LF (a CR before it is dropped), as AT-command modems and NMEA receivers send them.
///
/// Empty lines (the blank lines around a RAK3172 status) are padding, not frames. A line longer than
/// ``maximumFrameLength`` is rejected and the decoder resynchronises on the next byte, so a stream of binary
/// noise never grows the buffer and the next real line is still found. Bytes that are not valid UTF-8 are
/// replaced, never fatal: a driver matches the lines it knows and logs the rest.
public enum SerialLineFormat: SerialFrameFormat {
    /// Why bytes were not a line.
    public enum Failure: Error, Sendable, Hashable {
        /// No line end within ``SerialLineFormat/maximumFrameLength`` bytes.
        case tooLong(Int)
    }

    /// Longer than any modem reply (a RAK3172 `AT+SEND` line is at most 500 hex digits plus the command).
    public static var maximumFrameLength: Int { 600 }

    public static func canStartFrame(_ byte: UInt8) -> Bool { byte != 0 }

    public static func scan(_ bytes: ArraySlice<UInt8>) -> SerialFrameScan<String, Failure> {
        var offset = 0
        for byte in bytes {
            if byte == lineFeed { break }
            offset += 1
        }
        guard offset < bytes.count else { return .incomplete }
        var end = bytes.startIndex + offset
        while end > bytes.startIndex, bytes[end - 1] == carriageReturn { end -= 1 }
        guard end > bytes.startIndex else { return .padding(skip: offset + 1) }
        return .frame(String(decoding: bytes[bytes.startIndex..<end], as: UTF8.self), length: offset + 1)
    }

    public static func isChecksumFailure(_ failure: Failure) -> Bool { false }
    public static func frameTooLong(_ length: Int) -> Failure { .tooLong(length) }

    private static let lineFeed: UInt8 = 0x0A
    private static let carriageReturn: UInt8 = 0x0D
}
