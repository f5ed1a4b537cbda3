import KiezboxCore
import SensorDrivers
import Testing

// Sentences from sensors.md §13.
private enum Vector {
    static let gga = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"
    static let rmc = "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A"
    static let ggaSouth = "$GPGGA,184353.07,1929.045,S,02410.506,E,1,04,2.6,100.00,M,-33.9,M,,0000*6D"
    static let gnrmc = "$GNRMC,001031.00,A,4404.13993,N,12118.86023,W,0.146,,100117,,,A*7B"
    static let rmcNoFix = "$GPRMC,,V,,,,,,,,,,N*53"
    static let ggaNoFix = "$GPGGA,,,,,,0,00,99.99,,,,,,*48"
    static let ggaBadChecksum = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*48"
    static let rmcBadChecksum = "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6B"
}

private func value(_ quantity: Quantity, in values: [MeasuredValue]) -> MeasuredValue? {
    values.first { $0.quantity == quantity }
}

@Suite("NMEA 0183 sentences")
struct NMEASentenceTests {
    @Test(
        "checksums are the XOR between $ and *",
        arguments: [
            (Vector.gga, 0x47), (Vector.rmc, 0x6A), (Vector.ggaSouth, 0x6D), (Vector.gnrmc, 0x7B), (Vector.rmcNoFix, 0x53), (Vector.ggaNoFix, 0x48),
        ] as [(String, UInt8)]
    )
    func checksums(line: String, expected: UInt8) throws {
        let body = line.utf8.dropFirst().prefix { $0 != UInt8(ascii: "*") }
        #expect(NMEASentence.checksum(body) == expected)
        let sentence = try NMEASentence.parse(line)
        #expect(sentence.line == line + "\r\n")
    }

    @Test("GGA, classic example: 48.1173 N, 11.516667 E, quality 1, 8 satellites, 545.4 m")
    func classicGGA() throws {
        let fix = try NMEAGGA(NMEASentence.parse(Vector.gga + "\r\n"))
        let position = try #require(fix.position)
        #expect(abs(position.latitude - 48.1173) < 1e-9)
        #expect(abs(position.longitude - 11.516_666_666_7) < 1e-9)
        #expect(position.altitude == 545.4)
        #expect(fix.fixQuality == 1)
        #expect(fix.satellites == 8)
        #expect(fix.horizontalDilution == 0.9)
        #expect(fix.geoidSeparation == 46.9)
        #expect(fix.time == NMEATime(hour: 12, minute: 35, second: 19))
        #expect(fix.hasFix)
    }

    @Test("RMC, classic example: valid, 22.4 kn, 84.4°, 1994-03-23 12:35:19, variation 3.1° W")
    func classicRMC() throws {
        let rmc = try NMEARMC(NMEASentence.parse(Vector.rmc))
        #expect(rmc.isValid)
        #expect(rmc.speedKnots == 22.4)
        #expect(rmc.course == 84.4)
        #expect(rmc.date == NMEADate(year: 1994, month: 3, day: 23))
        #expect(rmc.time == NMEATime(hour: 12, minute: 35, second: 19))
        #expect(rmc.magneticVariation == -3.1)
        #expect(abs((rmc.position?.latitude ?? 0) - 48.1173) < 1e-9)
    }

    @Test("GGA south of the equator (pynmea2): −19.4840833333, 24.1751, 100 m, geoid −33.9 m")
    func southernGGA() throws {
        let fix = try NMEAGGA(NMEASentence.parse(Vector.ggaSouth))
        #expect(abs((fix.position?.latitude ?? 0) - -19.484_083_333_3) < 1e-9)
        #expect(abs((fix.position?.longitude ?? 0) - 24.1751) < 1e-9)
        #expect(fix.altitude == 100)
        #expect(fix.geoidSeparation == -33.9)
        #expect(fix.time == NMEATime(hour: 18, minute: 43, second: 53.07))
    }

    @Test("GNRMC west of Greenwich: 44.0689988, −121.3143372, no course, mode A")
    func westernRMC() throws {
        let sentence = try NMEASentence.parse(Vector.gnrmc)
        #expect(sentence.talker == "GN")
        let rmc = try NMEARMC(sentence)
        #expect(abs((rmc.position?.latitude ?? 0) - 44.068_998_8) < 1e-7)
        #expect(abs((rmc.position?.longitude ?? 0) - -121.314_337_2) < 1e-7)
        #expect(rmc.course == nil)
        #expect(rmc.mode == "A")
        #expect(rmc.date == NMEADate(year: 2017, month: 1, day: 10))
    }

    @Test("no-fix sentences parse to status V and quality 0, without a position")
    func noFix() throws {
        let rmc = try NMEARMC(NMEASentence.parse(Vector.rmcNoFix))
        #expect(!rmc.isValid)
        #expect(rmc.position == nil)
        #expect(rmc.mode == "N")
        let gga = try NMEAGGA(NMEASentence.parse(Vector.ggaNoFix))
        #expect(gga.fixQuality == 0)
        #expect(!gga.hasFix)
        #expect(gga.position == nil)
        #expect(gga.horizontalDilution == 99.99)
    }

    @Test(
        "every rejection is a typed error",
        arguments: [
            ("GPGGA,123519*47", NMEAError.missingStart),
            ("$GPGGA,123519,4807.038,N", .missingChecksum),
            ("$GPGGA,1*4", .invalidChecksumDigits),
            ("$GPGGA,1*4G", .invalidChecksumDigits),
            ("$GPGGA,1*47 ", .invalidChecksumDigits),
            ("$GPGGA,12\u{01}3*00", .invalidCharacter(0x01)),
            (Vector.ggaBadChecksum, .checksumMismatch(computed: 0x47, received: 0x48)),
            ("$" + String(repeating: "A", count: 130) + "*00", .tooLong(134)),
        ]
    )
    func sentenceRejections(line: String, expected: NMEAError) {
        #expect(throws: expected) { try NMEASentence.parse(line) }
    }

    @Test(
        "invalid fields are typed errors",
        arguments: [
            (["123519", "4860.000", "N", "01131.000", "E", "1", "08", "0.9", "545.4", "M", "46.9", "M", "", ""], "latitude"),
            (["123519", "4807.038", "X", "01131.000", "E", "1", "08", "0.9", "545.4", "M", "46.9", "M", "", ""], "latitude"),
            (["123519", "4807.038", "N", "18131.000", "E", "1", "08", "0.9", "545.4", "M", "46.9", "M", "", ""], "longitude"),
            (["123519", "4807.038", "N", "01131.000", "E", "9", "08", "0.9", "545.4", "M", "46.9", "M", "", ""], "fix quality"),
            (["123519", "4807.038", "N", "01131.000", "E", "1", "08", "0.9", "5e2", "M", "46.9", "M", "", ""], "altitude"),
            (["126019", "4807.038", "N", "01131.000", "E", "1", "08", "0.9", "545.4", "M", "46.9", "M", "", ""], "time"),
            (["123519", "", "", "", "", "1", "08", "0.9", "545.4", "M", "46.9", "M", "", ""], "latitude"),
        ]
    )
    func fieldRejections(fields: [String], name: String) throws {
        let sentence = try NMEASentence.parse(NMEASentence(talker: "GP", type: "GGA", fields: fields).line)
        #expect(throws: NMEAError.invalidField(type: "GGA", name: name)) { try NMEAGGA(sentence) }
    }

    @Test("asking for the wrong type, or too few fields, is a typed error")
    func structuralRejections() throws {
        #expect(throws: NMEAError.wrongSentenceType(expected: "GGA", found: "RMC")) { try NMEAGGA(NMEASentence.parse(Vector.rmc)) }
        let short = try NMEASentence.parse(NMEASentence(talker: "GP", type: "RMC", fields: ["1", "A"]).line)
        #expect(throws: NMEAError.missingFields(type: "RMC", count: 2)) { try NMEARMC(short) }
        #expect(throws: NMEAError.invalidAddress) { try NMEASentence.parse(NMEASentence(talker: "gp", type: "GGA", fields: []).line) }
    }

    @Test("the stream decoder skips noise, joins split lines, drops cut and corrupt sentences")
    func streamDecoder() {
        var decoder = NMEAStreamDecoder()
        let corrupt = Vector.rmcBadChecksum + "\r\n"
        let cut = String(Vector.gga.prefix(30))
        let stream = Array(
            ("\u{00}\u{ff}noise\r\n" + Vector.gga + "\r\n" + corrupt + cut + Vector.rmc + "\r\n$GP" + String(repeating: "X", count: 200) + "\r\n"
                + Vector.ggaNoFix + "\r\n").utf8)
        var sentences: [NMEASentence] = []
        var offset = 0
        while offset < stream.count {
            let end = min(offset + 13, stream.count)
            decoder.append(Array(stream[offset..<end]))
            offset = end
            while let sentence = decoder.next() { sentences.append(sentence) }
        }
        #expect(sentences.map(\.line) == [Vector.gga, Vector.rmc, Vector.ggaNoFix].map { $0 + "\r\n" })
        #expect(decoder.statistics.checksumErrors == 1)
        #expect(decoder.statistics.malformedFrames == 2)  // the cut sentence and the overlong one
    }
}

private struct Rig {
    let receiver: SimulatedNMEAGPS
    let port: SimulatedSerialPort
    let driver: NMEAGPS

    init(receiver: SimulatedNMEAGPS = SimulatedNMEAGPS(), configuration: NMEAGPS.Configuration = NMEAGPS.Configuration()) {
        self.receiver = receiver
        self.port = SimulatedSerialPort(name: "sim:/dev/serial0", device: receiver)
        self.driver = NMEAGPS(port: self.port, configuration: configuration)
    }
}

@Suite("NMEA GPS driver on a simulated line")
struct NMEAGPSDriverTests {
    @Test("a fix gives latitude, longitude and altitude")
    func fix() async throws {
        let rig = Rig()
        rig.receiver.setPosition(latitude: 52.500_812, longitude: -13.436_305, altitude: 38.2)
        let values = try await rig.driver.measure()
        #expect(abs((value(.latitude, in: values)?.value ?? 0) - 52.500_812) < 1e-6)
        #expect(abs((value(.longitude, in: values)?.value ?? 0) - -13.436_305) < 1e-6)
        #expect(value(.altitude, in: values) == MeasuredValue(.altitude, 38.2))
        #expect(values.allSatisfy { $0.quality == .good })
        #expect(rig.driver.lastFix?.satellites == 8)
    }

    @Test("southern and western hemispheres and a multi-constellation talker")
    func hemispheres() async throws {
        let rig = Rig()
        rig.receiver.setTalker("GN")
        rig.receiver.setPosition(latitude: -33.856_784, longitude: -70.651_1, altitude: -12.5)
        let values = try await rig.driver.measure()
        #expect(abs((value(.latitude, in: values)?.value ?? 0) - -33.856_784) < 1e-6)
        #expect(abs((value(.longitude, in: values)?.value ?? 0) - -70.651_1) < 1e-6)
        #expect(value(.altitude, in: values)?.value == -12.5)
    }

    @Test("no fix: a typed error with the satellites in view, never a position", arguments: [SimulatedNMEAGPS.FixState.noFix, .coldStart])
    func noFix(state: SimulatedNMEAGPS.FixState) async throws {
        let rig = Rig()
        rig.receiver.setFixState(state)
        rig.receiver.setSatellites(3, horizontalDilution: 99)
        let satellites = state == .coldStart ? 0 : 3
        await #expect(throws: NMEAGPSError(.noFix(satellites: satellites), port: "sim:/dev/serial0")) { try await rig.driver.measure() }
    }

    @Test("sentences queued before the measurement are stale and not used")
    func staleDiscarded() async throws {
        let rig = Rig()
        rig.port.advance(by: .seconds(3))  // three epochs with a fix queue up…
        rig.receiver.setFixState(.noFix)  // …then the fix is lost
        await #expect(throws: NMEAGPSError.self) { try await rig.driver.measure() }
    }

    @Test("an estimated fix is degraded; an altitude beyond 9000 m implausible")
    func qualities() async throws {
        let rig = Rig()
        rig.receiver.setFixState(.fix(quality: 6))
        #expect(try await rig.driver.measure().allSatisfy { $0.quality == .degraded })
        rig.receiver.setFixState(.fix(quality: 1))
        rig.receiver.setSatellites(4, horizontalDilution: 35)
        #expect(try await rig.driver.measure().allSatisfy { $0.quality == .degraded })
        rig.receiver.setSatellites(9, horizontalDilution: 0.8)
        rig.receiver.setPosition(latitude: 1, longitude: 1, altitude: 12_000)
        let values = try await rig.driver.measure()
        #expect(value(.altitude, in: values)?.quality == .implausible)
        #expect(value(.latitude, in: values)?.quality == .good)
    }

    @Test("corrupt and cut sentences are skipped and counted; noise and 7-byte reads are harmless")
    func faults() async throws {
        let rig = Rig()
        rig.receiver.corruptNextSentences(3)  // RMC, VTG and GGA of the first epoch…
        rig.receiver.cutNextSentences(1)  // …and the RMC is cut short as well, so it counts as malformed
        rig.receiver.setNoiseBetweenSentences(Array("\u{00}*$\r\n".utf8))
        rig.port.setMaximumBytesPerRead(7)
        #expect(try await rig.driver.measure().count == 3)
        #expect(rig.driver.checksumErrorCount == 2)
    }

    @Test("a silent receiver, or one whose every sentence is corrupt, gives a typed error")
    func silentOrCorrupt() async throws {
        let rig = Rig()
        rig.receiver.setSilent(true)
        await #expect(throws: NMEAGPSError(.silent, port: "sim:/dev/serial0")) { try await rig.driver.measure() }
        rig.receiver.setSilent(false)
        rig.receiver.corruptNextSentences(1000)
        // Only corrupt sentences: the driver gives up after 8 KiB of them, a few seconds of a real receiver.
        let error = await #expect(throws: NMEAGPSError.self) { try await rig.driver.measure() }
        guard case .corruptSentences(let count) = error?.code else {
            Issue.record("expected corruptSentences, got \(String(describing: error))")
            return
        }
        #expect(count > 100)
        #expect(rig.port.now < .seconds(60))
    }

    @Test("a receiver sending only RMC gives latitude and longitude without altitude")
    func rmcOnly() async throws {
        let lines = [Vector.gnrmc, "$GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1*39", Vector.gnrmc]
        let port = SimulatedSerialPort(name: "sim:/dev/serial0", device: LineFeeder(lines: lines))
        let driver = NMEAGPS(port: port, configuration: .init(maximumSentences: 3))
        let values = try await driver.measure()
        #expect(values.map(\.quantity) == [.latitude, .longitude])
        #expect(abs((value(.latitude, in: values)?.value ?? 0) - 44.068_998_8) < 1e-7)
    }

    @Test("commands to the receiver reach it")
    func commands() async throws {
        let rig = Rig()
        try await rig.port.write(Array("$PMTK220,1000*1F\r\n".utf8))
        #expect(rig.receiver.receivedBytes == Array("$PMTK220,1000*1F\r\n".utf8))
    }
}

/// A device that sends fixed lines once, a second after the start.
private final class LineFeeder: SimulatedSerialDevice {
    private let lines: [String]
    private let sent = Mutex(false)
    init(lines: [String]) { self.lines = lines }
    func received(_ bytes: [UInt8], at time: Duration) -> [UInt8] { [] }
    func transmissions(upTo time: Duration) -> [UInt8] {
        guard time >= .seconds(1), !self.sent.withLock({ $0 }) else { return [] }
        self.sent.withLock { $0 = true }
        return Array(self.lines.map { $0 + "\r\n" }.joined().utf8)
    }
    func nextTransmissionTime() -> Duration? { self.sent.withLock { $0 } ? nil : .seconds(1) }
}

import Synchronization
