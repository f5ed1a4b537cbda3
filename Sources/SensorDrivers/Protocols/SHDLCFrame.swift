/// Sensirion's SHDLC framing, as the SPS30 speaks it over UART at 115200 8N1 (sensors.md §7;
/// `Sensirion/embedded-uart-sps sensirion_shdlc.c`, `python-shdlc-driver` tests).
///
/// - Host to device (MOSI): `7E ADR CMD LEN DATA… CHK 7E`.
/// - Device to host (MISO): `7E ADR CMD STATE LEN DATA… CHK 7E`.
/// - `CHK` is the bit-inverted low byte of the sum of every byte from `ADR` to the last data byte.
/// - Between the delimiters, 0x7E, 0x7D, 0x11 and 0x13 are sent as `7D, byte ^ 0x20` (byte stuffing); the checksum is
///   computed on the unstuffed bytes and is itself stuffed.
///
/// The decoders are strict, so that every accepted frame re-encodes to exactly the bytes received: an escape of any
/// other byte, or a raw 0x11/0x13 between the delimiters, is rejected rather than guessed at.
public enum SHDLC {
    /// Starts and ends every frame.
    public static let delimiter: UInt8 = 0x7E
    /// Precedes a stuffed byte.
    public static let escape: UInt8 = 0x7D
    /// What a stuffed byte is XORed with.
    static let stuffingMask: UInt8 = 0x20
    /// A frame with 255 data bytes, every byte stuffed: two delimiters and (5 header + 255 data + 1 checksum) × 2.
    public static let maximumFrameLength = 2 + 2 * (5 + 255 + 1)

    /// The SHDLC checksum: `~(sum of bytes) & 0xFF`.
    public static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt8 {
        var sum: UInt8 = 0
        for byte in bytes { sum &+= byte }
        return ~sum
    }

    /// Whether `byte` must be stuffed between the delimiters.
    @inline(__always)
    static func needsStuffing(_ byte: UInt8) -> Bool {
        byte == 0x7E || byte == 0x7D || byte == 0x11 || byte == 0x13
    }

    /// Byte-stuffs the bytes that go between the delimiters.
    public static func stuff(_ bytes: [UInt8]) -> [UInt8] {
        var stuffed: [UInt8] = []
        stuffed.reserveCapacity(bytes.count + 4)
        for byte in bytes {
            if self.needsStuffing(byte) {
                stuffed.append(self.escape)
                stuffed.append(byte ^ self.stuffingMask)
            } else {
                stuffed.append(byte)
            }
        }
        return stuffed
    }

    /// Undoes byte stuffing on the bytes between the delimiters.
    public static func unstuff(_ bytes: ArraySlice<UInt8>) throws(SHDLCError) -> [UInt8] {
        var unstuffed: [UInt8] = []
        unstuffed.reserveCapacity(bytes.count)
        var escaped = false
        for byte in bytes {
            if escaped {
                let original = byte ^ self.stuffingMask
                guard self.needsStuffing(original) else { throw .invalidEscape(byte) }
                unstuffed.append(original)
                escaped = false
            } else if byte == self.escape {
                escaped = true
            } else if byte == self.delimiter {
                throw .unexpectedDelimiter
            } else if byte == 0x11 || byte == 0x13 {
                throw .unescapedControlByte(byte)
            } else {
                unstuffed.append(byte)
            }
        }
        guard !escaped else { throw .danglingEscape }
        return unstuffed
    }

    /// Wraps unstuffed frame content (header, data) with its checksum, stuffing and delimiters.
    static func frame(content: [UInt8]) -> [UInt8] {
        [self.delimiter] + self.stuff(content + [self.checksum(content[...])]) + [self.delimiter]
    }

    /// Checks the delimiters, unstuffs, and checks the checksum; returns the content without the checksum.
    static func content(ofFrame frame: ArraySlice<UInt8>, minimumHeader: Int) throws(SHDLCError) -> [UInt8] {
        guard frame.count >= 2, frame.byte(atOffset: 0) == self.delimiter, frame.byte(atOffset: frame.count - 1) == self.delimiter else {
            throw .missingDelimiter
        }
        guard frame.count <= self.maximumFrameLength else { throw .tooLong(frame.count) }
        let unstuffed = try self.unstuff(frame.dropFirst().dropLast())
        guard unstuffed.count >= minimumHeader + 1 else { throw .tooShort(unstuffed.count) }
        let declared = Int(unstuffed[minimumHeader - 1])
        let actual = unstuffed.count - minimumHeader - 1
        guard declared == actual else { throw .lengthMismatch(declared: declared, actual: actual) }
        let content = unstuffed[..<(unstuffed.count - 1)]
        let computed = self.checksum(content)
        let received = unstuffed[unstuffed.count - 1]
        guard computed == received else { throw .checksumMismatch(computed: computed, received: received) }
        return Array(content)
    }
}

/// A frame the SHDLC stream decoder can deliver.
public protocol SHDLCDecodable: Sendable {
    /// Decodes one complete frame, delimiters included.
    static func decode(frame: ArraySlice<UInt8>) throws(SHDLCError) -> Self
}

/// A host-to-device (MOSI) frame.
public struct SHDLCRequest: SHDLCDecodable, Hashable {
    /// The device address (0 for the SPS30).
    public var address: UInt8
    public var command: UInt8
    /// At most 255 bytes; ``frame`` sends only the first 255.
    public var data: [UInt8]

    public init(address: UInt8 = 0, command: UInt8, data: [UInt8] = []) {
        self.address = address
        self.command = command
        self.data = data
    }

    /// The bytes on the wire.
    public var frame: [UInt8] {
        let data = self.data.prefix(255)
        return SHDLC.frame(content: [self.address, self.command, UInt8(data.count)] + data)
    }

    public static func decode(frame: ArraySlice<UInt8>) throws(SHDLCError) -> SHDLCRequest {
        let content = try SHDLC.content(ofFrame: frame, minimumHeader: 3)
        return SHDLCRequest(address: content[0], command: content[1], data: Array(content[3...]))
    }

    public static func decode(frame: [UInt8]) throws(SHDLCError) -> SHDLCRequest { try self.decode(frame: frame[...]) }
}

/// A device-to-host (MISO) frame.
public struct SHDLCResponse: SHDLCDecodable, Hashable {
    public var address: UInt8
    /// The command this answers.
    public var command: UInt8
    /// 0 when the command succeeded; see ``errorCode`` and ``deviceStatusFlag``.
    public var state: UInt8
    /// At most 255 bytes; ``frame`` sends only the first 255.
    public var data: [UInt8]

    public init(address: UInt8 = 0, command: UInt8, state: UInt8 = 0, data: [UInt8] = []) {
        self.address = address
        self.command = command
        self.state = state
        self.data = data
    }

    /// The execution error (bits 0–6 of the state byte): 0 none, 0x01 wrong data length, 0x02 unknown command,
    /// 0x03 no access right, 0x04 illegal parameter, 0x28 argument out of range, 0x43 not allowed in this state.
    public var errorCode: UInt8 { self.state & 0x7F }
    /// Bit 7 of the state byte: at least one error flag is set in the device status register.
    public var deviceStatusFlag: Bool { self.state & 0x80 != 0 }

    /// The bytes on the wire.
    public var frame: [UInt8] {
        let data = self.data.prefix(255)
        return SHDLC.frame(content: [self.address, self.command, self.state, UInt8(data.count)] + data)
    }

    public static func decode(frame: ArraySlice<UInt8>) throws(SHDLCError) -> SHDLCResponse {
        let content = try SHDLC.content(ofFrame: frame, minimumHeader: 4)
        return SHDLCResponse(address: content[0], command: content[1], state: content[2], data: Array(content[4...]))
    }

    public static func decode(frame: [UInt8]) throws(SHDLCError) -> SHDLCResponse { try self.decode(frame: frame[...]) }
}

/// Why bytes are not an SHDLC frame.
public enum SHDLCError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The frame does not start and end with 0x7E.
    case missingDelimiter
    /// A 0x7E between the delimiters.
    case unexpectedDelimiter
    /// 0x7D followed by a byte that does not unstuff to 0x7E, 0x7D, 0x11 or 0x13.
    case invalidEscape(UInt8)
    /// 0x7D as the last byte before the closing delimiter.
    case danglingEscape
    /// A raw 0x11 or 0x13 (XON/XOFF) between the delimiters, which the sender must stuff.
    case unescapedControlByte(UInt8)
    /// Fewer unstuffed bytes than a header and a checksum.
    case tooShort(Int)
    /// The length byte disagrees with the number of data bytes.
    case lengthMismatch(declared: Int, actual: Int)
    case checksumMismatch(computed: UInt8, received: UInt8)
    /// More bytes than the longest possible frame.
    case tooLong(Int)

    public var description: String {
        switch self {
        case .missingDelimiter: "SHDLC frame without 0x7e delimiters"
        case .unexpectedDelimiter: "SHDLC frame with 0x7e inside"
        case .invalidEscape(let byte): "SHDLC frame with invalid escape 0x7d \(SerialWire.hex(byte))"
        case .danglingEscape: "SHDLC frame ends in an escape byte"
        case .unescapedControlByte(let byte): "SHDLC frame with unstuffed \(SerialWire.hex(byte))"
        case .tooShort(let count): "SHDLC frame of \(count) bytes is too short"
        case .lengthMismatch(let declared, let actual): "SHDLC frame declares \(declared) data bytes but has \(actual)"
        case .checksumMismatch(let computed, let received):
            "SHDLC checksum mismatch: frame says \(SerialWire.hex(received)), content gives \(SerialWire.hex(computed))"
        case .tooLong(let count): "SHDLC frame of \(count) bytes is longer than any valid frame"
        }
    }
}

/// Finds SHDLC frames in a byte stream.
///
/// A frame runs from a 0x7E to the next 0x7E. When the bytes in between are no valid frame, the closing 0x7E is kept
/// as the possible opening of the next frame, because a reader that starts mid-frame sees the end of one frame first.
public enum SHDLCFrameFormat<Frame: SHDLCDecodable>: SerialFrameFormat {
    public static var maximumFrameLength: Int { SHDLC.maximumFrameLength }
    public static func canStartFrame(_ byte: UInt8) -> Bool { byte == SHDLC.delimiter }

    public static func scan(_ bytes: ArraySlice<UInt8>) -> SerialFrameScan<Frame, SHDLCError> {
        var offset = 1
        let count = min(bytes.count, SHDLC.maximumFrameLength)
        while offset < count, bytes.byte(atOffset: offset) != SHDLC.delimiter { offset += 1 }
        guard offset < count else { return .incomplete }
        // Two delimiters in a row: the first closed a frame we did not see the start of.
        if offset == 1 { return .padding(skip: 1) }
        do {
            return .frame(try Frame.decode(frame: bytes.prefix(offset + 1)), length: offset + 1)
        } catch {
            return .rejected(error, skip: offset)
        }
    }

    public static func isChecksumFailure(_ failure: SHDLCError) -> Bool {
        if case .checksumMismatch = failure { return true }
        return false
    }

    public static func frameTooLong(_ length: Int) -> SHDLCError { .tooLong(length) }
}

/// Decodes the frames a device sends (what the SPS30 driver reads).
public typealias SHDLCResponseStreamDecoder = SerialStreamDecoder<SHDLCFrameFormat<SHDLCResponse>>
/// Decodes the frames a host sends (what a simulated SPS30 reads).
public typealias SHDLCRequestStreamDecoder = SerialStreamDecoder<SHDLCFrameFormat<SHDLCRequest>>
