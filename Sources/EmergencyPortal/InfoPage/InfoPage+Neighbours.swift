import KiezboxCore

extension InfoPageRenderer {
    /// The district's other boxes: reachable ones first, then by name.
    func neighbours() -> String {
        guard !self.snapshot.neighbours.isEmpty else { return "" }
        let sorted = self.snapshot.neighbours.sorted { lhs, rhs in
            lhs.online != rhs.online ? lhs.online : lhs.identity.name < rhs.identity.name
        }
        var items = ""
        for box in sorted {
            var facts = [box.online ? self.strings.online : self.strings.offline]
            if let mode = box.mode, box.online {
                facts.append(self.strings.mode(mode))
            }
            if let here = self.snapshot.identity.position, let there = box.identity.position {
                facts.append(self.strings.distanceAway(self.format.distance(metres: here.distance(to: there))))
            }
            items += """
                <li><b>\(box.identity.name.markupEscaped)</b>: \(facts.joined(separator: ", ").markupEscaped) \
                <span class="m">\(self.strings.lastHeard(self.format.age(of: box.lastSeen)).markupEscaped)</span></li>
                """
        }
        return self.section(id: "boxes", heading: self.strings.neighboursHeading, content: "<ul>\(items)</ul>")
    }
}
