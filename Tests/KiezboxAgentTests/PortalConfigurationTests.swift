import Crypto
import EmergencyPortal
import Foundation
import KiezboxCore
import ReadingStore
import Testing

@testable import KiezboxAgent

@Suite("Portal, authority and mode configuration")
struct PortalConfigurationTests {
    static let box = """
        [box]
        id = "wrangelkiez-01"
        district = "friedrichshain-kreuzberg"

        """

    func parse(_ rest: String) throws -> KiezboxConfiguration {
        try KiezboxConfiguration.parse(Self.box + rest, file: "kiezbox.toml")
    }

    func error(_ rest: String) -> ConfigurationError? {
        do {
            _ = try self.parse(rest)
            return nil
        } catch let error as ConfigurationError {
            return error
        } catch {
            return nil
        }
    }

    @Test("a full portal section, help points, an authority and mode hooks parse into typed values")
    func valid() throws {
        let token = AuthorityTokens.hash(token: "secret-token")
        let key = Data(repeating: 7, count: 32).base64EncodedString()
        let configuration = try self.parse(
            """
            [portal]
            port = 80
            hostname = "Kiez.Box"
            public_url = "http://kiez.box/"
            acknowledged_answer = "portal"
            acknowledgement = "6h"
            post_lifetime = "12h"
            battery = "lifepo4-12v"

            [[help_point]]
            name = "Leuchtturm Rathaus Kreuzberg"
            address = "Yorckstraße 4-11"
            offers = ["Trinkwasser", "Notruf"]
            latitude = 52.4927
            longitude = 13.3889

            [[authority]]
            name = "Bezirksamt"
            token_sha256 = "\(token)"
            key_id = "ba-xhain"
            public_key = "\(key)"

            [mode]
            crisis_after = "5m"
            state_file = "/run/kiezbox/mode"
            on_crisis = ["/usr/local/bin/notify-neighbours", "crisis"]
            """
        )
        let portal = configuration.portal.settings
        #expect(portal.port == 80)
        #expect(portal.hostname == "kiez.box")
        #expect(portal.portalURL == "http://kiez.box/")
        #expect(portal.acknowledgedClientsSeeOnline == false)
        #expect(portal.acknowledgementLifetime == .seconds(6 * 3600))
        #expect(portal.battery == .lifepo4_12V)
        #expect(portal.helpPoints == [
            HelpPoint(
                name: "Leuchtturm Rathaus Kreuzberg", address: "Yorckstraße 4-11", offers: ["Trinkwasser", "Notruf"],
                position: GeoPosition(latitude: 52.4927, longitude: 13.3889))
        ])
        #expect(configuration.portal.authorityTokens.authorize(authorizationHeader: "Bearer secret-token") == .authority(name: "Bezirksamt"))
        #expect(configuration.portal.announcementKeys.map(\.keyID) == ["ba-xhain"])
        #expect(configuration.mode.policy.crisisAfterMainsLoss == 300)
        #expect(configuration.mode.hooks.onCrisis == ["/usr/local/bin/notify-neighbours", "crisis"])
        #expect(configuration.mode.stateFile == ModeStateFile(path: "/run/kiezbox/mode"))
    }

    @Test("the bulletin's allowances and budget: defaults, and what [portal] sets (the budget goes to the store)")
    func bulletinBudget() throws {
        let defaults = try self.parse("[store]\nmax_size = \"16 MiB\"")
        #expect(defaults.store.bulletin == BulletinBudget(maximumPosts: 5000, maximumBytes: 2 << 20))
        #expect(defaults.portal.settings.wifiPostBurst == 30)
        #expect(defaults.portal.settings.wifiPostsPerHour == 120)
        let set = try self.parse(
            """
            [store]
            max_size = "16 MiB"
            [portal]
            wifi_post_burst = 10
            wifi_posts_per_hour = 60
            bulletin_max_posts = 800
            bulletin_max_size = "4 MiB"
            """)
        #expect(set.store.bulletin == BulletinBudget(maximumPosts: 800, maximumBytes: 4 << 20))
        #expect(set.store.readingBytes == 12 << 20)
        #expect(set.portal.settings.wifiPostBurst == 10)
        #expect(set.portal.settings.wifiPostsPerHour == 60)
        let demo = try KiezboxConfiguration.parse(KiezboxConfiguration.embeddedDefault, file: "<embedded default>")
        #expect(demo.store.bulletin == BulletinBudget(maximumPosts: 5000, maximumBytes: 8 << 20))
    }

    @Test("the demo (embedded default) listens on loopback only; a configured box on every interface unless listen says otherwise")
    func listenAddress() throws {
        let demo = try KiezboxConfiguration.parse(KiezboxConfiguration.embeddedDefault, file: "<embedded default>")
        #expect(demo.portal.settings.bindAddress == "127.0.0.1")
        // A box on port 80 must answer the phones on its Wi-Fi.
        #expect(try self.parse("").portal.settings.bindAddress == "0.0.0.0")
        #expect(try self.parse("[portal]\nport = 80").portal.settings.bindAddress == "0.0.0.0")
        #expect(try self.parse("[portal]\nlisten = \"10.42.0.1\"").portal.settings.bindAddress == "10.42.0.1")
    }

    @Test("HTTPS for authorities by default on 8443, tokens over plain HTTP refused; both configurable")
    func httpsSettings() throws {
        let defaults = try self.parse("").portal.settings
        #expect(defaults.httpsPort == 8443)
        #expect(defaults.tokensOverPlainHTTP == .refuse)
        let configured = try self.parse("[portal]\nhttps_port = 9443\ntokens_over_http = \"loopback\"").portal.settings
        #expect(configured.httpsPort == 9443)
        #expect(configured.tokensOverPlainHTTP == .loopback)
        #expect(try self.parse("[portal]\nhttps = false").portal.settings.httpsPort == nil)
    }

    @Test("the [[authority]] table kiezbox keys prints pastes as it is, whatever the authority's name")
    func printedAuthorityTable() throws {
        let file = SigningKeyFile(keyID: "ba-mitte", privateKey: Curve25519.Signing.PrivateKey())
        let name = "Bezirksamt \"Mitte\" \\ Lagedienst"
        let configuration = try self.parse(file.authorityTable(name: name))
        #expect(configuration.portal.authorities.map(\.name) == [name])
        #expect(configuration.portal.announcementKeys.map(\.keyID) == ["ba-mitte"])
    }

    @Test("mistakes are refused with their line and key", arguments: [
        ("[portal]\nport = 0", 5, "portal.port"),
        ("[portal]\nhostname = \"kiez box\"", 5, "portal.hostname"),
        ("[portal]\nacknowledged_answer = \"maybe\"", 5, "portal.acknowledged_answer"),
        ("[portal]\nuser_portal_url = \"http://kiez.box/\"", 5, "portal.user_portal_url"),
        ("[portal]\nbattery = \"nimh\"", 5, "portal.battery"),
        ("[portal]\nlisten_port = 80", 5, "portal.listen_port"),
        ("[portal]\nport = 8443", 5, "portal.port"),
        ("[portal]\nport = 9000\nhttps_port = 9000", 6, "portal.https_port"),
        ("[portal]\nhttps_port = 70000", 5, "portal.https_port"),
        ("[portal]\ntokens_over_http = \"yes\"", 5, "portal.tokens_over_http"),
        ("[portal]\nwifi_post_burst = 0", 5, "portal.wifi_post_burst"),
        ("[portal]\nbulletin_max_posts = -1", 5, "portal.bulletin_max_posts"),
        ("[store]\nmax_size = \"16 MiB\"\n[portal]\nbulletin_max_size = \"9 MiB\"", 7, "portal.bulletin_max_size"),
        ("[[help_point]]\nname = \"x\"\nlatitude = 52.5", 4, "help_point[1].longitude"),
        ("[[authority]]\nname = \"x\"\ntoken_sha256 = \"abc\"", 6, "authority[1].token_sha256"),
        ("[[authority]]\nname = \"x\"", 4, "authority[1].token_sha256"),
        ("[[authority]]\nname = \"x\"\nkey_id = \"k\"\npublic_key = \"bm90IGEga2V5\"", 7, "authority[1].public_key"),
        ("[mode]\non_crisis = [\"systemctl\", \"start\"]", 5, "mode.on_crisis"),
        ("[mode]\ncrisis_after = \"3m\"\nstate_file = \"run/kiezbox/mode\"", 6, "mode.state_file"),
        ("[mode]\nstate_file = \"/run/kiezbox/\"", 5, "mode.state_file"),
        ("[mode]\nstate_file = 1", 5, "mode.state_file"),
        ("[metrics]\nallow = [\"10.42.0.0/33\"]", 5, "metrics.allow"),
        ("[metrics]\nlisten = \"0.0.0.0\"", 5, "metrics.listen"),
        ("[portal]\nheader_timeout = \"1ms\"", 5, "portal.header_timeout"),
        ("[portal]\nconnections = 10\nconnections_per_address = 20", 6, "portal.connections_per_address"),
    ])
    func mistakes(_ source: String, line: Int, key: String) throws {
        let error = try #require(self.error(source))
        #expect(error.key == key)
        #expect(error.line == line, "\(error)")
    }

    @Test("[metrics] allow and the portal's timeouts and connection caps parse; loopback only and the defaults otherwise")
    func metricsAndConnectionLimits() throws {
        let defaults = try self.parse("")
        #expect(defaults.portal.settings.metricsAllowedNetworks == IPNetwork.loopback)
        #expect(defaults.portal.settings.connectionLimits == ConnectionLimits())
        let configured = try self.parse(
            """
            [portal]
            header_timeout = "5s"
            idle_timeout = "20s"
            body_timeout = "1m"
            connections_per_address = 8
            connections = 512

            [metrics]
            allow = ["127.0.0.1", "10.99.0.0/16", "fd00::/8"]
            """
        )
        let limits = configured.portal.settings.connectionLimits
        #expect(limits.headerTimeout == .seconds(5))
        #expect(limits.idleTimeout == .seconds(20))
        #expect(limits.bodyTimeout == .seconds(60))
        #expect(limits.maximumPerAddress == 8)
        #expect(limits.maximumTotal == 512)
        #expect(configured.portal.settings.metricsAllowedNetworks.map(\.description) == ["127.0.0.1", "10.99.0.0/16", "fd00::/8"])
    }

    @Test("the unit's LimitNOFILE leaves room for the default connection cap and the daemon's own files")
    func fileLimitFitsTheConnectionCap() throws {
        let unit = try String(contentsOf: AppliancePackageTests.repositoryRoot.appending(path: "systemd/kiezbox.service"), encoding: .utf8)
        let line = try #require(unit.split(separator: "\n").first { $0.hasPrefix("LimitNOFILE=") }, "kiezbox.service sets no LimitNOFILE")
        let limit = try #require(Int(line.dropFirst("LimitNOFILE=".count)))
        // The daemon's own descriptors (store, journal, sensors, MQTT, event loops) stay well under 100.
        #expect(limit >= ConnectionLimits().maximumTotal + 100, "LimitNOFILE=\(limit)")
    }

    @Test("[mode] state_file must be an absolute path; the message names the file the packaged units watch")
    func relativeStateFile() throws {
        let error = try #require(self.error("[mode]\nstate_file = \"kiezbox/mode\""))
        #expect(error.line == 5, "\(error)")
        #expect(error.message.contains("'kiezbox/mode' is not an absolute file path"), "\(error)")
        #expect(error.message.contains("/run/kiezbox/mode"), "\(error)")
        #expect(try self.parse("").mode.stateFile == nil, "no mode file unless configured")
    }
}
