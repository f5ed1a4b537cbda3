import Foundation

/// A JSON document built in code: GeoJSON properties mix numbers, strings, nulls and nested objects per feature,
/// which a fixed Codable struct per feature kind would only repeat. Encoding goes through `JSONEncoder`, so
/// escaping of residents' free text is Foundation's, not ours.
enum JSONValue: Sendable, Hashable, Encodable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// `null` for a missing value, so that consumers see the property and know it is unknown.
    static func optional<T>(_ value: T?, _ wrap: (T) -> JSONValue) -> JSONValue {
        value.map(wrap) ?? .null
    }

    func encode(to encoder: any Encoder) throws {
        switch self {
        case .null:
            var container = encoder.singleValueContainer()
            try container.encodeNil()
        case .bool(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .integer(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .number(let value):
            // JSON has no NaN or infinity; a broken sensor value becomes unknown instead of failing the feed.
            var container = encoder.singleValueContainer()
            if value.isFinite { try container.encode(value) } else { try container.encodeNil() }
        case .string(let value):
            var container = encoder.singleValueContainer()
            try container.encode(value)
        case .array(let values):
            var container = encoder.unkeyedContainer()
            for value in values { try container.encode(value) }
        case .object(let members):
            var container = encoder.container(keyedBy: MemberKey.self)
            for (key, value) in members { try container.encode(value, forKey: MemberKey(key)) }
        }
    }

    /// The document as UTF-8 JSON, keys sorted so that the same snapshot always gives the same bytes. Slashes stay
    /// escaped (`<\/script>`), so a feed pasted into an HTML page cannot close its script element.
    func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            return try encoder.encode(self)
        } catch {
            // Unreachable: every case encodes (non-finite numbers become null above).
            preconditionFailure("JSONValue failed to encode: \(error)")
        }
    }
}

/// An object member's name.
private struct MemberKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }

    init(_ name: String) { self.stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
