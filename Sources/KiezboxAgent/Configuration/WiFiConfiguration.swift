import TOMLKit

extension EmergencyWiFiSettings {
    /// The root key of the emergency Wi-Fi's table.
    static let key = "wifi"

    /// `[wifi]`, or the defaults when the table is absent. Every value is checked here, with the line, so that
    /// `kiezbox wifi config` never writes a file hostapd or dnsmasq would refuse in the middle of a blackout.
    static func parse(_ root: TOMLTableReader) throws(ConfigurationError) -> EmergencyWiFiSettings {
        var wifi = EmergencyWiFiSettings()
        guard let table = try root.table(Self.key) else { return wifi }
        try table.rejectUnknownKeys(["interface", "ssid", "country", "channel", "address", "dhcp_range", "lease", "authority_api"])

        if let interface = try table.string("interface") {
            guard Self.isValidInterfaceName(interface) else {
                throw table.error(
                    "interface", "'\(interface)' is not a network interface name; expected up to 15 letters, digits, '-', '_' or '.', such as \"wlan0\""
                )
            }
            wifi.interface = interface
        }
        if let ssid = try table.string("ssid") {
            if let problem = Self.ssidProblem(ssid) { throw table.error("ssid", problem) }
            wifi.ssid = ssid
        }
        if let country = try table.string("country") {
            guard country.count == 2, country.allSatisfy({ $0.isASCII && $0.isLetter }) else {
                throw table.error("country", "'\(country)' is not a two-letter country code such as \"DE\"")
            }
            wifi.countryCode = country.uppercased()
        }
        wifi.channel = try table.int("channel", in: 1...13) ?? wifi.channel

        if let text = try table.string("address") {
            let parts = text.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2, let address = IPv4Address(String(parts[0])) else {
                throw table.error("address", "'\(text)' is not an IPv4 address with an optional prefix length, such as \"10.42.0.1/24\"")
            }
            var prefixLength = 24
            if parts.count == 2 {
                guard let length = Int(parts[1]), (8...30).contains(length) else {
                    throw table.error("address", "'/\(parts[1])' is not a usable prefix length; expected /8 to /30, usually /24")
                }
                prefixLength = length
            }
            let hostBits = ~IPv4Address.mask(prefixLength: prefixLength).value
            guard address.value & hostBits != 0, address.value & hostBits != hostBits else {
                throw table.error("address", "\(text) is the network's own or broadcast address, not one a box can have")
            }
            wifi.address = address
            wifi.prefixLength = prefixLength
        }

        let rangeGiven = table.table["dhcp_range"] != nil
        if rangeGiven {
            let bounds = try table.strings("dhcp_range")
            let addresses = bounds.compactMap(IPv4Address.init)
            guard bounds.count == 2, addresses.count == 2 else {
                throw table.error("dhcp_range", "expected the first and last address phones may get, such as [\"10.42.0.10\", \"10.42.0.250\"]")
            }
            guard addresses[0] <= addresses[1] else {
                throw table.error("dhcp_range", "\(addresses[0]) comes after \(addresses[1]); write the first address first")
            }
            wifi.dhcpFirst = addresses[0]
            wifi.dhcpLast = addresses[1]
        }
        // The range must fit the box's network; with the default range, a changed address is what is wrong.
        let (blamed, hint) = rangeGiven ? ("dhcp_range", "") : ("address", "; give a dhcp_range that fits it")
        let network = "\(IPv4Address(wifi.address.value & wifi.netmask.value))/\(wifi.prefixLength)"
        for bound in [wifi.dhcpFirst, wifi.dhcpLast] where !bound.sharesNetwork(with: wifi.address, prefixLength: wifi.prefixLength) {
            throw table.error(blamed, "the DHCP range \(wifi.dhcpFirst)–\(wifi.dhcpLast) is not in the box's network \(network)\(hint)")
        }
        let hostBits = ~wifi.netmask.value
        if wifi.dhcpFirst.value & hostBits == 0 || wifi.dhcpLast.value & hostBits == hostBits {
            throw table.error(blamed, "the DHCP range includes the network's own or broadcast address; phones cannot use those")
        }
        if (wifi.dhcpFirst...wifi.dhcpLast).contains(wifi.address) {
            throw table.error(
                blamed, "the DHCP range \(wifi.dhcpFirst)–\(wifi.dhcpLast) includes the box's own address \(wifi.address)\(hint)"
            )
        }

        wifi.leaseTime = try table.duration("lease", atLeast: Self.minimumLeaseTime) ?? wifi.leaseTime
        if wifi.leaseTime.components.attoseconds != 0 {
            throw table.error("lease", "DHCP leases are whole seconds")
        }
        wifi.authorityAPI = try table.bool("authority_api") ?? wifi.authorityAPI
        return wifi
    }
}
