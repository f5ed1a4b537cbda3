public import Foundation

/// What civil protection signs: the announcement itself, as JSON inside an ``AnnouncementEnvelope``.
///
/// ```json
/// {"v": 1, "id": "stromausfall-2026-09-21", "district": "xhain", "issued_at": "2026-09-21T10:00:00Z",
///  "expires_at": "2026-09-21T16:00:00Z", "severity": "severe",
///  "headline": {"de": "Stromausfall", "en": "Power cut"}, "body": {"de": "…", "en": "…"}}
/// ```
///
/// There is no issuer field: who issued it is the configured name of the key that verifies it, so a signer
/// cannot claim to be someone else. A later version of the same id (a newer `issued_at`) replaces the earlier
/// one, which is how an announcement is corrected, extended or ended early (a version that expires soon).
public struct AnnouncementPayload: Sendable, Hashable, Codable {
    /// The only payload version there is.
    public static let currentVersion = 1
    /// The longest an announcement may be valid; also how long a box remembers an id after it was issued, so a
    /// superseded version cannot be replayed while it would still be valid.
    public static let maximumLifetime: TimeInterval = 14 * 86_400
    public static let maximumHeadlineCharacters = 200
    public static let maximumBodyCharacters = 4000
    public static let maximumLanguages = 12
    /// The district value that addresses every box.
    public static let allDistricts = "*"

    public var version: Int
    /// The issuer's id for it ("stromausfall-2026-09-21"); a topic segment, so plain characters only.
    public var id: String
    /// The district whose boxes show it, or ``allDistricts``.
    public var district: String
    public var issuedAt: Date
    public var expiresAt: Date
    public var severity: AnnouncementSeverity
    /// Text per language code ("de", "en", "tr", "ar", "pt-br").
    public var headline: [String: String]
    public var body: [String: String]
    /// `true`: the issuer declares a crisis for the announcement's district while it is valid; the boxes switch to
    /// crisis mode (emergency Wi-Fi, crisis banner) even where mains power is still on. Absent means no.
    public var crisis: Bool?

    public init(
        id: String, district: String = Self.allDistricts, issuedAt: Date, expiresAt: Date, severity: AnnouncementSeverity,
        headline: [String: String], body: [String: String], crisis: Bool? = nil
    ) {
        self.crisis = crisis
        self.version = Self.currentVersion
        self.id = id
        self.district = district
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.severity = severity
        self.headline = headline
        self.body = body
    }

    enum CodingKeys: String, CodingKey {
        case version = "v", id, district, issuedAt = "issued_at", expiresAt = "expires_at", severity, headline, body, crisis
    }

    /// Decodes and checks a payload's bytes (after its signature has been verified).
    public init(json: Data) throws(AnnouncementFormatError) {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let payload: AnnouncementPayload
        do {
            payload = try decoder.decode(AnnouncementPayload.self, from: json)
        } catch let DecodingError.keyNotFound(key, _) {
            throw .invalidField(key.stringValue, "a value (the field is missing)")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.dataCorrupted(context) {
            guard let field = context.codingPath.first?.stringValue else {
                throw .notJSON("the payload is not announcement JSON: \(context.debugDescription)")
            }
            throw .invalidField(field, Self.rule(for: field))
        } catch {
            throw .notJSON("the payload is not announcement JSON")
        }
        try payload.validate()
        self = payload
    }

    /// The payload's JSON, keys sorted and dates as ISO 8601 UTC: the bytes that get signed.
    public func json() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        // Strings, an integer and dates: encoding cannot fail.
        return (try? encoder.encode(self)) ?? Data()
    }

    /// Checks the limits; throws the first field that breaks one.
    public func validate() throws(AnnouncementFormatError) {
        guard self.version == Self.currentVersion else { throw .unsupportedVersion(self.version) }
        guard AnnouncementIdentifier.isValid(self.id) else { throw .invalidField("id", AnnouncementIdentifier.rule) }
        guard self.district == Self.allDistricts || AnnouncementIdentifier.isValid(self.district) else {
            throw .invalidField("district", "a district id or \"*\"")
        }
        guard self.expiresAt > self.issuedAt else { throw .invalidField("expires_at", "a time after issued_at") }
        guard self.expiresAt.timeIntervalSince(self.issuedAt) <= Self.maximumLifetime else {
            throw .invalidField("expires_at", "at most 14 days after issued_at")
        }
        guard !self.headline.isEmpty, self.headline.values.contains(where: { !$0.isEmpty }) else {
            throw .invalidField("headline", "a headline in at least one language")
        }
        try Self.check(self.headline, field: "headline", maximumCharacters: Self.maximumHeadlineCharacters)
        try Self.check(self.body, field: "body", maximumCharacters: Self.maximumBodyCharacters)
    }

    private static func check(_ texts: [String: String], field: String, maximumCharacters: Int) throws(AnnouncementFormatError) {
        guard texts.count <= Self.maximumLanguages else {
            throw .invalidField(field, "at most \(Self.maximumLanguages) languages")
        }
        for (language, text) in texts {
            guard isLanguageCode(language) else {
                throw .invalidField(field, "language codes like \"de\", \"en\" or \"pt-br\", not \"\(language)\"")
            }
            guard text.count <= maximumCharacters else {
                throw .invalidField("\(field).\(language)", "at most \(maximumCharacters) characters")
            }
        }
    }

    /// A short BCP 47 tag: 2–3 lowercase letters, optionally "-" and 2–8 letters or digits.
    static func isLanguageCode(_ code: String) -> Bool {
        let parts = code.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count) else { return false }
        let primary = parts[0]
        guard (2...3).contains(primary.count), primary.allSatisfy({ $0.isASCII && $0.isLowercase }) else { return false }
        if parts.count == 2 {
            let region = parts[1]
            guard (2...8).contains(region.count), region.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
                return false
            }
        }
        return true
    }

    private static func rule(for field: String) -> String {
        switch field {
        case "v": "the number 1"
        case "issued_at", "expires_at": "an ISO 8601 UTC time like \"2026-09-21T10:00:00Z\""
        case "severity": "one of " + AnnouncementSeverity.allCases.map(\.rawValue).joined(separator: ", ")
        case "headline", "body": "an object of language code to text"
        default: "a string"
        }
    }
}
