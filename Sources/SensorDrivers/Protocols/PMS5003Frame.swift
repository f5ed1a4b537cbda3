/// The Plantower PMS5003 wire format (sensors.md §9; pimoroni `pms5003-python`, airrohr `PMS_cmd`).
///
/// The sensor sends `42 4D LEN_H LEN_L` followed by `LEN` bytes, the last two of which are a big-endian checksum:
/// the 16-bit sum of every byte before it. A measurement has `LEN = 28` (13 big-endian words, 32 bytes in all); the
/// answer to a mode or sleep command has `LEN = 4` (`CMD DATA`, 8 bytes in all). The host sends 7-byte commands
/// `42 4D CMD DATA_H DATA_L CHK_H CHK_L`. Wake has no answer; a passive read is answered by a measurement.
///
/// Every decoder here is total: any byte sequence gives a frame or a ``PMS5003FrameError``.
public enum PMS5003Frame: Sendable, Hashable {
    /// A 32-byte measurement frame.
    case measurement(PMS5003Measurement)
    /// The 8-byte answer to a mode (`E1`) or sleep (`E4`) command.
    case commandReply(PMS5003CommandReply)

    static let start1: UInt8 = 0x42
    static let start2: UInt8 = 0x4D
    /// The length field of a measurement frame.
    public static let measurementLengthField: UInt16 = 28
    /// The length field of a command answer.
    public static let replyLengthField: UInt16 = 4
    /// The longest frame the sensor sends.
    public static let maximumLength = 4 + Int(measurementLengthField)

    /// Decodes one complete frame.
    public static func decode(_ bytes: [UInt8]) throws(PMS5003FrameError) -> PMS5003Frame {
        try self.decode(bytes[...])
    }

    /// Decodes one complete frame.
    public static func decode(_ bytes: ArraySlice<UInt8>) throws(PMS5003FrameError) -> PMS5003Frame {
        guard bytes.count >= 4 else { throw .wrongLength(expected: 4, found: bytes.count) }
        guard bytes.byte(atOffset: 0) == self.start1, bytes.byte(atOffset: 1) == self.start2 else {
            throw .missingStart(found: UInt16(bytes.byte(atOffset: 0)) << 8 | UInt16(bytes.byte(atOffset: 1)))
        }
        let lengthField = UInt16(bytes.byte(atOffset: 2)) << 8 | UInt16(bytes.byte(atOffset: 3))
        guard lengthField == self.measurementLengthField || lengthField == self.replyLengthField else {
            throw .unsupportedLengthField(lengthField)
        }
        let total = 4 + Int(lengthField)
        guard bytes.count == total else { throw .wrongLength(expected: total, found: bytes.count) }
        let computed = pms5003Checksum(bytes, count: total - 2)
        let received = bigEndianWord(bytes, at: total - 2)
        guard computed == received else { throw .checksumMismatch(computed: computed, received: received) }

        if lengthField == self.replyLengthField {
            return .commandReply(PMS5003CommandReply(command: bytes.byte(atOffset: 4), data: bytes.byte(atOffset: 5)))
        }
        return .measurement(PMS5003Measurement(words: (0..<13).map { bigEndianWord(bytes, at: 4 + 2 * $0) }))
    }

    /// The bytes on the wire.
    public var bytes: [UInt8] {
        var frame: [UInt8] = [Self.start1, Self.start2]
        switch self {
        case .measurement(let measurement):
            appendBigEndian(Self.measurementLengthField, to: &frame)
            for word in measurement.words { appendBigEndian(word, to: &frame) }
        case .commandReply(let reply):
            appendBigEndian(Self.replyLengthField, to: &frame)
            frame += [reply.command, reply.data]
        }
        appendBigEndian(pms5003Checksum(frame[...], count: frame.count), to: &frame)
        return frame
    }
}

/// The 13 data words of a measurement frame.
public struct PMS5003Measurement: Sendable, Hashable {
    /// PM1.0, PM2.5, PM10 in µg/m³ with the factory "CF=1" (standard particle) calibration.
    public var pm1Standard: UInt16
    public var pm2_5Standard: UInt16
    public var pm10Standard: UInt16
    /// PM1.0, PM2.5, PM10 in µg/m³ "under atmospheric environment": what airrohr and Kiezbox report.
    public var pm1: UInt16
    public var pm2_5: UInt16
    public var pm10: UInt16
    /// Particles larger than 0.3, 0.5, 1.0, 2.5, 5 and 10 µm per 0.1 L of air.
    public var particleCounts: [UInt16]
    /// Word 13: version (high byte) and error code (low byte) on most firmware.
    public var reserved: UInt16

    public init(
        pm1Standard: UInt16, pm2_5Standard: UInt16, pm10Standard: UInt16,
        pm1: UInt16, pm2_5: UInt16, pm10: UInt16,
        particleCounts: [UInt16] = [0, 0, 0, 0, 0, 0], reserved: UInt16 = 0
    ) {
        (self.pm1Standard, self.pm2_5Standard, self.pm10Standard) = (pm1Standard, pm2_5Standard, pm10Standard)
        (self.pm1, self.pm2_5, self.pm10) = (pm1, pm2_5, pm10)
        self.particleCounts = (particleCounts + [0, 0, 0, 0, 0, 0]).prefix(6).map { $0 }
        self.reserved = reserved
    }

    /// From the 13 words in frame order; missing words read as zero.
    public init(words: [UInt16]) {
        func word(_ index: Int) -> UInt16 { index < words.count ? words[index] : 0 }
        self.init(
            pm1Standard: word(0), pm2_5Standard: word(1), pm10Standard: word(2),
            pm1: word(3), pm2_5: word(4), pm10: word(5),
            particleCounts: (6..<12).map(word), reserved: word(12)
        )
    }

    /// The 13 words in frame order.
    public var words: [UInt16] {
        [self.pm1Standard, self.pm2_5Standard, self.pm10Standard, self.pm1, self.pm2_5, self.pm10] + self.particleCounts + [self.reserved]
    }
}

/// The answer to a mode or sleep command: the command and the data byte it took.
public struct PMS5003CommandReply: Sendable, Hashable {
    public var command: UInt8
    public var data: UInt8

    public init(command: UInt8, data: UInt8) {
        self.command = command
        self.data = data
    }
}

/// A command the host sends to the sensor.
public enum PMS5003Command: Sendable, Hashable, CaseIterable {
    /// `E1 00`: send a measurement only when asked (answered with `E1 00`).
    case passiveMode
    /// `E1 01`: send measurements on its own (answered with `E1 01`).
    case activeMode
    /// `E2 00`: in passive mode, send one measurement.
    case read
    /// `E4 00`: stop the fan and laser (answered with `E4 00`).
    case sleep
    /// `E4 01`: start the fan and laser; no answer.
    case wake

    /// Every command frame is this long.
    public static let length = 7

    /// `CMD` and the low data byte.
    public var code: (command: UInt8, data: UInt8) {
        switch self {
        case .passiveMode: (0xE1, 0x00)
        case .activeMode: (0xE1, 0x01)
        case .read: (0xE2, 0x00)
        case .sleep: (0xE4, 0x00)
        case .wake: (0xE4, 0x01)
        }
    }

    /// The answer the sensor gives to this command, if any (a read is answered by a measurement instead).
    public var expectedReply: PMS5003CommandReply? {
        switch self {
        case .passiveMode, .activeMode, .sleep: PMS5003CommandReply(command: self.code.command, data: self.code.data)
        case .read, .wake: nil
        }
    }

    /// The 7 bytes on the wire.
    public var frame: [UInt8] {
        var frame: [UInt8] = [PMS5003Frame.start1, PMS5003Frame.start2, self.code.command, 0x00, self.code.data]
        appendBigEndian(pms5003Checksum(frame[...], count: frame.count), to: &frame)
        return frame
    }

    /// Decodes a command frame, as the sensor does.
    public static func decode(_ bytes: ArraySlice<UInt8>) throws(PMS5003FrameError) -> PMS5003Command {
        guard bytes.count == self.length else { throw .wrongLength(expected: self.length, found: bytes.count) }
        guard bytes.byte(atOffset: 0) == PMS5003Frame.start1, bytes.byte(atOffset: 1) == PMS5003Frame.start2 else {
            throw .missingStart(found: UInt16(bytes.byte(atOffset: 0)) << 8 | UInt16(bytes.byte(atOffset: 1)))
        }
        let computed = pms5003Checksum(bytes, count: 5)
        let received = bigEndianWord(bytes, at: 5)
        guard computed == received else { throw .checksumMismatch(computed: computed, received: received) }
        let command = bytes.byte(atOffset: 2)
        guard let decoded = Self.allCases.first(where: { $0.code.command == command }) else { throw .unknownCommand(command) }
        let data = UInt16(bytes.byte(atOffset: 3)) << 8 | UInt16(bytes.byte(atOffset: 4))
        guard data <= 0xFF, let exact = Self.allCases.first(where: { $0.code == (command, UInt8(data)) }) else {
            throw .invalidParameter(command: decoded.code.command, parameter: data)
        }
        return exact
    }
}

/// Why bytes are not a PMS5003 frame.
public enum PMS5003FrameError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Not exactly one frame's worth of bytes.
    case wrongLength(expected: Int, found: Int)
    /// The frame does not start with `42 4D` ("BM").
    case missingStart(found: UInt16)
    /// A length field other than 28 (measurement) or 4 (command answer).
    case unsupportedLengthField(UInt16)
    /// The 16-bit sum does not match.
    case checksumMismatch(computed: UInt16, received: UInt16)
    /// A command frame with an unknown command byte.
    case unknownCommand(UInt8)
    /// A command frame with a data word the command does not take.
    case invalidParameter(command: UInt8, parameter: UInt16)

    public var description: String {
        switch self {
        case .wrongLength(let expected, let found): "PMS5003 frame of \(found) bytes, expected \(expected)"
        case .missingStart(let found): "PMS5003 frame starts with 0x\(String(found, radix: 16)), expected 0x424d"
        case .unsupportedLengthField(let length): "PMS5003 frame with length field \(length), expected 28 or 4"
        case .checksumMismatch(let computed, let received):
            "PMS5003 checksum mismatch: frame says 0x\(String(received, radix: 16)), bytes sum to 0x\(String(computed, radix: 16))"
        case .unknownCommand(let command): "PMS5003 command \(SerialWire.hex(command)) does not exist"
        case .invalidParameter(let command, let parameter):
            "PMS5003 command \(SerialWire.hex(command)) with invalid data 0x\(String(parameter, radix: 16))"
        }
    }
}

/// Finds the sensor's frames in a byte stream, resynchronising on `42 4D` and validating the length field first.
public enum PMS5003SensorFrameFormat: SerialFrameFormat {
    public static var maximumFrameLength: Int { PMS5003Frame.maximumLength }
    public static func canStartFrame(_ byte: UInt8) -> Bool { byte == PMS5003Frame.start1 }

    public static func scan(_ bytes: ArraySlice<UInt8>) -> SerialFrameScan<PMS5003Frame, PMS5003FrameError> {
        if bytes.count >= 2, bytes.byte(atOffset: 1) != PMS5003Frame.start2 {
            return .rejected(.missingStart(found: UInt16(bytes.byte(atOffset: 0)) << 8 | UInt16(bytes.byte(atOffset: 1))), skip: 1)
        }
        guard bytes.count >= 4 else { return .incomplete }
        let lengthField = UInt16(bytes.byte(atOffset: 2)) << 8 | UInt16(bytes.byte(atOffset: 3))
        // A corrupted length must not make the decoder wait for (or swallow) up to 64 KiB.
        guard lengthField == PMS5003Frame.measurementLengthField || lengthField == PMS5003Frame.replyLengthField else {
            return .rejected(.unsupportedLengthField(lengthField), skip: 1)
        }
        let total = 4 + Int(lengthField)
        guard bytes.count >= total else { return .incomplete }
        do {
            return .frame(try PMS5003Frame.decode(bytes.prefix(total)), length: total)
        } catch {
            return .rejected(error, skip: 1)
        }
    }

    public static func isChecksumFailure(_ failure: PMS5003FrameError) -> Bool {
        if case .checksumMismatch = failure { return true }
        return false
    }

    public static func frameTooLong(_ length: Int) -> PMS5003FrameError {
        .wrongLength(expected: PMS5003Frame.maximumLength, found: length)
    }
}

/// Finds the host's 7-byte commands in a byte stream (what a simulated sensor listens to).
public enum PMS5003CommandFrameFormat: SerialFrameFormat {
    public static var maximumFrameLength: Int { PMS5003Command.length }
    public static func canStartFrame(_ byte: UInt8) -> Bool { byte == PMS5003Frame.start1 }

    public static func scan(_ bytes: ArraySlice<UInt8>) -> SerialFrameScan<PMS5003Command, PMS5003FrameError> {
        if bytes.count >= 2, bytes.byte(atOffset: 1) != PMS5003Frame.start2 {
            return .rejected(.missingStart(found: UInt16(bytes.byte(atOffset: 0)) << 8 | UInt16(bytes.byte(atOffset: 1))), skip: 1)
        }
        guard bytes.count >= PMS5003Command.length else { return .incomplete }
        do {
            return .frame(try PMS5003Command.decode(bytes.prefix(PMS5003Command.length)), length: PMS5003Command.length)
        } catch {
            return .rejected(error, skip: 1)
        }
    }

    public static func isChecksumFailure(_ failure: PMS5003FrameError) -> Bool {
        PMS5003SensorFrameFormat.isChecksumFailure(failure)
    }

    public static func frameTooLong(_ length: Int) -> PMS5003FrameError { .wrongLength(expected: PMS5003Command.length, found: length) }
}

/// Decodes the frames a PMS5003 sends, resynchronising on `42 4D`.
public typealias PMS5003StreamDecoder = SerialStreamDecoder<PMS5003SensorFrameFormat>
/// Decodes the commands a host sends to a PMS5003.
public typealias PMS5003CommandStreamDecoder = SerialStreamDecoder<PMS5003CommandFrameFormat>

/// The PMS5003 checksum: the 16-bit sum of the first `count` bytes.
func pms5003Checksum(_ bytes: ArraySlice<UInt8>, count: Int) -> UInt16 {
    var sum: UInt16 = 0
    var offset = 0
    while offset < count, offset < bytes.count {
        sum &+= UInt16(bytes.byte(atOffset: offset))
        offset += 1
    }
    return sum
}

private func bigEndianWord(_ bytes: ArraySlice<UInt8>, at offset: Int) -> UInt16 {
    guard offset >= 0, offset + 1 < bytes.count else { return 0 }
    return UInt16(bytes.byte(atOffset: offset)) << 8 | UInt16(bytes.byte(atOffset: offset + 1))
}

private func appendBigEndian(_ word: UInt16, to bytes: inout [UInt8]) {
    bytes.append(UInt8(truncatingIfNeeded: word >> 8))
    bytes.append(UInt8(truncatingIfNeeded: word))
}
