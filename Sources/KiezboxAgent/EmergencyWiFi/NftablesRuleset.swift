/// The emergency Wi-Fi's firewall, in a table of its own so loading and deleting it touches no other rule:
/// port 80 and DNS go to the box, HTTPS and DNS over TLS fail at once, nothing is routed, and phones reach
/// only DHCP, DNS, the portal and ping on the box itself: no sshd, no broker, no other local service.
enum NftablesRuleset {
    /// The table `nft delete table inet kiezbox_wifi` removes when the crisis ends.
    static let tableName = "kiezbox_wifi"

    /// - Parameters:
    ///   - portalPort: the port the daemon's portal listens on; port 80 from phones is sent there.
    ///   - httpsPort: the portal's HTTPS port; open on the Wi-Fi only with `[wifi] authority_api`, since it is the
    ///     authorities' side.
    static func render(_ wifi: EmergencyWiFiSettings, portalPort: Int, httpsPort: Int? = nil) -> String {
        let interface = "\"\(wifi.interface)\""
        let authorityHTTPS = wifi.authorityAPI ? httpsPort.map { "\n\t\tip daddr \(wifi.address) tcp dport \($0) accept" } ?? "" : ""
        return """
            #!/usr/sbin/nft -f
            # Emergency Wi-Fi of a Kiezbox: written by `kiezbox wifi config`, edit [wifi] in kiezbox.toml instead.
            # Loading replaces only this table (created first so that the delete cannot fail); other rules stay.
            table inet \(tableName)
            delete table inet \(tableName)

            table inet \(tableName) {
            \t# HTTPS (443, and QUIC on udp/443) and DNS over TLS/QUIC (853) are refused with a reset before routing,
            \t# whatever the address: probes and apps fail at once instead of timing out, and no HTTPS connection
            \t# is ever intercepted (a certificate warning helps nobody). Phones fall back to plain DNS and HTTP.
            \tchain fail_fast {
            \t\ttype filter hook prerouting priority dstnat - 10; policy accept;
            \t\tiifname \(interface) tcp dport { 443, 853 } reject with tcp reset
            \t\tiifname \(interface) udp dport { 443, 853 } reject with icmpx port-unreachable
            \t}

            \t# Plain HTTP to any address reaches the portal; DNS to any server (hard-coded 8.8.8.8) reaches dnsmasq.
            \tchain captive_dnat {
            \t\ttype nat hook prerouting priority dstnat; policy accept;
            \t\tiifname \(interface) tcp dport 80 dnat ip to \(wifi.address):\(portalPort)
            \t\tiifname \(interface) meta l4proto { tcp, udp } th dport 53 dnat ip to \(wifi.address):53
            \t}

            \t# Offline the box routes nothing to or from the Wi-Fi.
            \tchain no_forwarding {
            \t\ttype filter hook forward priority filter; policy accept;
            \t\tiifname \(interface) drop
            \t\toifname \(interface) drop
            \t}

            \t# What phones may reach on the box itself. Only traffic that came in on the Wi-Fi is judged; every
            \t# other interface (the mesh, Ethernet, loopback) is left to the box's own rules.
            \tchain wifi_input {
            \t\ttype filter hook input priority filter; policy accept;
            \t\tiifname \(interface) jump from_phones
            \t}

            \tchain from_phones {
            \t\tct state established,related accept
            \t\tct state invalid drop
            \t\t# DHCP: a phone without an address yet broadcasts from 0.0.0.0.
            \t\tudp sport 68 udp dport 67 accept
            \t\t# DNS and the portal (after the DNAT above) only at the box's Wi-Fi address: reached through another
            \t\t# of the box's addresses, the portal would not know the request came from the Wi-Fi.
            \t\tip daddr \(wifi.address) meta l4proto { tcp, udp } th dport 53 accept
            \t\tip daddr \(wifi.address) tcp dport \(portalPort) accept\(authorityHTTPS)
            \t\tip daddr \(wifi.address) icmp type echo-request accept
            \t\t# Anything else (sshd, a broker, IPv6: the Wi-Fi is IPv4 only) is refused at once instead of left
            \t\t# to time out; broadcasts and multicasts are dropped without an answer.
            \t\tmeta pkttype unicast reject with icmpx admin-prohibited
            \t\tdrop
            \t}
            }

            """
    }
}
