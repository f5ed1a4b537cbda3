import EmergencyPortal
import KiezboxCore
import ReadingStore

/// An authority (civil protection, the district office): who may pull the full situation feed and post signed
/// announcements. Parsed from `[[authority]]`; the token is stored only as its SHA-256.
struct AuthoritySettings: Sendable, Hashable {
    var name: String
    /// Hex SHA-256 of the bearer token the authority sends (`kiezbox token generate` makes both).
    var tokenSHA256: String?
    /// The id and Ed25519 public key (base64) its announcements are signed with (`kiezbox keys generate`).
    var keyID: String?
    var publicKey: String?
}

/// `[portal]`, `[[help_point]]` and `[[authority]]`.
struct PortalConfiguration: Sendable, Hashable {
    var enabled = true
    var settings = PortalSettings()
    var authorities: [AuthoritySettings] = []
    /// `bulletin_max_posts` and `bulletin_max_size`, when set; the store's defaults otherwise.
    var bulletinMaximumPosts: Int?
    var bulletinMaximumBytes: Int64?

    static let keys = ["portal", "help_point", "authority", "metrics"]

    static func parse(_ root: TOMLTableReader) throws(ConfigurationError) -> PortalConfiguration {
        var portal = PortalConfiguration()
        if let table = try root.table("portal") {
            try table.rejectUnknownKeys([
                "enabled", "hostname", "listen", "port", "public_url", "user_portal_url", "acknowledged_answer",
                "acknowledgement", "post_lifetime", "post_burst", "posts_per_hour", "battery", "https", "https_port",
                "tokens_over_http", "wifi_post_burst", "wifi_posts_per_hour", "bulletin_max_posts", "bulletin_max_size",
                "header_timeout", "idle_timeout", "body_timeout", "connections_per_address", "connections",
            ])
            portal.enabled = try table.bool("enabled") ?? true
            var settings = PortalSettings()
            if let hostname = try table.string("hostname") {
                let labels = hostname.split(separator: ".", omittingEmptySubsequences: false)
                guard !labels.isEmpty, labels.allSatisfy({ !$0.isEmpty && $0.count <= 63 && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") } })
                else { throw table.error("hostname", "'\(hostname)' is not a host name; expected something like \"kiez.box\"") }
                settings.hostname = hostname.lowercased()
            }
            settings.bindAddress = try table.string("listen") ?? settings.bindAddress
            settings.port = try table.int("port", in: 1...65535) ?? settings.port
            let configuredHTTPSPort = try table.int("https_port", in: 1...65535)
            let httpsPort = configuredHTTPSPort ?? settings.httpsPort ?? 8443
            settings.httpsPort = try table.bool("https") ?? true ? httpsPort : nil
            if settings.httpsPort == settings.port {
                throw table.error(
                    configuredHTTPSPort == nil ? "port" : "https_port",
                    "\(httpsPort) is both the HTTP and the HTTPS port (https_port, default 8443); give each a port of its own"
                )
            }
            if let policy = try table.string("tokens_over_http") {
                guard let parsed = PlainHTTPTokens(rawValue: policy) else {
                    throw table.error(
                        "tokens_over_http",
                        "'\(policy)' is not one of \"refuse\" (default), \"loopback\" (only from the box itself) or \"allow\" (a trusted, encrypted mesh)"
                    )
                }
                settings.tokensOverPlainHTTP = parsed
            }
            if let url = try table.string("public_url") {
                guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                    throw table.error("public_url", "expected an http:// or https:// URL, e.g. \"http://kiez.box/\"")
                }
                settings.publicURL = url
            }
            if let url = try table.string("user_portal_url") {
                guard url.hasPrefix("https://") else {
                    throw table.error("user_portal_url", "RFC 8908 needs an https:// URL with a certificate phones trust")
                }
                settings.userPortalURL = url
            }
            if let answer = try table.string("acknowledged_answer") {
                switch answer {
                case "online": settings.acknowledgedClientsSeeOnline = true
                case "portal": settings.acknowledgedClientsSeeOnline = false
                default:
                    throw table.error(
                        "acknowledged_answer", "'\(answer)' is neither \"online\" (phones stay on the Wi-Fi quietly) nor \"portal\" (the sign-in sheet keeps coming back)"
                    )
                }
            }
            settings.acknowledgementLifetime = try table.duration("acknowledgement", atLeast: .seconds(60)) ?? settings.acknowledgementLifetime
            settings.postLifetime = try table.duration("post_lifetime", atLeast: .seconds(60)) ?? settings.postLifetime
            settings.postBurst = try table.int("post_burst", in: 1...100) ?? settings.postBurst
            settings.postsPerHour = try table.int("posts_per_hour", in: 1...3600) ?? settings.postsPerHour
            settings.wifiPostBurst = try table.int("wifi_post_burst", in: 1...10_000) ?? settings.wifiPostBurst
            settings.wifiPostsPerHour = try table.int("wifi_posts_per_hour", in: 1...100_000) ?? settings.wifiPostsPerHour
            portal.bulletinMaximumPosts = try table.int("bulletin_max_posts", in: 1...1_000_000)
            portal.bulletinMaximumBytes = try table.byteCount("bulletin_max_size", atLeast: 64 << 10)
            if let battery = try table.string("battery") {
                guard let chemistry = PortalBattery(rawValue: battery) else {
                    throw table.error(
                        "battery", "unknown battery '\(battery)'; known: " + PortalBattery.allCases.map(\.rawValue).joined(separator: ", ")
                    )
                }
                settings.battery = chemistry
            }
            var limits = settings.connectionLimits
            limits.headerTimeout = try table.duration("header_timeout", atLeast: .milliseconds(100)) ?? limits.headerTimeout
            limits.idleTimeout = try table.duration("idle_timeout", atLeast: .milliseconds(100)) ?? limits.idleTimeout
            limits.bodyTimeout = try table.duration("body_timeout", atLeast: .milliseconds(100)) ?? limits.bodyTimeout
            limits.maximumPerAddress = try table.int("connections_per_address", in: 1...100_000) ?? limits.maximumPerAddress
            limits.maximumTotal = try table.int("connections", in: 1...100_000) ?? limits.maximumTotal
            guard limits.maximumPerAddress <= limits.maximumTotal else {
                throw table.error(
                    "connections_per_address", "\(limits.maximumPerAddress) is more than connections = \(limits.maximumTotal), the cap for all clients together"
                )
            }
            settings.connectionLimits = limits
            portal.settings = settings
        }
        if let table = try root.table("metrics") {
            try table.rejectUnknownKeys(["allow"])
            var networks: [IPNetwork] = []
            for text in try table.strings("allow") {
                guard let network = IPNetwork(text) else {
                    throw table.error("allow", "'\(text)' is not an address or network; expected something like \"127.0.0.0/8\" or \"fd00::/8\"")
                }
                networks.append(network)
            }
            portal.settings.metricsAllowedNetworks = networks
        }
        for table in try root.arrayOfTables("help_point") {
            try table.rejectUnknownKeys(["name", "address", "offers", "latitude", "longitude"])
            let latitude = try table.double("latitude", in: -90...90)
            let longitude = try table.double("longitude", in: -180...180)
            if (latitude == nil) != (longitude == nil) {
                throw table.error(latitude == nil ? "latitude" : "longitude", "missing; latitude and longitude go together")
            }
            portal.settings.helpPoints.append(
                HelpPoint(
                    name: try table.requiredString("name"), address: try table.string("address") ?? "",
                    offers: try table.strings("offers"),
                    position: latitude.flatMap { latitude in longitude.map { GeoPosition(latitude: latitude, longitude: $0) } }
                )
            )
        }
        for table in try root.arrayOfTables("authority") {
            try table.rejectUnknownKeys(["name", "token_sha256", "key_id", "public_key"])
            let authority = AuthoritySettings(
                name: try table.requiredString("name"), tokenSHA256: try table.string("token_sha256"),
                keyID: try table.string("key_id"), publicKey: try table.string("public_key")
            )
            if let digest = authority.tokenSHA256 {
                do throws(AuthorityTokenError) {
                    _ = try AuthorityToken(name: authority.name, tokenSHA256: digest)
                } catch {
                    throw table.error("token_sha256", error.message)
                }
            }
            if authority.tokenSHA256 == nil && authority.publicKey == nil {
                throw table.error("token_sha256", "missing; an authority needs a token_sha256 (feed access) or a public_key (announcements), or both")
            }
            if (authority.keyID == nil) != (authority.publicKey == nil) {
                throw table.error(authority.keyID == nil ? "key_id" : "public_key", "missing; key_id and public_key go together")
            }
            if let keyID = authority.keyID, let publicKey = authority.publicKey {
                do throws(AnnouncementKeyError) {
                    _ = try AnnouncementKey(keyID: keyID, issuer: authority.name, publicKeyBase64: publicKey)
                } catch {
                    throw table.error(AnnouncementKey.isValidKeyID(keyID) ? "public_key" : "key_id", error.description)
                }
                if let other = portal.authorities.first(where: { $0.keyID == keyID }) {
                    throw table.error("key_id", "authority '\(other.name)' already uses key id '\(keyID)'; key ids must be unique")
                }
            }
            if portal.authorities.contains(where: { $0.name == authority.name }) {
                throw table.error("name", "a second authority is named '\(authority.name)'")
            }
            portal.authorities.append(authority)
        }
        return portal
    }

    /// The bulletin's budget in a store of `storeBytes`: what is configured, the defaults for the rest. Its share
    /// may be at most half the store, so readings always keep the other half.
    func bulletinBudget(storeBytes: Int64, in root: TOMLTableReader) throws(ConfigurationError) -> BulletinBudget {
        var budget = BulletinBudget.default(forStoreBytes: storeBytes)
        budget.maximumPosts = self.bulletinMaximumPosts ?? budget.maximumPosts
        if let bytes = self.bulletinMaximumBytes, let table = try root.table("portal") {
            guard bytes <= storeBytes / 2 else {
                throw table.error(
                    "bulletin_max_size", "\(bytes) bytes is more than half of [store] max_size (\(storeBytes) bytes); readings need the rest")
            }
            budget.maximumBytes = bytes
        }
        return budget
    }

    /// The authorities' announcement keys (checked while parsing).
    var announcementKeys: [AnnouncementKey] {
        self.authorities.compactMap { authority in
            guard let keyID = authority.keyID, let publicKey = authority.publicKey else { return nil }
            return try? AnnouncementKey(keyID: keyID, issuer: authority.name, publicKeyBase64: publicKey)
        }
    }

    /// The authorities' feed tokens (checked while parsing).
    var authorityTokens: AuthorityTokens {
        AuthorityTokens(self.authorities.compactMap { authority in
            authority.tokenSHA256.flatMap { try? AuthorityToken(name: authority.name, tokenSHA256: $0) }
        })
    }
}
