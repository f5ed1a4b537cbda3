/// The EU863-870 sub-bands of ETSI EN 300 220-2 (letters as TTN names them), each with its duty cycle.
public enum EU868SubBand: String, Sendable, Hashable, CaseIterable {
    /// 863.0–865.0 MHz, 0.1 %.
    case k
    /// 865.0–868.0 MHz, 1 % (TTN's 867.1…867.9 MHz channels).
    case l
    /// 868.0–868.6 MHz, 1 % (the LoRaWAN default channels 868.1/868.3/868.5 MHz, the only ones joins use).
    case m
    /// 868.7–869.2 MHz, 0.1 %.
    case n
    /// 869.4–869.65 MHz, 10 % (RX2 at 869.525 MHz).
    case p
    /// 869.7–870.0 MHz, 1 % ("R" in older tables).
    case q

    /// The frequencies in hertz; the boundary at 868.0 MHz belongs to L, as in LoRaMac-node.
    public var frequencies: ClosedRange<Int> {
        switch self {
        case .k: 863_000_000...864_999_999
        case .l: 865_000_000...868_000_000
        case .m: 868_000_001...868_600_000
        case .n: 868_700_000...869_200_000
        case .p: 869_400_000...869_650_000
        case .q: 869_700_000...870_000_000
        }
    }

    /// The inverse of the duty cycle: 1 % → 100, 0.1 % → 1000, 10 % → 10 (LoRaMac-node's `DCycle`).
    public var dutyCycleDivisor: Int {
        switch self {
        case .k, .n: 1000
        case .l, .m, .q: 100
        case .p: 10
        }
    }

    /// The sub-band a frequency (Hz) lies in, nil outside all of them (between N and P, or outside 863–870 MHz).
    public static func containing(frequency: Int) -> EU868SubBand? {
        Self.allCases.first { $0.frequencies.contains(frequency) }
    }

    /// The uplink channels of TTN's EU868 plan (`EU_863_870_TTN`), in hertz: 868.1, 868.3, 868.5 MHz (band M,
    /// the defaults) and 867.1 … 867.9 MHz (band L, sent in the join accept).
    public static let ttnChannelFrequencies: [Int] = [
        868_100_000, 868_300_000, 868_500_000,
        867_100_000, 867_300_000, 867_500_000, 867_700_000, 867_900_000,
    ]
}

/// When an EU868 device may transmit again, modelled on both rules a device may be held to, whichever is later:
///
/// - the per-frame rule of the LoRaWAN regional parameters: after a frame of time on air `ToA`, its sub-band
///   rests for `ToA / DC − ToA` (99 × ToA at 1 %);
/// - the hourly budget LoRaMac-node 4.7 enforces inside the RAK3172 and Wio-E5 firmware: each sub-band holds
///   at most one hour of credits, earns one second per second, and a frame costs `ToA / DC` (so 36 s of
///   airtime per hour at 1 %, spendable in a burst); a frame needs more credits than it costs.
///
/// The modem picks the channel itself and does not say which; a frame whose frequency is unknown is charged to
/// every sub-band of the channel plan, so the answer never comes before the modem would allow the send.
/// Pure value type: the caller passes the instants (any clock's, e.g. ``KiezboxClock``'s).
/// Before the join the modem applies the stricter join back-off (1 %/0.1 %/0.01 % by time since start); that
/// is the join logic's concern, not this model's.
public struct EU868DutyCycle<Instant: InstantProtocol<Duration>>: Sendable {
    /// One hour of credits, LoRaMac-node's `DUTY_CYCLE_TIME_PERIOD`.
    public static var creditPeriod: Duration { .seconds(3600) }
    /// The granularity of LoRaMac-node's timer; its credit check is strict ("more credits than the frame costs").
    static var timerTick: Duration { .milliseconds(1) }

    struct BandState: Sendable {
        /// When the last frame in this band ended, and the rest it imposed (per-frame rule).
        var restEnds: Instant?
        /// Hourly-budget credits at `creditsUpdated` (nil: never used, full).
        var credits: Duration
        var creditsUpdated: Instant?

        func credits(at instant: Instant) -> Duration {
            guard let updated = self.creditsUpdated else { return EU868DutyCycle.creditPeriod }
            return min(EU868DutyCycle.creditPeriod, self.credits + updated.duration(to: instant))
        }
    }

    /// The sub-bands the channel plan's frequencies lie in.
    public let subBands: [EU868SubBand]
    var bands: [EU868SubBand: BandState]

    /// A model for a device using `channelFrequencies` (Hz; default: TTN's eight EU868 channels, bands M and L).
    /// Frequencies outside every sub-band are ignored.
    public init(channelFrequencies: [Int] = EU868SubBand.ttnChannelFrequencies) {
        let inPlan = Set(channelFrequencies.compactMap(EU868SubBand.containing(frequency:)))
        self.subBands = EU868SubBand.allCases.filter(inPlan.contains)
        self.bands = Dictionary(uniqueKeysWithValues: self.subBands.map { ($0, BandState(restEnds: nil, credits: .zero)) })
    }

    /// Records a frame of `airtime` that ended at `end`, sent on `frequency` (Hz) when known; nil charges every
    /// sub-band of the plan.
    public mutating func recordTransmission(airtime: Duration, endedAt end: Instant, frequency: Int? = nil) {
        let charged = frequency.flatMap(EU868SubBand.containing(frequency:)).map { [$0] } ?? self.subBands
        for band in charged {
            var state = self.bands[band] ?? BandState(restEnds: nil, credits: .zero)
            let rest = airtime * (band.dutyCycleDivisor - 1)
            state.restEnds = max(state.restEnds ?? end, end.advanced(by: rest))
            let cost = airtime * band.dutyCycleDivisor
            let available = state.credits(at: end)
            state.credits = available > cost ? available - cost : .zero
            state.creditsUpdated = end
            self.bands[band] = state
        }
    }

    /// The earliest instant at or after `now` when `band` allows a frame of `airtime` under both rules; nil when
    /// the band never does (the frame costs more than an hour of credits, e.g. over 3.6 s in a 0.1 % band).
    public func nextAllowedSend(in band: EU868SubBand, airtime: Duration, notBefore now: Instant) -> Instant? {
        let cost = airtime * band.dutyCycleDivisor
        guard cost < Self.creditPeriod else { return nil }
        let state = self.bands[band] ?? BandState(restEnds: nil, credits: .zero)
        var earliest = max(now, state.restEnds ?? now)
        let credits = state.credits(at: earliest)
        if credits <= cost {
            earliest = earliest.advanced(by: cost - credits + Self.timerTick)
        }
        return earliest
    }

    /// The earliest instant at or after `now` when some sub-band of the plan allows a frame of `airtime`; nil
    /// when none ever does.
    public func nextAllowedSend(airtime: Duration, notBefore now: Instant) -> Instant? {
        self.subBands.compactMap { self.nextAllowedSend(in: $0, airtime: airtime, notBefore: now) }.min()
    }

    /// The hourly-budget credits `band` holds at `instant`, as airtime it could still send in a burst.
    public func burstAirtime(in band: EU868SubBand, at instant: Instant) -> Duration {
        let state = self.bands[band] ?? BandState(restEnds: nil, credits: .zero)
        return state.credits(at: instant) / band.dutyCycleDivisor
    }
}
