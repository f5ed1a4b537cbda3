import KiezboxCore
import ReadingStore

/// How the LoRaWAN uplink encodes what it sends (configuration `[lorawan] payload_format`).
public enum LoRaWANPayloadFormat: String, Sendable, Hashable, CaseIterable {
    /// Kiezbox's versioned fixed-point format: 16 bytes for a full report; needs `ttn/kiezbox-decoder.js` in TTN.
    case compact
    /// CayenneLPP with only the types TTN's built-in formatter knows: 34 bytes for a full report.
    case cayenneLPP = "cayenne-lpp"
}

/// The box's state that travels with every report and crisis summary (the compact format's first byte).
public struct BoxStatus: Sendable, Hashable {
    /// Normal or crisis; maintenance travels as normal (the format has one mode bit).
    public var mode: Mode
    public var mainsPresent: Bool
    public var onBattery: Bool
    /// Whether the bulletin has open help requests.
    public var helpRequestsOpen: Bool
    /// Some value was outside the format's range and was sent as the nearest limit. The encoder sets it when it
    /// clamps (or when it is already set); the decoder reports it.
    public var valueClamped: Bool

    public init(
        mode: Mode = .normal, mainsPresent: Bool = false, onBattery: Bool = false, helpRequestsOpen: Bool = false,
        valueClamped: Bool = false
    ) {
        self.mode = mode
        self.mainsPresent = mainsPresent
        self.onBattery = onBattery
        self.helpRequestsOpen = helpRequestsOpen
        self.valueClamped = valueClamped
    }

    /// Bits 4…0 of the compact header (the CayenneLPP status channel carries the same five bits).
    func flagBits(clamped: Bool) -> UInt8 {
        var bits: UInt8 = 0
        if self.mode == .crisis { bits |= 0x01 }
        if self.mainsPresent { bits |= 0x02 }
        if self.onBattery { bits |= 0x04 }
        if self.helpRequestsOpen { bits |= 0x08 }
        if clamped || self.valueClamped { bits |= 0x10 }
        return bits
    }

    init(flagBits: UInt8) {
        self.init(
            mode: flagBits & 0x01 != 0 ? .crisis : .normal, mainsPresent: flagBits & 0x02 != 0, onBattery: flagBits & 0x04 != 0,
            helpRequestsOpen: flagBits & 0x08 != 0, valueClamped: flagBits & 0x10 != 0)
    }
}

/// The latest value of each quantity the box measures, sent as one LoRaWAN uplink (FPort 10 in the compact
/// format). Layout: docs/lorawan.md.
public struct BoxReport: Sendable, Hashable {
    /// The quantities a report carries, in the order of the compact format's presence bits (bit 0 first).
    /// `voltage` is the battery's voltage, `batteryLevel` its state of charge.
    public static let carriedQuantities: [Quantity] = [
        .temperature, .relativeHumidity, .pressure, .pm2_5, .pm10, .co2, .voltage, .batteryLevel,
    ]
    /// The FPort of a compact report.
    public static let compactPort: UInt8 = 10
    /// The FPort of a CayenneLPP report.
    public static let cayenneLPPPort: UInt8 = 12

    /// Values in each quantity's unit (``Quantity/unit``). Quantities outside ``carriedQuantities`` and values
    /// that are not finite are left out of the payload.
    public var values: [Quantity: Double]
    public var status: BoxStatus

    public init(values: [Quantity: Double] = [:], status: BoxStatus = BoxStatus()) {
        self.values = values
        self.status = status
    }

    /// The fixed-point field of each carried quantity in the compact format, in presence-bit order.
    static let compactFields: [FixedPointField] = [
        FixedPointField(bytes: 2, signed: true, scale: 100),  // temperature, 0.01 °C, −327.68…327.67
        FixedPointField(bytes: 1, scale: 2, maximumRaw: 200),  // humidity, 0.5 %, 0…100
        FixedPointField(bytes: 2, scale: 50, offset: 300),  // pressure, 0.02 hPa, 300.00…1610.70
        FixedPointField(bytes: 2, scale: 10),  // PM2.5, 0.1 µg/m³, 0…6553.5
        FixedPointField(bytes: 2, scale: 10),  // PM10, 0.1 µg/m³, 0…6553.5
        FixedPointField(bytes: 2, scale: 1),  // CO₂, 1 ppm, 0…65535
        FixedPointField(bytes: 2, scale: 100),  // battery voltage, 0.01 V, 0…655.35
        FixedPointField(bytes: 1, scale: 1, maximumRaw: 100),  // battery state of charge, 1 %, 0…100
    ]

    /// The payload in `format`: the compact report for FPort ``compactPort``, or CayenneLPP for
    /// ``cayenneLPPPort``. Values outside a format's range are sent as the nearest limit, with the clamped flag.
    public func encode(_ format: LoRaWANPayloadFormat = .compact) -> [UInt8] {
        switch format {
        case .compact: self.encodeCompact()
        case .cayenneLPP: self.encodeCayenneLPP()
        }
    }

    private func encodeCompact() -> [UInt8] {
        var presence: UInt8 = 0
        var body: [UInt8] = []
        var clamped = false
        for (bit, (quantity, field)) in zip(Self.carriedQuantities, Self.compactFields).enumerated() {
            guard let value = self.values[quantity], value.isFinite else { continue }
            presence |= 1 << bit
            clamped = field.append(value, to: &body) || clamped
        }
        return [compactHeader(self.status, clamped: clamped), presence] + body
    }

    /// Decodes a compact report (FPort ``compactPort``). Anything that is not one (wrong version, wrong length,
    /// a value the encoder never writes) is a ``LoRaWANPayloadError``.
    public init(compactPayload bytes: [UInt8]) throws(LoRaWANPayloadError) {
        var reader = PayloadReader(bytes)
        self.status = try reader.header()
        let presence = try reader.byte()
        var values: [Quantity: Double] = [:]
        for (bit, (quantity, field)) in zip(Self.carriedQuantities, Self.compactFields).enumerated() where presence & (1 << bit) != 0 {
            values[quantity] = try reader.value(field, name: quantity.rawValue)
        }
        try reader.finish()
        self.values = values
    }
}

/// What a box in crisis mode sends first (FPort 11): mode, battery, open help requests by category, phones on
/// the emergency Wi-Fi. Layout: docs/lorawan.md.
public struct CrisisSummary: Sendable, Hashable {
    /// The FPort of a compact crisis summary.
    public static let compactPort: UInt8 = 11
    /// The FPort of a CayenneLPP crisis summary.
    public static let cayenneLPPPort: UInt8 = 13
    /// The categories counted, in payload order; fixed by format version 1 (a new category needs a new version).
    public static let categories: [BulletinCategory] = [.medical, .fire, .food, .water, .power, .other]

    public var status: BoxStatus
    /// Battery state of charge, %.
    public var batteryLevel: Double?
    /// Battery voltage, V.
    public var batteryVoltage: Double?
    /// Phones (Wi-Fi clients) connected to the emergency Wi-Fi.
    public var phonesConnected: Int?
    /// Open help requests per category; a missing category counts 0.
    public var openHelpRequests: [BulletinCategory: Int]

    public init(
        status: BoxStatus, batteryLevel: Double? = nil, batteryVoltage: Double? = nil, phonesConnected: Int? = nil,
        openHelpRequests: [BulletinCategory: Int] = [:]
    ) {
        self.status = status
        self.batteryLevel = batteryLevel
        self.batteryVoltage = batteryVoltage
        self.phonesConnected = phonesConnected
        self.openHelpRequests = openHelpRequests
    }

    static let batteryLevelField = FixedPointField(bytes: 1, scale: 1, maximumRaw: 100)
    static let batteryVoltageField = FixedPointField(bytes: 2, scale: 100)
    static let phonesField = FixedPointField(bytes: 2, scale: 1)
    static let countField = FixedPointField(bytes: 1, scale: 1)

    /// The optional fields in presence-bit order (bit 0 first).
    var optionalFields: [(value: Double?, field: FixedPointField, name: String)] {
        [
            (self.batteryLevel, Self.batteryLevelField, "battery_level"),
            (self.batteryVoltage, Self.batteryVoltageField, "battery_voltage"),
            (self.phonesConnected.map(Double.init), Self.phonesField, "phones_connected"),
        ]
    }

    /// The payload in `format`, for FPort ``compactPort`` or ``cayenneLPPPort``; counts above 255 are sent as 255
    /// with the clamped flag.
    public func encode(_ format: LoRaWANPayloadFormat = .compact) -> [UInt8] {
        guard format == .compact else { return self.encodeCayenneLPP() }
        var presence: UInt8 = 0
        var body: [UInt8] = []
        var clamped = false
        for (bit, optional) in self.optionalFields.enumerated() {
            guard let value = optional.value, value.isFinite else { continue }
            presence |= 1 << bit
            clamped = optional.field.append(value, to: &body) || clamped
        }
        for category in Self.categories {
            clamped = Self.countField.append(Double(self.openHelpRequests[category] ?? 0), to: &body) || clamped
        }
        return [compactHeader(self.status, clamped: clamped), presence] + body
    }

    /// Decodes a compact crisis summary (FPort ``compactPort``).
    public init(compactPayload bytes: [UInt8]) throws(LoRaWANPayloadError) {
        var reader = PayloadReader(bytes)
        try self.init(status: reader.header())
        let presence = try reader.byte()
        guard presence & 0xF8 == 0 else { throw .reservedBitsSet(offset: 1) }
        var decoded: [Double?] = []
        for (bit, optional) in self.optionalFields.enumerated() {
            let present = presence & (1 << bit) != 0
            try decoded.append(present ? reader.value(optional.field, name: optional.name) : nil)
        }
        (self.batteryLevel, self.batteryVoltage, self.phonesConnected) = (decoded[0], decoded[1], decoded[2].map { Int($0) })
        for category in Self.categories {
            let count = try Int(reader.value(Self.countField, name: category.rawValue))
            if count > 0 { self.openHelpRequests[category] = count }
        }
        try reader.finish()
    }
}

/// Why bytes are not a compact Kiezbox payload.
public enum LoRaWANPayloadError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The version in the first byte's top three bits is not one this decoder knows.
    case unsupportedVersion(Int)
    /// Fewer or more bytes than the header announces.
    case wrongLength(expected: Int, actual: Int)
    /// Bits the format reserves (zero) are set in the byte at `offset`.
    case reservedBitsSet(offset: Int)
    /// A field holds a value the encoder never writes (humidity over 100 %, charge over 100 %).
    case valueOutOfRange(field: String, raw: Int)

    public var description: String {
        switch self {
        case .unsupportedVersion(let version):
            "not a Kiezbox payload of a known version (version \(version); this decoder knows \(compactFormatVersion))"
        case .wrongLength(let expected, let actual):
            "the payload has \(actual) bytes where its header announces \(expected): truncated or not a Kiezbox payload"
        case .reservedBitsSet(let offset):
            "reserved bits are set in byte \(offset): not a Kiezbox payload of this version"
        case .valueOutOfRange(let field, let raw):
            "\(field) holds \(raw), which the format never sends: not a Kiezbox payload of this version"
        }
    }
}

/// The compact format's version, in the top three bits of the first byte.
let compactFormatVersion = 1

func compactHeader(_ status: BoxStatus, clamped: Bool) -> UInt8 {
    UInt8(compactFormatVersion << 5) | status.flagBits(clamped: clamped)
}

/// A number carried as a big-endian integer of `bytes` bytes: value = offset + raw / scale.
struct FixedPointField: Sendable, Hashable {
    var bytes: Int
    var signed = false
    /// Raw steps per unit (100 → 0.01).
    var scale: Int
    /// The value of raw 0, in whole units.
    var offset = 0
    var minimumRaw: Int
    var maximumRaw: Int

    init(bytes: Int, signed: Bool = false, scale: Int, offset: Int = 0, minimumRaw: Int? = nil, maximumRaw: Int? = nil) {
        self.bytes = bytes
        self.signed = signed
        self.scale = scale
        self.offset = offset
        let bits = 8 * bytes
        self.minimumRaw = minimumRaw ?? (signed ? -(1 << (bits - 1)) : 0)
        self.maximumRaw = maximumRaw ?? (signed ? (1 << (bits - 1)) - 1 : (1 << bits) - 1)
    }

    /// The raw value nearest to `value` (halves away from zero), clamped into range; `clamped` says whether it was.
    func raw(for value: Double) -> (raw: Int, clamped: Bool) {
        let scaled = ((value - Double(self.offset)) * Double(self.scale)).rounded()
        if scaled < Double(self.minimumRaw) { return (self.minimumRaw, true) }
        if scaled > Double(self.maximumRaw) { return (self.maximumRaw, true) }
        return (Int(scaled), false)
    }

    /// The value a raw number stands for; computed as one division so it is the double nearest the decimal.
    func value(for raw: Int) -> Double {
        Double(self.offset * self.scale + raw) / Double(self.scale)
    }

    /// Appends `value`'s raw bytes; returns whether it was clamped.
    func append(_ value: Double, to buffer: inout [UInt8]) -> Bool {
        let (raw, clamped) = self.raw(for: value)
        let pattern = UInt64(bitPattern: Int64(raw))
        for index in stride(from: self.bytes - 1, through: 0, by: -1) {
            buffer.append(UInt8(truncatingIfNeeded: pattern >> (8 * UInt64(index))))
        }
        return clamped
    }
}

/// Reads a compact payload front to back; every shortfall is an error, never a trap.
struct PayloadReader {
    let bytes: [UInt8]
    var offset = 0
    /// What the bytes read so far announce as the total length.
    var expectedLength = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func byte() throws(LoRaWANPayloadError) -> UInt8 {
        self.expectedLength = self.offset + 1
        guard self.offset < self.bytes.count else { throw .wrongLength(expected: self.expectedLength, actual: self.bytes.count) }
        defer { self.offset += 1 }
        return self.bytes[self.offset]
    }

    mutating func header() throws(LoRaWANPayloadError) -> BoxStatus {
        guard let first = self.bytes.first else { throw .wrongLength(expected: 2, actual: 0) }
        let version = Int(first >> 5)
        guard version == compactFormatVersion else { throw .unsupportedVersion(version) }
        return try BoxStatus(flagBits: self.byte() & 0x1F)
    }

    mutating func value(_ field: FixedPointField, name: String) throws(LoRaWANPayloadError) -> Double {
        self.expectedLength = self.offset + field.bytes
        guard self.expectedLength <= self.bytes.count else { throw .wrongLength(expected: self.expectedLength, actual: self.bytes.count) }
        var raw = 0
        for byte in self.bytes[self.offset..<self.expectedLength] { raw = raw << 8 | Int(byte) }
        self.offset = self.expectedLength
        if field.signed && raw >= 1 << (8 * field.bytes - 1) { raw -= 1 << (8 * field.bytes) }
        guard (field.minimumRaw...field.maximumRaw).contains(raw) else { throw .valueOutOfRange(field: name, raw: raw) }
        return field.value(for: raw)
    }

    func finish() throws(LoRaWANPayloadError) {
        guard self.offset == self.bytes.count else { throw .wrongLength(expected: self.offset, actual: self.bytes.count) }
    }
}
