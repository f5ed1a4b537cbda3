/// The emergency Wi-Fi a box opens in a blackout: an open 2.4 GHz network whose DHCP, DNS and firewall lead
/// every phone to the portal. Parsed from the optional `[wifi]` table; every default works on a Raspberry Pi.
struct EmergencyWiFiSettings: Sendable, Hashable {
    /// The radio hostapd runs the access point on.
    var interface = "wlan0"
    /// What phones list; 1–32 bytes of UTF-8 (the 802.11 limit).
    var ssid = "Kiezbox Notfall-WLAN"
    /// ISO 3166-1 alpha-2; sets the legal channels and transmit power (and lifts the Pi's Wi-Fi rfkill block).
    var countryCode = "DE"
    /// 2.4 GHz channel 1–13: every phone has 2.4 GHz, and it reaches further through walls than 5 GHz.
    var channel = 6
    /// The box's address on the Wi-Fi, and the size of the network phones get addresses in.
    var address = IPv4Address(0x0A2A_0001)  // 10.42.0.1
    var prefixLength = 24
    /// The addresses DHCP hands out, both included.
    var dhcpFirst = IPv4Address(0x0A2A_000A)  // 10.42.0.10
    var dhcpLast = IPv4Address(0x0A2A_00FA)  // 10.42.0.250
    /// How long a phone keeps its address without renewing it.
    var leaseTime: Duration = .seconds(3600)
    /// Whether the portal's authority side (posting announcements, the authorities' feed) is served to requests
    /// that arrive at ``address``. Off: everyone can join the open Wi-Fi; authorities use the mesh or Ethernet.
    var authorityAPI = false

    /// Longest SSID 802.11 allows, in bytes.
    static let maximumSSIDBytes = 32
    /// dnsmasq refuses leases shorter than two minutes.
    static let minimumLeaseTime: Duration = .seconds(120)
    /// Linux interface names are at most 15 bytes.
    static let maximumInterfaceNameLength = 15

    /// The network mask as dnsmasq wants it ("255.255.255.0").
    var netmask: IPv4Address { IPv4Address.mask(prefixLength: self.prefixLength) }

    /// Whether `name` can be an interface name written unquoted into hostapd, dnsmasq and systemd files.
    static func isValidInterfaceName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= Self.maximumInterfaceNameLength && name != "." && name != ".."
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
    }

    /// Why `ssid` cannot be broadcast, or `nil` when it can.
    static func ssidProblem(_ ssid: String) -> String? {
        if ssid.isEmpty { return "is empty; phones need a name to choose" }
        if ssid.utf8.count > Self.maximumSSIDBytes {
            return "is \(ssid.utf8.count) bytes long; Wi-Fi allows at most \(Self.maximumSSIDBytes) bytes (umlauts take two)"
        }
        if ssid.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            return "contains a control character (a line break or tab); phones cannot show it"
        }
        return nil
    }
}
