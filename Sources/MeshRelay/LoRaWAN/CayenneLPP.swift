/// A CayenneLPP frame builder restricted to the data types The Things Stack's built-in CayenneLPP formatter
/// decodes (its decoder rejects a whole frame with any other type). Values round to nearest (halves away from
/// zero), unlike the common Arduino library, which truncates; a value outside a type's range is written as the
/// nearest limit and ``clamped`` is set.
public struct CayenneLPPWriter: Sendable, Hashable {
    /// The data types used here, with their LPP type byte.
    public enum DataType: UInt8, Sendable, Hashable {
        case digitalInput = 0x00
        case analogInput = 0x02
        case temperature = 0x67
        case relativeHumidity = 0x68
        case barometricPressure = 0x73

        /// How the type carries a value: 0.01 signed, 0.1 °C signed, 0.5 % unsigned, 0.1 hPa (The Things Stack
        /// reads it as signed, so at most 3276.7 hPa), a byte.
        var field: FixedPointField {
            switch self {
            case .digitalInput: FixedPointField(bytes: 1, scale: 1)
            case .analogInput: FixedPointField(bytes: 2, signed: true, scale: 100)
            case .temperature: FixedPointField(bytes: 2, signed: true, scale: 10)
            case .relativeHumidity: FixedPointField(bytes: 1, scale: 2, maximumRaw: 200)
            case .barometricPressure: FixedPointField(bytes: 2, scale: 10, maximumRaw: 32767)
            }
        }
    }

    public private(set) var bytes: [UInt8] = []
    /// Whether some value was outside its type's range and was written as the nearest limit.
    public private(set) var clamped = false

    public init() {}

    /// Appends `[channel][type][value]`.
    public mutating func add(channel: UInt8, _ type: DataType, _ value: Double) {
        self.add(channel: channel, type, value, field: type.field)
    }

    /// Appends `value` with a field of the type's size but its own scale and range (analog input channels that
    /// carry a quantity in tens or hundreds of its unit).
    mutating func add(channel: UInt8, _ type: DataType, _ value: Double, field: FixedPointField) {
        self.bytes += [channel, type.rawValue]
        self.clamped = field.append(value, to: &self.bytes) || self.clamped
    }
}

/// One channel of Kiezbox's CayenneLPP layout: which LPP type carries the value and at what scale. The analog
/// input shows raw / 100, so a field of scale 10 shows tens of the unit, scale 1 hundreds.
struct CayenneLPPChannel: Sendable {
    var channel: UInt8
    var type: CayenneLPPWriter.DataType
    var field: FixedPointField

    init(_ channel: UInt8, _ type: CayenneLPPWriter.DataType, field: FixedPointField? = nil) {
        self.channel = channel
        self.type = type
        self.field = field ?? type.field
    }

    /// The status byte (crisis, mains, battery, help requests, clamped) as a digital input.
    static let status = CayenneLPPChannel(9, .digitalInput)
    /// Battery voltage in V (0.01 V, 0…327.67 V) and state of charge in % (0.01 %, 0…100 %).
    static let batteryVoltage = CayenneLPPChannel(7, .analogInput, field: FixedPointField(bytes: 2, scale: 100, maximumRaw: 32767))
    static let batteryLevel = CayenneLPPChannel(8, .analogInput, field: FixedPointField(bytes: 2, scale: 100, maximumRaw: 10_000))
}

extension BoxReport {
    /// The CayenneLPP channel of each carried quantity, in ``carriedQuantities`` order. PM is carried in tens of
    /// µg/m³ (analog 1.23 = 12.3 µg/m³, up to 3276.7) and CO₂ in hundreds of ppm (4.12 = 412 ppm, up to 32767),
    /// because the analog input's ±327.67 would clip both in the ranges the sensors measure.
    static let cayenneLPPChannels: [CayenneLPPChannel] = [
        CayenneLPPChannel(1, .temperature),
        CayenneLPPChannel(2, .relativeHumidity),
        CayenneLPPChannel(3, .barometricPressure),
        CayenneLPPChannel(4, .analogInput, field: FixedPointField(bytes: 2, scale: 10, maximumRaw: 32767)),
        CayenneLPPChannel(5, .analogInput, field: FixedPointField(bytes: 2, scale: 10, maximumRaw: 32767)),
        CayenneLPPChannel(6, .analogInput, field: FixedPointField(bytes: 2, scale: 1, maximumRaw: 32767)),
        CayenneLPPChannel.batteryVoltage,
        CayenneLPPChannel.batteryLevel,
    ]

    func encodeCayenneLPP() -> [UInt8] {
        var writer = CayenneLPPWriter()
        for (quantity, lpp) in zip(Self.carriedQuantities, Self.cayenneLPPChannels) {
            guard let value = self.values[quantity], value.isFinite else { continue }
            writer.add(channel: lpp.channel, lpp.type, value, field: lpp.field)
        }
        return writer.withStatus(self.status)
    }
}

extension CrisisSummary {
    /// Phones connected as an analog input in hundreds (1.23 = 123 phones); open help requests per category as
    /// digital inputs on channels 11… in ``categories`` order (at most 255 each).
    static let cayenneLPPPhones = CayenneLPPChannel(10, .analogInput, field: FixedPointField(bytes: 2, scale: 1, maximumRaw: 32767))
    static let cayenneLPPFirstCategoryChannel: UInt8 = 11

    func encodeCayenneLPP() -> [UInt8] {
        var writer = CayenneLPPWriter()
        let optional: [(Double?, CayenneLPPChannel)] = [
            (self.batteryLevel, .batteryLevel), (self.batteryVoltage, .batteryVoltage),
            (self.phonesConnected.map(Double.init), Self.cayenneLPPPhones),
        ]
        for case (let value?, let lpp) in optional where value.isFinite {
            writer.add(channel: lpp.channel, lpp.type, value, field: lpp.field)
        }
        for (index, category) in Self.categories.enumerated() {
            writer.add(channel: Self.cayenneLPPFirstCategoryChannel + UInt8(index), .digitalInput, Double(self.openHelpRequests[category] ?? 0))
        }
        return writer.withStatus(self.status)
    }
}

extension CayenneLPPWriter {
    /// The frame with the status channel last, its clamped bit covering every value before it.
    fileprivate func withStatus(_ status: BoxStatus) -> [UInt8] {
        var writer = self
        let bits = status.flagBits(clamped: self.clamped)
        writer.add(channel: CayenneLPPChannel.status.channel, .digitalInput, Double(bits))
        return writer.bytes
    }
}
