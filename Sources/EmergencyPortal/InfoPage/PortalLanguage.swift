import Foundation

/// A language the info page is written in: the languages most spoken in Berlin's neighbourhoods besides German.
public enum PortalLanguage: String, Sendable, Hashable, CaseIterable {
    case de, en, tr, ar, uk

    /// The page's language when the phone asks for none of ours: the box stands in Berlin.
    public static let fallback: PortalLanguage = .de

    /// The BCP 47 tag for `lang` attributes and `?lang=` links.
    public var code: String { self.rawValue }

    /// Whether the script runs right to left (the page then gets `dir="rtl"`).
    public var isRightToLeft: Bool { self == .ar }

    /// The language's name in itself, for the language switcher: a reader finds their own language without
    /// understanding the page's current one.
    public var nativeName: String {
        switch self {
        case .de: "Deutsch"
        case .en: "English"
        case .tr: "Türkçe"
        case .ar: "العربية"
        case .uk: "Українська"
        }
    }

    /// The page's language for a request: an explicit choice (`?lang=`) wins, else the phone's `Accept-Language`
    /// preferences, else German.
    ///
    /// Accept-Language follows RFC 9110 §12.5.4: comma-separated language ranges with optional `;q=` weights
    /// (0 to 1, at most three decimals; `q=0` means "not acceptable"). A range matches one of our languages by its
    /// primary subtag (`tr-TR` and `ar-EG` match `tr` and `ar`); `*` matches any language, which gives German.
    /// Among equal weights the earlier range wins. Malformed entries are skipped, never fatal: the header comes
    /// from any phone.
    public static func negotiate(acceptLanguage: String?, requested: String?) -> PortalLanguage {
        if let requested, let chosen = PortalLanguage(primarySubtagOf: requested) {
            return chosen
        }
        guard let acceptLanguage else { return Self.fallback }
        var best: (language: PortalLanguage, weight: Double)?
        // A header longer than any real one is cut, so a hostile header costs bounded work.
        for element in acceptLanguage.prefix(1024).split(separator: ",") {
            guard let range = AcceptLanguageRange(String(element)), range.weight > 0 else { continue }
            let language: PortalLanguage
            if range.tag == "*" {
                language = Self.fallback
            } else if let matched = PortalLanguage(primarySubtagOf: range.tag) {
                language = matched
            } else {
                continue
            }
            if best == nil || range.weight > best!.weight {
                best = (language, range.weight)
            }
        }
        return best?.language ?? Self.fallback
    }

    /// The language for a tag such as `tr`, `tr-TR`, `AR_eg`, or nil when it is not one of ours.
    init?(primarySubtagOf tag: String) {
        let primary = tag.trimmingCharacters(in: .whitespaces).lowercased()
            .split(whereSeparator: { $0 == "-" || $0 == "_" }).first.map(String.init) ?? ""
        self.init(rawValue: primary)
    }
}

/// One element of an Accept-Language header: a language range and its weight.
private struct AcceptLanguageRange {
    var tag: String
    var weight: Double

    init?(_ element: String) {
        let parts = element.split(separator: ";", omittingEmptySubsequences: false)
        let tag = parts[0].trimmingCharacters(in: .whitespaces)
        // RFC 4647 language-range: 1*8ALPHA *("-" 1*8alphanum), or "*".
        guard tag == "*" || Self.isLanguageRange(tag) else { return nil }
        var weight = 1.0
        for parameter in parts.dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, pair[0].lowercased() == "q" else { continue }
            guard let parsed = Self.qvalue(pair[1]) else { return nil }
            weight = parsed
        }
        self.tag = tag
        self.weight = weight
    }

    private static func isLanguageRange(_ tag: String) -> Bool {
        let subtags = tag.split(separator: "-", omittingEmptySubsequences: false)
        guard let primary = subtags.first, (1...8).contains(primary.count),
            primary.allSatisfy({ $0.isASCII && $0.isLetter })
        else { return false }
        return subtags.dropFirst().allSatisfy { subtag in
            (1...8).contains(subtag.count) && subtag.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) }
        }
    }

    /// RFC 9110 qvalue: `0[.ddd]` or `1[.000]`.
    private static func qvalue(_ text: String) -> Double? {
        guard let first = text.first, first == "0" || first == "1", text.count <= 5 else { return nil }
        let rest = text.dropFirst()
        if !rest.isEmpty {
            guard rest.first == ".", rest.dropFirst().allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        }
        guard let value = Double(text), value <= 1 else { return nil }
        return value
    }
}
