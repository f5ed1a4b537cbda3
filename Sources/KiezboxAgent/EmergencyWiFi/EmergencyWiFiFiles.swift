import EmergencyPortal
import Foundation

/// Why the emergency Wi-Fi's files cannot be written for this configuration.
struct EmergencyWiFiError: Error, Sendable, CustomStringConvertible, Equatable {
    var description: String
}

/// Everything `kiezbox wifi config` writes, derived from `[wifi]` and `[portal]`: the Wi-Fi and the portal
/// must agree on the portal's port and name, so both come from the one configuration.
struct EmergencyWiFiFiles: Sendable {
    let wifi: EmergencyWiFiSettings
    let portal: PortalSettings
    /// The RFC 8908 API the portal serves, as DHCP announces it (RFC 8910).
    let captiveAPIURL: String

    /// The path the portal serves the RFC 8908 API at.
    static let captiveAPIPath = "/api/captive"
    /// RFC 8910: a URI longer than this does not fit a DHCPv4 option and must not be provisioned.
    static let maximumAPIURLBytes = 255

    init(wifi: EmergencyWiFiSettings, portal: PortalConfiguration) throws(EmergencyWiFiError) {
        guard portal.enabled else {
            throw EmergencyWiFiError(description: "the portal is disabled ([portal] enabled = false); the emergency Wi-Fi would lead phones nowhere")
        }
        let settings = portal.settings
        let reachable = ["0.0.0.0", "::", "[::]", wifi.address.description]
        guard reachable.contains(settings.bindAddress) else {
            throw EmergencyWiFiError(
                description: "portal.listen is \"\(settings.bindAddress)\", which phones on the Wi-Fi cannot reach; use \"0.0.0.0\" or \"\(wifi.address)\""
            )
        }
        self.wifi = wifi
        self.portal = settings
        self.captiveAPIURL = try Self.apiURL(portalURL: settings.portalURL)
    }

    /// The API on the portal's origin: same scheme, name and port as the page phones are redirected to.
    static func apiURL(portalURL: String) throws(EmergencyWiFiError) -> String {
        guard let components = URLComponents(string: portalURL), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty
        else {
            throw EmergencyWiFiError(description: "the portal URL \"\(portalURL)\" has no http(s) scheme and host to derive the captive-portal API from")
        }
        let port = components.port.map { ":\($0)" } ?? ""
        let url = "\(scheme)://\(host)\(port)\(Self.captiveAPIPath)"
        guard url.utf8.count <= Self.maximumAPIURLBytes else {
            throw EmergencyWiFiError(description: "the captive-portal API URL \(url) is longer than the \(Self.maximumAPIURLBytes) bytes DHCP can carry")
        }
        return url
    }

    /// File name → contents. `wifi.env` gives the systemd units the interface and address.
    func render(dnsmasqPaths: DnsmasqConfiguration.Paths = .init()) -> [(name: String, contents: String)] {
        [
            ("hostapd.conf", HostapdConfiguration.render(self.wifi)),
            (
                "dnsmasq.conf",
                DnsmasqConfiguration.render(
                    self.wifi, captiveAPIURL: self.captiveAPIURL, portalHostname: self.portal.hostname, paths: dnsmasqPaths
                )
            ),
            ("nftables.conf", NftablesRuleset.render(self.wifi, portalPort: self.portal.port, httpsPort: self.portal.httpsPort)),
            ("wifi.env", self.environment),
        ]
    }

    /// Read by the systemd units (EnvironmentFile=), which set the interface's address and hand it back.
    var environment: String {
        """
        # Emergency Wi-Fi of a Kiezbox: written by `kiezbox wifi config`; read by the kiezbox-*.service units.
        KIEZBOX_WIFI_INTERFACE=\(self.wifi.interface)
        KIEZBOX_WIFI_ADDRESS=\(self.wifi.address)/\(self.wifi.prefixLength)

        """
    }
}
