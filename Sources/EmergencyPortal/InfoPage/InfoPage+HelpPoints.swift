import KiezboxCore

extension InfoPageRenderer {
    /// The configured help points, nearest first (those without a position last, in configured order).
    func helpPoints() -> String {
        let box = self.snapshot.identity.position
        let measured = self.snapshot.helpPoints.enumerated().map { index, point in
            (index: index, point: point, metres: box.flatMap { box in point.position.map { box.distance(to: $0) } })
        }
        let sorted = measured.sorted { lhs, rhs in
            switch (lhs.metres, rhs.metres) {
            case (let l?, let r?): l < r || (l == r && lhs.index < rhs.index)
            case (.some, nil): true
            case (nil, .some): false
            case (nil, nil): lhs.index < rhs.index
            }
        }
        var items = ""
        for entry in sorted {
            items += "<li><b>\(entry.point.name.markupEscaped)</b>"
            if let metres = entry.metres {
                items += " <span class=\"m\">\(self.strings.distanceAway(self.format.distance(metres: metres)).markupEscaped)</span>"
            }
            if !entry.point.address.isEmpty {
                items += "<br/>\(entry.point.address.markupEscaped)"
            }
            if !entry.point.offers.isEmpty {
                items += "<br/><span class=\"m\">\(entry.point.offers.joined(separator: ", ").markupEscaped)</span>"
            }
            items += "</li>"
        }
        return self.section(id: "help", heading: self.strings.helpPointsHeading, content: items.isEmpty ? "" : "<ul>\(items)</ul>")
    }
}
