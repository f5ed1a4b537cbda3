/// The part of the band's airtime a Kiezbox allows itself on the Meshtastic mesh, over a rolling hour.
///
/// EU_868 sub-band P allows 10 % (``MeshtasticAirtime/bandAllowancePerHour``, 360 s per hour). The box keeps to
/// ``airtimeShare`` of it (default half, as the firmware's "polite" telemetry does), which leaves the rest to the
/// pilot boxes, the phones and the repeats of our own packets by other nodes. Within that ``limit``, routine status
/// (telemetry, our Kiezbox 2.0 update) may only be sent while the hour's total stays within ``routineShare`` of it
/// (default 60 %), so crisis traffic (announcements, relayed help requests) always finds the remaining 40 %, even
/// after a morning of status messages.
///
/// Pure value type fed by (airtime, instant) records, so the store can persist the ledger and a restart resumes
/// it: ``init(entries:…)`` takes them back.
public struct MeshtasticAirtimeBudget<Instant: InstantProtocol<Duration>>: Sendable {
    /// What a transmission is for.
    public enum TrafficClass: String, Sendable, Hashable, CaseIterable {
        /// Announcements and help requests: may use the whole ``MeshtasticAirtimeBudget/limit``.
        case crisis
        /// The box's status: only up to ``MeshtasticAirtimeBudget/routineShare`` of it.
        case routine
    }

    /// One transmission in the ledger.
    public struct Entry: Sendable, Hashable {
        public var airtime: Duration
        public var at: Instant
        public var trafficClass: TrafficClass

        public init(airtime: Duration, at: Instant, trafficClass: TrafficClass) {
            self.airtime = airtime
            self.at = at
            self.trafficClass = trafficClass
        }
    }

    /// The rolling window the allowance applies to.
    public static var window: Duration { .seconds(3600) }

    public let bandAllowance: Duration
    public let airtimeShare: Double
    public let routineShare: Double
    /// The transmissions of the last ``window``, oldest first.
    public private(set) var entries: [Entry]

    /// - Parameters:
    ///   - airtimeShare: the part of the band's allowance the box uses, 0…1.
    ///   - routineShare: the part of that which routine traffic may fill, 0…1.
    ///   - entries: a persisted ledger (older entries are dropped as they leave the window).
    public init(
        bandAllowance: Duration = MeshtasticAirtime.bandAllowancePerHour, airtimeShare: Double = 0.5,
        routineShare: Double = 0.6, entries: [Entry] = []
    ) {
        self.bandAllowance = bandAllowance
        self.airtimeShare = min(max(airtimeShare, 0), 1)
        self.routineShare = min(max(routineShare, 0), 1)
        self.entries = entries.sorted { $0.at < $1.at }
    }

    /// Our airtime per hour: the band allowance × ``airtimeShare`` (180 s by default).
    public var limit: Duration { self.bandAllowance * self.airtimeShare }

    /// How much of the window `trafficClass` may fill (counting all traffic).
    public func cap(for trafficClass: TrafficClass) -> Duration {
        switch trafficClass {
        case .crisis: self.limit
        case .routine: self.limit * self.routineShare
        }
    }

    /// Airtime sent in the hour before `now` (an entry counts until one window after its instant).
    public func used(at now: Instant) -> Duration {
        self.entries.reduce(.zero) { total, entry in self.isInWindow(entry, at: now) ? total + entry.airtime : total }
    }

    /// What a transmission of `trafficClass` may still use at `now`.
    public func remaining(for trafficClass: TrafficClass, at now: Instant) -> Duration {
        max(.zero, self.cap(for: trafficClass) - self.used(at: now))
    }

    public func canSend(airtime: Duration, as trafficClass: TrafficClass, at now: Instant) -> Bool {
        self.used(at: now) + airtime <= self.cap(for: trafficClass)
    }

    /// The earliest instant at or after `now` when a transmission of `airtime` fits, as older transmissions leave
    /// the window; nil when it never does (longer than the class's cap).
    public func nextAllowed(airtime: Duration, as trafficClass: TrafficClass, notBefore now: Instant) -> Instant? {
        let cap = self.cap(for: trafficClass)
        guard airtime <= cap else { return nil }
        var used = self.used(at: now)
        if used + airtime <= cap { return now }
        for entry in self.entries where self.isInWindow(entry, at: now) {
            used -= entry.airtime
            if used + airtime <= cap { return entry.at.advanced(by: Self.window) }
        }
        return nil
    }

    /// Records a transmission and drops entries that left the window.
    public mutating func record(airtime: Duration, at instant: Instant, as trafficClass: TrafficClass) {
        let entry = Entry(airtime: airtime, at: instant, trafficClass: trafficClass)
        let position = self.entries.lastIndex { $0.at <= instant }.map { $0 + 1 } ?? 0
        self.entries.insert(entry, at: position)
        self.entries.removeAll { $0.at.advanced(by: Self.window) <= instant }
    }

    /// How many packets of `dataLength` serialised `Data` bytes `trafficClass` may send per hour (LONG_FAST).
    public func messagesPerHour(dataLength: Int, as trafficClass: TrafficClass = .crisis) -> Int {
        Int(self.cap(for: trafficClass) / MeshtasticAirtime.airtime(dataLength: dataLength))
    }

    private func isInWindow(_ entry: Entry, at now: Instant) -> Bool {
        entry.at <= now && now < entry.at.advanced(by: Self.window)
    }
}
