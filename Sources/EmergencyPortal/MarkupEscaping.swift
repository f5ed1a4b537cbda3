extension String {
    /// The text made safe for HTML and XML element content and quoted attribute values (the info page and the
    /// CAP feed): `& < > " '` become character references, so text a neighbour typed can never become markup or
    /// leave an attribute. Characters neither may carry are dropped: C0 controls other than tab and line breaks,
    /// DEL and the C1 controls (invisible, not allowed in HTML text), U+FFFE and U+FFFF (not XML characters).
    var markupEscaped: String {
        var escaped = ""
        escaped.unicodeScalars.reserveCapacity(self.unicodeScalars.count)
        for scalar in self.unicodeScalars {
            switch scalar {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            case "\t", "\n", "\r": escaped.unicodeScalars.append(scalar)
            case _ where scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value): continue
            case "\u{FFFE}", "\u{FFFF}": continue
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }
}
