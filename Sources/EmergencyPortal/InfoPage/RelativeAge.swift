import Foundation

/// How long ago something happened, in the coarse steps a reader needs ("3 min ago", not seconds).
public enum RelativeAge: Sendable, Hashable {
    case justNow
    case minutes(Int)
    case hours(Int)
    case days(Int)

    /// The age of `date` at `now`; a date in the future (clock skew between boxes) counts as just now.
    public init(of date: Date, at now: Date) {
        let seconds = now.timeIntervalSince(date)
        switch seconds {
        case ..<60: self = .justNow
        case ..<3600: self = .minutes(Int(seconds / 60))
        case ..<86_400: self = .hours(Int(seconds / 3600))
        default: self = .days(Int(seconds / 86_400))
        }
    }
}
