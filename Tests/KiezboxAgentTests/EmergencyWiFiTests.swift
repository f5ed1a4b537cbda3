import EmergencyPortal
import Foundation
import Testing

@testable import KiezboxAgent

@Suite("Emergency Wi-Fi configuration")
struct EmergencyWiFiConfigurationTests {
    static let box = """
        [box]
        id = "wifi-test"
        district = "test-kiez"

        """

    func parse(_ source: String) throws -> KiezboxConfiguration {
        try KiezboxConfiguration.parse(Self.box + source, file: "kiezbox.toml")
    }

    /// The error parsing `source` gives; `nil` if it parses.
    func error(in source: String) -> ConfigurationError? {
        do {
            _ = try KiezboxConfiguration.parse(Self.box + source, file: "kiezbox.toml")
            return nil
        } catch {
            return error
        }
    }

    @Test("without [wifi] the defaults: open 'Kiezbox Notfall-WLAN' on wlan0, channel 6, DE, 10.42.0.1/24")
    func defaults() throws {
        let wifi = try self.parse("").wifi
        #expect(wifi == EmergencyWiFiSettings())
        #expect(wifi.interface == "wlan0")
        #expect(wifi.ssid == "Kiezbox Notfall-WLAN")
        #expect(wifi.countryCode == "DE")
        #expect(wifi.channel == 6)
        #expect(wifi.address.description == "10.42.0.1")
        #expect(wifi.netmask.description == "255.255.255.0")
        #expect("\(wifi.dhcpFirst)–\(wifi.dhcpLast)" == "10.42.0.10–10.42.0.250")
        #expect(wifi.leaseTime == .seconds(3600))
    }

    @Test("every [wifi] key is read into typed values")
    func customValues() throws {
        let wifi = try self.parse("""
            [wifi]
            interface = "wlan1"
            ssid = "Notfall Wrangelstraße"
            country = "at"
            channel = 11
            address = "192.168.77.1/25"
            dhcp_range = ["192.168.77.20", "192.168.77.120"]
            lease = "2h"
            """).wifi
        #expect(wifi.interface == "wlan1")
        #expect(wifi.ssid == "Notfall Wrangelstraße")
        #expect(wifi.countryCode == "AT")
        #expect(wifi.channel == 11)
        #expect(wifi.address == IPv4Address("192.168.77.1"))
        #expect(wifi.prefixLength == 25)
        #expect(wifi.netmask.description == "255.255.255.128")
        #expect(wifi.dhcpFirst == IPv4Address("192.168.77.20"))
        #expect(wifi.dhcpLast == IPv4Address("192.168.77.120"))
        #expect(wifi.leaseTime == .seconds(7200))
    }

    @Test(
        "mistakes are refused with the line and key",
        arguments: [
            ("ssid = \"\(String(repeating: "ä", count: 17))\"", "wifi.ssid", "34 bytes long"),
            ("ssid = \"\"", "wifi.ssid", "empty"),
            ("channel = 14", "wifi.channel", "expected 1 to 13"),
            ("country = \"Deutschland\"", "wifi.country", "two-letter"),
            ("interface = \"wlan0; rm\"", "wifi.interface", "not a network interface name"),
            ("address = \"10.42.0.256\"", "wifi.address", "not an IPv4 address"),
            ("address = \"010.42.0.1\"", "wifi.address", "not an IPv4 address"),
            ("address = \"10.42.0.0/24\"", "wifi.address", "network's own or broadcast"),
            ("address = \"10.43.0.1/24\"", "wifi.address", "give a dhcp_range that fits it"),
            ("address = \"10.42.0.20\"", "wifi.address", "includes the box's own address 10.42.0.20"),
            ("dhcp_range = [\"10.42.0.200\", \"10.42.0.100\"]", "wifi.dhcp_range", "comes after"),
            ("dhcp_range = [\"10.42.1.10\", \"10.42.1.20\"]", "wifi.dhcp_range", "not in the box's network 10.42.0.0/24"),
            ("dhcp_range = [\"10.42.0.0\", \"10.42.0.20\"]", "wifi.dhcp_range", "broadcast address"),
            ("dhcp_range = [\"10.42.0.10\"]", "wifi.dhcp_range", "first and last address"),
            ("lease = \"30s\"", "wifi.lease", "at least 2m"),
            ("chanel = 6", "wifi.chanel", "did you mean 'channel'?"),
            ("authority_api = \"yes\"", "wifi.authority_api", "expected true or false"),
        ]
    )
    func mistakes(line: String, key: String, message: String) throws {
        let error = try #require(self.error(in: "[wifi]\n\(line)\n"))
        #expect(error.key == key)
        #expect(error.line == 5, "\(error)")  // three lines of [box], then [wifi], then the line
        #expect(error.message.contains(message), "\(error)")
    }

    @Test("the portal knows the Wi-Fi address and refuses the authority side there unless [wifi] authority_api = true")
    func authorityAPIWiring() throws {
        let defaults = try self.parse("").portal.settings
        #expect(defaults.wifiAddress == "10.42.0.1")
        #expect(defaults.authorityAPIOnWiFi == false)
        let configured = try self.parse("[wifi]\naddress = \"192.168.77.1/25\"\ndhcp_range = [\"192.168.77.20\", \"192.168.77.120\"]\nauthority_api = true\n")
        #expect(configured.wifi.authorityAPI)
        #expect(configured.portal.settings.wifiAddress == "192.168.77.1")
        #expect(configured.portal.settings.authorityAPIOnWiFi)
        // The HTTPS side (where tokens go) is open at the Wi-Fi address only then.
        let opened = try EmergencyWiFiFiles(wifi: configured.wifi, portal: configured.portal).render().first { $0.name == "nftables.conf" }
        #expect(opened?.contents.contains("ip daddr 192.168.77.1 tcp dport 8443 accept") == true, "\(opened?.contents ?? "")")
        let closed = try EmergencyWiFiFiles(wifi: try self.parse("").wifi, portal: try self.parse("").portal).render().first { $0.name == "nftables.conf" }
        #expect(closed?.contents.contains("dport 8443") == false, "\(closed?.contents ?? "")")
    }

    @Test("the files carry the settings: open network, option 114, catch-all DNS with no-AAAA, DNAT to the portal port")
    func rendering() throws {
        var portal = PortalConfiguration()
        portal.settings.port = 8080
        portal.settings.publicURL = "http://kiez.box/"
        let files = try EmergencyWiFiFiles(wifi: EmergencyWiFiSettings(), portal: portal)
        #expect(files.captiveAPIURL == "http://kiez.box/api/captive")
        let rendered = Dictionary(uniqueKeysWithValues: files.render().map { ($0.name, $0.contents) })
        #expect(Set(rendered.keys) == ["hostapd.conf", "dnsmasq.conf", "nftables.conf", "wifi.env"])

        let hostapd = try #require(rendered["hostapd.conf"]).split(separator: "\n").map(String.init)
        for line in ["interface=wlan0", "ssid2=\"Kiezbox Notfall-WLAN\"", "country_code=DE", "channel=6", "hw_mode=g", "ap_isolate=1"] {
            #expect(hostapd.contains(line), "hostapd.conf lacks \(line)")
        }
        #expect(!hostapd.contains { $0.hasPrefix("wpa") }, "the emergency Wi-Fi is open")

        let dnsmasq = try #require(rendered["dnsmasq.conf"]).split(separator: "\n").map(String.init)
        for line in [
            "interface=wlan0", "no-resolv", "local-ttl=0", "address=/kiez.box/10.42.0.1", "address=/#/10.42.0.1", "local=/#/",
            "dhcp-range=10.42.0.10,10.42.0.250,255.255.255.0,3600", "dhcp-option=option:router,10.42.0.1",
            "dhcp-option=option:dns-server,10.42.0.1", "dhcp-option-force=114,\"http://kiez.box/api/captive\"",
        ] {
            #expect(dnsmasq.contains(line), "dnsmasq.conf lacks \(line)")
        }

        let nftables = try #require(rendered["nftables.conf"])
        #expect(nftables.contains("iifname \"wlan0\" tcp dport 80 dnat ip to 10.42.0.1:8080"))
        #expect(nftables.contains("iifname \"wlan0\" meta l4proto { tcp, udp } th dport 53 dnat ip to 10.42.0.1:53"))
        #expect(nftables.contains("iifname \"wlan0\" tcp dport { 443, 853 } reject with tcp reset"))
        #expect(nftables.contains("type filter hook input priority filter; policy accept;"))
        #expect(nftables.contains("iifname \"wlan0\" jump from_phones"))
        #expect(nftables.contains("ip daddr 10.42.0.1 tcp dport 8080 accept"))
        #expect(!nftables.contains("flush ruleset"), "the Wi-Fi's rules must leave every other table alone")
        #expect(rendered["wifi.env"]?.contains("KIEZBOX_WIFI_ADDRESS=10.42.0.1/24") == true)
    }

    @Test("the API URL is the portal's origin plus /api/captive")
    func apiURL() throws {
        #expect(try EmergencyWiFiFiles.apiURL(portalURL: "http://kiez.box/") == "http://kiez.box/api/captive")
        #expect(try EmergencyWiFiFiles.apiURL(portalURL: "http://kiez.box:8080/") == "http://kiez.box:8080/api/captive")
        #expect(try EmergencyWiFiFiles.apiURL(portalURL: "https://notfall.example.org/portal/") == "https://notfall.example.org/api/captive")
        #expect(throws: EmergencyWiFiError.self) { try EmergencyWiFiFiles.apiURL(portalURL: "kiez.box") }
    }

    @Test("a portal phones cannot reach is refused")
    func unreachablePortal() throws {
        var portal = PortalConfiguration()
        portal.settings.bindAddress = "127.0.0.1"
        #expect(throws: EmergencyWiFiError.self) { try EmergencyWiFiFiles(wifi: EmergencyWiFiSettings(), portal: portal) }
        portal.settings.bindAddress = "0.0.0.0"
        portal.enabled = false
        #expect(throws: EmergencyWiFiError.self) { try EmergencyWiFiFiles(wifi: EmergencyWiFiSettings(), portal: portal) }
    }

    @Test("dnsmasq accepts the generated dnsmasq.conf (dnsmasq --test)")
    func dnsmasqSyntax() async throws {
        try requireProgram("/usr/sbin/dnsmasq", package: "dnsmasq-base")
        let directory = try temporaryDirectory("kiezbox-wifi-syntax")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files = try EmergencyWiFiFiles(wifi: EmergencyWiFiSettings(), portal: PortalConfiguration())
        let contents = try #require(files.render().first { $0.name == "dnsmasq.conf" }).contents
        try contents.write(toFile: directory + "/dnsmasq.conf", atomically: true, encoding: .utf8)
        let check = try await runProgram(["/usr/sbin/dnsmasq", "--test", "--conf-file=\(directory)/dnsmasq.conf"], in: directory)
        #expect(check.status == 0, "\(check.all)")
        #expect(check.all.contains("syntax check OK"), "\(check.all)")
    }
}

@Suite("Emergency Wi-Fi: a phone and a box in network namespaces", .serialized, .timeLimit(.minutes(3)))
struct EmergencyWiFiNamespaceTests {
    static let apiURL = "http://kiez.box/api/captive"
    static let portalURL = "http://kiez.box/"

    /// The box's configuration: simulated sensors, the portal on 8080 behind the firewall's port 80.
    static func configuration(interface: String) -> String {
        """
        [box]
        id = "wifi-test"
        district = "test-kiez"

        [store]
        flush_interval = "1s"

        [simulation]
        enabled = true

        [[sensor]]
        id = "climate"
        chip = "bme280"
        address = 0x76
        interval = "5s"

        [portal]
        listen = "0.0.0.0"
        port = 8080
        public_url = "\(Self.portalURL)"

        [wifi]
        interface = "\(interface)"
        ssid = "Kiezbox Notfall-WLAN Test"
        dhcp_range = ["10.42.0.100", "10.42.0.120"]
        lease = "30m"
        """
    }

    /// Records what udhcpc hands the script: the lease, and option 114 as hex (busybox has no name for it).
    static let leaseScript = """
        #!/bin/sh
        case "$1" in
          bound|renew)
            printf 'ip=%s\\nmask=%s\\nrouter=%s\\ndns=%s\\nlease=%s\\nopt114=%s\\n' \
              "$ip" "$mask" "$router" "$dns" "$lease" "$opt114" > "$(dirname "$0")/lease.txt"
            /usr/sbin/ip address add "$ip/$mask" dev "$interface"
            /usr/sbin/ip route add default via "$router" dev "$interface"
            ;;
        esac
        exit 0

        """

    @Test("lease with option 114, every name is the box, port 80 reaches the portal, HTTPS and DoT are refused at once")
    func phoneReachesPortal() async throws {
        try #require(getuid() == 0, "network namespaces need root")
        for (tool, package) in [
            ("/usr/sbin/ip", "iproute2"), ("/usr/sbin/dnsmasq", "dnsmasq-base"), ("/usr/sbin/nft", "nftables"),
            ("/usr/sbin/hostapd", "hostapd"), ("/usr/bin/busybox", "busybox-static"), ("/usr/bin/curl", "curl"),
        ] {
            try requireProgram(tool, package: package)
        }
        try #require(FileManager.default.isExecutableFile(atPath: kiezboxBinary), "no kiezbox binary at \(kiezboxBinary)")

        let rig = try WiFiRig()
        defer { rig.tearDown() }
        let directory = rig.directory
        let box = rig.mesh.namespace("box")
        let boxLink = rig.mesh.inside("box")
        let phoneLink = rig.mesh.inside("phone")

        // The veth stands in for the radio: the box has only its Wi-Fi address, the phone none until DHCP.
        try MeshNamespaces.ip("netns", "exec", box, "ip", "address", "flush", "dev", boxLink)
        try MeshNamespaces.ip("netns", "exec", box, "ip", "address", "add", "10.42.0.1/24", "dev", boxLink)
        try MeshNamespaces.ip("netns", "exec", rig.mesh.namespace("phone"), "ip", "address", "flush", "dev", phoneLink)

        // 1. The real CLI writes the files.
        let configPath = directory + "/kiezbox.toml"
        try Self.configuration(interface: boxLink).write(toFile: configPath, atomically: true, encoding: .utf8)
        let generate = try runKiezbox(["wifi", "config", "--config", configPath, "--out", directory + "/wifi"], in: directory)
        try #require(generate.status == 0, "kiezbox wifi config: \(generate.stderr)")
        #expect(generate.stdout.contains(Self.apiURL))

        // Only the file paths change, so that dnsmasq writes into the test's directory.
        var dnsmasqConf = try String(contentsOfFile: directory + "/wifi/dnsmasq.conf", encoding: .utf8)
        let defaults = DnsmasqConfiguration.Paths()
        for (from, to) in [
            ("pid-file=\(defaults.pidFile)", "pid-file=\(directory)/dnsmasq.pid"),
            ("dhcp-leasefile=\(defaults.leaseFile)", "dhcp-leasefile=\(directory)/dnsmasq.leases"),
        ] {
            try #require(dnsmasqConf.contains(from), "dnsmasq.conf has no line \(from)")
            dnsmasqConf = dnsmasqConf.replacingOccurrences(of: from, with: to)
        }
        try dnsmasqConf.write(toFile: directory + "/dnsmasq.conf", atomically: true, encoding: .utf8)

        // 2. hostapd reads the generated file without a complaint and gets as far as the driver, which a veth
        // does not have (hostapd has no check-only mode; it cannot run without a radio).
        let hostapd = try await rig.box(["/usr/sbin/hostapd", directory + "/wifi/hostapd.conf"])
        #expect(!hostapd.all.contains("errors found in configuration file"), "hostapd: \(hostapd.all)")
        #expect(!hostapd.all.contains("unknown configuration item"), "hostapd: \(hostapd.all)")
        #expect(hostapd.all.contains("nl80211"), "hostapd should fail only at the nl80211 driver: \(hostapd.all)")
        try MeshNamespaces.ip("netns", "exec", box, "ip", "link", "set", boxLink, "up")

        // 3. The firewall loads, and loads again (the unit reloads it without deleting first).
        for attempt in 1...2 {
            let load = try await rig.box(["/usr/sbin/nft", "-f", directory + "/wifi/nftables.conf"])
            try #require(load.status == 0, "nft -f, attempt \(attempt): \(load.all)")
        }
        let table = try await rig.box(["/usr/sbin/nft", "list", "table", "inet", NftablesRuleset.tableName])
        #expect(table.output.contains("dnat ip to 10.42.0.1:8080"), "\(table.all)")

        // 4. dnsmasq and the daemon, inside the box.
        let dnsmasq = try rig.start(in: box, ["/usr/sbin/dnsmasq", "--keep-in-foreground", "--conf-file=\(directory)/dnsmasq.conf"])
        try await waitUntil("dnsmasq to serve DHCP", timeout: .seconds(30)) {
            guard isRunning(dnsmasq.pid) else { throw TimeoutError(what: "dnsmasq, which exited: \(dnsmasq.stderr)") }
            return dnsmasq.stderr.contains("DHCP, IP range")
        }
        let daemon = try rig.start(in: box, [kiezboxBinary, "run", "--config", configPath, "--data-dir", directory + "/data"])
        try await waitUntil("the portal to listen", timeout: .seconds(60)) {
            guard isRunning(daemon.pid) else { throw TimeoutError(what: "kiezbox, which exited: \(daemon.stderr)") }
            return daemon.stderr.contains("emergency portal listening")
        }

        // 5. The phone asks for a lease, and for option 114, as RFC 8910 clients do.
        try writeExecutable(Self.leaseScript, to: directory + "/udhcpc.sh")
        let dhcp = try await rig.phone(
            ["/usr/bin/busybox", "udhcpc", "-i", phoneLink, "-q", "-n", "-t", "5", "-O", "114", "-s", directory + "/udhcpc.sh"],
            timeout: .seconds(60)
        )
        try #require(dhcp.status == 0, "udhcpc: \(dhcp.all)\ndnsmasq: \(dnsmasq.stderr)")
        let lease = try Self.keyValues(String(contentsOfFile: directory + "/lease.txt", encoding: .utf8))
        let address = try #require(lease["ip"].flatMap(IPv4Address.init), "no address in \(lease)")
        #expect((IPv4Address("10.42.0.100")!...IPv4Address("10.42.0.120")!).contains(address), "lease \(address) outside the range")
        #expect(lease["mask"] == "24")
        #expect(lease["router"] == "10.42.0.1")
        #expect(lease["dns"] == "10.42.0.1")
        #expect(lease["lease"] == "1800")
        let option114 = try #require(lease["opt114"].flatMap(Self.decodeHex), "option 114 missing or not hex: \(lease)")
        #expect(option114 == Self.apiURL)

        // The phone uses the DNS server DHCP gave it (ip netns exec mounts this file over /etc/resolv.conf).
        try rig.setPhoneResolver(try #require(lease["dns"]))

        // 6. DNS: every name is the box, AAAA gets an immediate empty answer, and DNS sent elsewhere is answered
        // by the box all the same.
        for name in ["connectivitycheck.gstatic.com", "www.msftconnecttest.com", "dns.msftncsi.com", "captive.apple.com", "kiez.box"] {
            let lookup = try await rig.phone(["/usr/bin/busybox", "nslookup", "-type=A", name, "10.42.0.1"])
            #expect(lookup.status == 0, "\(name): \(lookup.all)")
            #expect(Self.answers(lookup.output) == ["10.42.0.1"], "\(name): \(lookup.all)")
        }
        let aaaa = try await rig.phone(["/usr/bin/busybox", "nslookup", "-type=AAAA", "connectivitycheck.gstatic.com", "10.42.0.1"])
        #expect(!aaaa.all.contains("timed out"), "AAAA must be answered, not left to time out: \(aaaa.all)")
        #expect(Self.answers(aaaa.output).isEmpty, "\(aaaa.all)")
        let elsewhere = try await rig.phone(["/usr/bin/busybox", "nslookup", "-type=A", "captive.apple.com", "9.9.9.9"])
        #expect(Self.answers(elsewhere.output) == ["10.42.0.1"], "DNS to 9.9.9.9 should reach the box: \(elsewhere.all)")

        // 7. The Android probe, by name through the box's DNS, on port 80: the firewall hands it to the portal on
        // 8080, which redirects to the portal page.
        let probe = try await rig.curl(["http://connectivitycheck.gstatic.com/generate_204"])
        #expect(probe.status == 0, "\(probe.all)")
        #expect(probe.summary == "302 10.42.0.1:80", "\(probe.all)")
        #expect(probe.header("location") == Self.portalURL, "\(probe.all)")
        let windows = try await rig.curl(["http://www.msftconnecttest.com/connecttest.txt"])
        #expect(windows.summary == "302 10.42.0.1:80", "\(windows.all)")
        #expect(windows.header("location") == Self.portalURL, "\(windows.all)")

        // A probe to an address, not a name (apps with hard-coded addresses): the firewall hands it to the portal
        // too, which redirects it rather than taking the foreign address for its own.
        let byAddress = try await rig.curl(["http://142.250.185.78/generate_204"])
        #expect(byAddress.summary == "302 142.250.185.78:80", "\(byAddress.all)")
        #expect(byAddress.header("location") == Self.portalURL, "\(byAddress.all)")

        // Where the redirect leads: the info page, on port 80 as well.
        let page = try await rig.curl([Self.portalURL])
        #expect(page.summary == "200 10.42.0.1:80", "\(page.all)")
        #expect(page.header("content-type")?.hasPrefix("text/html") == true, "\(page.all)")

        // 8. The RFC 8908 API at the URL option 114 carried (plain HTTP here; RFC 8908 wants HTTPS).
        let api = try await rig.curl(["-H", "Accept: application/captive+json", option114])
        #expect(api.summary == "200 10.42.0.1:80", "\(api.all)")
        #expect(api.header("content-type")?.hasPrefix("application/captive+json") == true, "\(api.all)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(api.body.utf8)) as? [String: Any], "\(api.body)")
        #expect(json["captive"] as? Bool == true, "\(api.body)")
        #expect(json["user-portal-url"] as? String == Self.portalURL, "\(api.body)")

        // 9. HTTPS and DNS over TLS are refused with a reset, never intercepted and never left to time out: by
        // name (the box's address) and to an address beyond the box that nothing routes to.
        for url in [
            "https://connectivitycheck.gstatic.com/generate_204", "https://1.1.1.1/", "http://1.1.1.1:853/",
            "http://10.42.0.1:853/",
        ] {
            let refused = try await rig.curl(["-v", url])
            #expect(refused.status == 7, "\(url) should fail to connect (curl 7), not time out (28): \(refused.all)")
            #expect(refused.all.contains("Connection refused"), "\(url): \(refused.all)")
        }

        // 10. Nothing else on the box: a stand-in sshd (22) and MQTT broker (1883) listen on every address, and
        // the phone is refused at once (not left to time out) while the box itself still reaches them.
        try FileManager.default.createDirectory(atPath: directory + "/www", withIntermediateDirectories: true)
        try "a local service\n".write(toFile: directory + "/www/index.html", atomically: true, encoding: .utf8)
        let localServices = [22, 1883]
        for port in localServices {
            _ = try rig.start(in: box, ["/usr/bin/busybox", "httpd", "-f", "-p", "\(port)", "-h", directory + "/www"])
        }
        for port in localServices {
            let deadline = ContinuousClock.now + .seconds(30)
            var local = try await rig.box(["/usr/bin/curl", "-sS", "--max-time", "5", "http://127.0.0.1:\(port)/"])
            while local.output != "a local service\n", ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
                local = try await rig.box(["/usr/bin/curl", "-sS", "--max-time", "5", "http://127.0.0.1:\(port)/"])
            }
            try #require(local.output == "a local service\n", "the box itself reaches its service on port \(port): \(local.all)")
            let refused = try await rig.curl(["-v", "http://10.42.0.1:\(port)/"])
            #expect(refused.status == 7, "port \(port) should be refused at once (curl 7), not time out (28): \(refused.all)")
            #expect(refused.all.contains("No route to host"), "port \(port): \(refused.all)")
        }
        // DHCP, DNS and the portal (steps 5 to 9) already went through the input chain, loaded in step 3; so does ping.
        let ping = try await rig.phone(["/usr/bin/busybox", "ping", "-c", "1", "-W", "5", "10.42.0.1"])
        #expect(ping.status == 0, "the box answers ping: \(ping.all)")

        // 11. The authority side of the portal is not served to the Wi-Fi ([wifi] authority_api is off).
        let announcement = try await rig.curl(
            ["-X", "POST", "-H", "Authorization: Bearer not-checked", "--data-binary", "{}", "http://kiez.box/api/v1/announcements"]
        )
        #expect(announcement.summary == "403 10.42.0.1:80", "\(announcement.all)")
        #expect(announcement.body.contains("not on the emergency Wi-Fi"), "\(announcement.all)")

        // The control: without the input chain the phone does reach the stand-ins, so the refusals above were the
        // firewall's doing.
        let unload = try await rig.box(["/usr/sbin/nft", "delete", "chain", "inet", NftablesRuleset.tableName, "wifi_input"])
        try #require(unload.status == 0, "\(unload.all)")
        for port in localServices {
            let reached = try await rig.curl(["http://10.42.0.1:\(port)/"])
            #expect(reached.summary == "200 10.42.0.1:\(port)", "without the input chain: \(reached.all)")
        }

        #expect(isRunning(dnsmasq.pid), "dnsmasq: \(dnsmasq.stderr)")
        #expect(isRunning(daemon.pid), "kiezbox: \(daemon.stderr)")
    }

    static func keyValues(_ text: String) -> [String: String] {
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return values
    }

    /// busybox udhcpc passes options it has no name for as hex.
    static func decodeHex(_ hex: String) -> String? {
        guard hex.count.isMultiple(of: 2) else { return nil }
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return String(bytes: bytes, encoding: .utf8)
    }

    /// The addresses in busybox nslookup's answer section ("Name: …" followed by "Address: …").
    static func answers(_ output: String) -> [String] {
        var addresses: [String] = []
        var inAnswer = false
        for line in output.split(separator: "\n") {
            if line.hasPrefix("Name:") { inAnswer = true }
            if inAnswer, line.hasPrefix("Address:") {
                addresses.append(line.dropFirst("Address:".count).trimmingCharacters(in: .whitespaces))
            }
        }
        return addresses
    }
}

/// The box and the phone in namespaces of their own, joined like two boxes on the mesh (MeshNamespaces), and
/// everything started in them. `tearDown` kills the processes, then removes the namespaces and files.
final class WiFiRig: @unchecked Sendable {
    // @unchecked: used by one test at a time; `tearDown` runs once at its end.
    let mesh: MeshNamespaces
    let directory: String
    private var processes: [SpawnedDaemon] = []

    init() throws {
        self.directory = try temporaryDirectory("kiezbox-wifi")
        do {
            self.mesh = try MeshNamespaces(boxes: ["box", "phone"])
        } catch {
            try? FileManager.default.removeItem(atPath: self.directory)
            throw error
        }
    }

    /// Where `ip netns exec` finds the phone's resolv.conf.
    private var phoneNetnsDirectory: String { "/etc/netns/" + self.mesh.namespace("phone") }

    func setPhoneResolver(_ server: String) throws {
        try FileManager.default.createDirectory(atPath: self.phoneNetnsDirectory, withIntermediateDirectories: true)
        try "nameserver \(server)\n".write(toFile: self.phoneNetnsDirectory + "/resolv.conf", atomically: true, encoding: .utf8)
    }

    /// Starts a long-running program in a namespace; it is killed at tear-down.
    func start(in namespace: String, _ arguments: [String]) throws -> SpawnedDaemon {
        let process = try SpawnedDaemon(["/usr/sbin/ip", "netns", "exec", namespace] + arguments, in: self.directory)
        self.processes.append(process)
        return process
    }

    func box(_ arguments: [String], timeout: Duration = .seconds(30)) async throws -> ProgramRun {
        try await runProgram(self.mesh.inNamespace("box", arguments), in: self.directory, timeout: timeout)
    }

    func phone(_ arguments: [String], timeout: Duration = .seconds(30)) async throws -> ProgramRun {
        try await runProgram(self.mesh.inNamespace("phone", arguments), in: self.directory, timeout: timeout)
    }

    /// curl on the phone, headers and a "status ip:port" summary line on standard output, the body in a file.
    func curl(_ arguments: [String]) async throws -> CurlRun {
        let body = self.directory + "/body-\(UUID().uuidString)"
        let run = try await self.phone(
            ["/usr/bin/curl", "-sS", "--noproxy", "*", "--max-time", "20", "-D", "-", "-o", body, "-w", "\n%{http_code} %{remote_ip}:%{remote_port}"] + arguments
        )
        defer { try? FileManager.default.removeItem(atPath: body) }
        return CurlRun(run: run, body: (try? String(contentsOfFile: body, encoding: .utf8)) ?? "")
    }

    func tearDown() {
        for process in self.processes {
            process.signal(SIGKILL)
            _ = reapedStatus(process.pid, blocking: true)
        }
        try? FileManager.default.removeItem(atPath: self.phoneNetnsDirectory)
        self.mesh.tearDown()
        try? FileManager.default.removeItem(atPath: self.directory)
    }
}

/// A daemon (or a long script) started with `posix_spawn`, out of Foundation's sight, and reaped by the test with
/// `waitpid`.
///
/// Foundation's `Process` learns that a child exited when a socket the child inherited closes, and then waits for
/// it with a blocking `waitpid` on its one watcher thread. dnsmasq closes every inherited descriptor at start, so
/// that thread would block until dnsmasq ends, and no other child of the whole test process (chromium, qemu,
/// `kiezbox`) would be seen to exit meanwhile: the full suite hung on it. Daemons are therefore spawned here.
final class SpawnedDaemon {
    let pid: pid_t
    let stderrPath: String

    /// - Parameter keepOutput: standard output goes to the same log as standard error (else to /dev/null).
    init(_ arguments: [String], in directory: String, keepOutput: Bool = false) throws {
        self.stderrPath = directory + "/stderr-\(UUID().uuidString).log"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, self.stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if keepOutput {
            posix_spawn_file_actions_adddup2(&actions, 2, 1)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        // The test process blocks SIGTERM and SIGINT (swift-service-lifecycle does in the daemon; a test runner
        // may too): the daemon starts with an empty mask and default handlers.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGTERM)
        sigaddset(&defaults, SIGINT)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, arguments[0], &actions, &attributes, &argv, environ)
        guard result == 0 else {
            throw SpawnError(description: "cannot start \(arguments[0]): \(String(cString: strerror(result)))")
        }
        self.pid = pid
    }

    var stderr: String { (try? String(contentsOfFile: self.stderrPath, encoding: .utf8)) ?? "" }

    func signal(_ number: Int32) { kill(self.pid, number) }
}

struct SpawnError: Error, CustomStringConvertible {
    var description: String
}

/// A finished program: exit status and what it printed.
struct ProgramRun {
    var status: Int32
    var output: String
    var errors: String
    var all: String { self.output + self.errors }
}

/// A finished curl: headers, the summary line, the body.
struct CurlRun {
    var run: ProgramRun
    var body: String
    var status: Int32 { self.run.status }
    var all: String { self.run.all + self.body }
    /// "302 10.42.0.1:80": the status and where the connection went, as the phone saw it.
    var summary: String { self.run.output.split(separator: "\n").last.map(String.init) ?? "" }

    /// A response header's value (the last one, after redirects curl did not follow there are none).
    func header(_ name: String) -> String? {
        self.run.output.split(separator: "\r\n").compactMap { line -> String? in
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == name else { return nil }
            return parts[1].trimmingCharacters(in: .whitespaces)
        }.last
    }
}

/// Runs a program to completion (killed after `timeout`, a hang guard), output in files so it cannot block.
func runProgram(_ arguments: [String], in directory: String, timeout: Duration = .seconds(30)) async throws -> ProgramRun {
    let id = UUID().uuidString
    let outputPath = directory + "/out-\(id)"
    let errorPath = directory + "/err-\(id)"
    _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
    defer {
        try? FileManager.default.removeItem(atPath: outputPath)
        try? FileManager.default.removeItem(atPath: errorPath)
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: arguments[0])
    process.arguments = Array(arguments.dropFirst())
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
    try process.run()
    let deadline = ContinuousClock.now + timeout
    var status: Int32?
    while status == nil {
        // Reaped here rather than trusting `isRunning`: Foundation notices an exit through a socket the child
        // inherits, and a daemon started earlier (dnsmasq closes every inherited descriptor) leaves Foundation's
        // one watcher thread blocked in waitpid on that daemon, so later exits go unnoticed.
        status = reapedStatus(process.processIdentifier) ?? (process.isRunning ? nil : process.terminationStatus)
        guard status == nil else { break }
        guard ContinuousClock.now < deadline else {
            kill(process.processIdentifier, SIGKILL)
            _ = reapedStatus(process.processIdentifier, blocking: true)
            throw TimeoutError(what: arguments.joined(separator: " "))
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    return ProgramRun(
        status: status ?? -1,
        output: (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "",
        errors: (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
    )
}

/// The exit status of child `pid` if it has ended (reaping it), `nil` while it runs or once someone else has
/// reaped it. A signal death is reported as 128 + the signal, as shells do.
func reapedStatus(_ pid: pid_t, blocking: Bool = false) -> Int32? {
    var status: Int32 = 0
    guard waitpid(pid, &status, blocking ? 0 : WNOHANG) == pid else { return nil }
    let signal = status & 0x7F
    return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
}

/// Whether child `pid` is still running (not usable after it has been reaped).
func isRunning(_ pid: pid_t) -> Bool {
    var status: Int32 = 0
    return waitpid(pid, &status, WNOHANG) == 0
}

/// Fails the test, naming the package, when a program it needs is missing.
func requireProgram(_ path: String, package: String) throws {
    try #require(
        FileManager.default.isExecutableFile(atPath: path), "\(path) is missing: install \(package) (scripts/install-deps.sh tests)"
    )
}

func temporaryDirectory(_ prefix: String) throws -> String {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    return directory
}
