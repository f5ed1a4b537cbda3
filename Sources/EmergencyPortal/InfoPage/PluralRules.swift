/// Counted nouns in languages whose noun form depends on the number (CLDR plural rules, integers only).
enum PluralRules {
    /// Ukrainian: one (1, 21, 31…), few (2–4, 22–24…), many (0, 5–20, 25–30…).
    static func ukrainian(_ n: Int, one: String, few: String, many: String) -> String {
        let lastDigit = n % 10
        let lastTwo = n % 100
        let noun =
            if lastDigit == 1 && lastTwo != 11 { one }
            else if (2...4).contains(lastDigit) && !(12...14).contains(lastTwo) { few }
            else { many }
        return "\(n) \(noun)"
    }

    /// Arabic: one and two are said by the noun alone (singular, dual), 3–10 take the plural, 11–99 the singular
    /// in its accusative form, 100 and more again the singular.
    static func arabic(_ n: Int, one: String, two: String, few: String, many: String, hundreds: String) -> String {
        switch n {
        case 1: one
        case 2: two
        case 3...10: "\(n) \(few)"
        case 11...99: "\(n) \(many)"
        default: "\(n) \(hundreds)"
        }
    }
}
