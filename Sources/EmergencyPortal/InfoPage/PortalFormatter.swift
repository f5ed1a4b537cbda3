import Foundation

/// Numbers, distances, clock times and ages as the page's language writes them.
struct PortalFormatter {
    let strings: PortalStrings
    let calendar: Calendar
    let now: Date

    init(strings: PortalStrings, timeZone: TimeZone, now: Date) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        self.strings = strings
        self.calendar = calendar
        self.now = now
    }

    /// `value` with `fractionDigits` decimals and the language's decimal separator.
    func number(_ value: Double, fractionDigits: Int) -> String {
        let text = String(format: "%.\(fractionDigits)f", value)
        // "-0" reads as a mistake.
        let cleaned = text.hasPrefix("-") && Double(text) == 0 ? String(text.dropFirst()) : text
        return cleaned.replacingOccurrences(of: ".", with: self.strings.decimalSeparator)
    }

    /// A value and its unit, never broken across lines.
    func measurement(_ value: Double, fractionDigits: Int, unit: String) -> String {
        let number = self.number(value, fractionDigits: fractionDigits)
        return unit.isEmpty ? number : "\(number)\u{00A0}\(unit)"
    }

    /// A walking distance: to 10 m below 1 km, to 100 m below 10 km, whole kilometres beyond.
    func distance(metres: Double) -> String {
        if metres < 995 {
            return self.measurement((metres / 10).rounded() * 10, fractionDigits: 0, unit: "m")
        }
        if metres < 9950 {
            return self.measurement(metres / 1000, fractionDigits: 1, unit: "km")
        }
        return self.measurement(metres / 1000, fractionDigits: 0, unit: "km")
    }

    /// "18:30" today, "28.11. 18:30" on another day.
    func clockTime(_ date: Date) -> String {
        let parts = self.calendar.dateComponents([.day, .month, .hour, .minute], from: date)
        let time = String(format: "%02d:%02d", parts.hour ?? 0, parts.minute ?? 0)
        if self.calendar.isDate(date, inSameDayAs: self.now) {
            return time
        }
        return String(format: "%02d.%02d. ", parts.day ?? 0, parts.month ?? 0) + time
    }

    func age(of date: Date) -> String {
        self.strings.ago(RelativeAge(of: date, at: self.now))
    }
}
