import KiezboxCore
import ReadingStore

extension InfoPageRenderer {
    /// Opens the bulletin section (``postList(_:total:)`` closes it): what a post reveals, where to go in a
    /// life-threatening emergency, and one plain form per kind of post, folded so the page stays short.
    ///
    /// Every form posts `application/x-www-form-urlencoded` to `/bulletin` with the fields `kind`
    /// (request|offer|safe), `category` (not for "safe"), `text` (≤ 280), `place` (≤ 80, optional), `lang` and
    /// `token`.
    func bulletinForms() -> String {
        var html = """
            <section id="bulletin"><h2>\(self.strings.bulletinHeading.markupEscaped)</h2>\
            <p>\(self.strings.bulletinPrivacy.markupEscaped)</p>
            """
        if self.snapshot.mode != .crisis {
            // In a crisis the banner already says it.
            html += "<p>\(self.strings.emergencyCall.markupEscaped)</p>"
        }
        for kind in BulletinKind.allCases {
            html += self.form(kind)
        }
        return html
    }

    private func form(_ kind: BulletinKind) -> String {
        let id = kind.rawValue
        var html = """
            <details><summary>\(self.strings.formTitle(kind).markupEscaped)</summary>\
            <form method="post" action="/bulletin">\
            <input type="hidden" name="kind" value="\(id)"/>\
            <input type="hidden" name="lang" value="\(self.language.code)"/>\
            <input type="hidden" name="token" value="\(self.form.token.markupEscaped)"/>
            """
        if kind != .safe {
            var options = ""
            for category in BulletinCategory.allCases {
                options += "<option value=\"\(category.rawValue)\">\(self.strings.category(category).markupEscaped)</option>"
            }
            html += """
                <label for="\(id)-category">\(self.strings.categoryLabel.markupEscaped)</label>\
                <select id="\(id)-category" name="category">\(options)</select>
                """
        }
        html += """
            <label for="\(id)-text">\(self.strings.textLabel(kind).markupEscaped)</label>\
            <textarea id="\(id)-text" name="text" rows="3" maxlength="\(BulletinFormContext.maxTextLength)" required=""></textarea>\
            <label for="\(id)-place">\(self.strings.placeLabel.markupEscaped)</label>\
            <input id="\(id)-place" name="place" maxlength="\(BulletinFormContext.maxPlaceLength)"/>\
            <button>\(self.strings.send.markupEscaped)</button></form></details>
            """
        return html
    }
}
