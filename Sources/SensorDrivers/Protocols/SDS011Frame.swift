/// The Nova SDS011 wire format (Laser Dust Sensor Control Protocol V1.3; sensors.md §8).
///
/// The sensor sends 10-byte frames, `AA Cx D1…D6 CHK AB` with `CHK = (D1 + … + D6) & 0xFF`: `C0` carries a
/// measurement, `C5` answers a command. The host sends 19-byte commands, `AA B4 D1…D13 ID1 ID2 CHK AB` with
/// `CHK = (D1 + … + D13 + ID1 + ID2) & 0xFF`; ID `FF FF` addresses any sensor.
///
/// Every decoder here is total: any byte sequence gives a frame or an ``SDS011FrameError``.
public enum SDS011Frame: Sendable, Hashable {
    /// `AA C0`: PM2.5 and PM10 in tenths of µg/m³.
    case measurement(SDS011Measurement)
    /// `AA C5`: the answer to a command.
    case reply(SDS011Reply)

    /// Every frame the sensor sends is this long.
    public static let length = 10
    static let head: UInt8 = 0xAA
    static let tail: UInt8 = 0xAB
    static let measurementKind: UInt8 = 0xC0
    static let replyKind: UInt8 = 0xC5

    /// Decodes one complete frame.
    public static func decode(_ bytes: [UInt8]) throws(SDS011FrameError) -> SDS011Frame {
        try self.decode(bytes[...])
    }

    /// Decodes one complete frame.
    public static func decode(_ bytes: ArraySlice<UInt8>) throws(SDS011FrameError) -> SDS011Frame {
        guard bytes.count == self.length else { throw .wrongLength(expected: self.length, found: bytes.count) }
        guard bytes.byte(atOffset: 0) == self.head else { throw .missingHead(found: bytes.byte(atOffset: 0)) }
        let kind = bytes.byte(atOffset: 1)
        guard kind == self.measurementKind || kind == self.replyKind else { throw .unknownFrameKind(kind) }
        guard bytes.byte(atOffset: 9) == self.tail else { throw .missingTail(found: bytes.byte(atOffset: 9)) }
        let computed = sds011Checksum(bytes, from: 2, to: 7)
        guard computed == bytes.byte(atOffset: 8) else { throw .checksumMismatch(computed: computed, received: bytes.byte(atOffset: 8)) }

        let deviceID = UInt16(bytes.byte(atOffset: 6)) << 8 | UInt16(bytes.byte(atOffset: 7))
        if kind == self.measurementKind {
            return .measurement(
                SDS011Measurement(
                    pm2_5Tenths: UInt16(bytes.byte(atOffset: 2)) | UInt16(bytes.byte(atOffset: 3)) << 8,
                    pm10Tenths: UInt16(bytes.byte(atOffset: 4)) | UInt16(bytes.byte(atOffset: 5)) << 8,
                    deviceID: deviceID
                )
            )
        }
        return .reply(
            SDS011Reply(
                command: bytes.byte(atOffset: 2), parameters: [bytes.byte(atOffset: 3), bytes.byte(atOffset: 4), bytes.byte(atOffset: 5)],
                deviceID: deviceID)
        )
    }

    /// The 10 bytes on the wire.
    public var bytes: [UInt8] {
        var frame = [UInt8](repeating: 0, count: Self.length)
        frame[0] = Self.head
        frame[9] = Self.tail
        let deviceID: UInt16
        switch self {
        case .measurement(let measurement):
            frame[1] = Self.measurementKind
            frame[2] = UInt8(truncatingIfNeeded: measurement.pm2_5Tenths)
            frame[3] = UInt8(truncatingIfNeeded: measurement.pm2_5Tenths >> 8)
            frame[4] = UInt8(truncatingIfNeeded: measurement.pm10Tenths)
            frame[5] = UInt8(truncatingIfNeeded: measurement.pm10Tenths >> 8)
            deviceID = measurement.deviceID
        case .reply(let reply):
            frame[1] = Self.replyKind
            frame[2] = reply.command
            for (offset, parameter) in reply.parameters.prefix(3).enumerated() { frame[3 + offset] = parameter }
            deviceID = reply.deviceID
        }
        frame[6] = UInt8(truncatingIfNeeded: deviceID >> 8)
        frame[7] = UInt8(truncatingIfNeeded: deviceID)
        frame[8] = sds011Checksum(frame[...], from: 2, to: 7)
        return frame
    }
}

/// One `AA C0` measurement frame.
public struct SDS011Measurement: Sendable, Hashable {
    /// PM2.5 in tenths of µg/m³, as sent.
    public var pm2_5Tenths: UInt16
    /// PM10 in tenths of µg/m³, as sent.
    public var pm10Tenths: UInt16
    /// The sensor's two-byte id (`ID1 ID2`, e.g. 0xA160).
    public var deviceID: UInt16

    public init(pm2_5Tenths: UInt16, pm10Tenths: UInt16, deviceID: UInt16) {
        self.pm2_5Tenths = pm2_5Tenths
        self.pm10Tenths = pm10Tenths
        self.deviceID = deviceID
    }

    /// PM2.5 in µg/m³: `(H·256 + L) / 10`.
    public var pm2_5: Double { Double(self.pm2_5Tenths) / 10 }
    /// PM10 in µg/m³.
    public var pm10: Double { Double(self.pm10Tenths) / 10 }
}

/// One `AA C5` reply frame: `AA C5 CMD P1 P2 P3 ID1 ID2 CHK AB`.
///
/// For the set/query commands (reporting mode 2, sleep/work 6, working period 8) `P1` is 0 for "query" and 1 for
/// "set", and `P2` the mode or period now in effect. A firmware reply (7) holds year, month and day.
public struct SDS011Reply: Sendable, Hashable {
    /// The command this answers (`D1` of the command).
    public var command: UInt8
    /// The three bytes after the command id.
    public var parameters: [UInt8]
    public var deviceID: UInt16

    public init(command: UInt8, parameters: [UInt8], deviceID: UInt16) {
        self.command = command
        self.parameters = parameters
        self.deviceID = deviceID
    }

    /// `P2`: the mode or period a set/query reply reports.
    public var value: UInt8 { self.parameters.count > 1 ? self.parameters[1] : 0 }
}

/// Whether the sensor reports on its own every second or only when asked.
public enum SDS011ReportingMode: UInt8, Sendable, Hashable {
    /// Sends a measurement frame every second while working (the factory setting).
    case active = 0
    /// Sends a measurement only in reply to a query-data command.
    case query = 1
}

/// Whether the fan and laser run.
public enum SDS011WorkState: UInt8, Sendable, Hashable {
    case sleeping = 0
    case working = 1
}

/// A command the host sends to the sensor.
public enum SDS011Command: Sendable, Hashable {
    case queryReportingMode
    case setReportingMode(SDS011ReportingMode)
    /// Asks for one measurement frame (in query mode).
    case queryData
    /// Gives the sensor a new id (the frame's target id is the current one).
    case setDeviceID(UInt16)
    case queryWorkState
    case setWorkState(SDS011WorkState)
    case queryFirmwareVersion
    case queryWorkingPeriod
    /// 0 = continuous; 1…30 = work 30 s every n minutes and sleep in between.
    case setWorkingPeriod(minutes: UInt8)

    /// Every command frame is this long.
    public static let length = 19
    static let commandKind: UInt8 = 0xB4
    /// The target id that every sensor accepts.
    public static let anySensor: UInt16 = 0xFFFF

    /// `D1`, which the reply echoes.
    public var commandID: UInt8 {
        switch self {
        case .queryReportingMode, .setReportingMode: 0x02
        case .queryData: 0x04
        case .setDeviceID: 0x05
        case .queryWorkState, .setWorkState: 0x06
        case .queryFirmwareVersion: 0x07
        case .queryWorkingPeriod, .setWorkingPeriod: 0x08
        }
    }

    /// The 19 bytes on the wire, addressed to `deviceID` (``anySensor`` by default).
    public func frame(deviceID: UInt16 = SDS011Command.anySensor) -> [UInt8] {
        var frame = [UInt8](repeating: 0, count: Self.length)
        frame[0] = SDS011Frame.head
        frame[1] = Self.commandKind
        frame[2] = self.commandID
        switch self {
        case .queryReportingMode, .queryWorkState, .queryWorkingPeriod, .queryData, .queryFirmwareVersion:
            break
        case .setReportingMode(let mode):
            (frame[3], frame[4]) = (1, mode.rawValue)
        case .setWorkState(let state):
            (frame[3], frame[4]) = (1, state.rawValue)
        case .setWorkingPeriod(let minutes):
            (frame[3], frame[4]) = (1, minutes)
        case .setDeviceID(let newID):
            frame[13] = UInt8(truncatingIfNeeded: newID >> 8)
            frame[14] = UInt8(truncatingIfNeeded: newID)
        }
        frame[15] = UInt8(truncatingIfNeeded: deviceID >> 8)
        frame[16] = UInt8(truncatingIfNeeded: deviceID)
        frame[17] = sds011Checksum(frame[...], from: 2, to: 16)
        frame[18] = SDS011Frame.tail
        return frame
    }

    /// Decodes a command frame, as the sensor does: the command and the id it is addressed to.
    public static func decode(_ bytes: ArraySlice<UInt8>) throws(SDS011FrameError) -> SDS011AddressedCommand {
        guard bytes.count == self.length else { throw .wrongLength(expected: self.length, found: bytes.count) }
        guard bytes.byte(atOffset: 0) == SDS011Frame.head else { throw .missingHead(found: bytes.byte(atOffset: 0)) }
        guard bytes.byte(atOffset: 1) == self.commandKind else { throw .unknownFrameKind(bytes.byte(atOffset: 1)) }
        guard bytes.byte(atOffset: 18) == SDS011Frame.tail else { throw .missingTail(found: bytes.byte(atOffset: 18)) }
        let computed = sds011Checksum(bytes, from: 2, to: 16)
        guard computed == bytes.byte(atOffset: 17) else { throw .checksumMismatch(computed: computed, received: bytes.byte(atOffset: 17)) }

        let deviceID = UInt16(bytes.byte(atOffset: 15)) << 8 | UInt16(bytes.byte(atOffset: 16))
        let commandID = bytes.byte(atOffset: 2)
        let isSet = bytes.byte(atOffset: 3)
        let value = bytes.byte(atOffset: 4)
        func setOrQuery(query: SDS011Command, set: (UInt8) -> SDS011Command?) throws(SDS011FrameError) -> SDS011Command {
            switch isSet {
            case 0: return query
            case 1:
                guard let command = set(value) else { throw .invalidParameter(command: commandID, parameter: value) }
                return command
            default: throw .invalidParameter(command: commandID, parameter: isSet)
            }
        }
        let command: SDS011Command
        switch commandID {
        case 0x02:
            command = try setOrQuery(query: .queryReportingMode) { SDS011ReportingMode(rawValue: $0).map { .setReportingMode($0) } }
        case 0x04:
            command = .queryData
        case 0x05:
            command = .setDeviceID(UInt16(bytes.byte(atOffset: 13)) << 8 | UInt16(bytes.byte(atOffset: 14)))
        case 0x06:
            command = try setOrQuery(query: .queryWorkState) { SDS011WorkState(rawValue: $0).map { .setWorkState($0) } }
        case 0x07:
            command = .queryFirmwareVersion
        case 0x08:
            command = try setOrQuery(query: .queryWorkingPeriod) { $0 <= 30 ? .setWorkingPeriod(minutes: $0) : nil }
        default:
            throw .unknownCommand(commandID)
        }
        return SDS011AddressedCommand(command: command, deviceID: deviceID)
    }
}

/// A command together with the sensor id it is addressed to, as decoded from the wire.
public struct SDS011AddressedCommand: Sendable, Hashable {
    public var command: SDS011Command
    /// The target id; ``SDS011Command/anySensor`` addresses every sensor.
    public var deviceID: UInt16

    public init(command: SDS011Command, deviceID: UInt16) {
        self.command = command
        self.deviceID = deviceID
    }
}

/// Why bytes are not an SDS011 frame.
public enum SDS011FrameError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Not exactly one frame's worth of bytes.
    case wrongLength(expected: Int, found: Int)
    /// The first byte is not `AA`.
    case missingHead(found: UInt8)
    /// The second byte is not `C0`/`C5` (sensor frames) or `B4` (commands).
    case unknownFrameKind(UInt8)
    /// The last byte is not `AB`.
    case missingTail(found: UInt8)
    /// The frame's checksum byte does not match its data.
    case checksumMismatch(computed: UInt8, received: UInt8)
    /// A command frame with a command id the protocol does not define.
    case unknownCommand(UInt8)
    /// A command frame whose set/query flag or value is out of range.
    case invalidParameter(command: UInt8, parameter: UInt8)

    public var description: String {
        switch self {
        case .wrongLength(let expected, let found): "SDS011 frame of \(found) bytes, expected \(expected)"
        case .missingHead(let found): "SDS011 frame starts with \(SerialWire.hex(found)), expected 0xaa"
        case .unknownFrameKind(let kind): "SDS011 frame of unknown kind \(SerialWire.hex(kind))"
        case .missingTail(let found): "SDS011 frame ends with \(SerialWire.hex(found)), expected 0xab"
        case .checksumMismatch(let computed, let received):
            "SDS011 checksum mismatch: frame says \(SerialWire.hex(received)), data sums to \(SerialWire.hex(computed))"
        case .unknownCommand(let command): "SDS011 command \(SerialWire.hex(command)) does not exist"
        case .invalidParameter(let command, let parameter):
            "SDS011 command \(SerialWire.hex(command)) with invalid parameter \(SerialWire.hex(parameter))"
        }
    }
}

/// Finds the sensor's `AA C0`/`AA C5` frames in a byte stream.
public enum SDS011SensorFrameFormat: SerialFrameFormat {
    public static var maximumFrameLength: Int { SDS011Frame.length }
    public static func canStartFrame(_ byte: UInt8) -> Bool { byte == SDS011Frame.head }

    public static func scan(_ bytes: ArraySlice<UInt8>) -> SerialFrameScan<SDS011Frame, SDS011FrameError> {
        // Rejecting a wrong kind byte early lets the decoder resynchronise without waiting for ten bytes.
        if bytes.count >= 2 {
            let kind = bytes.byte(atOffset: 1)
            if kind != SDS011Frame.measurementKind, kind != SDS011Frame.replyKind { return .rejected(.unknownFrameKind(kind), skip: 1) }
        }
        guard bytes.count >= SDS011Frame.length else { return .incomplete }
        do {
            return .frame(try SDS011Frame.decode(bytes.prefix(SDS011Frame.length)), length: SDS011Frame.length)
        } catch {
            return .rejected(error, skip: 1)
        }
    }

    public static func isChecksumFailure(_ failure: SDS011FrameError) -> Bool {
        if case .checksumMismatch = failure { return true }
        return false
    }

    public static func frameTooLong(_ length: Int) -> SDS011FrameError { .wrongLength(expected: SDS011Frame.length, found: length) }
}

/// Finds the host's `AA B4` command frames in a byte stream (what a simulated sensor listens to).
public enum SDS011CommandFrameFormat: SerialFrameFormat {
    public static var maximumFrameLength: Int { SDS011Command.length }
    public static func canStartFrame(_ byte: UInt8) -> Bool { byte == SDS011Frame.head }

    public static func scan(
        _ bytes: ArraySlice<UInt8>
    ) -> SerialFrameScan<SDS011AddressedCommand, SDS011FrameError> {
        if bytes.count >= 2, bytes.byte(atOffset: 1) != SDS011Command.commandKind {
            return .rejected(.unknownFrameKind(bytes.byte(atOffset: 1)), skip: 1)
        }
        guard bytes.count >= SDS011Command.length else { return .incomplete }
        do {
            return .frame(try SDS011Command.decode(bytes.prefix(SDS011Command.length)), length: SDS011Command.length)
        } catch {
            return .rejected(error, skip: 1)
        }
    }

    public static func isChecksumFailure(_ failure: SDS011FrameError) -> Bool {
        SDS011SensorFrameFormat.isChecksumFailure(failure)
    }

    public static func frameTooLong(_ length: Int) -> SDS011FrameError { .wrongLength(expected: SDS011Command.length, found: length) }
}

/// Decodes the frames an SDS011 sends, resynchronising on `AA`.
public typealias SDS011StreamDecoder = SerialStreamDecoder<SDS011SensorFrameFormat>
/// Decodes the commands a host sends to an SDS011.
public typealias SDS011CommandStreamDecoder = SerialStreamDecoder<SDS011CommandFrameFormat>

/// The SDS011 checksum: the low byte of the sum of the bytes at offsets `from…to` of `bytes`.
func sds011Checksum(_ bytes: ArraySlice<UInt8>, from: Int, to: Int) -> UInt8 {
    var sum: UInt8 = 0
    var offset = from
    while offset <= to, offset < bytes.count {
        sum &+= bytes.byte(atOffset: offset)
        offset += 1
    }
    return sum
}
