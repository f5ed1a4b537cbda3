#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SensorDrivers
import SwiftProtobuf

/// The Meshtastic client API's stream framing, the same on USB serial (115200 8N1) and on TCP port 4403
/// (lora-and-appliance.md §3, protocols.md §8):
///
/// ```
/// 94 C3 <length, 16-bit big-endian, at most 512> <protobuf: ToRadio host→radio, FromRadio radio→host>
/// ```
///
/// On serial the radio's debug log shares the stream: every byte outside a frame is log text. A decoder skips
/// bytes until a 0x94, treats a declared length above 512 as a corrupt header and searches for the next 0x94, and
/// (like the python client, which drops a frame it cannot parse) rejects a frame whose bytes do not decode as the
/// expected message or do not look like one the API sends (``MeshtasticAPIMessage/isPlausibleFrame``): that is what a
/// frame with log text spliced into it usually looks like. Unlike the python client it then resumes the search one
/// byte after the rejected start, so a frame that begins inside the damaged one's declared length is still found.
/// The framing has no checksum, so a frame cut inside opaque content (a payload, a string) and completed by log bytes
/// can still pass; the layers above must treat message contents as untrusted.
public enum MeshtasticFraming {
    /// The first byte of every frame.
    public static let startByte1: UInt8 = 0x94
    /// The second byte of every frame.
    public static let startByte2: UInt8 = 0xC3
    /// Start bytes and length.
    public static let headerLength = 4
    /// `MAX_TO_FROM_RADIO_SIZE`: a longer declared length means the header is corrupt.
    public static let maximumPayloadLength = 512
    /// A whole frame at the largest payload.
    public static let maximumFrameLength = headerLength + maximumPayloadLength
    /// Written before the first frame on serial (32 × 0xC3, as the python client does): wakes a sleeping radio and
    /// makes its frame parser resynchronise. Follow it with ``wakeSettleTime`` of silence.
    public static let wakeSequence = [UInt8](repeating: startByte2, count: 32)
    /// How long to wait after ``wakeSequence`` before the first frame.
    public static let wakeSettleTime: Duration = .milliseconds(100)
    /// The serial line speed of current firmware (earlier firmware used 921600).
    public static let serialBaudRate = 115_200
    /// `meshtasticd` and Wi-Fi radios serve the same framed API on this TCP port.
    public static let tcpPort = 4403

    /// Frames protobuf bytes for the wire.
    public static func frame(payload: [UInt8]) throws(MeshtasticFrameError) -> [UInt8] {
        guard payload.count <= self.maximumPayloadLength else { throw .payloadTooLarge(payload.count) }
        var bytes = self.header(payloadLength: payload.count)
        bytes.reserveCapacity(self.headerLength + payload.count)
        bytes.append(contentsOf: payload)
        return bytes
    }

    /// The four bytes before a payload of `payloadLength` (at most 512) bytes.
    static func header(payloadLength: Int) -> [UInt8] {
        [self.startByte1, self.startByte2, UInt8(truncatingIfNeeded: payloadLength >> 8), UInt8(truncatingIfNeeded: payloadLength)]
    }

    /// Serialises and frames a message: a `ToRadio` from the host, or a `FromRadio` from a (simulated) radio.
    public static func frame(_ message: some SwiftProtobuf.Message) throws(MeshtasticFrameError) -> [UInt8] {
        let payload: [UInt8]
        do {
            payload = try message.serializedBytes()
        } catch {
            // Only a proto2 message with missing required fields fails to serialise; these .proto files have none.
            throw .unencodableMessage(type: String(describing: type(of: message)))
        }
        return try self.frame(payload: payload)
    }
}

/// Why bytes are not a usable Meshtastic frame.
public enum MeshtasticFrameError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The first byte is not 0x94.
    case missingStart
    /// 0x94 followed by another byte than 0xC3: a stray byte of the debug log, not a frame.
    case falseStart(UInt8)
    /// A single frame of fewer than the four header bytes.
    case incompleteHeader(count: Int)
    /// A declared length above 512: the header is corrupt.
    case lengthTooLarge(Int)
    /// A single frame whose byte count is not the header plus the declared length (cut off, or bytes after it).
    case lengthMismatch(declared: Int, actual: Int)
    /// The payload does not decode as the expected message: a length or varint that runs past the end, an invalid
    /// wire type or field number 0, unbalanced groups, a known string field that is not UTF-8 (log text or noise
    /// inside the frame). A field whose wire type does not match the schema is not an error: SwiftProtobuf keeps it
    /// as an unknown field.
    case malformedPayload(length: Int, defect: MeshtasticPayloadDefect)
    /// A payload of more than 512 bytes handed to the encoder.
    case payloadTooLarge(Int)
    /// A message the protobuf encoder refused.
    case unencodableMessage(type: String)
    /// A stream candidate longer than any frame (cannot happen with a checked length; required by the decoder).
    case tooLong(Int)

    public var description: String {
        switch self {
        case .missingStart: "Meshtastic frame does not start with 0x94 0xC3"
        case .falseStart(let byte): "0x94 followed by 0x\(String(byte, radix: 16, uppercase: true)), not a Meshtastic frame"
        case .incompleteHeader(let count): "Meshtastic frame of \(count) bytes has no complete header"
        case .lengthTooLarge(let length): "Meshtastic frame declares \(length) bytes, more than 512"
        case .lengthMismatch(let declared, let actual): "Meshtastic frame declares \(declared) payload bytes but has \(actual)"
        case .malformedPayload(let length, let defect): "Meshtastic frame with \(length) payload bytes holds no valid message: \(defect)"
        case .payloadTooLarge(let length): "Meshtastic payload of \(length) bytes is larger than 512"
        case .unencodableMessage(let type): "\(type) could not be encoded"
        case .tooLong(let length): "Meshtastic frame candidate of \(length) bytes is too long"
        }
    }
}

/// What was wrong with a payload that is structurally protobuf but not the expected message.
public enum MeshtasticPayloadDefect: Sendable, Hashable, CustomStringConvertible {
    case truncated
    case malformed
    case invalidUTF8
    case nestedTooDeeply
    /// Decodable, but no known payload variant, or top-level fields outside the API's schema (see
    /// ``MeshtasticAPIMessage/isPlausibleFrame``).
    case unexpectedContent
    case other

    init(_ error: any Error) {
        switch error as? BinaryDecodingError {
        case .truncated: self = .truncated
        case .malformedProtobuf: self = .malformed
        case .invalidUTF8: self = .invalidUTF8
        case .messageDepthLimit: self = .nestedTooDeeply
        default: self = .other
        }
    }

    public var description: String {
        switch self {
        case .truncated: "truncated"
        case .malformed: "malformed"
        case .invalidUTF8: "a string is not UTF-8"
        case .nestedTooDeeply: "nested too deeply"
        case .unexpectedContent: "no known payload, or fields outside the API's schema"
        case .other: "not decodable"
        }
    }
}

/// A message the Meshtastic client API carries in a frame: `FromRadio` or `ToRadio`.
public protocol MeshtasticAPIMessage: SwiftProtobuf.Message {
    /// Whether the message looks like one the API sends: exactly one known payload variant and no top-level field
    /// outside the schema (every variant the reference lists is declared). The framing has no checksum and
    /// SwiftProtobuf keeps a field whose wire type does not match the schema as an unknown field rather than failing,
    /// so this is what tells most frames damaged by log text from real ones. Unknown fields inside the payload (newer
    /// firmware's MeshPacket fields, say) are fine.
    var isPlausibleFrame: Bool { get }
}

extension Meshtastic_FromRadio: MeshtasticAPIMessage {
    public var isPlausibleFrame: Bool {
        guard let variant = self.payloadVariant, self.unknownFields.data.isEmpty else { return false }
        switch variant {
        case .packet, .myInfo, .nodeInfo, .config, .configCompleteID, .rebooted, .channel, .queueStatus, .metadata,
            .clientNotification:
            return true
        // Declared as opaque bytes, but each is a message on the wire: its bytes must have a message's structure.
        case .logRecord(let bytes), .moduleConfig(let bytes), .xmodemPacket(let bytes), .mqttClientProxyMessage(let bytes),
            .fileInfo(let bytes), .deviceuiConfig(let bytes), .lockdownStatus(let bytes), .regionPresets(let bytes):
            return MeshtasticFraming.isWellFormedMessage(bytes)
        }
    }
}

extension Meshtastic_ToRadio: MeshtasticAPIMessage {
    public var isPlausibleFrame: Bool {
        guard let variant = self.payloadVariant, self.unknownFields.data.isEmpty else { return false }
        switch variant {
        case .packet, .wantConfigID, .disconnect, .heartbeat: return true
        case .xmodemPacket(let bytes), .mqttClientProxyMessage(let bytes): return MeshtasticFraming.isWellFormedMessage(bytes)
        }
    }
}

extension MeshtasticFraming {
    /// Whether `bytes` have the structure of some protobuf message (tags, varints, lengths, groups), whatever its
    /// fields mean.
    static func isWellFormedMessage(_ bytes: Data) -> Bool {
        var options = BinaryDecodingOptions()
        options.discardUnknownFields = true
        return (try? Google_Protobuf_Empty(serializedBytes: bytes, options: options)) != nil
    }
}

/// One frame: its payload bytes as received, and the message they hold.
public struct MeshtasticFrame<Message: MeshtasticAPIMessage>: Sendable {
    /// At most ``MeshtasticFraming/maximumPayloadLength`` bytes.
    public let payload: [UInt8]
    /// The decoded payload (unknown fields, such as the configs of the handshake, are kept).
    public let message: Message

    /// The frame on the wire as it was received, header included.
    public var bytes: [UInt8] {
        MeshtasticFraming.header(payloadLength: self.payload.count) + self.payload
    }

    /// Decodes bytes that are exactly one frame.
    public static func decode(_ bytes: ArraySlice<UInt8>) throws(MeshtasticFrameError) -> MeshtasticFrame {
        guard let declared = try MeshtasticFraming.declaredLength(bytes) else { throw .incompleteHeader(count: bytes.count) }
        let actual = bytes.count - MeshtasticFraming.headerLength
        guard actual == declared else { throw .lengthMismatch(declared: declared, actual: actual) }
        return try self.init(payload: bytes.dropFirst(MeshtasticFraming.headerLength))
    }

    /// Decodes bytes that are exactly one frame.
    public static func decode(_ bytes: [UInt8]) throws(MeshtasticFrameError) -> MeshtasticFrame { try self.decode(bytes[...]) }

    /// Decodes a payload (the bytes after the header).
    init(payload: ArraySlice<UInt8>) throws(MeshtasticFrameError) {
        let payload = Array(payload)
        do {
            self.message = try Message(serializedBytes: payload)
        } catch {
            throw .malformedPayload(length: payload.count, defect: MeshtasticPayloadDefect(error))
        }
        guard self.message.isPlausibleFrame else { throw .malformedPayload(length: payload.count, defect: .unexpectedContent) }
        self.payload = payload
    }
}

extension MeshtasticFrame: Equatable where Message: Equatable {}
extension MeshtasticFrame: Hashable where Message: Hashable {}

extension MeshtasticFraming {
    /// Checks the start bytes and the length field; nil when fewer bytes are there than it takes to tell.
    static func declaredLength(_ bytes: ArraySlice<UInt8>) throws(MeshtasticFrameError) -> Int? {
        guard let first = bytes.first else { return nil }
        guard first == self.startByte1 else { throw .missingStart }
        guard bytes.count >= 2 else { return nil }
        let second = bytes[bytes.startIndex + 1]
        guard second == self.startByte2 else { throw .falseStart(second) }
        guard bytes.count >= self.headerLength else { return nil }
        let length = Int(bytes[bytes.startIndex + 2]) << 8 | Int(bytes[bytes.startIndex + 3])
        guard length <= self.maximumPayloadLength else { throw .lengthTooLarge(length) }
        return length
    }
}

/// Finds frames holding `Message` in a byte stream that the radio's debug log shares.
public enum MeshtasticFrameFormat<Message: MeshtasticAPIMessage>: SerialFrameFormat {
    public static var maximumFrameLength: Int { MeshtasticFraming.maximumFrameLength }
    public static func canStartFrame(_ byte: UInt8) -> Bool { byte == MeshtasticFraming.startByte1 }

    public static func scan(_ bytes: ArraySlice<UInt8>) -> SerialFrameScan<MeshtasticFrame<Message>, MeshtasticFrameError> {
        do throws(MeshtasticFrameError) {
            guard let length = try MeshtasticFraming.declaredLength(bytes) else { return .incomplete }
            let frameLength = MeshtasticFraming.headerLength + length
            guard bytes.count >= frameLength else { return .incomplete }
            let payload = bytes.dropFirst(MeshtasticFraming.headerLength).prefix(length)
            return .frame(try MeshtasticFrame(payload: payload), length: frameLength)
        } catch {
            // Drop only the 0x94: the next frame may start anywhere after it, even inside a damaged one.
            return .rejected(error, skip: 1)
        }
    }

    /// The framing has no checksum.
    public static func isChecksumFailure(_ failure: MeshtasticFrameError) -> Bool { false }

    public static func frameTooLong(_ length: Int) -> MeshtasticFrameError { .tooLong(length) }
}

/// The host's decoder: `FromRadio` frames from a radio's serial or TCP byte stream.
public typealias MeshtasticFromRadioDecoder = SerialStreamDecoder<MeshtasticFrameFormat<Meshtastic_FromRadio>>

/// A (simulated) radio's decoder: `ToRadio` frames from the host.
public typealias MeshtasticToRadioDecoder = SerialStreamDecoder<MeshtasticFrameFormat<Meshtastic_ToRadio>>
