import Foundation
import KiezboxCore

extension InfoPageRenderer {
    /// The quantities a neighbour cares about, in this order; power and position have their own places.
    static let shownQuantities: [Quantity] = [
        .temperature, .relativeHumidity, .pm2_5, .pm10, .pm1, .pm4, .co2, .rainIntensity, .rainfall, .pressure,
    ]

    /// Warnings first, then the box's latest value of each quantity with its age.
    func readings() -> String {
        let warnings = WeatherWarnings(latest: self.snapshot.latest, now: self.snapshot.now)
        var content = ""
        // The box's own warnings first: they are what it warns of, the rest is advice.
        var alerts = self.snapshot.warnings.active.map { self.strings.boxWarning($0.hazard, $0.level) }
        if let heat = warnings.heat {
            let feels = warnings.heatIndex.map {
                self.strings.feelsLike(self.format.measurement($0, fractionDigits: 0, unit: "°C")) + ". "
            } ?? ""
            alerts.append(feels + self.strings.heatWarning(heat))
        }
        if warnings.frost {
            alerts.append(self.strings.frostWarning)
        }
        if let air = warnings.airQuality, let advice = self.strings.airQualityAdvice(air) {
            alerts.append("\(self.strings.airQuality): \(self.strings.airQualityBand(air)). \(advice)")
        }
        for alert in alerts {
            content += "<p class=\"n e\">\(alert.markupEscaped)</p>"
        }
        if let air = warnings.airQuality, !air.needsAdvice {
            content += "<p>\(self.strings.airQuality.markupEscaped): \(self.strings.airQualityBand(air).markupEscaped)</p>"
        }

        let shown = self.snapshot.latest.map(\.reading).filter { Self.shownQuantities.contains($0.quantity) }
        let sorted = shown.sorted { lhs, rhs in
            let l = Self.shownQuantities.firstIndex(of: lhs.quantity)!
            let r = Self.shownQuantities.firstIndex(of: rhs.quantity)!
            return l != r ? l < r : lhs.sensorID < rhs.sensorID
        }
        // Readings are usually taken together: then one age says it for all.
        let ages = Set(sorted.map { RelativeAge(of: $0.measuredAt, at: self.snapshot.now) })
        let agePerRow = ages.count > 1
        var rows = ""
        for reading in sorted {
            // Two sensors measuring the same thing are told apart by their configured names.
            let twice = shown.filter { $0.quantity == reading.quantity }.count > 1
            let name = self.strings.quantity(reading.quantity) + (twice ? " (\(reading.sensorID))" : "")
            let value = self.format.measurement(reading.value, fractionDigits: Self.fractionDigits(reading.quantity), unit: reading.unit.symbol)
            let doubt = reading.quality == .implausible ? " (?)" : ""
            let age = agePerRow ? " <span class=\"m\">\(self.format.age(of: reading.measuredAt).markupEscaped)</span>" : ""
            rows += "<tr><th>\(name.markupEscaped)</th><td>\(value.markupEscaped)\(doubt)\(age)</td></tr>"
        }
        if !rows.isEmpty {
            content += "<table>\(rows)</table>"
            if !agePerRow, let first = sorted.first {
                content += "<p class=\"m\">\(self.strings.measured(self.format.age(of: first.measuredAt)).markupEscaped)</p>"
            }
        }
        return self.section(id: "weather", heading: self.strings.readingsHeading, content: content)
    }

    private static func fractionDigits(_ quantity: Quantity) -> Int {
        switch quantity {
        case .temperature, .rainfall, .rainIntensity: 1
        default: 0
        }
    }
}
