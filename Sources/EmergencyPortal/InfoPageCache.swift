import Foundation
import Synchronization

/// Rendered responses per key for one snapshot version: rendering costs far more than sending, and during a
/// phone storm (or a client looping on a large page) every request for the same key gets the same bytes.
///
/// An entry holds until the snapshot version changes. At most ``capacity`` entries are kept: past it, entries of
/// older versions go first, then arbitrary ones, so memory stays bounded whatever keys clients ask for.
final class RenderedCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    let capacity: Int
    private let entries = Mutex<[Key: (version: Int, value: Value)]>([:])

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// The value for `key` at snapshot `version`, rendered by `render` when not cached yet.
    func value(for key: Key, version: Int, render: () -> Value) -> Value {
        if let cached = self.entries.withLock({ $0[key] }), cached.version == version { return cached.value }
        let value = render()
        self.entries.withLock { entries in
            guard (entries[key]?.version ?? Int.min) < version else { return }
            if entries.count >= self.capacity {
                entries = entries.filter { $0.value.version >= version }
                while entries.count >= self.capacity, let any = entries.keys.first { entries[any] = nil }
            }
            entries[key] = (version, value)
        }
        return value
    }
}

/// Rendered info pages, per language, page of `?all=1` and snapshot version, split around the per-client form
/// token.
///
/// Every client of one language gets the same bytes but for its token. The page is rendered once with a marker
/// in the token's place and kept as the pieces between the markers; a request joins the pieces with its own token.
final class InfoPageCache: Sendable {
    /// Stands in for the token while rendering: base64url-safe, nothing a page would otherwise contain, and as
    /// long as a real token (32 characters), so the page's byte budget holds once the token is in.
    static let marker = "kzTOKENxMARKERx7d5f9a7c1e3b08a4z"

    /// Which page: the front page (`allPosts` nil) or a page of `?all=1` (posts before `allPosts`, `Int64.max` for
    /// the first), in one language.
    struct Key: Hashable, Sendable {
        var language: PortalLanguage
        var allPosts: Int64?
    }

    /// Five languages times the front page and a few pages of `?all=1` each.
    private let pieces = RenderedCache<Key, [[UInt8]]>(capacity: 64)

    /// The page `key` for snapshot `version`, with `token`; `render` renders it with a given token.
    /// Pages that are not `cacheable` (an outcome notice) are rendered for the one request.
    func page(key: Key, cacheable: Bool, version: Int, token: String, render: (String) -> String) -> [UInt8] {
        if !cacheable { return Array(render(token).utf8) }
        let pieces = self.pieces.value(for: key, version: version) {
            render(Self.marker).components(separatedBy: Self.marker).map { Array($0.utf8) }
        }
        let tokenBytes = Array(token.utf8)
        var page: [UInt8] = []
        page.reserveCapacity(pieces.reduce(0) { $0 + $1.count } + tokenBytes.count * (pieces.count - 1))
        for (index, piece) in pieces.enumerated() {
            if index > 0 { page += tokenBytes }
            page += piece
        }
        return page
    }
}
