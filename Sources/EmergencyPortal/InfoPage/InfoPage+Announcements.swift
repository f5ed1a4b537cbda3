import KiezboxCore

extension InfoPageRenderer {
    /// Official announcements, newest first, in the reader's language where the issuer wrote one.
    func announcements() -> String {
        var items = ""
        for announcement in self.snapshot.announcements {
            let headline = Self.pick(announcement.headline, for: self.language)
            let body = Self.pick(announcement.body, for: self.language)
            let urgent = announcement.severity == .extreme || announcement.severity == .severe
            let meta = [
                self.strings.severity(announcement.severity),
                self.strings.issuedBy(announcement.issuer),
                self.format.age(of: announcement.issuedAt),
                self.strings.validUntil(self.format.clockTime(announcement.expiresAt)),
            ].map(\.markupEscaped).joined(separator: " · ")
            items += "<article\(urgent ? " class=\"x\"" : "")>"
            if let headline {
                items += "<h3\(self.langAttribute(headline.language))>\(headline.text.markupEscaped)</h3>"
            }
            if let body {
                items += "<p class=\"t\"\(self.langAttribute(body.language))>\(body.text.markupEscaped)</p>"
            }
            items += "<p class=\"m\">\(meta)</p></article>"
        }
        return self.section(id: "official", heading: self.strings.announcementsHeading, content: items)
    }

    /// ` lang="xx"` when a text is not in the page's language, so screen readers switch voice.
    private func langAttribute(_ code: String) -> String {
        code == self.language.code ? "" : " lang=\"\(code.markupEscaped)\" dir=\"auto\""
    }

    /// The text in `language`, else German, else English, else the first by language code (stable across
    /// requests). Empty texts count as missing.
    static func pick(_ texts: [String: String], for language: PortalLanguage) -> (language: String, text: String)? {
        let present = texts.filter { !$0.value.isEmpty }
        for code in [language.code, "de", "en"] {
            if let text = present[code] {
                return (code, text)
            }
        }
        return present.min(by: { $0.key < $1.key }).map { ($0.key, $0.value) }
    }
}
