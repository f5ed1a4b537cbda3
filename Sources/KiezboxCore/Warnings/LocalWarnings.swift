#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// What the box warns of from its own sensors (docs/warnings.md).
public enum WarningHazard: String, Sendable, Hashable, Codable, CaseIterable {
    /// Perceived temperature (heat index from temperature and humidity) at the German weather service's levels.
    case heat
    /// Rainfall over the last hour and the last six hours from the rain gauge (Starkregen).
    case heavyRain = "heavy_rain"

    /// How many levels the hazard has: heat 2 (strong, extreme heat stress), heavy rain 3 (heavy, severe, extreme).
    public var levelCount: Int {
        switch self {
        case .heat: 2
        case .heavyRain: 3
        }
    }
}

/// Rainfall that makes a level: either sum reaches its threshold.
public struct RainThreshold: Sendable, Hashable, Codable {
    /// l/m² (= mm) in the last hour.
    public var oneHour: Double
    /// l/m² (= mm) in the last six hours.
    public var sixHours: Double

    public init(oneHour: Double, sixHours: Double) {
        self.oneHour = oneHour
        self.sixHours = sixHours
    }
}

/// The levels at which warnings start, and how they end; `[warnings]` in the configuration. The defaults are the
/// German weather service's (DWD) levels, cited in docs/warnings.md.
public struct WarningThresholds: Sendable, Hashable, Codable {
    /// Perceived temperature (°C) of "starke Wärmebelastung".
    public var heatStrong: Double = 32
    /// Perceived temperature (°C) of "extreme Wärmebelastung".
    public var heatExtreme: Double = 38
    /// Markantes Wetter: Starkregen.
    public var rainHeavy = RainThreshold(oneHour: 15, sixHours: 20)
    /// Unwetter: heftiger Starkregen.
    public var rainSevere = RainThreshold(oneHour: 25, sixHours: 35)
    /// Extremes Unwetter: extrem heftiger Starkregen.
    public var rainExtreme = RainThreshold(oneHour: 40, sixHours: 60)
    /// How long the measure must stay below a warning's level before the warning is lowered or ends, so a value
    /// wobbling around a threshold does not make a warning flap.
    public var calmAfter: TimeInterval = 3600
    /// How long an ended warning's Cancel stays in the feed, so pullers that come by now and then see it.
    public var cancelKept: TimeInterval = 3600
    /// How long a message stays valid (CAP `expires`). A warning that lasts is refreshed by an Update at the same
    /// level when half of it has passed, so a box that stops (flat battery, broken) leaves no warning standing
    /// in other systems for longer than this.
    public var expiresAfter: TimeInterval = 24 * 3600

    public init() {}

    /// 0 (no warning), 1 strong or 2 extreme heat stress.
    public func heatLevel(perceivedCelsius: Double?) -> Int {
        guard let perceived = perceivedCelsius, perceived.isFinite else { return 0 }
        if perceived >= self.heatExtreme { return 2 }
        return perceived >= self.heatStrong ? 1 : 0
    }

    /// 0 (no warning), 1 heavy, 2 severe or 3 extreme heavy rain.
    public func rainLevel(oneHour: Double?, sixHours: Double?) -> Int {
        let levels = [self.rainHeavy, self.rainSevere, self.rainExtreme]
        return levels.lastIndex { threshold in
            (oneHour ?? 0) >= threshold.oneHour || (sixHours ?? 0) >= threshold.sixHours
        }.map { $0 + 1 } ?? 0
    }
}

/// What the box measured for the warnings at one moment.
public struct WarningObservation: Sendable, Hashable {
    /// Perceived temperature, °C; nil without a fresh temperature.
    public var perceivedCelsius: Double?
    /// Rainfall, l/m², over the last hour and six hours; nil without a rain gauge.
    public var rainOneHour: Double?
    public var rainSixHours: Double?

    public init(perceivedCelsius: Double?, rainOneHour: Double?, rainSixHours: Double?) {
        self.perceivedCelsius = perceivedCelsius
        self.rainOneHour = rainOneHour
        self.rainSixHours = rainSixHours
    }

    /// Rainfall (mm, from ``Quantity/rainfall`` readings, each the rain since the gauge's previous reading) measured
    /// in the `window` up to `now`; implausible readings are left out. Nil when there is no rainfall reading at
    /// all: a box without a gauge knows nothing about rain.
    public static func rainfall(in readings: [Reading], window: TimeInterval, endingAt now: Date) -> Double? {
        let rain = readings.filter { $0.quantity == .rainfall }
        guard !rain.isEmpty else { return nil }
        return rain.filter { $0.quality != .implausible && $0.measuredAt > now - window && $0.measuredAt <= now }
            .reduce(0) { $0 + $1.value }
    }
}

/// One CAP message of a warning: it starts with an Alert, each change of level is an Update, its end a Cancel.
public struct WarningMessage: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable {
        case alert = "Alert", update = "Update", cancel = "Cancel"
    }

    /// 1 for the Alert, counting up; part of the message's CAP identifier.
    public var number: Int
    public var kind: Kind
    public var sent: Date
    /// The warning's level when it was sent.
    public var level: Int
    /// Until when the message is valid: ``WarningThresholds/expiresAfter`` after it was sent, a Cancel for as long
    /// as it is kept. `nil` for messages stored before messages expired.
    public var expires: Date?

    public init(number: Int, kind: Kind, sent: Date, level: Int, expires: Date? = nil) {
        self.expires = expires
        self.number = number
        self.kind = kind
        self.sent = sent
        self.level = level
    }
}

/// A warning the box issued from its own sensors, active or recently ended.
public struct LocalWarning: Sendable, Hashable, Codable {
    public var hazard: WarningHazard
    public var startedAt: Date
    /// 1…``WarningHazard/levelCount``.
    public var level: Int
    /// The latest measure: perceived temperature for heat, the 1 h and 6 h rainfall for rain.
    public var perceivedCelsius: Double?
    public var rainOneHour: Double?
    public var rainSixHours: Double?
    /// Since when the measure has been below ``level`` (nil: it is not).
    public var lowerSince: Date?
    public var endedAt: Date?
    /// Every message sent for it, oldest first; never empty.
    public var messages: [WarningMessage]

    public var isActive: Bool { self.endedAt == nil }
}

/// The box's warnings and how they move: ``evaluate(_:thresholds:at:)`` once a minute with what was measured.
///
/// A warning starts (Alert) as soon as a measure reaches a level and rises (Update) as soon as it reaches a higher
/// one; it is lowered (Update) or ends (Cancel) only after the measure has stayed below its level for
/// ``WarningThresholds/calmAfter``. Every message expires (``WarningThresholds/expiresAfter``); a warning that
/// lasts is refreshed by an Update at the same level half-way. Ended warnings are kept for
/// ``WarningThresholds/cancelKept``, then dropped.
public struct WarningBook: Sendable, Hashable, Codable {
    public var warnings: [LocalWarning]

    public init(warnings: [LocalWarning] = []) {
        self.warnings = warnings
    }

    public var active: [LocalWarning] { self.warnings.filter(\.isActive) }

    /// Takes in an observation; returns whether a message was sent or a warning dropped (something to publish).
    @discardableResult
    public mutating func evaluate(_ observation: WarningObservation, thresholds: WarningThresholds, at now: Date) -> Bool {
        let before = self.warnings.count
        self.warnings.removeAll { ended in ended.endedAt.map { now.timeIntervalSince($0) >= thresholds.cancelKept } ?? false }
        var changed = self.warnings.count != before
        for hazard in WarningHazard.allCases {
            let measured = switch hazard {
            case .heat: thresholds.heatLevel(perceivedCelsius: observation.perceivedCelsius)
            case .heavyRain: thresholds.rainLevel(oneHour: observation.rainOneHour, sixHours: observation.rainSixHours)
            }
            changed = self.step(hazard, measured: measured, observation: observation, thresholds: thresholds, at: now) || changed
        }
        return changed
    }

    private mutating func step(
        _ hazard: WarningHazard, measured: Int, observation: WarningObservation, thresholds: WarningThresholds, at now: Date
    ) -> Bool {
        func record(_ warning: inout LocalWarning) {
            switch hazard {
            case .heat: warning.perceivedCelsius = observation.perceivedCelsius
            case .heavyRain: (warning.rainOneHour, warning.rainSixHours) = (observation.rainOneHour, observation.rainSixHours)
            }
        }
        guard let index = self.warnings.firstIndex(where: { $0.hazard == hazard && $0.isActive }) else {
            guard measured > 0 else { return false }
            var warning = LocalWarning(
                hazard: hazard, startedAt: now, level: measured, lowerSince: nil, endedAt: nil,
                messages: [WarningMessage(number: 1, kind: .alert, sent: now, level: measured, expires: now + thresholds.expiresAfter)])
            record(&warning)
            self.warnings.append(warning)
            return true
        }
        var warning = self.warnings[index]
        defer { self.warnings[index] = warning }
        record(&warning)
        func send(_ kind: WarningMessage.Kind) {
            let expires = now + (kind == .cancel ? thresholds.cancelKept : thresholds.expiresAfter)
            warning.messages.append(
                WarningMessage(number: warning.messages.count + 1, kind: kind, sent: now, level: warning.level, expires: expires))
        }
        /// An Update at the same level when half of the latest message's validity has passed: the warning goes on.
        func refreshIfDue() -> Bool {
            guard let latest = warning.messages.last, now.timeIntervalSince(latest.sent) >= thresholds.expiresAfter / 2 else { return false }
            send(.update)
            return true
        }
        if measured >= warning.level {
            warning.lowerSince = nil
            guard measured > warning.level else { return refreshIfDue() }
            warning.level = measured
            send(.update)
            return true
        }
        guard let lowerSince = warning.lowerSince else {
            warning.lowerSince = now
            return refreshIfDue()
        }
        guard now.timeIntervalSince(lowerSince) >= thresholds.calmAfter else { return refreshIfDue() }
        warning.lowerSince = nil
        if measured == 0 {
            warning.endedAt = now
            send(.cancel)
        } else {
            warning.level = measured
            send(.update)
        }
        return true
    }
}
