extension String {
    /// The text made safe for HTML element content and quoted attribute values: `& < > " '` become character
    /// references, so text a neighbour typed can never become markup or leave an attribute. Control characters
    /// other than tab and line breaks are dropped: they are invisible and not allowed in HTML text.
    var htmlEscaped: String {
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
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }
}
