import Foundation
import KiezboxTestSupport
import MeshRelay
import SensorDrivers
import SwiftProtobuf
import Testing

/// The Meshtastic frame decoder under the same fuzzing as the sensor parsers (SerialParserFuzzTests): one million
/// inputs made of valid FromRadio frames, random bytes and mutated frames, each decoded as one frame and also fed to
/// a long-lived stream decoder; then a long stream of frames, debug log lines and frames cut by the log.
@Suite("Meshtastic frame fuzzing")
struct MeshtasticFrameFuzzTests {
    typealias FromRadioFrame = MeshtasticFrame<Meshtastic_FromRadio>

    /// FromRadio messages of every kind the bridge reads, with random contents, framed.
    static func framePool(seed: UInt64, count: Int) -> [[UInt8]] {
        var random = SerialFuzzRandom(seed: seed)
        let ports: [Meshtastic_PortNum] = [.textMessageApp, .positionApp, .nodeinfoApp, .routingApp, .telemetryApp, .kiezboxControlApp]
        let names = ["Kiezbox Süd", "Späti-Ecke", "Любава", "🛟 Hilfe", "box7"]
        var pool: [[UInt8]] = []
        for index in 0..<count {
            var message = Meshtastic_FromRadio()
            message.id = UInt32(truncatingIfNeeded: random.next() >> 40)
            switch index % 6 {
            case 0, 1:
                message.packet = .with {
                    $0.from = UInt32(truncatingIfNeeded: random.next())
                    $0.to = random.chance(2) ? 0xFFFF_FFFF : UInt32(truncatingIfNeeded: random.next())
                    $0.channel = UInt32(random.below(8))
                    $0.id = UInt32(truncatingIfNeeded: random.next())
                    $0.hopLimit = UInt32(random.below(8))
                    $0.hopStart = 3
                    if random.chance(2) { $0.rxRssi = -Int32(random.below(140)) }
                    if random.chance(2) { $0.rxTime = UInt32(truncatingIfNeeded: random.next()) }
                    $0.rxSnr = Float(random.below(80)) / 4 - 10
                    $0.decoded = .with {
                        $0.portnum = ports[random.below(ports.count)]
                        $0.payload = Data(random.bytes(random.below(234)))
                        if random.chance(4) { $0.requestID = UInt32(truncatingIfNeeded: random.next()) }
                    }
                }
            case 2:
                message.nodeInfo = .with {
                    $0.num = UInt32(truncatingIfNeeded: random.next())
                    $0.user = .with {
                        $0.id = "!" + String(UInt32(truncatingIfNeeded: random.next()), radix: 16)
                        $0.longName = names[random.below(names.count)]
                        $0.shortName = String(names[random.below(names.count)].prefix(2))
                    }
                    $0.position = .with {
                        $0.latitudeI = 524_000_000 + Int32(random.below(100_000))
                        $0.longitudeI = 134_000_000 + Int32(random.below(100_000))
                    }
                    $0.snr = 6.25
                }
            case 3:
                message.myInfo = .with {
                    $0.myNodeNum = UInt32(truncatingIfNeeded: random.next())
                    $0.rebootCount = UInt32(random.below(100))
                }
            case 4:
                message.queueStatus = .with {
                    $0.free = UInt32(random.below(16))
                    $0.maxlen = 16
                    $0.meshPacketID = UInt32(truncatingIfNeeded: random.next())
                }
            default:
                if random.chance(2) { message.configCompleteID = UInt32(truncatingIfNeeded: random.next()) } else { message.rebooted = true }
            }
            // Handshake messages as a radio sends them: a config (5) with a part the schema keeps opaque, a channel (10)
            // whose settings hold a field the schema leaves out (an unknown field).
            var payload: [UInt8] = (try? message.serializedBytes()) ?? []
            if index % 6 == 5, random.chance(2) { payload = [0x2A, 0x04, 0x0A, 0x02, 0x08, 0x01] }
            if index % 6 == 4, random.chance(2) { payload = [0x52, 0x06, 0x08, 0x01, 0x12, 0x02, 0x08, 0x01] }
            pool.append((try? MeshtasticFraming.frame(payload: payload)) ?? [])
        }
        return pool
    }

    private static func kind(_ error: MeshtasticFrameError) -> String {
        switch error {
        case .missingStart: "missingStart"
        case .falseStart: "falseStart"
        case .incompleteHeader: "incompleteHeader"
        case .lengthTooLarge: "lengthTooLarge"
        case .lengthMismatch: "lengthMismatch"
        case .malformedPayload(_, let defect):
            switch defect {
            case .truncated: "malformedPayload(truncated)"
            case .malformed: "malformedPayload(malformed)"
            case .invalidUTF8: "malformedPayload(invalidUTF8)"
            case .nestedTooDeeply: "malformedPayload(nestedTooDeeply)"
            case .unexpectedContent: "malformedPayload(unexpectedContent)"
            case .other: "malformedPayload(other)"
            }
        case .payloadTooLarge: "payloadTooLarge"
        case .unencodableMessage: "unencodableMessage"
        case .tooLong: "tooLong"
        }
    }

    @Test("one million inputs: a frame or a typed rejection each, valid frames accepted and byte-exact")
    func oneMillionInputs() async {
        let pool = Self.framePool(seed: 0x94C3, count: 64)
        var stream = MeshtasticFromRadioDecoder()
        var streamFrames = 0
        var largestBuffer = 0
        var splitRandom = SerialFuzzRandom(seed: 4403)
        let result = await runSerialFuzz(
            name: "Meshtastic", seed: 0x0004_403, pool: pool, header: [0x94, 0xC3], maximumLength: MeshtasticFraming.maximumFrameLength
        ) { bytes in
            // The same input through the stream decoder, in two pieces, behind whatever the earlier inputs left.
            let cut = bytes.startIndex + splitRandom.below(bytes.count + 1)
            stream.append(bytes[..<cut])
            while stream.next() != nil { streamFrames += 1 }
            stream.append(bytes[cut...])
            while stream.next() != nil { streamFrames += 1 }
            largestBuffer = max(largestBuffer, stream.bufferedByteCount)
            // `throws(…)` makes the compiler check that the decoder throws nothing but its own error type.
            do throws(MeshtasticFrameError) {
                let frame = try FromRadioFrame.decode(bytes)
                return .accepted(roundTrips: frame.bytes.elementsEqual(bytes))
            } catch {
                return .rejected(Self.kind(error))
            }
        }
        let statistics = stream.statistics
        print(
            "Meshtastic stream fuzz: \(streamFrames) frames, \(statistics.malformedFrames) typed rejections, "
                + "\(statistics.skippedBytes) bytes skipped, largest buffer \(largestBuffer) bytes")
        #expect(
            result.problems(expectedKinds: [
                "missingStart", "falseStart", "incompleteHeader", "lengthTooLarge", "lengthMismatch", "malformedPayload(malformed)",
                "malformedPayload(truncated)", "malformedPayload(invalidUTF8)", "malformedPayload(unexpectedContent)",
            ]) == [])
        #expect(streamFrames > 0)
        #expect(statistics.checksumErrors == 0)
        // The decoder never holds more than one frame's worth of undecided bytes.
        #expect(largestBuffer < MeshtasticFraming.maximumFrameLength)
    }

    @Test("a long stream of frames, debug log lines and frames cut by the log, in random splits")
    func streamWithLogAndCutFrames() async {
        var random = SerialFuzzRandom(seed: 0x7E57)
        let pool = Self.framePool(seed: 0xF00D, count: 256)
        let logLines = [
            "INFO  | 12:00:01 2 [Router] Received routing from=0x7efeee00, id=0x1a2b3c4d\r\n",
            "DEBUG | 12:00:02 3 [RadioIf] Lora RX (id=0x6d2a1b00 fr=0x00 to=0xff, transport = 1, WantAck=0, HopLim=3 Ch=0x8)\r\n",
            "WARN  | 12:00:03 4 [Power] Battery 3.71 V\r\n",
            "ERROR | 12:00:04 5 Unknown portnum 258, ignoring\r\n",
        ].map { Array($0.utf8) }
        var decoder = MeshtasticFromRadioDecoder()
        var expected: [[UInt8]] = []
        var delivered: [[UInt8]] = []
        var cutFrames = 0
        var cutPrefixes: [[UInt8]] = []
        var pending: [UInt8] = []
        for index in 0..<20_000 {
            if index % 25 == 0 { await Task.yield() }
            pending += logLines[random.below(logLines.count)]
            let frame = pool[random.below(pool.count)]
            if random.chance(10) {
                // The radio starts a frame and its log cuts in; the rest of the frame never comes.
                let prefix = Array(frame.prefix(1 + random.below(frame.count - 1)))
                pending += prefix
                cutPrefixes.append(prefix)
                pending += logLines[random.below(logLines.count)]
                cutFrames += 1
            } else {
                pending += frame
                expected.append(frame)
            }
            if random.chance(3) {
                var offset = 0
                while offset < pending.count {
                    let end = min(pending.count, offset + 1 + random.below(64))
                    decoder.append(pending[offset..<end])
                    while let frame = decoder.next() { delivered.append(frame.bytes) }
                    offset = end
                }
                pending.removeAll(keepingCapacity: true)
            }
        }
        decoder.append(pending)
        while let frame = decoder.next() { delivered.append(frame.bytes) }

        // Every intact frame is delivered, in order; one is lost only when a cut frame's bytes plus what followed
        // happened to form a plausible message over it (then that bogus frame is delivered instead).
        let intact = Set(expected)
        let bogusFrames = delivered.filter { !intact.contains($0) }
        let bogus = bogusFrames.count
        // How much of each bogus frame came from the radio: the longest cut prefix it starts with.
        let genuineBytes = bogusFrames.map { frame in cutPrefixes.filter { frame.starts(with: $0) }.map(\.count).max() ?? 0 }
        var remaining = expected[...]
        var inOrder = true
        for frame in delivered where intact.contains(frame) {
            guard let position = remaining.firstIndex(of: frame) else {
                inOrder = false
                break
            }
            remaining = remaining[(position + 1)...]
        }
        let lost = expected.count - (delivered.count - bogus)
        print(
            "Meshtastic resync: \(expected.count) frames and \(cutFrames) cut frames among log lines; \(delivered.count - bogus) delivered, "
                + "\(lost) lost, \(bogus) bogus (cut frames completed by log bytes, at least \(genuineBytes.min() ?? 0) of their bytes "
                + "from the radio); \(decoder.statistics.malformedFrames) typed rejections, \(decoder.statistics.skippedBytes) bytes skipped")
        #expect(inOrder)
        #expect(decoder.statistics.malformedFrames >= cutFrames - bogus)
        #expect(lost <= expected.count / 100)
        // The framing has no checksum: a frame cut inside opaque content (a payload, a string) and completed by log
        // bytes cannot be told from a real one. It always starts with the radio's own header and first field.
        #expect(bogus < cutFrames / 5)
        #expect(genuineBytes.allSatisfy { $0 >= MeshtasticFraming.headerLength + 2 })
    }
}
