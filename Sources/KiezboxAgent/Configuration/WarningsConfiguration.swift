import KiezboxCore

/// `[warnings]`: the box's own heat and heavy-rain warnings (docs/warnings.md). On by default with the German
/// weather service's levels; a box without a thermometer or rain gauge simply never warns of that hazard.
struct WarningsConfiguration: Sendable, Hashable {
    var enabled = true
    var thresholds = WarningThresholds()
    /// How often the warnings are evaluated from the store's readings.
    var interval: Duration = .seconds(60)

    static let keys = [
        "enabled", "interval", "heat_strong", "heat_extreme", "rain_heavy_1h", "rain_heavy_6h", "rain_severe_1h", "rain_severe_6h",
        "rain_extreme_1h", "rain_extreme_6h", "calm_after", "cancel_kept",
        "expires_after",
    ]

    static func parse(_ root: TOMLTableReader) throws(ConfigurationError) -> WarningsConfiguration {
        var configuration = WarningsConfiguration()
        guard let table = try root.table("warnings") else { return configuration }
        try table.rejectUnknownKeys(Self.keys)
        configuration.enabled = try table.bool("enabled") ?? true
        configuration.interval = try table.duration("interval", atLeast: .seconds(1)) ?? configuration.interval
        var thresholds = WarningThresholds()
        thresholds.heatStrong = try table.double("heat_strong", in: 0...80) ?? thresholds.heatStrong
        thresholds.heatExtreme = try table.double("heat_extreme", in: 0...80) ?? thresholds.heatExtreme
        guard thresholds.heatStrong < thresholds.heatExtreme else {
            throw table.error("heat_extreme", "\(thresholds.heatExtreme) °C must be above heat_strong (\(thresholds.heatStrong) °C)")
        }
        let levels: [(name: String, keyPath: WritableKeyPath<WarningThresholds, RainThreshold>)] = [
            ("heavy", \.rainHeavy), ("severe", \.rainSevere), ("extreme", \.rainExtreme),
        ]
        for level in levels {
            var threshold = thresholds[keyPath: level.keyPath]
            threshold.oneHour = try table.double("rain_\(level.name)_1h", in: 0.1...1000) ?? threshold.oneHour
            threshold.sixHours = try table.double("rain_\(level.name)_6h", in: 0.1...1000) ?? threshold.sixHours
            thresholds[keyPath: level.keyPath] = threshold
        }
        for (lower, higher) in zip(levels, levels.dropFirst()) {
            let low = thresholds[keyPath: lower.keyPath], high = thresholds[keyPath: higher.keyPath]
            guard low.oneHour < high.oneHour, low.sixHours < high.sixHours else {
                throw table.error("rain_\(higher.name)_1h", "the \(higher.name) rain levels must be above the \(lower.name) ones (1 h and 6 h)")
            }
        }
        if let calm = try table.duration("calm_after", atLeast: .seconds(0)) { thresholds.calmAfter = calm.timeInterval }
        if let kept = try table.duration("cancel_kept", atLeast: .seconds(0)) { thresholds.cancelKept = kept.timeInterval }
        // Refreshed at half of it, so it must span a few evaluations.
        if let expires = try table.duration("expires_after", atLeast: .seconds(600)) { thresholds.expiresAfter = expires.timeInterval }
        configuration.thresholds = thresholds
        return configuration
    }
}
