public import KiezboxCore

/// One NMEA 0183 sentence, checksum verified (sensors.md §13).
///
/// `$` + address + `,`-separated fields + `*` + two hex digits + CR LF, where the checksum is the XOR of every
/// character strictly between `$` and `*`. Talkers vary (`GP`, `GN`, `GL`, `GA`, `BD`), so sentences are matched on
/// their ``type`` ("GGA", "RMC"); proprietary sentences (`$PUBX,…`) have talker "P".
///
/// ```swift
/// let sentence = try NMEASentence.parse("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47")
/// let fix = try NMEAGGA(sentence)   // 48.1173 N, 11.516667 E, 545.4 m
/// ```
public struct NMEASentence: Sendable, Hashable {
    /// "GP", "GN", … or "P" for a proprietary sentence.
    public var talker: String
    /// "GGA", "RMC", …; for a proprietary sentence the manufacturer code and the rest ("UBX").
    public var type: String
    /// The fields after the address, possibly empty strings.
    public var fields: [String]

    /// The longest line accepted, CR LF included. The standard allows 82; u-blox `PUBX` sentences run longer.
    public static let maximumLength = 128

    public init(talker: String, type: String, fields: [String]) {
        self.talker = talker
        self.type = type
        self.fields = fields
    }

    /// Parses a line as received (with or without the trailing CR LF).
    public static func parse(_ line: String) throws(NMEAError) -> NMEASentence {
        try self.parse(Array(line.utf8)[...])
    }

    /// Parses a line as received (with or without the trailing CR LF).
    public static func parse(_ line: [UInt8]) throws(NMEAError) -> NMEASentence {
        try self.parse(line[...])
    }

    /// Parses a line as received (with or without the trailing CR LF).
    public static func parse(_ line: ArraySlice<UInt8>) throws(NMEAError) -> NMEASentence {
        var end = line.count
        if end > 0, line.byte(atOffset: end - 1) == NMEAField.ASCII.lineFeed { end -= 1 }
        if end > 0, line.byte(atOffset: end - 1) == NMEAField.ASCII.carriageReturn { end -= 1 }
        guard end > 0, line.byte(atOffset: 0) == NMEAField.ASCII.dollar else { throw .missingStart }
        guard line.count <= self.maximumLength else { throw .tooLong(line.count) }

        // Find the '*' while checking every character and accumulating the XOR, in one pass.
        var checksum: UInt8 = 0
        var offset = 1
        while offset < end {
            let byte = line.byte(atOffset: offset)
            if byte == NMEAField.ASCII.asterisk { break }
            guard byte >= 0x20, byte <= 0x7E, byte != NMEAField.ASCII.dollar else { throw .invalidCharacter(byte) }
            checksum ^= byte
            offset += 1
        }
        guard offset < end else { throw .missingChecksum }
        let star = offset
        guard end - star == 3, let high = hexValue(line.byte(atOffset: star + 1)), let low = hexValue(line.byte(atOffset: star + 2)) else {
            throw .invalidChecksumDigits
        }
        let received = high << 4 | low
        guard received == checksum else { throw .checksumMismatch(computed: checksum, received: received) }

        var fields: [String] = []
        var fieldStart = 1
        for index in 1...star where index == star || line.byte(atOffset: index) == NMEAField.ASCII.comma {
            fields.append(String(decoding: line[(line.startIndex + fieldStart)..<(line.startIndex + index)], as: UTF8.self))
            fieldStart = index + 1
        }
        let address = fields.removeFirst()
        let utf8 = Array(address.utf8)
        guard utf8.allSatisfy({ NMEAField.isUppercaseLetter($0) || NMEAField.isDigit($0) }), let first = utf8.first else { throw .invalidAddress }
        if first == UInt8(ascii: "P"), utf8.count >= 2 {
            return NMEASentence(talker: "P", type: String(address.dropFirst()), fields: fields)
        }
        guard utf8.count == 5 else { throw .invalidAddress }
        return NMEASentence(talker: String(address.prefix(2)), type: String(address.dropFirst(2)), fields: fields)
    }

    /// The XOR of the bytes (those between `$` and `*`).
    public static func checksum(_ body: some Sequence<UInt8>) -> UInt8 {
        body.reduce(0, ^)
    }

    /// The sentence as sent: `$`, address, fields, `*`, checksum in upper-case hex, CR LF.
    public var line: String {
        let body = ([self.talker + self.type] + self.fields).joined(separator: ",")
        let checksum = Self.checksum(body.utf8)
        let hex = String(checksum, radix: 16, uppercase: true)
        return "$" + body + "*" + (hex.count < 2 ? "0" + hex : hex) + "\r\n"
    }

    /// The field at `index`, or "" when the sentence is shorter.
    func field(_ index: Int) -> String { index < self.fields.count ? self.fields[index] : "" }
}

/// A GGA sentence: the fix, with altitude.
///
/// Fields: time, lat, N/S, lon, E/W, fix quality (0 = invalid), satellites, HDOP, altitude, M, geoid separation, M,
/// age of differential data, station.
public struct NMEAGGA: Sendable, Hashable {
    public var time: NMEATime?
    /// Latitude, longitude and altitude above mean sea level; nil when the receiver left the position empty.
    public var position: GeoPosition?
    /// 0 invalid, 1 GPS, 2 DGPS, 3 PPS, 4 RTK fixed, 5 RTK float, 6 estimated (dead reckoning), 7 manual, 8 simulation.
    public var fixQuality: Int
    public var satellites: Int?
    public var horizontalDilution: Double?
    /// Metres above mean sea level.
    public var altitude: Double?
    /// Geoid height above the WGS 84 ellipsoid, in metres.
    public var geoidSeparation: Double?

    /// Whether the receiver reports a fix and a position.
    public var hasFix: Bool { self.fixQuality > 0 && self.position != nil }

    /// Reads a GGA sentence from any talker.
    public init(_ sentence: NMEASentence) throws(NMEAError) {
        guard sentence.type == "GGA" else { throw .wrongSentenceType(expected: "GGA", found: sentence.type) }
        guard sentence.fields.count >= 10 else { throw .missingFields(type: "GGA", count: sentence.fields.count) }
        func invalid(_ name: String) -> NMEAError { .invalidField(type: "GGA", name: name) }

        self.time = try NMEATime(field: sentence.field(0), type: "GGA")
        let quality = sentence.field(5)
        if quality.isEmpty {
            self.fixQuality = 0
        } else {
            guard let value = NMEAField.unsigned(quality), value <= 8 else { throw invalid("fix quality") }
            self.fixQuality = value
        }
        self.satellites = try optional(sentence.field(6), invalid("satellites"), NMEAField.unsigned)
        self.horizontalDilution = try optional(sentence.field(7), invalid("HDOP")) { NMEAField.decimal($0, signed: false) }
        self.altitude = try optional(sentence.field(8), invalid("altitude")) { NMEAField.decimal($0, signed: true) }
        guard ["", "M"].contains(sentence.field(9)) else { throw invalid("altitude unit") }
        self.geoidSeparation = try optional(sentence.field(10), invalid("geoid separation")) { NMEAField.decimal($0, signed: true) }

        let position = try parsePosition(sentence, latitudeAt: 1, type: "GGA")
        self.position = position.map { GeoPosition(latitude: $0.latitude, longitude: $0.longitude, altitude: self.altitude) }
        // A fix without a position is a contradiction; without a fix the receiver may repeat a stale position.
        if self.fixQuality > 0, self.position == nil { throw invalid("latitude") }
    }
}

/// An RMC sentence: the recommended minimum (position, speed, course, date), without altitude.
///
/// Fields: time, status A/V, lat, N/S, lon, E/W, speed (kn), course, date ddmmyy, magnetic variation, E/W, and from
/// NMEA 2.3 a mode indicator (A autonomous, D differential, E estimated, N not valid, …).
public struct NMEARMC: Sendable, Hashable {
    public var time: NMEATime?
    /// Status `A` (and a mode other than `N`): the position is a fix. `V` means void.
    public var isValid: Bool
    /// Latitude and longitude (no altitude in RMC).
    public var position: GeoPosition?
    public var speedKnots: Double?
    /// Course over ground in degrees true.
    public var course: Double?
    public var date: NMEADate?
    /// Degrees, east positive.
    public var magneticVariation: Double?
    /// The NMEA 2.3 mode indicator, if sent.
    public var mode: String?

    /// Reads an RMC sentence from any talker.
    public init(_ sentence: NMEASentence) throws(NMEAError) {
        guard sentence.type == "RMC" else { throw .wrongSentenceType(expected: "RMC", found: sentence.type) }
        guard sentence.fields.count >= 11 else { throw .missingFields(type: "RMC", count: sentence.fields.count) }
        func invalid(_ name: String) -> NMEAError { .invalidField(type: "RMC", name: name) }

        self.time = try NMEATime(field: sentence.field(0), type: "RMC")
        let status = sentence.field(1)
        guard status == "A" || status == "V" else { throw invalid("status") }
        let mode = sentence.fields.count > 11 ? sentence.field(11) : ""
        guard mode.isEmpty || (mode.utf8.count == 1 && mode.utf8.allSatisfy(NMEAField.isUppercaseLetter)) else { throw invalid("mode") }
        self.mode = mode.isEmpty ? nil : mode
        self.isValid = status == "A" && mode != "N"
        self.position = try parsePosition(sentence, latitudeAt: 2, type: "RMC")
        if status == "A", self.position == nil { throw invalid("latitude") }
        self.speedKnots = try optional(sentence.field(6), invalid("speed")) { NMEAField.decimal($0, signed: false) }
        self.course = try optional(sentence.field(7), invalid("course")) { NMEAField.decimal($0, signed: false) }
        self.date = try NMEADate(field: sentence.field(8))
        let variation = try optional(sentence.field(9), invalid("magnetic variation")) { NMEAField.decimal($0, signed: false) }
        switch (variation, sentence.field(10)) {
        case (nil, _): self.magneticVariation = nil
        case (let value?, "E"): self.magneticVariation = value
        case (let value?, "W"): self.magneticVariation = -value
        default: throw invalid("magnetic variation direction")
        }
    }
}

/// A UTC time of day as NMEA sends it (`hhmmss.ss`).
public struct NMEATime: Sendable, Hashable {
    public var hour: Int
    public var minute: Int
    public var second: Double

    public init(hour: Int, minute: Int, second: Double) {
        self.hour = hour
        self.minute = minute
        self.second = second
    }

    /// Nil for an empty field.
    init?(field: String, type: String) throws(NMEAError) {
        if field.isEmpty { return nil }
        let digits = Array(field.utf8)
        guard digits.count >= 6, digits[0..<6].allSatisfy(NMEAField.isDigit),
            let seconds = NMEAField.decimal(String(decoding: digits[4...], as: UTF8.self), signed: false)
        else { throw .invalidField(type: type, name: "time") }
        self.hour = Int(digits[0] - NMEAField.ASCII.zero) * 10 + Int(digits[1] - NMEAField.ASCII.zero)
        self.minute = Int(digits[2] - NMEAField.ASCII.zero) * 10 + Int(digits[3] - NMEAField.ASCII.zero)
        self.second = seconds
        guard self.hour < 24, self.minute < 60, self.second < 61 else { throw .invalidField(type: type, name: "time") }
    }
}

/// A date as RMC sends it (`ddmmyy`); two-digit years 80–99 are 1980–1999, 00–79 are 2000–2079.
public struct NMEADate: Sendable, Hashable {
    public var year: Int
    public var month: Int
    public var day: Int

    public init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    /// Nil for an empty field.
    init?(field: String) throws(NMEAError) {
        if field.isEmpty { return nil }
        let digits = Array(field.utf8)
        guard digits.count == 6, digits.allSatisfy(NMEAField.isDigit) else { throw .invalidField(type: "RMC", name: "date") }
        func pair(_ offset: Int) -> Int { Int(digits[offset] - NMEAField.ASCII.zero) * 10 + Int(digits[offset + 1] - NMEAField.ASCII.zero) }
        let twoDigitYear = pair(4)
        self.day = pair(0)
        self.month = pair(2)
        self.year = twoDigitYear < 80 ? 2000 + twoDigitYear : 1900 + twoDigitYear
        guard (1...31).contains(self.day), (1...12).contains(self.month) else { throw .invalidField(type: "RMC", name: "date") }
    }
}

/// Why a line is not a usable NMEA sentence.
public enum NMEAError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The line does not start with `$`.
    case missingStart
    /// Longer than ``NMEASentence/maximumLength``.
    case tooLong(Int)
    /// A new `$` before the end of the line: the rest of the previous sentence was lost.
    case interrupted
    /// A control character or byte above 0x7E between `$` and `*`.
    case invalidCharacter(UInt8)
    /// No `*` before the end of the line.
    case missingChecksum
    /// Not exactly two hex digits after `*` (or bytes after them other than CR LF).
    case invalidChecksumDigits
    case checksumMismatch(computed: UInt8, received: UInt8)
    /// The address is not a two-letter talker and a three-letter type (or `P` + manufacturer).
    case invalidAddress
    /// Asked to read a GGA from an RMC, for instance.
    case wrongSentenceType(expected: String, found: String)
    /// Fewer fields than the sentence type has.
    case missingFields(type: String, count: Int)
    /// A field that does not hold what the sentence type puts there.
    case invalidField(type: String, name: String)

    public var description: String {
        switch self {
        case .missingStart: "NMEA sentence does not start with $"
        case .tooLong(let count): "NMEA sentence of \(count) bytes is too long"
        case .interrupted: "NMEA sentence cut off by the next $"
        case .invalidCharacter(let byte): "NMEA sentence contains byte \(SerialWire.hex(byte))"
        case .missingChecksum: "NMEA sentence without *checksum"
        case .invalidChecksumDigits: "NMEA checksum is not two hex digits at the end of the line"
        case .checksumMismatch(let computed, let received):
            "NMEA checksum mismatch: sentence says \(SerialWire.hex(received)), characters give \(SerialWire.hex(computed))"
        case .invalidAddress: "NMEA sentence with an invalid address field"
        case .wrongSentenceType(let expected, let found): "expected an NMEA \(expected) sentence, got \(found)"
        case .missingFields(let type, let count): "NMEA \(type) sentence with only \(count) fields"
        case .invalidField(let type, let name): "NMEA \(type) sentence with an invalid \(name)"
        }
    }
}

/// Finds NMEA sentences in a byte stream: from `$` to the line feed.
public enum NMEASentenceFormat: SerialFrameFormat {
    public static var maximumFrameLength: Int { NMEASentence.maximumLength }
    public static func canStartFrame(_ byte: UInt8) -> Bool { byte == NMEAField.ASCII.dollar }

    public static func scan(_ bytes: ArraySlice<UInt8>) -> SerialFrameScan<NMEASentence, NMEAError> {
        let count = min(bytes.count, NMEASentence.maximumLength)
        var offset = 1
        while offset < count {
            let byte = bytes.byte(atOffset: offset)
            if byte == NMEAField.ASCII.lineFeed {
                do {
                    return .frame(try NMEASentence.parse(bytes.prefix(offset + 1)), length: offset + 1)
                } catch {
                    return .rejected(error, skip: offset + 1)
                }
            }
            // Keep the new '$': it starts the sentence that follows the lost bytes.
            if byte == NMEAField.ASCII.dollar { return .rejected(.interrupted, skip: offset) }
            offset += 1
        }
        return .incomplete
    }

    public static func isChecksumFailure(_ failure: NMEAError) -> Bool {
        if case .checksumMismatch = failure { return true }
        return false
    }

    public static func frameTooLong(_ length: Int) -> NMEAError { .tooLong(length) }
}

/// Decodes NMEA sentences from a GPS receiver's byte stream.
public typealias NMEAStreamDecoder = SerialStreamDecoder<NMEASentenceFormat>

// MARK: - Field parsing (pure and total)

/// The field syntax NMEA sentences use, parsed byte by byte: pure, total, no Foundation.
enum NMEAField {
    enum ASCII {
        static let dollar = UInt8(ascii: "$")
        static let asterisk = UInt8(ascii: "*")
        static let comma = UInt8(ascii: ",")
        static let period = UInt8(ascii: ".")
        static let minus = UInt8(ascii: "-")
        static let plus = UInt8(ascii: "+")
        static let zero = UInt8(ascii: "0")
        static let carriageReturn: UInt8 = 0x0D
        static let lineFeed: UInt8 = 0x0A
    }

    @inline(__always) static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
    @inline(__always) static func isUppercaseLetter(_ byte: UInt8) -> Bool { byte >= 0x41 && byte <= 0x5A }

    /// A non-negative integer of at most 9 digits.
    static func unsigned(_ text: String) -> Int? {
        let digits = text.utf8
        guard !digits.isEmpty, digits.count <= 9 else { return nil }
        var value = 0
        for digit in digits {
            guard NMEAField.isDigit(digit) else { return nil }
            value = value * 10 + Int(digit - NMEAField.ASCII.zero)
        }
        return value
    }

    /// A decimal number `[-]digits[.digits]` with at most 18 digits; no exponent, no spaces.
    static func decimal(_ text: String, signed: Bool) -> Double? {
        var mantissa: UInt64 = 0
        var digitCount = 0
        var fractionDigits = 0
        var seenPeriod = false
        var negative = false
        var isFirst = true
        for byte in text.utf8 {
            defer { isFirst = false }
            if NMEAField.isDigit(byte) {
                digitCount += 1
                guard digitCount <= 18 else { return nil }
                mantissa = mantissa * 10 + UInt64(byte - NMEAField.ASCII.zero)
                if seenPeriod { fractionDigits += 1 }
            } else if byte == NMEAField.ASCII.period, !seenPeriod {
                seenPeriod = true
            } else if signed, isFirst, byte == NMEAField.ASCII.minus || byte == NMEAField.ASCII.plus {
                negative = byte == NMEAField.ASCII.minus
            } else {
                return nil
            }
        }
        guard digitCount > 0 else { return nil }
        let magnitude = Double(mantissa) / powersOfTen[fractionDigits]
        return negative ? -magnitude : magnitude
    }

    /// `ddmm.mmmm` / `dddmm.mmmm` and a hemisphere letter, to signed decimal degrees.
    static func coordinate(_ text: String, hemisphere: String, isLatitude: Bool) -> Double? {
        let bytes = Array(text.utf8)
        let integerDigits = bytes.firstIndex(of: NMEAField.ASCII.period) ?? bytes.count
        let maximumDegreeDigits = isLatitude ? 2 : 3
        // At least one degree digit and exactly two whole-minute digits.
        guard integerDigits >= 3, integerDigits <= maximumDegreeDigits + 2 else { return nil }
        let degreeDigits = bytes[0..<(integerDigits - 2)]
        guard degreeDigits.allSatisfy(NMEAField.isDigit),
            let minutes = NMEAField.decimal(String(decoding: bytes[(integerDigits - 2)...], as: UTF8.self), signed: false),
            minutes < 60
        else { return nil }
        let degrees = degreeDigits.reduce(0) { $0 * 10 + Int($1 - NMEAField.ASCII.zero) }
        let magnitude = Double(degrees) + minutes / 60
        guard magnitude <= (isLatitude ? 90 : 180) else { return nil }
        switch (hemisphere, isLatitude) {
        case ("N", true), ("E", false): return magnitude
        case ("S", true), ("W", false): return -magnitude
        default: return nil
        }
    }
}

private func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case 0x30...0x39: byte - 0x30
    case 0x41...0x46: byte - 0x41 + 10
    case 0x61...0x66: byte - 0x61 + 10
    default: nil
    }
}

/// An empty field is nil; a non-empty one must parse.
private func optional<T>(_ field: String, _ error: NMEAError, _ parse: (String) -> T?) throws(NMEAError) -> T? {
    if field.isEmpty { return nil }
    guard let value = parse(field) else { throw error }
    return value
}

private let powersOfTen: [Double] = (0...18).map { exponent in (0..<exponent).reduce(1.0) { value, _ in value * 10 } }

/// The latitude/longitude pair starting at field `latitudeAt`: nil when all four fields are empty.
private func parsePosition(_ sentence: NMEASentence, latitudeAt index: Int, type: String) throws(NMEAError) -> GeoPosition? {
    let fields = (0..<4).map { sentence.field(index + $0) }
    if fields.allSatisfy(\.isEmpty) { return nil }
    guard let latitude = NMEAField.coordinate(fields[0], hemisphere: fields[1], isLatitude: true) else {
        throw .invalidField(type: type, name: "latitude")
    }
    guard let longitude = NMEAField.coordinate(fields[2], hemisphere: fields[3], isLatitude: false) else {
        throw .invalidField(type: type, name: "longitude")
    }
    return GeoPosition(latitude: latitude, longitude: longitude)
}
