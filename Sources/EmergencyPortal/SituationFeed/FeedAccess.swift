/// Who is asking for the situation feed, as established by ``AuthorityTokens/authorize(authorizationHeader:)``:
/// it decides whether residents' own words leave the box.
public enum FeedAccess: Sendable, Hashable {
    /// A civil-protection authority with a configured token, named as in the configuration. It sees every open
    /// bulletin post with its text and place, so it can send help.
    case authority(name: String)
    /// Anyone else. Residents wrote their posts for their neighbours, not for the internet, so only counts per
    /// kind and category are served: no text, no place.
    case `public`

    /// Whether this access may see the posts' free text.
    public var seesPostText: Bool {
        if case .authority = self { return true }
        return false
    }
}
