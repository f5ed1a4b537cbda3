/// hostapd.conf for the emergency Wi-Fi: an open access point, so that any phone can join without a password
/// nobody can hand out in a blackout.
enum HostapdConfiguration {
    static func render(_ wifi: EmergencyWiFiSettings) -> String {
        // ssid2 with quotes takes the name verbatim up to the last quote, so spaces at either end survive.
        let utf8 = wifi.ssid.unicodeScalars.contains { !$0.isASCII }
        return """
            # Emergency Wi-Fi of a Kiezbox: written by `kiezbox wifi config`, edit [wifi] in kiezbox.toml instead.
            interface=\(wifi.interface)
            driver=nl80211
            ssid2="\(wifi.ssid)"
            utf8_ssid=\(utf8 ? 1 : 0)
            # Regulatory domain: legal channels and transmit power; advertised so phones follow it (802.11d).
            country_code=\(wifi.countryCode)
            ieee80211d=1
            hw_mode=g
            channel=\(wifi.channel)
            ieee80211n=1
            wmm_enabled=1
            # Open network: no wpa= line. Phones cannot reach each other, only the box.
            auth_algs=1
            ignore_broadcast_ssid=0
            ap_isolate=1

            """
    }
}
