public import Foundation
import KiezboxCore

/// A wall-clock date as an instant, so the airtime models (EU868 duty cycle, the Meshtastic share) can replay
/// the store's ledgers, which are kept in dates.
public struct DateInstant: InstantProtocol, Sendable {
    public var date: Date
    public init(_ date: Date) { self.date = date }
    public func advanced(by duration: Duration) -> DateInstant { DateInstant(self.date.addingTimeInterval(duration.timeInterval)) }
    public func duration(to other: DateInstant) -> Duration { .seconds(other.date.timeIntervalSince(self.date)) }
    public static func < (lhs: DateInstant, rhs: DateInstant) -> Bool { lhs.date < rhs.date }
}
