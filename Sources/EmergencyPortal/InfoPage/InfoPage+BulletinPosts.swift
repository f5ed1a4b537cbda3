import ReadingStore

extension InfoPageRenderer {
    /// The posts shown, a link to all when some are left out (or, on a page of `?all=1`, to the posts older than
    /// `olderThan`), and the end of the bulletin section.
    func postList(_ posts: [BulletinPost], total: Int, olderThan: Int64? = nil) -> String {
        var html = "<h3 id=\"posts\">\(self.strings.postsHeading.markupEscaped)</h3>"
        if posts.isEmpty && total == 0 {
            html += "<p class=\"m\">\(self.strings.noneRightNow.markupEscaped)</p>"
        } else if !posts.isEmpty {
            html += "<ul>" + posts.map(self.postItem).joined() + "</ul>"
        }
        if let olderThan {
            html += "<p><a href=\"?lang=\(self.language.code)&amp;all=1&amp;before=\(olderThan)#posts\">\(self.strings.olderPosts.markupEscaped)</a></p>"
        } else if posts.count < total {
            html += "<p><a href=\"?lang=\(self.language.code)&amp;all=1#posts\">\(self.strings.showAllPosts(total).markupEscaped)</a></p>"
        }
        return html + "</section>"
    }

    /// The newest posts, at most ``InfoPage/postsOnPage``, whose items fit in `bytes` (the `<ul>` included). A post
    /// too large for what is left is passed over, not the end of the list: one post cannot empty the front page.
    func postsFitting(bytes: Int) -> [BulletinPost] {
        var remaining = bytes - "<ul></ul>".utf8.count
        var fitting: [BulletinPost] = []
        for post in self.snapshot.bulletin where fitting.count < InfoPage.postsOnPage {
            let size = self.postItem(post).utf8.count
            guard size <= remaining else { continue }
            remaining -= size
            fitting.append(post)
        }
        return fitting
    }

    /// `posts` from the first, as long as they fit in `bytes`; at least the first, so paging always moves on.
    func postsInOrder(_ posts: [BulletinPost], bytes: Int) -> [BulletinPost] {
        var remaining = bytes
        var shown: [BulletinPost] = []
        for post in posts {
            let size = self.postItem(post).utf8.count
            guard size <= remaining || shown.isEmpty else { break }
            remaining -= size
            shown.append(post)
        }
        return shown
    }

    /// One post: what kind, about what, the neighbour's words (escaped; `dir="auto"` so Arabic text reads
    /// right in an English page and the other way round), where, and how old.
    private func postItem(_ post: BulletinPost) -> String {
        var label = self.strings.postKind(post.kind)
        if let category = post.category, post.kind != .safe {
            label += " · " + self.strings.category(category)
        }
        var meta = self.format.age(of: post.createdAt)
        // A post relayed from elsewhere names its origin (a pilot box, another Kiezbox), in any language.
        if let origin = post.origin { meta += " · \(origin)" }
        var html = "<li><b>\(label.markupEscaped)</b> <span class=\"m\">\(meta.markupEscaped)</span>"
        html += "<p class=\"t\" dir=\"auto\">\(post.text.markupEscaped)</p>"
        if !post.place.isEmpty {
            html += "<p class=\"m\" dir=\"auto\">\(post.place.markupEscaped)</p>"
        }
        return html + "</li>"
    }
}
