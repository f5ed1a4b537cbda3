import Foundation
import HTTPTypes
import Hummingbird
import KiezboxCore
import Logging
import NIOCore
import ReadingStore

/// The request context of the portal: Hummingbird's core context plus the client's address, which is how the
/// portal tells phones apart (acknowledgement, form tokens, rate limits).
public struct PortalRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// The box's address the phone reached: a Host that names it is the portal; any other address is not (the
    /// firewall sends every port-80 request to the box, whatever address the phone asked for).
    public let localAddress: SocketAddress?
    /// Whether the request came over TLS; set by ``CaptiveMiddleware`` from the application it belongs to.
    public internal(set) var transport: PortalTransport = .http

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
        self.localAddress = source.channel.localAddress
    }

    /// Form posts and API calls are small; anything larger is refused before it is read.
    public var maxUploadSize: Int { 16 * 1024 }

    /// The client's address as text ("10.42.0.23", "fd00::17"); "unknown" for a Unix socket.
    var client: String { self.remoteAddress?.ipAddress ?? "unknown" }
}

/// The emergency portal's HTTP server: captive-portal probes and redirects, the info page and bulletin, the
/// RFC 8908 API, the situation feed and `/metrics`, as one Hummingbird application (a `Service`).
public final class PortalServer: Sendable {
    public let settings: PortalSettings
    public let content: PortalContent
    public let clients: CaptiveClients
    public let metrics: PortalMetrics
    let store: ReadingStore
    let tokens: FormTokens
    let limiter: PostRateLimiter
    /// The whole Wi-Fi's allowance, one bucket for every phone together.
    let wifiLimiter: PostRateLimiter
    let pages: InfoPageCache
    /// Rendered feeds per route, access and page, for the current snapshot.
    let feeds = RenderedCache<FeedKey, RenderedFeed>(capacity: 64)
    let authorities: AuthorityTokens
    /// Wrong tokens per address: logged and slowed down.
    let attempts: AuthorityAttempts
    /// Verifies and keeps signed announcements; `nil` when no authority key is configured.
    public let desk: AnnouncementDesk?
    /// Signed crisis commands by LoRaWAN downlink, counted in `/metrics`; `nil` without a LoRaWAN uplink.
    let crisisDownlinks: CrisisDownlinkReceiver?
    let now: @Sendable () -> Date
    let logger: Logger
    /// Open connections per client and in all, across restarts of the listener.
    let admission: ConnectionAdmission

    /// - Parameters:
    ///   - now: the wall clock (injected so tests can move it).
    ///   - authorities: who may see the full situation feed and post announcements.
    ///   - desk: the announcement desk (verification, storage); `nil` when no authority key is configured.
    public init(
        settings: PortalSettings, identity: BoxIdentity, store: ReadingStore, authorities: AuthorityTokens = AuthorityTokens([]),
        desk: AnnouncementDesk? = nil, crisisDownlinks: CrisisDownlinkReceiver? = nil, now: @escaping @Sendable () -> Date = { Date() },
        logger: Logger
    ) {
        self.settings = settings
        self.crisisDownlinks = crisisDownlinks
        self.store = store
        self.clients = CaptiveClients(acknowledgementLifetime: settings.acknowledgementLifetime.timeInterval)
        self.content = PortalContent(
            identity: identity, settings: settings, store: store, clients: self.clients,
            announcements: { now in
                do { return try desk?.current(at: now) ?? [] } catch {
                    logger.warning("portal could not read the announcements", metadata: ["error": "\(error)"])
                    return []
                }
            },
            logger: logger
        )
        self.desk = desk
        self.metrics = PortalMetrics()
        self.tokens = FormTokens()
        self.limiter = PostRateLimiter(burst: settings.postBurst, perHour: settings.postsPerHour)
        self.wifiLimiter = PostRateLimiter(burst: settings.wifiPostBurst, perHour: settings.wifiPostsPerHour, capacity: 1)
        self.pages = InfoPageCache()
        self.authorities = authorities
        self.attempts = AuthorityAttempts(policy: settings.authorityAttempts, logger: logger)
        self.now = now
        self.logger = logger
        var limits = settings.connectionLimits
        // The largest body any route takes: form posts and signed announcements.
        limits.maximumBodyBytes = max(16 * 1024, AnnouncementEnvelope.maximumBytes)
        self.admission = ConnectionAdmission(limits: limits, listener: "the emergency portal", logger: logger)
    }

    /// The Hummingbird application serving the portal. `onListening` receives the bound port (useful with port 0).
    public func application(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        Application(
            router: self.router(),
            server: .guardedHTTP1(admission: self.admission),
            // The listen queue holds as many connections as the portal serves at once: when the emergency Wi-Fi
            // comes up, hundreds of phones probe for a captive portal within a second, and with Hummingbird's 256
            // a loaded box dropped SYNs, so a phone waited for the 3 s, 7 s ... retransmits.
            configuration: .init(
                address: .hostname(self.settings.bindAddress, port: self.settings.port), serverName: "kiezbox",
                backlog: self.settings.connectionLimits.maximumTotal),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) },
            logger: self.logger
        )
    }

    func router(transport: PortalTransport = .http) -> Router<PortalRequestContext> {
        let router = Router(context: PortalRequestContext.self)
        router.add(middleware: CaptiveMiddleware(server: self, transport: transport))
        router.get("/") { request, context in self.infoPage(request, context: context, outcome: nil) }
        router.head("/") { request, context in self.infoPage(request, context: context, outcome: nil) }
        router.post("/bulletin") { request, context in try await self.postBulletin(request, context: context) }
        router.post("/acknowledge") { request, context in self.acknowledge(request, context: context) }
        router.get("/api/captive") { request, context in self.captiveAPI(context: context) }
        router.get(RouterPath(SituationFeed.path)) { request, context in
            self.feed(request, context: context, route: SituationFeed.path, mediaType: SituationFeed.mediaType) { snapshot, access, page in
                SituationFeed.geoJSON(snapshot, access: access, page: page)
            }
        }
        router.get("/api/v1/alerts.cap") { request, context in
            self.feed(request, context: context, route: "/api/v1/alerts.cap", mediaType: CAPFeed.mediaType, requestsOnly: true) { snapshot, access, page in
                CAPFeed.alertsCAP(snapshot, access: access, sender: CAPFeed.defaultSender(for: snapshot.identity), page: page)
            }
        }
        router.get(RouterPath(WarningFeed.path)) { _, _ in
            let snapshot = self.content.snapshot(at: self.now()).snapshot
            return Self.response(200, "application/json", bytes: Array(WarningFeed.json(snapshot.warnings, identity: snapshot.identity, now: snapshot.now)))
        }
        router.get(RouterPath(WarningFeed.path + "/:identifier")) { _, context in
            let snapshot = self.content.snapshot(at: self.now()).snapshot
            guard let identifier = context.parameters.get("identifier"),
                let found = WarningFeed.message(identifier: identifier, in: snapshot.warnings, identity: snapshot.identity)
            else {
                return Self.response(404, "text/plain; charset=utf-8", text: "no such warning message on this box (any more)\n")
            }
            let alert = WarningFeed.alert(
                found.warning, found.message, identity: snapshot.identity, mode: snapshot.mode, sender: CAPFeed.defaultSender(for: snapshot.identity))
            return Self.response(200, CAPFeed.mediaType, bytes: Array(alert))
        }
        router.post("/api/v1/announcements") { request, context in try await self.postAnnouncement(request, context: context) }
        router.get("/metrics") { _, context in
            // For the box's operators, not for whoever is on the open Wi-Fi: every scrape costs the box work.
            guard let client = context.remoteAddress?.ipAddress, self.settings.metricsAllowedNetworks.contains(where: { $0.contains(client) }) else {
                return Self.response(403, "text/plain; charset=utf-8", text: "/metrics is not served to this network (see [metrics] allow)\n")
            }
            let snapshot = self.content.snapshot(at: self.now()).snapshot
            if let crisisDownlinks = self.crisisDownlinks { self.metrics.setCrisisDownlinkCounts(crisisDownlinks.counts()) }
            return Self.response(200, "text/plain; version=0.0.4; charset=utf-8", bytes: self.metrics.render(
                    store: self.store, snapshot: snapshot, desk: self.desk, loRaWAN: self.settings.loRaWANFairUse,
                    meshtasticAirtimeShare: self.settings.meshtasticAirtimeShare))
        }
        return router
    }

    // MARK: - Routes

    func infoPage(_ request: Request, context: PortalRequestContext, outcome: BulletinOutcome?, status: Int = 200) -> Response {
        let query = request.uri.queryParameters
        let language = PortalLanguage.negotiate(
            acceptLanguage: request.headers[.acceptLanguage], requested: query["lang"].map(String.init)
        )
        let now = self.now()
        let (snapshot, version) = self.content.snapshot(at: now)
        let outcome = outcome ?? query["outcome"].flatMap { BulletinOutcome(queryValue: String($0)) }
        let showAllPosts = query["all"] == "1"
        // A page of `?all=1`: the posts before `before` (a post id), newest first.
        let before = showAllPosts ? query["before"].flatMap { Int64(String($0)) }.map { max(0, $0) } ?? Int64.max : nil
        let token = self.tokens.issue(for: context.client, at: now)
        let page = self.pages.page(
            key: InfoPageCache.Key(language: language, allPosts: before), cacheable: outcome == nil, version: version, token: token,
            render: { token in
                var allPosts: (posts: [BulletinPost], more: Bool)?
                if let before {
                    do {
                        let posts = try self.store.openBulletinPosts(at: snapshot.now, before: before, limit: InfoPage.allPostsPerPage + 1)
                        allPosts = (Array(posts.prefix(InfoPage.allPostsPerPage)), posts.count > InfoPage.allPostsPerPage)
                    } catch {
                        self.logger.warning("portal could not read the bulletin", metadata: ["error": "\(error)"])
                    }
                }
                return InfoPage.render(
                    snapshot: snapshot, language: language, form: BulletinFormContext(token: token, outcome: outcome),
                    portalURL: self.settings.portalURL, showAllPosts: showAllPosts, allPosts: allPosts
                )
            }
        )
        var response = Self.response(status, "text/html; charset=utf-8", bytes: page)
        response.headers[.cacheControl] = "no-store"
        response.headers[.contentLanguage] = language.rawValue
        return response
    }

    func postBulletin(_ request: Request, context: PortalRequestContext) async throws -> Response {
        let now = self.now()
        let fields: [String: String]
        do {
            guard request.headers[.contentType]?.lowercased().hasPrefix("application/x-www-form-urlencoded") ?? false else {
                return Self.response(415, "text/plain; charset=utf-8", text: "send the form as application/x-www-form-urlencoded\n")
            }
            let body = try await request.body.collect(upTo: context.maxUploadSize)
            fields = try FormDecoding.fields(body)
        } catch let error as any HTTPResponseError {
            // Too large (NIOTooManyBytesError answers 413).
            return Self.response(error.status.code, "text/plain; charset=utf-8", text: "\(error.status.reasonPhrase)\n")
        } catch {
            return self.refuse(.invalid, request, context: context)
        }
        let submission: BulletinSubmission
        do {
            submission = try BulletinSubmission(fields: fields)
        } catch {
            return self.refuse(error, request, context: context)
        }
        guard self.tokens.isValid(submission.token, for: context.client, at: now) else {
            return self.refuse(.badToken, request, context: context)
        }
        // The phone's own allowance first: a phone that has used its own cannot use up the whole Wi-Fi's.
        guard self.limiter.allow(context.client, at: now) else { return self.refuse(.rateLimited, request, context: context) }
        guard self.wifiLimiter.allow("wifi", at: now) else { return self.refuse(.busy, request, context: context) }
        do {
            _ = try await self.store.addBulletinPost(
                kind: submission.kind, category: submission.category, text: submission.text, place: submission.place,
                createdAt: now, expiresAt: now.addingTimeInterval(self.settings.postLifetime.timeInterval)
            )
        } catch let error as ReadingStoreError where error.code == .bulletinFull {
            self.logger.notice("bulletin post refused: the bulletin is at its budget", metadata: ["detail": "\(error.detail)"])
            return self.refuse(.busy, request, context: context)
        } catch {
            self.logger.error("could not store a bulletin post", metadata: ["error": "\(error)"])
            return Self.response(503, "text/plain; charset=utf-8", text: "the bulletin cannot be written right now; try again\n")
        }
        self.content.invalidate()
        // Post/redirect/get: reloading the page does not post again.
        let language = submission.language.flatMap(PortalLanguage.init(rawValue:)) ?? .de
        return Self.redirect("/?lang=\(language.code)&outcome=\(BulletinOutcome.posted.queryValue)#outcome", status: 303)
    }

    private func refuse(_ refusal: BulletinRefusal, _ request: Request, context: PortalRequestContext) -> Response {
        self.metrics.countRefusedPost(refusal)
        return self.infoPage(request, context: context, outcome: .refused(refusal), status: refusal.httpStatus)
    }

    func acknowledge(_ request: Request, context: PortalRequestContext) -> Response {
        self.clients.acknowledge(context.client, at: self.now())
        let language = request.uri.queryParameters["lang"].flatMap { PortalLanguage(rawValue: String($0)) }
        return Self.redirect(language.map { "/?lang=\($0.rawValue)" } ?? "/", status: 303)
    }

    /// RFC 8908: whether this client is still captive, and where the portal is.
    func captiveAPI(context: PortalRequestContext) -> Response {
        let captive = !self.clients.isAcknowledged(context.client, at: self.now())
        var object: [String: Any] = ["captive": captive, "user-portal-url": self.settings.userPortalURL ?? self.settings.portalURL]
        if !captive {
            object["venue-info-url"] = self.settings.portalURL
        }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        var response = Self.response(200, "application/captive+json", bytes: Array(data))
        response.headers[.cacheControl] = "private"
        return response
    }

    /// The situation feeds: everything for an authority's bearer token, aggregates for anyone else. A token that is
    /// sent but not known is refused (401), so an authority notices a wrong token instead of silently seeing less;
    /// tokens over plain HTTP and from an address that must wait are refused before they are compared
    /// (``checkBearerToken(_:context:)``).
    ///
    /// An authority gets the open posts a page at a time (``feedPageSize``; help requests first, oldest first, so
    /// no volume of newer posts pushes them out of the first page); `after` names the next page, and a `Link`
    /// header with `rel="next"` says where it is. Each page is rendered once per snapshot.
    func feed(
        _ request: Request, context: PortalRequestContext, route: String, mediaType: String, requestsOnly: Bool = false,
        render: (PortalSnapshot, FeedAccess, BulletinFeedPage?) -> Data
    ) -> Response {
        let access: FeedAccess
        switch self.checkBearerToken(request, context: context) {
        case .absent: access = .public
        case .authority(let name): access = .authority(name: name)
        case .refused(let response): return response
        }
        let after = request.uri.queryParameters["after"]
        let cursor = after.flatMap { BulletinCursor(queryValue: $0) }
        if after != nil, cursor == nil {
            return Self.response(400, "text/plain; charset=utf-8", text: "after: expected a value from a feed's next link, such as r123\n")
        }
        let (snapshot, version) = self.content.snapshot(at: self.now())
        let key = FeedKey(route: route, authority: access.seesPostText, after: cursor)
        let feed = self.feeds.value(for: key, version: version) {
            let page = access.seesPostText ? self.authorityPage(at: snapshot.now, after: cursor, requestsOnly: requestsOnly) : nil
            return RenderedFeed(body: Array(render(snapshot, access, page)), next: page?.next)
        }
        var response = Self.response(200, mediaType, bytes: feed.body)
        if let next = feed.next {
            response.headers[.init("Link")!] = "<\(route)?after=\(next.queryValue)>; rel=\"next\""
        }
        response.headers[.cacheControl] = "no-store"
        response.headers[.vary] = "Authorization"
        return response
    }

    /// Posts per page of the authorities' feeds.
    static let feedPageSize = 100

    /// One page of the posts an authority sees; `nil` (and logged) when the store cannot be read.
    private func authorityPage(at now: Date, after: BulletinCursor?, requestsOnly: Bool) -> BulletinFeedPage? {
        if requestsOnly, after?.requestsDone == true { return BulletinFeedPage(posts: [], next: nil) }
        do {
            var posts = try self.store.openBulletinPostsForAuthorities(at: now, after: after, limit: Self.feedPageSize + 1)
            if requestsOnly { posts = posts.filter { $0.kind == .request } }
            let more = posts.count > Self.feedPageSize
            posts = Array(posts.prefix(Self.feedPageSize))
            return BulletinFeedPage(posts: posts, next: more ? posts.last.map(BulletinCursor.init(after:)) : nil)
        } catch {
            self.logger.warning("portal could not read the bulletin", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// An authority posts a signed announcement (the envelope `kiezbox announce sign` prints). The bearer token
    /// says who may post; the signature says who wrote it: both are checked.
    func postAnnouncement(_ request: Request, context: PortalRequestContext) async throws -> Response {
        if self.authoritySideClosed(to: context) { return Self.authoritySideRefusal }
        let name: String
        switch self.checkBearerToken(request, context: context) {
        case .authority(let authority): name = authority
        case .refused(let response): return response
        case .absent:
            var response = Self.response(401, "text/plain; charset=utf-8", text: "an authority's bearer token is required\n")
            response.headers[.wwwAuthenticate] = "Bearer realm=\"kiezbox\""
            return response
        }
        guard let desk = self.desk else {
            return Self.response(409, "text/plain; charset=utf-8", text: "this box has no authority keys configured; it cannot verify announcements\n")
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: AnnouncementEnvelope.maximumBytes)
        } catch let error as any HTTPResponseError {
            return Self.response(error.status.code, "text/plain; charset=utf-8", text: "an announcement is at most \(AnnouncementEnvelope.maximumBytes) bytes\n")
        }
        let outcome: AnnouncementOutcome
        do {
            outcome = try await desk.accept(Data(body.readableBytesView), via: .api, now: self.now())
        } catch {
            self.logger.error("could not store an announcement", metadata: ["error": "\(error)"])
            return Self.response(503, "text/plain; charset=utf-8", text: "the announcement could not be stored; try again\n")
        }
        switch outcome {
        case .accepted(let accepted):
            self.content.invalidate()
            self.logger.notice(
                "official announcement accepted", metadata: ["id": "\(accepted.announcement.id)", "issuer": "\(accepted.announcement.issuer)", "posted_by": "\(name)"])
            return Self.response(201, "text/plain; charset=utf-8", text: "accepted: \(accepted.announcement.id)\n")
        case .alreadyKnown(let announcement):
            return Self.response(200, "text/plain; charset=utf-8", text: "already known: \(announcement.id)\n")
        case .rejected(let reason, let detail):
            self.logger.warning("announcement refused", metadata: ["reason": "\(reason)", "posted_by": "\(name)"])
            return Self.response(reason == .tooLarge ? 413 : 422, "text/plain; charset=utf-8", text: "refused (\(reason)): \(detail)\n")
        }
    }

    /// Whether the request reached the box at its emergency Wi-Fi address, where the authority side is not served
    /// (unless `[wifi] authority_api`): an open Wi-Fi is no place to try authority tokens or post announcements.
    func authoritySideClosed(to context: PortalRequestContext) -> Bool {
        guard !self.settings.authorityAPIOnWiFi, let wifiAddress = self.settings.wifiAddress,
            let reached = context.localAddress?.ipAddress
        else { return false }
        return canonicalIPAddress(reached) == canonicalIPAddress(wifiAddress)
    }

    static var authoritySideRefusal: Response {
        Self.response(
            403, "text/plain; charset=utf-8",
            text: "announcements and the authorities' feed are not on the emergency Wi-Fi; use the box's other network "
                + "(the mesh, Ethernet), or set [wifi] authority_api = true in kiezbox.toml\n"
        )
    }

    // MARK: - Responses

    static func response(_ status: Int, _ contentType: String?, text: String) -> Response {
        self.response(status, contentType, bytes: Array(text.utf8))
    }

    static func response(_ status: Int, _ contentType: String?, bytes: [UInt8]) -> Response {
        var headers = HTTPFields()
        if let contentType { headers[.contentType] = contentType }
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func redirect(_ location: String, status: Int = 302) -> Response {
        var response = self.response(status, nil, bytes: [])
        response.headers[.location] = location
        response.headers[.cacheControl] = "no-store"
        return response
    }
}

/// In front of every route: requests for other host names are connectivity probes or pages a phone tried to
/// open; they get the portal (a redirect) or, for an acknowledged phone's probe, the exact "online" answer.
/// Requests for the portal's own name (or the box's address) go on to the routes. Every answer is counted.
struct CaptiveMiddleware: RouterMiddleware {
    typealias Context = PortalRequestContext
    let server: PortalServer
    let transport: PortalTransport

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let host = Self.hostName(request.head.authority)
        let path = request.uri.path
        let now = self.server.now()
        let acknowledged = self.server.clients.seen(context.client, at: now)
        var context = context
        context.transport = self.transport
        // Over HTTPS every name is the portal: only authorities come there, by whatever name the mesh gives the box.
        if self.transport == .http, !self.isPortalHost(host, boxAddress: context.localAddress?.ipAddress) {
            let probe = ConnectivityProbe.classify(host: host, path: path)
            let response: Response
            if let probe, acknowledged, self.server.settings.acknowledgedClientsSeeOnline, probe != .windowsRedirect {
                let answer = probe.onlineAnswer
                var online = PortalServer.response(answer.status, answer.contentType, text: answer.body)
                for header in probe.onlineHeaders {
                    if let name = HTTPField.Name(header.name) { online.headers[name] = header.value }
                }
                response = online
            } else {
                response = PortalServer.redirect(self.server.settings.portalURL)
            }
            self.server.metrics.countRequest(route: probe.map { "probe:\($0.rawValue)" } ?? "redirect", status: response.status.code)
            return response
        }
        let response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            // Unknown paths and methods on the portal's own name: a plain 4xx, never a stack of errors.
            self.server.metrics.countRequest(route: "unmatched", status: error.status.code)
            throw error
        }
        self.server.metrics.countRequest(route: context.endpointPath ?? "unmatched", status: response.status.code)
        return response
    }

    /// The portal's own name, `localhost`, or the address of the box the phone reached are the portal; any other
    /// name or address is somewhere the phone wanted to go.
    func isPortalHost(_ host: String, boxAddress: String?) -> Bool {
        if host.isEmpty || host == self.server.settings.hostname || host == "localhost" { return true }
        guard let boxAddress, let asked = canonicalIPAddress(host) else { return false }
        return asked == canonicalIPAddress(boxAddress)
    }

    /// The host part of an authority ("kiez.box:8080" → "kiez.box", "[fd00::1]:80" → "fd00::1"), lowercased.
    static func hostName(_ authority: String?) -> String {
        guard var host = authority?.lowercased() else { return "" }
        if host.hasPrefix("["), let end = host.firstIndex(of: "]") {
            return String(host[host.index(after: host.startIndex)..<end])
        }
        if let colon = host.lastIndex(of: ":") { host = String(host[..<colon]) }
        return host.hasSuffix(".") ? String(host.dropLast()) : host
    }

}

/// An IP address as text that is equal for equal addresses ("0:0::1" is "::1"), with an IPv4 client of a dual-stack
/// socket ("::ffff:10.42.0.1") as the IPv4 address it is; `nil` for anything that is not an address.
func canonicalIPAddress(_ text: String) -> String? {
    guard let address = try? SocketAddress(ipAddress: text, port: 0), let canonical = address.ipAddress else { return nil }
    let mappedPrefix = "::ffff:"
    if canonical.lowercased().hasPrefix(mappedPrefix), canonical.contains(".") { return String(canonical.dropFirst(mappedPrefix.count)) }
    return canonical
}

/// `application/x-www-form-urlencoded` bodies (WHATWG URL standard, "application/x-www-form-urlencoded parsing"),
/// strictly: invalid percent-escapes, invalid UTF-8 and repeated fields are refused instead of guessed at.
enum FormDecoding {
    struct Malformed: Error {}

    static func fields(_ body: ByteBuffer) throws -> [String: String] {
        guard let text = body.getString(at: body.readerIndex, length: body.readableBytes), text.utf8.count == body.readableBytes
        else { throw Malformed() }
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = decode(parts[0]), let value = decode(parts.count > 1 ? parts[1] : ""), fields[name] == nil else {
                throw Malformed()
            }
            fields[name] = value
        }
        return fields
    }

    private static func decode(_ part: Substring) -> String? {
        let spaced = part.replacingOccurrences(of: "+", with: " ")
        return spaced.contains("%") ? spaced.removingPercentEncoding : spaced
    }
}

/// Which rendering of a feed: the route, whether with posts (an authority) or counts only, and which page.
struct FeedKey: Hashable, Sendable {
    var route: String
    var authority: Bool
    var after: BulletinCursor?
}

/// A feed as rendered, and where its next page begins.
struct RenderedFeed: Sendable {
    var body: [UInt8]
    var next: BulletinCursor?
}
