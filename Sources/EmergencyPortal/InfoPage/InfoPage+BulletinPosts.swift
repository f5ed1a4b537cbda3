import ReadingStore

extension InfoPageRenderer {
    /// The posts shown, a link to all when some are left out, and the end of the bulletin section.
    func postList(_ posts: [BulletinPost], total: Int) -> String {
        var html = "<h3 id=\"posts\">\(self.strings.postsHeading.markupEscaped)</h3>"
        if posts.isEmpty && total == 0 {
            html += "<p class=\"m\">\(self.strings.noneRightNow.markupEscaped)</p>"
        } else if !posts.isEmpty {
            html += "<ul>" + posts.map(self.postItem).joined() + "</ul>"
        }
        if posts.count < total {
            html += "<p><a href=\"?lang=\(self.language.code)&amp;all=1#posts\">\(self.strings.showAllPosts(total).markupEscaped)</a></p>"
        }
        return html + "</section>"
    }

    /// The newest posts, at most ``InfoPage/postsOnPage``, whose items fit in `bytes` (the `<ul>` included).
    func postsFitting(bytes: Int) -> [BulletinPost] {
        var remaining = bytes - "<ul></ul>".utf8.count
        var fitting: [BulletinPost] = []
        for post in self.snapshot.bulletin.prefix(InfoPage.postsOnPage) {
            let size = self.postItem(post).utf8.count
            guard size <= remaining else { break }
            remaining -= size
            fitting.append(post)
        }
        return fitting
    }

    /// One post: what kind, about what, the neighbour's words (escaped; `dir="auto"` so Arabic text reads
    /// right in an English page and the other way round), where, and how old.
    private func postItem(_ post: BulletinPost) -> String {
        var label = self.strings.postKind(post.kind)
        if let category = post.category, post.kind != .safe {
            label += " · " + self.strings.category(category)
        }
        var html = "<li><b>\(label.markupEscaped)</b> <span class=\"m\">\(self.format.age(of: post.createdAt).markupEscaped)</span>"
        html += "<p class=\"t\" dir=\"auto\">\(post.text.markupEscaped)</p>"
        if !post.place.isEmpty {
            html += "<p class=\"m\" dir=\"auto\">\(post.place.markupEscaped)</p>"
        }
        return html + "</li>"
    }
}
