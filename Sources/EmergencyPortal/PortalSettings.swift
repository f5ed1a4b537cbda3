import Foundation
public import ReadingStore

/// How the portal behaves; parsed from the `[portal]` table of the box's configuration.
public struct PortalSettings: Sendable, Hashable {
    /// The name phones are sent to: the emergency Wi-Fi's DNS answers it (and every other name) with the box's
    /// address. Not a real top-level domain, so it never leaks into the internet.
    public var hostname: String
    /// Address and port the HTTP server listens on. Port 80 on a box (probes are plain HTTP on port 80).
    /// Every interface by default: a box must answer the phones on its Wi-Fi. The embedded demo configuration
    /// says 127.0.0.1, so a developer's laptop does not serve the portal to its network.
    public var bindAddress: String
    public var port: Int
    /// What an acknowledged phone's connectivity probes get: `true` — the exact "online" answer, so the phone
    /// stays on the Wi-Fi quietly; `false` — the portal again, so the sign-in sheet keeps coming back.
    public var acknowledgedClientsSeeOnline: Bool
    /// How long an acknowledgement holds.
    public var acknowledgementLifetime: Duration
    /// How long a bulletin post is shown.
    public var postLifetime: Duration
    /// Posts one phone may make at once, and regains per hour.
    public var postBurst: Int
    public var postsPerHour: Int
    /// Posts the whole Wi-Fi may make at once, and regains per hour, whichever phones they come from: a flood
    /// from many addresses slows to this, and the bulletin's budget in the store is not used up in minutes.
    public var wifiPostBurst: Int
    public var wifiPostsPerHour: Int
    /// The URL phones are sent to, when it differs from hostname and port (the firewall forwards port 80 to the
    /// daemon's unprivileged port): "http://kiez.box/".
    public var publicURL: String?
    /// An RFC 8908 API URL to advertise in `user-portal-url` when the box has a TLS name; `nil`: the plain URL.
    public var userPortalURL: String?
    public var helpPoints: [HelpPoint]
    /// The battery the power monitor measures, for the "power left" estimate.
    public var battery: PortalBattery
    /// The box's address on the emergency Wi-Fi ("10.42.0.1"). A request that reached the box there came from a
    /// phone: the authority side (posting announcements, the feed with residents' own words) is refused to it
    /// unless ``authorityAPIOnWiFi``. `nil`: the box has no such address.
    public var wifiAddress: String?
    /// Whether the authority side is served on ``wifiAddress`` too (`[wifi] authority_api`).
    public var authorityAPIOnWiFi: Bool
    /// The port of the HTTPS side (same address as the HTTP side), where authorities send their tokens over TLS
    /// with the box's own certificate (``PortalCertificate``); `nil`: no HTTPS.
    public var httpsPort: Int? = 8443
    /// What happens to a bearer token that arrives over plain HTTP.
    public var tokensOverPlainHTTP: PlainHTTPTokens = .refuse
    /// How wrong tokens are slowed down and logged.
    public var authorityAttempts = AuthorityAttemptPolicy()
    /// Client networks that may read `/metrics` (`[metrics] allow`); loopback by default, never the open Wi-Fi
    /// unless its network is listed. Everyone else gets `403`.
    public var metricsAllowedNetworks: [IPNetwork]
    /// Timeouts and connection caps of the HTTP server.
    public var connectionLimits: ConnectionLimits
    /// TTN's fair-use limits when the box has a LoRaWAN uplink: `/metrics` then shows its airtime account.
    public var loRaWANFairUse: LoRaWANFairUse?
    /// The share of the Meshtastic band's duty cycle the box allows itself, when it has a Meshtastic radio: the
    /// metrics then show the bridge's airtime of the last hour against it.
    public var meshtasticAirtimeShare: Double?

    public init(
        hostname: String = "kiez.box", bindAddress: String = "0.0.0.0", port: Int = 8080,
        acknowledgedClientsSeeOnline: Bool = true, acknowledgementLifetime: Duration = .seconds(12 * 3600),
        postLifetime: Duration = .seconds(24 * 3600), postBurst: Int = 3, postsPerHour: Int = 6,
        wifiPostBurst: Int = 30, wifiPostsPerHour: Int = 120,
        publicURL: String? = nil, userPortalURL: String? = nil, helpPoints: [HelpPoint] = [], battery: PortalBattery = .leadAcid12V,
        wifiAddress: String? = nil, authorityAPIOnWiFi: Bool = false, metricsAllowedNetworks: [IPNetwork] = IPNetwork.loopback,
        connectionLimits: ConnectionLimits = ConnectionLimits()
    ) {
        self.metricsAllowedNetworks = metricsAllowedNetworks
        self.connectionLimits = connectionLimits
        self.battery = battery
        self.wifiAddress = wifiAddress
        self.authorityAPIOnWiFi = authorityAPIOnWiFi
        self.hostname = hostname
        self.bindAddress = bindAddress
        self.port = port
        self.acknowledgedClientsSeeOnline = acknowledgedClientsSeeOnline
        self.acknowledgementLifetime = acknowledgementLifetime
        self.postLifetime = postLifetime
        self.postBurst = postBurst
        self.postsPerHour = postsPerHour
        self.wifiPostBurst = wifiPostBurst
        self.wifiPostsPerHour = wifiPostsPerHour
        self.publicURL = publicURL
        self.userPortalURL = userPortalURL
        self.helpPoints = helpPoints
    }

    /// The URL phones are redirected to.
    public var portalURL: String {
        if let publicURL { return publicURL }
        return self.port == 80 ? "http://\(self.hostname)/" : "http://\(self.hostname):\(self.port)/"
    }
}

/// What the portal does with a bearer token that arrived over plain HTTP, where the open Wi-Fi and the mesh could
/// read it (`[portal] tokens_over_http`).
public enum PlainHTTPTokens: String, Sendable, Hashable, CaseIterable {
    /// Refused with 403 pointing to HTTPS, and logged: the token has crossed the network in clear.
    case refuse
    /// Accepted from a loopback client only (an SSH tunnel to the box, tests); refused from anywhere else.
    case loopback
    /// Accepted from anywhere (a mesh that is itself encrypted and trusted).
    case allow
}
