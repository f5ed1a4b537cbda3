import Foundation
import ReadingStore

/// Why a bulletin post was refused; the page tells the person in their language.
public enum BulletinRefusal: String, Sendable, Hashable, Error, CaseIterable {
    /// The text is longer than 280 characters or ``BulletinFormContext/maxTextBytes`` bytes, the place longer than
    /// 80 or ``BulletinFormContext/maxPlaceBytes``, or a character carries more than
    /// ``BulletinFormContext/maxMarksPerCharacter`` combining marks.
    case tooLong
    /// The text is empty (after trimming).
    case empty
    /// This phone has posted too much for now.
    case rateLimited
    /// The whole Wi-Fi has posted too much for now, or the bulletin is at its budget: nothing already posted is
    /// pushed out to make room.
    case busy
    /// The form is too old, from before a restart, or not from this box.
    case badToken
    /// Control characters, direction overrides, unknown kind or category, or a field that is not a field.
    case invalid

    /// The HTTP status the refusal is answered with.
    public var httpStatus: Int {
        switch self {
        case .empty, .tooLong, .invalid: 400
        case .badToken: 403
        case .rateLimited, .busy: 429
        }
    }
}

/// A bulletin form as posted, checked: what goes into the store.
public struct BulletinSubmission: Sendable, Hashable {
    public var kind: BulletinKind
    public var category: BulletinCategory?
    public var text: String
    public var place: String
    /// The language the form was shown in, to answer in the same.
    public var language: String?
    public var token: String


    /// Checks the decoded form fields (`kind`, `category`, `text`, `place`, `lang`, `token`).
    public init(fields: [String: String]) throws(BulletinRefusal) {
        let known: Set<String> = ["kind", "category", "text", "place", "lang", "token"]
        guard fields.keys.allSatisfy(known.contains) else { throw .invalid }
        guard let kind = fields["kind"].flatMap(BulletinKind.init(rawValue:)) else { throw .invalid }
        self.kind = kind
        switch kind {
        case .safe:
            self.category = nil
        case .request, .offer:
            guard let category = fields["category"].flatMap(BulletinCategory.init(rawValue:)) else { throw .invalid }
            self.category = category
        }
        self.token = fields["token"] ?? ""
        self.language = fields["lang"].flatMap { $0.count <= 8 && $0.allSatisfy(\.isLetter) ? $0 : nil }

        let text = (fields["text"] ?? "").precomposedStringWithCanonicalMapping.trimmingCharacters(in: .whitespacesAndNewlines)
        let place = (fields["place"] ?? "").precomposedStringWithCanonicalMapping.trimmingCharacters(in: .whitespacesAndNewlines)
        // A check-in may be just "I am safe"; a request or an offer must say something.
        if text.isEmpty && kind != .safe { throw .empty }
        guard Self.fits(text, characters: BulletinFormContext.maxTextLength, bytes: BulletinFormContext.maxTextBytes),
            Self.fits(place, characters: BulletinFormContext.maxPlaceLength, bytes: BulletinFormContext.maxPlaceBytes)
        else { throw .tooLong }
        guard Self.isPlain(text, allowingNewlines: true), Self.isPlain(place, allowingNewlines: false) else { throw .invalid }
        self.text = text
        self.place = place
    }

    /// Within `characters` characters (grapheme clusters, as people count) and `bytes` UTF-8 bytes, with at most
    /// ``BulletinFormContext/maxMarksPerCharacter`` combining marks on any character (after NFC, which has already
    /// folded the marks that have precomposed forms): counting characters alone, invisible variation selectors and
    /// stacked "Zalgo" marks would be free.
    static func fits(_ text: String, characters: Int, bytes: Int) -> Bool {
        guard text.utf8.count <= bytes, text.count <= characters else { return false }
        return text.allSatisfy { character in
            character.unicodeScalars.count { scalar in
                switch scalar.properties.generalCategory {
                case .nonspacingMark, .spacingMark, .enclosingMark: true
                default: false
                }
            } <= BulletinFormContext.maxMarksPerCharacter
        }
    }

    /// No control characters (but line breaks in the text), no bidirectional overrides that could make a post
    /// display as something it is not, no unassigned or private-use code points.
    static func isPlain(_ text: String, allowingNewlines: Bool) -> Bool {
        text.unicodeScalars.allSatisfy { scalar in
            if scalar == "\n" || scalar == "\r" { return allowingNewlines }
            switch scalar.properties.generalCategory {
            case .control, .unassigned, .privateUse, .surrogate: return false
            default: break
            }
            // LRE, RLE, PDF, LRO, RLO and the isolates LRI, RLI, FSI, PDI.
            return !(0x202A...0x202E).contains(scalar.value) && !(0x2066...0x2069).contains(scalar.value)
        }
    }
}
