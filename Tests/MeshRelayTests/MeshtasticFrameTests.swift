import Foundation
import KiezboxTestSupport
import MeshRelay
import SensorDrivers
import SwiftProtobuf
import Testing

/// The 0x94 0xC3 stream framing with hand-built frames: split at every point, with the radio's debug log between
/// and inside frames, corrupt lengths, false starts, the wake sequence and the encoder's limit.
@Suite("Meshtastic stream framing")
struct MeshtasticFrameTests {
    typealias FromRadioFrame = MeshtasticFrame<Meshtastic_FromRadio>
    typealias ToRadioFrame = MeshtasticFrame<Meshtastic_ToRadio>

    /// `FromRadio{config_complete_id: 42}`: field 7, varint (tag 0x38), value 0x2A.
    static let configComplete: [UInt8] = [0x94, 0xC3, 0x00, 0x02, 0x38, 0x2A]
    /// `FromRadio{my_info{my_node_num: 0x12345678}}`: field 3 (tag 0x1A), 6 bytes; inside, field 1 varint.
    static let myInfo: [UInt8] = [0x94, 0xC3, 0x00, 0x08, 0x1A, 0x06, 0x08, 0xF8, 0xAC, 0xD1, 0x91, 0x01]
    /// `FromRadio{rebooted: true}`: field 8, varint (tag 0x40).
    static let rebooted: [UInt8] = [0x94, 0xC3, 0x00, 0x02, 0x40, 0x01]

    /// Lines as the firmware's debug log writes them between frames.
    static let logText = Array("INFO  | 12:00:01 2 [Router] Received packet from 0x7efeee00\r\nDEBUG | 12:00:01 2 [SerialConsole] state 3\r\n".utf8)

    /// Feeds `stream` in pieces ending at `cuts`, returning the frames and the decoder.
    private static func decode<Message>(
        _ stream: [UInt8], cuts: [Int], as type: Message.Type = Meshtastic_FromRadio.self
    ) -> ([MeshtasticFrame<Message>], SerialStreamDecoder<MeshtasticFrameFormat<Message>>) {
        var decoder = SerialStreamDecoder<MeshtasticFrameFormat<Message>>()
        var frames: [MeshtasticFrame<Message>] = []
        var offset = 0
        for cut in cuts + [stream.count] where cut >= offset {
            decoder.append(stream[offset..<cut])
            while let frame = decoder.next() { frames.append(frame) }
            offset = cut
        }
        return (frames, decoder)
    }

    @Test("hand-built frames decode to the FromRadio messages they were built from")
    func handBuiltFrames() throws {
        #expect(try FromRadioFrame.decode(Self.configComplete).message.configCompleteID == 42)
        #expect(try FromRadioFrame.decode(Self.myInfo).message.myInfo.myNodeNum == 0x1234_5678)
        #expect(try FromRadioFrame.decode(Self.rebooted).message.rebooted)
        // The encoder makes the same bytes from the messages.
        var message = Meshtastic_FromRadio()
        message.configCompleteID = 42
        #expect(try MeshtasticFraming.frame(message) == Self.configComplete)
        message.myInfo = Meshtastic_MyNodeInfo.with { $0.myNodeNum = 0x1234_5678 }
        #expect(try MeshtasticFraming.frame(message) == Self.myInfo)
    }

    @Test("frames between and around debug log lines, split at every byte")
    func everySplitWithLogText() {
        let stream = Self.logText + Self.configComplete + Self.logText + Self.myInfo + Self.rebooted + Self.logText.prefix(20)
        let expected = [Self.configComplete, Self.myInfo, Self.rebooted]
        // One cut anywhere, two cuts anywhere (every pair), and byte by byte.
        var splits: [[Int]] = [[], Array(0...stream.count)]
        for first in 0...stream.count {
            splits.append([first])
            for second in stride(from: first, through: stream.count, by: 7) { splits.append([first, second]) }
        }
        for cuts in splits {
            let (frames, decoder) = Self.decode(stream, cuts: cuts)
            #expect(frames.map(\.bytes) == expected, "cuts \(cuts)")
            // ASCII log text holds no 0x94, so it is skipped as noise without a single rejection.
            #expect(decoder.statistics.malformedFrames == 0)
            #expect(decoder.lastRejection == nil)
            #expect(decoder.statistics.skippedBytes == Self.logText.count * 2 + 20)
        }
    }

    @Test("a length above 512 is a typed rejection, and the frame after it is found")
    func lengthTooLarge() {
        // 0x0201 = 513.
        let stream: [UInt8] = [0x94, 0xC3, 0x02, 0x01, 0x38, 0x01] + Self.logText + Self.configComplete
        let (frames, decoder) = Self.decode(stream, cuts: [3])
        #expect(frames.map(\.bytes) == [Self.configComplete])
        #expect(decoder.lastRejection == .lengthTooLarge(513))
        #expect(decoder.statistics.malformedFrames == 1)
        #expect(throws: MeshtasticFrameError.lengthTooLarge(513)) { try FromRadioFrame.decode([0x94, 0xC3, 0x02, 0x01]) }
        // 512 itself is allowed.
        #expect(throws: MeshtasticFrameError.lengthMismatch(declared: 512, actual: 0)) { try FromRadioFrame.decode([0x94, 0xC3, 0x02, 0x00]) }
    }

    @Test("0x94 not followed by 0xC3 is a false start, and 0xC3 bytes alone are noise")
    func falseStart() {
        let stream: [UInt8] = [0x94, 0x41, 0xC3, 0xC3, 0x94] + Self.configComplete
        let (frames, decoder) = Self.decode(stream, cuts: [1, 5])
        #expect(frames.map(\.bytes) == [Self.configComplete])
        #expect(decoder.statistics.malformedFrames == 2)
        #expect(decoder.lastRejection == .falseStart(0x94))
        #expect(throws: MeshtasticFrameError.falseStart(0x41)) { try FromRadioFrame.decode([0x94, 0x41, 0x00, 0x00]) }
        #expect(throws: MeshtasticFrameError.missingStart) { try FromRadioFrame.decode([0xC3, 0x94, 0x00, 0x00]) }
        #expect(throws: MeshtasticFrameError.incompleteHeader(count: 3)) { try FromRadioFrame.decode([0x94, 0xC3, 0x00]) }
    }

    @Test("a frame cut by log text is rejected as malformed, and a frame inside its declared length is still found")
    func frameCutByLogText() {
        // `FromRadio{packet{from: 0x7efeee00, decoded{portnum: TEXT_MESSAGE_APP, payload: "hello"}}}`, 18 bytes.
        let packet: [UInt8] = [0x12, 0x10, 0x0D, 0x00, 0xEE, 0xFE, 0x7E, 0x22, 0x09, 0x08, 0x01, 0x12, 0x05] + Array("hello".utf8)
        let whole = [0x94, 0xC3, 0x00, UInt8(packet.count)] + packet
        #expect((try? FromRadioFrame.decode(whole).message.packet.decoded.payload) == Data("hello".utf8))
        // The radio writes 9 bytes of the frame, then a log line, then a whole frame: the cut frame's declared 18
        // bytes end inside the log line, whose bytes do not parse as a protobuf message.
        let log = Array("WARN  | 12:00:02 [Radio] rx timeout\r\n".utf8)
        let stream = Array(whole.prefix(9)) + log + Self.configComplete + Self.rebooted
        for cuts in [[], [4], [9], [9, 20], Array(0...stream.count)] {
            let (frames, decoder) = Self.decode(stream, cuts: cuts)
            #expect(frames.map(\.bytes) == [Self.configComplete, Self.rebooted], "cuts \(cuts)")
            // The packet's 16-byte MeshPacket ends inside the log line, where a length runs past the end.
            #expect(decoder.lastRejection == .malformedPayload(length: packet.count, defect: .truncated))
            #expect(decoder.statistics.malformedFrames == 1)
        }
        // A short cut frame whose declared length covers the next frame's start: the rescan finds that frame.
        let shortCut = Array(whole.prefix(6)) + Array("E |".utf8) + Self.configComplete + Self.logText + Self.rebooted
        let (frames, decoder) = Self.decode(shortCut, cuts: [])
        #expect(frames.map(\.bytes) == [Self.configComplete, Self.rebooted])
        #expect(decoder.statistics.malformedFrames == 1)
    }

    @Test("the wake sequence is 32 × 0xC3, and a radio-side decoder skips it before the first ToRadio")
    func wakeSequence() throws {
        #expect(MeshtasticFraming.wakeSequence == [UInt8](repeating: 0xC3, count: 32))
        #expect(MeshtasticFraming.wakeSettleTime == .milliseconds(100))
        #expect(MeshtasticFraming.serialBaudRate == 115_200)
        #expect(MeshtasticFraming.tcpPort == 4403)
        var wantConfig = Meshtastic_ToRadio()
        wantConfig.wantConfigID = 0xC0FFEE
        let frame = try MeshtasticFraming.frame(wantConfig)
        // ToRadio field 3 varint (tag 0x18), 0xC0FFEE as a varint.
        #expect(frame == [0x94, 0xC3, 0x00, 0x05, 0x18, 0xEE, 0xFF, 0x83, 0x06])
        let (frames, decoder) = Self.decode(MeshtasticFraming.wakeSequence + frame, cuts: [16, 33], as: Meshtastic_ToRadio.self)
        #expect(frames.map(\.message) == [wantConfig])
        #expect(decoder.statistics.skippedBytes == 32)
        #expect(decoder.statistics.malformedFrames == 0)
    }

    @Test("the encoder refuses payloads above 512 bytes and frames 512")
    func encoderLimit() throws {
        #expect(throws: MeshtasticFrameError.payloadTooLarge(513)) { try MeshtasticFraming.frame(payload: [UInt8](repeating: 0, count: 513)) }
        // FromRadio.fileInfo (field 15, tag 0x7A) empty, 256 times: a valid message of exactly 512 bytes.
        let payload: [UInt8] = (0..<256).flatMap { _ -> [UInt8] in [0x7A, 0x00] }
        let frame = try MeshtasticFraming.frame(payload: payload)
        #expect(Array(frame.prefix(4)) == [0x94, 0xC3, 0x02, 0x00])
        #expect(try FromRadioFrame.decode(frame).payload == payload)
        #expect(try FromRadioFrame.decode(frame).message.payloadVariant == .fileInfo(Data()))
    }

    @Test("a ToRadio packet round-trips through framing and the stream decoder; FromRadio carries the same packet")
    func toRadioRoundTrip() throws {
        let packet = Meshtastic_MeshPacket.with {
            $0.from = 0x7EFE_EE00
            $0.to = 0xFFFF_FFFF
            $0.channel = 1
            $0.id = 0xDEAD_BEEF
            $0.hopLimit = 3
            $0.wantAck = true
            $0.decoded = Meshtastic_Data.with {
                $0.portnum = .textMessageApp
                $0.payload = Data("Wasser an der Kiezbox".utf8)
            }
        }
        let toRadio = Meshtastic_ToRadio.with { $0.packet = packet }
        let framed = try MeshtasticFraming.frame(toRadio)
        let stream = Self.logText + framed + Self.logText
        let (frames, _) = Self.decode(stream, cuts: [70, 90], as: Meshtastic_ToRadio.self)
        #expect(frames.map { $0.message } == [toRadio])
        #expect(frames.map { $0.bytes } == [framed])
        // What the radio hands back for the same packet: FromRadio.packet is field 2 instead of ToRadio's 1.
        let fromRadio = Meshtastic_FromRadio.with { $0.packet = packet }
        #expect(try FromRadioFrame.decode(MeshtasticFraming.frame(fromRadio)).message.packet == packet)
        // Read in the wrong direction, ToRadio's field 1 (a message) does not fit FromRadio's field 1 (a varint):
        // SwiftProtobuf keeps it as an unknown field, and a FromRadio with no payload and a foreign field is refused.
        #expect(throws: MeshtasticFrameError.malformedPayload(length: framed.count - 4, defect: .unexpectedContent)) {
            try FromRadioFrame.decode(framed)
        }
    }
}
