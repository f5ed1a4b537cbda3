import KiezboxTestSupport
import SensorDrivers
import Testing

/// One million generated inputs per parser: random bytes, and valid frames mutated by bit flips, truncation,
/// duplication, inserted header bytes, replaced and trailing bytes, and concatenation. Every input must give a
/// frame or a typed error (the decoders use typed throws, so the error type is checked by the compiler and the
/// kind is tallied here), never a crash; every accepted frame must re-encode to exactly the input; and every
/// unmutated valid frame must be accepted.
@Suite("Serial parser fuzzing")
struct SerialParserFuzzTests {
    @Test("SDS011 frames")
    func sds011() async {
        var random = SerialFuzzRandom(seed: 11)
        var pool: [[UInt8]] = [
            [0xAA, 0xC0, 0xD4, 0x04, 0x3A, 0x0A, 0xA1, 0x60, 0x1D, 0xAB], [0xAA, 0xC5, 0x08, 0x01, 0x01, 0x00, 0xA1, 0x60, 0x0B, 0xAB],
        ]
        for index in 0..<62 {
            let frame: SDS011Frame =
                index.isMultiple(of: 3)
                ? .reply(SDS011Reply(command: random.byte(), parameters: random.bytes(3), deviceID: UInt16(truncatingIfNeeded: random.next())))
                : .measurement(
                    SDS011Measurement(
                        pm2_5Tenths: UInt16(truncatingIfNeeded: random.next()), pm10Tenths: UInt16(truncatingIfNeeded: random.next()),
                        deviceID: 0xA160))
            pool.append(frame.bytes)
        }
        let result = await runSerialFuzz(name: "SDS011", seed: 0x5D5011, pool: pool, header: [0xAA, 0xC0], maximumLength: SDS011Frame.length) { bytes in
            // `throws(…)` makes the compiler check that the decoder throws nothing but its own error type.
            do throws(SDS011FrameError) {
                let frame = try SDS011Frame.decode(bytes)
                return .accepted(roundTrips: frame.bytes.elementsEqual(bytes))
            } catch {
                let kind: String =
                    switch error {
                    case .wrongLength: "wrongLength"
                    case .missingHead: "missingHead"
                    case .unknownFrameKind: "unknownFrameKind"
                    case .missingTail: "missingTail"
                    case .checksumMismatch: "checksumMismatch"
                    case .unknownCommand: "unknownCommand"
                    case .invalidParameter: "invalidParameter"
                    }
                return .rejected(kind)
            }
        }
        Self.check(result, expectedKinds: ["wrongLength", "missingHead", "unknownFrameKind", "missingTail", "checksumMismatch"])
    }

    @Test("PMS5003 frames")
    func pms5003() async {
        var random = SerialFuzzRandom(seed: 5003)
        var pool: [[UInt8]] = []
        for index in 0..<64 {
            let frame: PMS5003Frame =
                index.isMultiple(of: 4)
                ? .commandReply(PMS5003CommandReply(command: random.byte(), data: random.byte()))
                : .measurement(PMS5003Measurement(words: (0..<13).map { _ in UInt16(truncatingIfNeeded: random.next() >> UInt64(random.below(16))) }))
            pool.append(frame.bytes)
        }
        let result = await runSerialFuzz(
            name: "PMS5003", seed: 0x9503, pool: pool, header: [0x42, 0x4D, 0x00, 0x1C], maximumLength: PMS5003Frame.maximumLength
        ) { bytes in
            do throws(PMS5003FrameError) {
                let frame = try PMS5003Frame.decode(bytes)
                return .accepted(roundTrips: frame.bytes.elementsEqual(bytes))
            } catch {
                let kind: String =
                    switch error {
                    case .wrongLength: "wrongLength"
                    case .missingStart: "missingStart"
                    case .unsupportedLengthField: "unsupportedLengthField"
                    case .checksumMismatch: "checksumMismatch"
                    case .unknownCommand: "unknownCommand"
                    case .invalidParameter: "invalidParameter"
                    }
                return .rejected(kind)
            }
        }
        Self.check(result, expectedKinds: ["wrongLength", "missingStart", "unsupportedLengthField", "checksumMismatch"])
    }

    @Test("SPS30 SHDLC frames")
    func shdlc() async {
        var random = SerialFuzzRandom(seed: 30)
        let special: [UInt8] = [0x7E, 0x7D, 0x11, 0x13]
        var pool: [[UInt8]] = [[0x7e, 0x7d, 0x5e, 0x7d, 0x5d, 0x7d, 0x31, 0x03, 0x12, 0x7d, 0x33, 0x14, 0xb7, 0x7e]]
        for _ in 0..<63 {
            // Plenty of bytes that need stuffing, so the escapes are exercised.
            let data = (0..<random.below(48)).map { _ in random.chance(4) ? special[random.below(4)] : random.byte() }
            pool.append(
                SHDLCResponse(address: random.chance(4) ? 0x7E : 0, command: random.byte(), state: random.chance(3) ? random.byte() : 0, data: data)
                    .frame)
        }
        let result = await runSerialFuzz(name: "SHDLC", seed: 0x5bd1c, pool: pool, header: [0x7E, 0x7D, 0x11], maximumLength: 120) { bytes in
            do throws(SHDLCError) {
                let response = try SHDLCResponse.decode(frame: bytes)
                return .accepted(roundTrips: response.frame.elementsEqual(bytes))
            } catch {
                let kind: String =
                    switch error {
                    case .missingDelimiter: "missingDelimiter"
                    case .unexpectedDelimiter: "unexpectedDelimiter"
                    case .invalidEscape: "invalidEscape"
                    case .danglingEscape: "danglingEscape"
                    case .unescapedControlByte: "unescapedControlByte"
                    case .tooShort: "tooShort"
                    case .lengthMismatch: "lengthMismatch"
                    case .checksumMismatch: "checksumMismatch"
                    case .tooLong: "tooLong"
                    }
                return .rejected(kind)
            }
        }
        Self.check(
            result,
            expectedKinds: [
                "missingDelimiter", "unexpectedDelimiter", "invalidEscape", "danglingEscape", "unescapedControlByte", "lengthMismatch",
                "checksumMismatch",
            ])
    }

    @Test("NMEA sentences, GGA and RMC fields")
    func nmea() async {
        var pool: [[UInt8]] = [
            "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47",
            "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A",
            "$GPGGA,184353.07,1929.045,S,02410.506,E,1,04,2.6,100.00,M,-33.9,M,,0000*6D",
            "$GNRMC,001031.00,A,4404.13993,N,12118.86023,W,0.146,,100117,,,A*7B",
            "$GPRMC,,V,,,,,,,,,,N*53",
            "$GPGGA,,,,,,0,00,99.99,,,,,,*48",
        ].map { Array(($0 + "\r\n").utf8) }
        // Sentences as a receiver writes them, from the simulated receiver at random places and fix states.
        var random = SerialFuzzRandom(seed: 183)
        let receiver = SimulatedNMEAGPS()
        for epoch in 1...40 {
            receiver.setPosition(
                latitude: Double(random.below(180_000_000)) / 1e6 - 90, longitude: Double(random.below(360_000_000)) / 1e6 - 180,
                altitude: Double(random.below(100_000)) / 10 - 500
            )
            receiver.setTalker(["GP", "GN", "GL", "GA", "BD"][random.below(5)])
            receiver.setFixState(epoch % 7 == 0 ? .noFix : epoch % 11 == 0 ? .coldStart : .fix(quality: 1 + random.below(8)))
            let stream = receiver.transmissions(upTo: .seconds(epoch))
            pool += stream.split(separator: 0x0A, omittingEmptySubsequences: true).map { Array($0) + [0x0A] }
        }
        var fieldTally = SerialFuzzTally()
        var fieldAccepted = 0
        let printable = Array("0123456789.,-NSEWAVM".utf8)
        let result = await runSerialFuzz(
            name: "NMEA",
            seed: 0x0183,
            pool: pool,
            header: [UInt8(ascii: "$"), UInt8(ascii: "G"), UInt8(ascii: "P")],
            maximumLength: NMEASentence.maximumLength,
            extraMutation: { input, random in
                // Edit a field character and fix up the checksum, so the field parsers see the damage.
                guard let star = input.lastIndex(of: UInt8(ascii: "*")), star > 7 else { return }
                input[7 + random.below(star - 7)] = printable[random.below(printable.count)]
                let checksum = NMEASentence.checksum(input[1..<star])
                let hex = Array("0123456789ABCDEF".utf8)
                input[star + 1] = hex[Int(checksum >> 4)]
                input[star + 2] = hex[Int(checksum & 0x0F)]
            }
        ) { bytes in
            do throws(NMEAError) {
                let sentence = try NMEASentence.parse(bytes)
                // The sentence re-encodes to an equivalent line (hex case and line end may differ from the input).
                let roundTrips = (try? NMEASentence.parse(sentence.line)) == sentence
                do throws(NMEAError) {
                    if sentence.type == "GGA" { _ = try NMEAGGA(sentence) }
                    if sentence.type == "RMC" { _ = try NMEARMC(sentence) }
                    fieldAccepted += 1
                } catch {
                    fieldTally.record(Self.kind(error))
                }
                return .accepted(roundTrips: roundTrips)
            } catch {
                return .rejected(Self.kind(error))
            }
        }
        print("NMEA fuzz, fields of accepted sentences: \(fieldAccepted) accepted, \(fieldTally.total) rejected: \(fieldTally.summary)")
        Self.check(result, expectedKinds: ["missingStart", "invalidCharacter", "missingChecksum", "invalidChecksumDigits", "checksumMismatch"])
        #expect(fieldTally.counts.keys.contains("invalidField"))
        #expect(fieldAccepted > 0)
    }

    @Test(
        "stream decoders find every valid frame behind noise, in any split",
        arguments: ["SDS011", "PMS5003", "SHDLC", "NMEA"]
    )
    func streamResynchronisation(protocolName: String) async {
        var random = SerialFuzzRandom(seed: UInt64(protocolName.utf8.count) * 7919)
        var sds = SDS011StreamDecoder()
        var pms = PMS5003StreamDecoder()
        var shdlc = SHDLCResponseStreamDecoder()
        var nmea = NMEAStreamDecoder()
        let forbidden: Set<UInt8> =
            switch protocolName {
            case "SDS011": [0xAA]
            case "PMS5003": [0x42]
            case "SHDLC": [0x7E]
            default: [UInt8(ascii: "$")]
            }
        var expected: [[UInt8]] = []
        var found: [[UInt8]] = []
        var stream: [UInt8] = []
        for index in 0..<20_000 {
            if index % 25 == 0 { await Task.yield() }
            // Noise that cannot start a frame, then a valid frame.
            for _ in 0..<random.below(12) {
                var byte = random.byte()
                while forbidden.contains(byte) { byte = random.byte() }
                stream.append(byte)
            }
            let frame: [UInt8] =
                switch protocolName {
                case "SDS011":
                    SDS011Frame.measurement(
                        SDS011Measurement(pm2_5Tenths: UInt16(truncatingIfNeeded: random.next()), pm10Tenths: 7, deviceID: 0xA160)
                    ).bytes
                case "PMS5003":
                    PMS5003Frame.measurement(PMS5003Measurement(words: (0..<13).map { _ in UInt16(truncatingIfNeeded: random.next()) })).bytes
                case "SHDLC":
                    SHDLCResponse(command: 3, data: random.bytes(random.below(40))).frame
                default:
                    Array(
                        NMEASentence(
                            talker: "GP", type: "GGA",
                            fields: [String(random.below(1_000_000)), "", "", "", "", "0", "00", "99.99", "", "", "", "", "", ""]
                        ).line.utf8)
                }
            expected.append(frame)
            stream += frame
            // Hand over what has accumulated in a random split.
            if random.chance(3) {
                var offset = 0
                while offset < stream.count {
                    let end = min(stream.count, offset + 1 + random.below(40))
                    let piece = Array(stream[offset..<end])
                    switch protocolName {
                    case "SDS011":
                        sds.append(piece)
                        while let frame = sds.next() { found.append(frame.bytes) }
                    case "PMS5003":
                        pms.append(piece)
                        while let frame = pms.next() { found.append(frame.bytes) }
                    case "SHDLC":
                        shdlc.append(piece)
                        while let frame = shdlc.next() { found.append(frame.frame) }
                    default:
                        nmea.append(piece)
                        while let sentence = nmea.next() { found.append(Array(sentence.line.utf8)) }
                    }
                    offset = end
                }
                stream.removeAll(keepingCapacity: true)
            }
        }
        // Whatever is still unfed holds the last frames.
        let delivered = found.count
        #expect(delivered >= expected.count - 20)
        #expect(Array(expected.prefix(delivered)) == found)
    }

    private static func kind(_ error: NMEAError) -> String {
        switch error {
        case .missingStart: "missingStart"
        case .tooLong: "tooLong"
        case .interrupted: "interrupted"
        case .invalidCharacter: "invalidCharacter"
        case .missingChecksum: "missingChecksum"
        case .invalidChecksumDigits: "invalidChecksumDigits"
        case .checksumMismatch: "checksumMismatch"
        case .invalidAddress: "invalidAddress"
        case .wrongSentenceType: "wrongSentenceType"
        case .missingFields: "missingFields"
        case .invalidField: "invalidField"
        }
    }

    private static func check(_ result: SerialFuzzResult, expectedKinds: [String]) {
        #expect(result.problems(expectedKinds: expectedKinds) == [])
    }
}
