import Foundation

/// The lexical rules of CAP 1.2 that its XSD and text impose on values: date-times, identifiers, language codes,
/// escaped text and coordinates.
enum CAPText {
    /// `YYYY-MM-DDThh:mm:ss+00:00` in UTC. CAP's date-time pattern allows neither `Z` nor fractional seconds, so
    /// `ISO8601DateFormatter` output is invalid.
    static func dateTime(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? .gmt
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func two(_ value: Int?) -> String { pad(value ?? 0, to: 2) }
        return "\(pad(parts.year ?? 0, to: 4))-\(two(parts.month))-\(two(parts.day))T\(two(parts.hour)):\(two(parts.minute)):\(two(parts.second))+00:00"
    }

    /// The same instant as digits only, for identifiers: `20250601T123000`.
    static func compactDateTime(_ date: Date) -> String {
        dateTime(date).prefix(19).filter { $0 != "-" && $0 != ":" }
    }

    private static func pad(_ value: Int, to width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    /// A token for `identifier` and `sender`, which CAP forbids to contain spaces, commas and the XML-reserved
    /// `<` and `&`: anything but ASCII letters, digits and `-._:@/` becomes `-`.
    static func token(_ text: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._:@/")
        let mapped = String(text.map { allowed.contains($0) ? $0 : "-" })
        return mapped.isEmpty ? "-" : mapped
    }

    /// A CAP `language` (an `xs:language`, RFC 3066) for an announcement's language key. Bare codes get the
    /// region a Berlin reader means ("de" → "de-DE", "en" → "en-US", CAP's default); `de_DE` is repaired to
    /// `de-DE`; a key that is no language tag at all becomes "und" (undetermined) rather than an invalid alert.
    static func language(_ key: String) -> String {
        let tag = key.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "_", with: "-")
        let subtags = tag.split(separator: "-", omittingEmptySubsequences: false)
        let isLanguageTag =
            !subtags.isEmpty
            && subtags.allSatisfy { (1...8).contains($0.count) && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) } }
            && subtags[0].allSatisfy(\.isLetter)
        guard isLanguageTag else { return "und" }
        if subtags.count > 1 { return tag }
        return defaultRegions[tag.lowercased()].map { "\(tag.lowercased())-\($0)" } ?? tag.lowercased()
    }

    /// Regions for the languages most spoken in Berlin, where the region is unambiguous for a Berlin reader.
    private static let defaultRegions: [String: String] = [
        "de": "DE", "en": "US", "tr": "TR", "pl": "PL", "ru": "RU", "uk": "UA", "fr": "FR", "it": "IT", "es": "ES",
        "vi": "VN", "ro": "RO", "bg": "BG", "el": "GR", "fa": "IR",
    ]

    /// A decimal with at most six fraction digits and no exponent, as CAP `circle` and `polygon` consumers parse.
    static func decimal(_ value: Double) -> String {
        let micro = (value * 1_000_000).rounded()
        guard micro.isFinite, abs(micro) < 1e15 else { return "0" }
        let units = Int64(micro)
        let sign = units < 0 ? "-" : ""
        let magnitude = units.magnitude
        let whole = magnitude / 1_000_000
        var fraction = String(magnitude % 1_000_000)
        fraction = String(repeating: "0", count: 6 - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return fraction.isEmpty ? "\(sign)\(whole)" : "\(sign)\(whole).\(fraction)"
    }
}
