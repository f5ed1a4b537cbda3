import KiezboxCore

extension InfoPageRenderer {
    /// Whether the grid is up and how much the box's battery has left; left out when nothing is measured.
    func powerSection() -> String {
        let power = self.snapshot.power
        var lines: [String] = []
        if let mains = power.mainsPresent {
            lines.append((mains ? self.strings.mainsPresent : self.strings.mainsAbsent).markupEscaped)
        }
        var battery: [String] = []
        if let percent = power.batteryPercent {
            battery.append(self.format.measurement(min(max(percent, 0), 100), fractionDigits: 0, unit: "%"))
        }
        if let volts = power.batteryVolts {
            let text = self.format.measurement(volts, fractionDigits: 1, unit: "V")
            battery.append(battery.isEmpty ? text : "(\(text))")
        }
        if !battery.isEmpty {
            lines.append("\(self.strings.battery.markupEscaped): \(battery.joined(separator: " "))")
        }
        if let hoursLeft = power.hoursLeft {
            let hours = { (value: Double) in self.format.number(value, fractionDigits: 0) }
            lines.append(self.strings.powerLeft(hours(hoursLeft.likely), hours(hoursLeft.low), hoursLeft.high.map(hours)).markupEscaped)
        }
        if let step = power.shedStep, let steps = power.shedSteps, step > 0 {
            lines.append(self.strings.savingPower(step, steps).markupEscaped)
        }
        if let watts = power.watts {
            lines.append("\(self.strings.drawing.markupEscaped): \(self.format.measurement(watts, fractionDigits: 1, unit: "W"))")
        }
        guard !lines.isEmpty else { return "" }
        return self.section(id: "power", heading: self.strings.powerHeading, content: "<p>\(lines.joined(separator: "<br/>"))</p>")
    }
}
