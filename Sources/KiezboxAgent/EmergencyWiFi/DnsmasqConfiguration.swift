/// dnsmasq.conf for the emergency Wi-Fi: DHCP that tells phones where the captive-portal API is (RFC 8910), and
/// DNS that answers every name with the box, since offline there is nothing else to answer with.
enum DnsmasqConfiguration {
    /// Where dnsmasq keeps its leases and pid; a test moves them into its own directory.
    struct Paths: Sendable, Hashable {
        var leaseFile = "/var/lib/misc/kiezbox-dnsmasq.leases"
        var pidFile = "/run/kiezbox-dnsmasq.pid"
    }

    /// - Parameters:
    ///   - captiveAPIURL: the RFC 8908 API, sent as DHCP option 114.
    ///   - portalHostname: the portal's own name, answered explicitly so it survives any later catch-all change.
    static func render(_ wifi: EmergencyWiFiSettings, captiveAPIURL: String, portalHostname: String, paths: Paths = Paths()) -> String {
        """
        # Emergency Wi-Fi of a Kiezbox: written by `kiezbox wifi config`, edit [wifi] in kiezbox.toml instead.
        # Only the Wi-Fi: never the loopback, so another resolver on the box keeps working.
        interface=\(wifi.interface)
        except-interface=lo
        bind-dynamic
        pid-file=\(paths.pidFile)
        log-facility=-

        # DNS: offline there is no upstream; every name is the box, so probes and typed-in addresses reach the portal.
        no-resolv
        no-hosts
        no-poll
        # TTL 0: nothing a phone caches here outlives the blackout.
        local-ttl=0
        address=/\(portalHostname)/\(wifi.address)
        address=/#/\(wifi.address)
        # Every other query (AAAA above all) is answered at once with "no such record" instead of being sent to an
        # upstream that does not exist (dnsmasq >= 2.86 forwards them), so nothing waits for a DNS timeout.
        # The Wi-Fi is IPv4 only: the box sends no router advertisements.
        local=/#/

        # DHCP
        dhcp-authoritative
        dhcp-range=\(wifi.dhcpFirst),\(wifi.dhcpLast),\(wifi.netmask),\(wifi.leaseTime.components.seconds)
        dhcp-leasefile=\(paths.leaseFile)
        dhcp-option=option:router,\(wifi.address)
        dhcp-option=option:dns-server,\(wifi.address)
        # RFC 8910 captive-portal API URI (option 114), sent even to phones that do not ask for it. By number:
        # the name "captive-portal" is newer than the dnsmasq in Debian 12 / Raspberry Pi OS.
        dhcp-option-force=114,"\(captiveAPIURL)"

        """
    }
}
