import ArgumentParser
import EmergencyPortal
import Foundation

/// `kiezbox wifi`: the emergency Wi-Fi's system files.
struct WiFiCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wifi",
        abstract: "The emergency Wi-Fi: open access point, DHCP, DNS and firewall that lead phones to the portal.",
        subcommands: [Config.self]
    )

    struct Config: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write hostapd.conf, dnsmasq.conf, nftables.conf and wifi.env from [wifi] and [portal].",
            discussion: """
                Install them in /etc/kiezbox/wifi/, where the kiezbox-emergency-wifi.target units read them \
                (docs/emergency-wifi.md). Run it again after changing [wifi] or [portal].
                """
        )

        @Option(name: .long, help: ArgumentHelp("Configuration file (default: /etc/kiezbox/kiezbox.toml, else the embedded default).", valueName: "file"))
        var config: String?

        @Option(name: .long, help: ArgumentHelp("Directory to write the files to; created if missing.", valueName: "dir"))
        var out: String

        func run() throws {
            let (configuration, source) = try KiezboxConfiguration.resolve(explicitPath: self.config)
            let files = try EmergencyWiFiFiles(wifi: configuration.wifi, portal: configuration.portal)
            try FileManager.default.createDirectory(atPath: self.out, withIntermediateDirectories: true)
            for file in files.render() {
                let path = URL(fileURLWithPath: self.out).appendingPathComponent(file.name).path
                try file.contents.write(toFile: path, atomically: true, encoding: .utf8)
                print("wrote \(path)")
            }
            let wifi = configuration.wifi
            print("from \(source):")
            print("  network   \"\(wifi.ssid)\" (open) on \(wifi.interface), channel \(wifi.channel), country \(wifi.countryCode)")
            print("  box       \(wifi.address)/\(wifi.prefixLength); phones get \(wifi.dhcpFirst)–\(wifi.dhcpLast) for \(format(wifi.leaseTime))")
            print("  portal    \(files.portal.portalURL) (port 80 is forwarded to \(files.portal.port))")
            print("  API       \(files.captiveAPIURL) (DHCP option 114)")
            print("  authority " + (wifi.authorityAPI ? "announcements and the authorities' feed also over the Wi-Fi ([wifi] authority_api)" : "announcements and the authorities' feed refused over the Wi-Fi"))
            if files.portal.publicURL == nil && files.portal.port != 80 {
                print("note: phones are sent to \(files.portal.portalURL); the firewall forwards port 80 to the portal, so")
                print("      [portal] public_url = \"http://\(files.portal.hostname)/\" gives them the address without the port.")
            }
            if files.captiveAPIURL.hasPrefix("http://") {
                print("note: phones use the captive-portal API only over https with a trusted certificate (RFC 8908);")
                print("      over http they ignore it and find the portal through their connectivity probes instead.")
            }
        }
    }
}
