import ReadingStore
import Foundation
import KiezboxCore

/// The info page a phone shows when it joins the emergency Wi-Fi: one self-contained HTML document (inline
/// style, no scripts, no fonts, no images), written so that it also parses as XML, which lets tests check that
/// every element is closed.
///
/// The first response must fit in 14 KB on the wire (TCP's initial congestion window of ten segments: the page
/// arrives in one round trip over a lossy mesh). Everything but the bulletin posts is rendered first; the newest
/// posts then fill what is left of ``byteBudget`` (at most ``postsOnPage``), and a link leads to all of them.
public enum InfoPage {
    /// The most bytes of HTML the page may have, leaving about 400 bytes of the 14,000 for the HTTP headers.
    public static let byteBudget = 13_600
    /// The most bulletin posts the page shows; `?all=1` shows all, a page at a time.
    public static let postsOnPage = 10
    /// The most bytes of posts on one page of `?all=1` (at least one post is always shown, and at most
    /// ``allPostsPerPage``): bounded however many posts there are.
    public static let allPostsByteBudget = 48 * 1024
    public static let allPostsPerPage = 50

    /// Renders the page for one request.
    ///
    /// - Parameters:
    ///   - snapshot: what the box knows now; ages and distances are computed from it alone.
    ///   - language: from ``PortalLanguage/negotiate(acceptLanguage:requested:)``.
    ///   - form: the anti-forgery token for the forms and the outcome of the reader's last post.
    ///   - portalURL: the portal's plain address ("http://kiez.box/"), offered for opening in a real browser.
    ///   - showAllPosts: a page of `?all=1`, from `allPosts` (newest first, as many as fit in
    ///     ``allPostsByteBudget``; when some are left, a link continues before the last one shown); without
    ///     `allPosts`, the snapshot's newest posts.
    ///   - allPosts: the posts fetched for this page of `?all=1` (at most ``allPostsPerPage``), and whether the
    ///     store has more after them.
    ///   - timeZone: for clock times ("valid until 18:30"); Berlin.
    public static func render(
        snapshot: PortalSnapshot, language: PortalLanguage, form: BulletinFormContext, portalURL: String,
        showAllPosts: Bool = false, allPosts: (posts: [BulletinPost], more: Bool)? = nil, timeZone: TimeZone = InfoPage.berlin
    ) -> String {
        let page = InfoPageRenderer(
            snapshot: snapshot, language: language, form: form, portalURL: portalURL, timeZone: timeZone)
        return page.render(showAllPosts: showAllPosts, allPosts: allPosts ?? (snapshot.bulletin, false))
    }

    /// Europe/Berlin, or UTC where the system has no time zone data.
    public static let berlin = TimeZone(identifier: "Europe/Berlin") ?? TimeZone(secondsFromGMT: 0)!
}

/// One rendering of the page; the sections are in their own files.
struct InfoPageRenderer {
    let snapshot: PortalSnapshot
    let language: PortalLanguage
    let strings: PortalStrings
    let format: PortalFormatter
    let form: BulletinFormContext
    let portalURL: String

    init(snapshot: PortalSnapshot, language: PortalLanguage, form: BulletinFormContext, portalURL: String, timeZone: TimeZone) {
        self.snapshot = snapshot
        self.language = language
        self.strings = PortalStrings.forLanguage(language)
        self.format = PortalFormatter(strings: self.strings, timeZone: timeZone, now: snapshot.now)
        self.form = form
        self.portalURL = portalURL
    }

    func render(showAllPosts: Bool, allPosts: (posts: [BulletinPost], more: Bool)) -> String {
        let head = self.documentStart() + self.header() + "<main>" + self.modeBanner() + self.outcomeNotice()
            + self.announcements() + self.helpPoints() + self.bulletinForms()
        let tail = self.readings() + self.powerSection() + self.neighbours() + "</main>" + self.footer() + "</body></html>"
        let total = self.snapshot.bulletinTotal
        let posts: String
        if showAllPosts {
            let shown = self.postsInOrder(allPosts.posts, bytes: InfoPage.allPostsByteBudget)
            let more = shown.count < allPosts.posts.count || allPosts.more
            posts = self.postList(shown, total: total, olderThan: more ? shown.last?.id : nil)
        } else {
            let fixed = head.utf8.count + tail.utf8.count + self.postList([], total: total).utf8.count
            posts = self.postList(self.postsFitting(bytes: InfoPage.byteBudget - fixed), total: total)
        }
        return head + posts + tail
    }

    private func documentStart() -> String {
        let title = "\(self.snapshot.identity.name) – \(self.strings.titleSuffix)".markupEscaped
        let direction = self.language.isRightToLeft ? "rtl" : "ltr"
        return """
            <!DOCTYPE html><html lang="\(self.language.code)" dir="\(direction)"><head><meta charset="utf-8"/>\
            <meta name="viewport" content="width=device-width,initial-scale=1"/><title>\(title)</title>\
            <style>\(InfoPageStyle.css)</style></head><body>
            """
    }

    /// The language switcher, the box's name and when the page was made.
    private func header() -> String {
        var links = ""
        for language in PortalLanguage.allCases {
            let current = language == self.language ? " aria-current=\"page\"" : ""
            links += "<a href=\"?lang=\(language.code)\" lang=\"\(language.code)\"\(current)>\(language.nativeName)</a>"
        }
        return """
            <header><nav aria-label="\(self.strings.languageMenu.markupEscaped)">\(links)</nav>\
            <h1>\(self.snapshot.identity.name.markupEscaped)</h1>\
            <p class="m">\(self.strings.asOf(self.format.clockTime(self.snapshot.now)).markupEscaped)</p></header>
            """
    }

    /// What mode the box is in: a crisis banner that screen readers announce, or a calm note.
    private func modeBanner() -> String {
        switch self.snapshot.mode {
        case .crisis:
            return """
                <section class="b" role="alert" id="crisis"><h2>\(self.strings.crisisHeading.markupEscaped)</h2>\
                <p>\(self.strings.crisisText.markupEscaped)</p><p><b>\(self.strings.emergencyCall.markupEscaped)</b></p></section>
                """
        case .normal:
            return "<p class=\"n\" id=\"mode\">\(self.strings.normalText.markupEscaped)</p>"
        case .maintenance:
            return "<p class=\"n e\" id=\"mode\">\(self.strings.maintenanceText.markupEscaped)</p>"
        }
    }

    /// The result of the reader's last post, right under the banner where they land after sending.
    private func outcomeNotice() -> String {
        switch self.form.outcome {
        case nil:
            return ""
        case .posted:
            return "<p class=\"n\" role=\"status\" id=\"outcome\">\(self.strings.posted.markupEscaped)</p>"
        case .refused(let reason):
            return "<p class=\"n e\" role=\"alert\" id=\"outcome\">\(self.strings.refusal(reason).markupEscaped)</p>"
        }
    }

    private func footer() -> String {
        let url = self.portalURL.markupEscaped
        // A plain form: the phone's next connectivity probe gets the "online" answer and the sheet can close.
        let acknowledge = "<form method=\"post\" action=\"/acknowledge?lang=\(self.language.code)\"><button>"
            + "\(self.strings.stayConnected.markupEscaped)</button></form>"
        return "<footer>\(acknowledge)<p>\(self.strings.openInBrowser.markupEscaped) <a href=\"\(url)\">\(url)</a></p></footer>"
    }

    /// A section with a heading, or the heading and "none right now" when it is empty. Screen readers reach the
    /// sections by their headings.
    func section(id: String, heading: String, content: String) -> String {
        let body = content.isEmpty ? "<p class=\"m\">\(self.strings.noneRightNow.markupEscaped)</p>" : content
        return "<section id=\"\(id)\"><h2>\(heading.markupEscaped)</h2>\(body)</section>"
    }
}
