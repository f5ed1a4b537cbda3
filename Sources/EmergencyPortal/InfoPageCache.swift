import Foundation
import Synchronization

/// Rendered info pages, per language and snapshot version, split around the per-client form token.
///
/// Rendering a page costs far more than sending it; during a phone storm every client of one language would get
/// the same bytes but for its token. The page is rendered once with a marker in the token's place and kept as the
/// pieces between the markers; a request joins the pieces with its own token.
final class InfoPageCache: Sendable {
    /// Stands in for the token while rendering: base64url-safe, nothing a page would otherwise contain, and as
    /// long as a real token (32 characters), so the page's byte budget holds once the token is in.
    static let marker = "kzTOKENxMARKERx7d5f9a7c1e3b08a4z"
    private let entries = Mutex<[PortalLanguage: (version: Int, pieces: [[UInt8]])]>([:])

    /// The page in `language` for snapshot `version`, with `token`; `render` renders it with a given token.
    /// Pages that are not `cacheable` (an outcome notice, all posts) are rendered for the one request.
    func page(
        language: PortalLanguage, cacheable: Bool, version: Int, token: String, render: (String) -> String
    ) -> [UInt8] {
        if !cacheable { return Array(render(token).utf8) }
        let cached = self.entries.withLock { $0[language] }
        let pieces: [[UInt8]]
        if let cached, cached.version == version {
            pieces = cached.pieces
        } else {
            pieces = render(Self.marker).components(separatedBy: Self.marker).map { Array($0.utf8) }
            self.entries.withLock { entries in
                if (entries[language]?.version ?? Int.min) < version { entries[language] = (version, pieces) }
            }
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
