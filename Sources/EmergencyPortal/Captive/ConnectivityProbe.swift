/// The requests phones and browsers send to find out whether a network has a captive portal, and the exact
/// answer each expects when the network is "online".
///
/// A phone that gets anything else (a redirect, a page) opens its sign-in sheet; a phone that gets the exact
/// answer stays quiet. Facts: AOSP NetworkStack (Android), Apple's captive.apple.com, Microsoft NCSI, Firefox
/// `captivedetect`, NetworkManager's connectivity check as Linux distributions configure it (see docs/portal.md). Matching is on host name and path, never on addresses: the probe hosts'
/// addresses change, and with the portal's catch-all DNS every name resolves to the box anyway.
public enum ConnectivityProbe: String, Sendable, Hashable, CaseIterable {
    /// Android and ChromeOS (`/generate_204`, `/gen_204` on Google's and OEMs' hosts): online is an empty 204.
    case android
    /// iOS and macOS (`/hotspot-detect.html`, `/library/test/success.html`): online is Apple's "Success" page.
    case apple
    /// Windows 10 1607 and later (`www.msftconnecttest.com/connecttest.txt`): "Microsoft Connect Test".
    case windows
    /// Older Windows (`www.msftncsi.com/ncsi.txt`): "Microsoft NCSI".
    case windowsLegacy
    /// Where Windows sends its browser when it has found a portal (`www.msftconnecttest.com/redirect`).
    case windowsRedirect
    /// Firefox's portal detection (`detectportal.firefox.com/canonical.html`).
    case firefoxCanonical
    /// Firefox's connectivity check (`detectportal.firefox.com/success.txt`).
    case firefoxSuccess
    /// NetworkManager on GNOME's default (`nmcheck.gnome.org/check_network_status.txt`).
    case networkManagerGNOME
    /// NetworkManager on Debian (`network-test.debian.org/nm`, package network-manager-config-connectivity-debian).
    case networkManagerDebian
    /// NetworkManager on Ubuntu (`connectivity-check.ubuntu.com/`).
    case networkManagerUbuntu
    /// NetworkManager on Fedora (`fedoraproject.org/static/hotspot.txt`, expects "OK").
    case networkManagerFedora
    /// NetworkManager on Arch Linux (`ping.archlinux.org/nm-check.txt`).
    case networkManagerArch
    /// NetworkManager on KDE neon and Plasma setups (`networkcheck.kde.org/`, expects "OK").
    case networkManagerKDE

    /// Which probe a request is, from its host (without port, any case) and path (without query).
    public static func classify(host: String, path: String) -> ConnectivityProbe? {
        let host = host.lowercased()
        let path = path.lowercased()
        if let desktop = Self.networkManagerProbe(host: host, path: path) { return desktop }
        switch path {
        case "/generate_204", "/gen_204":
            // Google, Android OEMs (Huawei's hicloud, Xiaomi, the .cn hosts) all use these paths.
            return .android
        case "/hotspot-detect.html", "/library/test/success.html":
            return .apple
        case "/connecttest.txt" where host.hasSuffix("msftconnecttest.com"):
            return .windows
        case "/redirect" where host.hasSuffix("msftconnecttest.com"):
            return .windowsRedirect
        case "/ncsi.txt" where host.hasSuffix("msftncsi.com"):
            return .windowsLegacy
        case "/canonical.html" where host == "detectportal.firefox.com":
            return .firefoxCanonical
        case "/success.txt" where host == "detectportal.firefox.com":
            return .firefoxSuccess
        default:
            return nil
        }
    }

    /// NetworkManager's checks: a fixed URL per distribution. Ubuntu's and KDE's URI is the host's root, and
    /// NetworkManager keeps what follows it, so any path on those hosts counts.
    private static func networkManagerProbe(host: String, path: String) -> ConnectivityProbe? {
        switch (host, path) {
        case ("nmcheck.gnome.org", "/check_network_status.txt"): .networkManagerGNOME
        case ("network-test.debian.org", "/nm"): .networkManagerDebian
        case ("fedoraproject.org", "/static/hotspot.txt"): .networkManagerFedora
        case ("ping.archlinux.org", "/nm-check.txt"): .networkManagerArch
        case ("connectivity-check.ubuntu.com", _): .networkManagerUbuntu
        case ("networkcheck.kde.org", _): .networkManagerKDE
        default: nil
        }
    }

    /// Extra header fields of the online answer. NetworkManager takes `X-NetworkManager-Status: online` as
    /// "online" whatever body it was configured to expect, so a distribution's own `response=` cannot trip it.
    public var onlineHeaders: [(name: String, value: String)] {
        switch self {
        case .networkManagerGNOME, .networkManagerDebian, .networkManagerUbuntu, .networkManagerFedora, .networkManagerArch,
            .networkManagerKDE:
            [("X-NetworkManager-Status", "online")]
        default: []
        }
    }

    /// The exact answer that tells this client the network is online.
    public var onlineAnswer: (status: Int, contentType: String?, body: String) {
        switch self {
        case .android: (204, nil, "")
        case .apple: (200, "text/html", "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>")
        case .windows: (200, "text/plain", "Microsoft Connect Test")
        case .windowsLegacy: (200, "text/plain", "Microsoft NCSI")
        case .firefoxCanonical:
            (200, "text/html", "<meta http-equiv=\"refresh\" content=\"0;url=https://support.mozilla.org/kb/captive-portal\"/>")
        case .firefoxSuccess: (200, "text/plain", "success\n")
        // NetworkManager's default expected body (compared as a prefix), served by GNOME, Debian and Arch.
        case .networkManagerGNOME, .networkManagerDebian, .networkManagerArch: (200, "text/plain", "NetworkManager is online\n")
        // Ubuntu's server answers 204 with the status header; NetworkManager with no expected body wants 204.
        case .networkManagerUbuntu: (204, nil, "")
        case .networkManagerFedora, .networkManagerKDE: (200, "text/plain", "OK\n")
        // Windows only opens this after it decided there is a portal: always show the portal.
        case .windowsRedirect: (302, nil, "")
        }
    }
}
