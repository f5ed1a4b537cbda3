/// The requests phones and browsers send to find out whether a network has a captive portal, and the exact
/// answer each expects when the network is "online".
///
/// A phone that gets anything else (a redirect, a page) opens its sign-in sheet; a phone that gets the exact
/// answer stays quiet. Facts: AOSP NetworkStack (Android), Apple's captive.apple.com, Microsoft NCSI, Firefox
/// `captivedetect` (see docs/portal.md). Matching is on host name and path, never on addresses: the probe hosts'
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

    /// Which probe a request is, from its host (without port, any case) and path (without query).
    public static func classify(host: String, path: String) -> ConnectivityProbe? {
        let host = host.lowercased()
        let path = path.lowercased()
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
        // Windows only opens this after it decided there is a portal: always show the portal.
        case .windowsRedirect: (302, nil, "")
        }
    }
}
