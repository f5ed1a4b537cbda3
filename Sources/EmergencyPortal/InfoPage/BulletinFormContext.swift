/// What happened to the reader's last post, shown as a notice at the top of the page.
public enum BulletinOutcome: Sendable, Hashable {
    case posted
    case refused(BulletinRefusal)

    /// The outcome as one query value ("posted", "tooLong", "rateLimited", …), for the redirect after a post
    /// (`303 See Other` to `/?lang=de&outcome=posted#outcome`), so reloading the page never posts twice.
    public var queryValue: String {
        switch self {
        case .posted: "posted"
        case .refused(let reason): reason.rawValue
        }
    }

    /// The outcome a query value names; nil for anything else (the value comes from the address bar).
    public init?(queryValue: String) {
        if queryValue == "posted" {
            self = .posted
        } else if let reason = BulletinRefusal(rawValue: queryValue) {
            self = .refused(reason)
        } else {
            return nil
        }
    }
}

/// What the bulletin forms need from the request: the anti-forgery token to embed and the outcome of the
/// reader's last post, if they just sent one.
public struct BulletinFormContext: Sendable, Hashable {
    /// Sent back in the hidden `token` field of every form; the POST handler checks it.
    public var token: String
    public var outcome: BulletinOutcome?

    public init(token: String, outcome: BulletinOutcome? = nil) {
        self.token = token
        self.outcome = outcome
    }

    /// Field limits shared by the forms' `maxlength` and the POST handler's checks.
    public static let maxTextLength = 280
    public static let maxPlaceLength = 80
    /// UTF-8 bytes: four per character, what 280 emoji or CJK characters need, and no more.
    public static let maxTextBytes = 4 * maxTextLength
    public static let maxPlaceBytes = 4 * maxPlaceLength
    /// Combining marks one character may carry: enough for Vietnamese, Thai, Tibetan or Devanagari clusters
    /// (rarely more than four), not for marks stacked up the screen.
    public static let maxMarksPerCharacter = 6
}
