import EmergencyPortal
import Foundation
import Testing

/// The connectivity probes of each OS, as each sends them, against the real server over loopback sockets.
@Suite("Captive portal probes")
struct CaptivePortalTests {
    struct Probe: Sendable, CustomStringConvertible {
        var os: String
        var host: String
        var path: String
        var userAgent: String
        /// The exact "online" answer this OS expects once the phone has acknowledged the portal.
        var onlineStatus: Int
        var onlineBody: String
        /// For NetworkManager's checks: the `response=` the distribution configures ("" = expects 204 or an
        /// empty body); `nil` for other OSes.
        var networkManagerResponse: String? = nil
        var description: String { "\(self.os) \(self.host)\(self.path)" }
    }

    /// NetworkManager's verdict on an answer (src/core/nm-connectivity.c): online if the status header says so,
    /// or the body starts with the configured response, or an empty response is configured and the answer is a
    /// 204 (or a 200 with no body); anything else (the portal's redirect) is "portal".
    static func networkManagerSeesOnline(_ answer: RawHTTPClient.Answer, expecting response: String) -> Bool {
        if answer.header("X-NetworkManager-Status")?.lowercased() == "online" { return true }
        if response.isEmpty { return answer.status == 204 || (answer.status == 200 && answer.body.isEmpty) }
        return answer.text.hasPrefix(response)
    }

    /// NetworkManager (libcurl) sends no User-Agent of its own and asks for `Connection: close`.
    static let networkManagerAgent = ""

    static let probes: [Probe] = [
        Probe(
            os: "Android", host: "connectivitycheck.gstatic.com", path: "/generate_204",
            userAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/60.0.3112.32 Safari/537.36",
            onlineStatus: 204, onlineBody: ""
        ),
        Probe(
            os: "Android fallback", host: "www.google.com", path: "/gen_204",
            userAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/60.0.3112.32 Safari/537.36",
            onlineStatus: 204, onlineBody: ""
        ),
        Probe(
            os: "Android (China)", host: "connectivitycheck.gstatic.cn", path: "/generate_204",
            userAgent: "Dalvik/2.1.0 (Linux; U; Android 13)", onlineStatus: 204, onlineBody: ""
        ),
        Probe(
            os: "iOS/macOS", host: "captive.apple.com", path: "/hotspot-detect.html",
            userAgent: "CaptiveNetworkSupport-443.40.1 wispr", onlineStatus: 200,
            onlineBody: "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"
        ),
        Probe(
            os: "Windows 10/11", host: "www.msftconnecttest.com", path: "/connecttest.txt", userAgent: "Microsoft NCSI",
            onlineStatus: 200, onlineBody: "Microsoft Connect Test"
        ),
        Probe(
            os: "Windows (legacy)", host: "www.msftncsi.com", path: "/ncsi.txt", userAgent: "Microsoft NCSI",
            onlineStatus: 200, onlineBody: "Microsoft NCSI"
        ),
        Probe(
            os: "Firefox", host: "detectportal.firefox.com", path: "/canonical.html",
            userAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", onlineStatus: 200,
            onlineBody: "<meta http-equiv=\"refresh\" content=\"0;url=https://support.mozilla.org/kb/captive-portal\"/>"
        ),
        Probe(
            os: "Firefox connectivity", host: "detectportal.firefox.com", path: "/success.txt?ipv4",
            userAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", onlineStatus: 200,
            onlineBody: "success\n"
        ),
        // NetworkManager as the distributions ship it ([connectivity] uri= and response= in their conf.d files).
        Probe(
            os: "GNOME (NetworkManager)", host: "nmcheck.gnome.org", path: "/check_network_status.txt", userAgent: networkManagerAgent,
            onlineStatus: 200, onlineBody: "NetworkManager is online\n", networkManagerResponse: "NetworkManager is online"
        ),
        Probe(
            os: "Debian (NetworkManager)", host: "network-test.debian.org", path: "/nm", userAgent: networkManagerAgent,
            onlineStatus: 200, onlineBody: "NetworkManager is online\n", networkManagerResponse: "NetworkManager is online"
        ),
        Probe(
            os: "Ubuntu (NetworkManager)", host: "connectivity-check.ubuntu.com", path: "/", userAgent: networkManagerAgent,
            onlineStatus: 204, onlineBody: "", networkManagerResponse: "NetworkManager is online"
        ),
        Probe(
            os: "Fedora (NetworkManager)", host: "fedoraproject.org", path: "/static/hotspot.txt", userAgent: networkManagerAgent,
            onlineStatus: 200, onlineBody: "OK\n", networkManagerResponse: "OK"
        ),
        Probe(
            os: "Arch Linux (NetworkManager)", host: "ping.archlinux.org", path: "/nm-check.txt", userAgent: networkManagerAgent,
            onlineStatus: 200, onlineBody: "NetworkManager is online\n", networkManagerResponse: "NetworkManager is online"
        ),
        Probe(
            os: "KDE (NetworkManager)", host: "networkcheck.kde.org", path: "/", userAgent: networkManagerAgent,
            onlineStatus: 200, onlineBody: "OK\n", networkManagerResponse: "OK"
        ),
    ]

    @Test("a new phone's probe is sent to the portal; once acknowledged it gets the OS's exact online answer", arguments: probes)
    func probe(_ probe: Probe) async throws {
        try await withRunningPortal { portal in
            let phone = portal.phone(1)
            let headers = (probe.userAgent.isEmpty ? [] : [("User-Agent", probe.userAgent)]) + [("Accept", "*/*")]
            let before = try await phone.get(probe.path, host: probe.host, headers: headers)
            #expect(before.status == 302)
            #expect(before.header("Location") == "http://kiez.box/")
            #expect(before.header("Cache-Control") == "no-store")
            if let response = probe.networkManagerResponse {
                #expect(!Self.networkManagerSeesOnline(before, expecting: response), "a captive desktop must see the portal")
            }

            // The person taps "continue" on the portal page (a plain form post, no JavaScript).
            let acknowledged = try await phone.post("/acknowledge", host: "kiez.box", contentType: "application/x-www-form-urlencoded", body: [])
            #expect(acknowledged.status == 303)

            let after = try await phone.get(probe.path, host: probe.host, headers: headers)
            #expect(after.status == probe.onlineStatus)
            #expect(after.text == probe.onlineBody)
            if let response = probe.networkManagerResponse {
                #expect(after.header("X-NetworkManager-Status") == "online")
                #expect(Self.networkManagerSeesOnline(after, expecting: response))
                // Whatever a distribution configures as its expected body, the status header says online.
                #expect(Self.networkManagerSeesOnline(after, expecting: "some other distribution's text"))
            }

            // Another phone has not acknowledged anything: still captive.
            let other = try await portal.phone(2).get(probe.path, host: probe.host, headers: headers)
            #expect(other.status == 302)
        }
    }

    @Test("acknowledgement runs out; a box can keep phones captive on purpose")
    func acknowledgementLifetime() async throws {
        try await withRunningPortal(settings: RunningPortal.settings { $0.acknowledgementLifetime = .seconds(3600) }) { portal in
            let phone = portal.phone(3)
            _ = try await phone.post("/acknowledge", host: "kiez.box", contentType: "application/x-www-form-urlencoded", body: [])
            #expect(try await phone.get("/generate_204", host: "connectivitycheck.gstatic.com").status == 204)
            portal.clock.advance(by: 3601)
            #expect(try await phone.get("/generate_204", host: "connectivitycheck.gstatic.com").status == 302)
        }
        try await withRunningPortal(settings: RunningPortal.settings { $0.acknowledgedClientsSeeOnline = false }) { portal in
            let phone = portal.phone(4)
            _ = try await phone.post("/acknowledge", host: "kiez.box", contentType: "application/x-www-form-urlencoded", body: [])
            #expect(try await phone.get("/hotspot-detect.html", host: "captive.apple.com").status == 302)
        }
    }

    @Test("any other name and path is redirected to the portal; Windows' redirect page always shows the portal")
    func otherHosts() async throws {
        try await withRunningPortal { portal in
            let phone = portal.phone(5)
            for (host, path) in [("example.org", "/"), ("www.tagesschau.de", "/inland/index.html"), ("neverssl.com", "/?x=1")] {
                let answer = try await phone.get(path, host: host)
                #expect(answer.status == 302, "\(host)")
                #expect(answer.header("Location") == "http://kiez.box/")
            }
            _ = try await phone.post("/acknowledge", host: "kiez.box", contentType: "application/x-www-form-urlencoded", body: [])
            #expect(try await phone.get("/redirect", host: "www.msftconnecttest.com").status == 302)
            #expect(try await phone.get("/", host: "example.org").status == 302)
            // The portal's own name, the box's address the phone reached and localhost are the portal itself.
            #expect(try await phone.get("/", host: "kiez.box").status == 200)
            #expect(try await phone.get("/", host: "KIEZ.BOX:80").status == 200)
            #expect(try await phone.get("/", host: "127.0.0.1:\(portal.port)").status == 200)
            // Any other address is where the phone wanted to go (the firewall sends all port-80 traffic here).
            for host in ["142.250.1.1", "[2001:db8::1]:80", "10.42.0.99"] {
                #expect(try await portal.phone(8).get("/generate_204", host: host).status == 302, "\(host)")
                #expect(try await portal.phone(8).get("/", host: host).status == 302, "\(host)")
            }
        }
    }

    @Test("RFC 8908 API: captive+json, private, captive until acknowledged")
    func captivePortalAPI() async throws {
        try await withRunningPortal { portal in
            let phone = portal.phone(6)
            let before = try await phone.get("/api/captive", host: "kiez.box", headers: [("Accept", "application/captive+json")])
            #expect(before.status == 200)
            #expect(before.header("Content-Type") == "application/captive+json")
            #expect(before.header("Cache-Control") == "private")
            #expect(before.body.count <= 4096)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(before.body)) as? [String: Any])
            #expect(json["captive"] as? Bool == true)
            #expect(json["user-portal-url"] as? String == "http://kiez.box/")
            #expect(json["seconds-remaining"] == nil)

            _ = try await phone.post("/acknowledge", host: "kiez.box", contentType: "application/x-www-form-urlencoded", body: [])
            let after = try await phone.get("/api/captive", host: "kiez.box", headers: [("Accept", "application/captive+json")])
            let afterJSON = try #require(try JSONSerialization.jsonObject(with: Data(after.body)) as? [String: Any])
            #expect(afterJSON["captive"] as? Bool == false)
        }
    }

    @Test("probe classification by host and path, in any case")
    func classification() {
        #expect(ConnectivityProbe.classify(host: "CONNECTIVITYCHECK.GSTATIC.COM", path: "/generate_204") == .android)
        #expect(ConnectivityProbe.classify(host: "connectivitycheck.platform.hicloud.com", path: "/generate_204") == .android)
        #expect(ConnectivityProbe.classify(host: "www.apple.com", path: "/library/test/success.html") == .apple)
        #expect(ConnectivityProbe.classify(host: "ipv6.msftconnecttest.com", path: "/connecttest.txt") == .windows)
        #expect(ConnectivityProbe.classify(host: "example.org", path: "/connecttest.txt") == nil)
        #expect(ConnectivityProbe.classify(host: "example.org", path: "/") == nil)
        #expect(ConnectivityProbe.classify(host: "NMCHECK.GNOME.ORG", path: "/check_network_status.txt") != nil)
        #expect(ConnectivityProbe.classify(host: "connectivity-check.ubuntu.com", path: "/") != nil)
        #expect(ConnectivityProbe.classify(host: "fedoraproject.org", path: "/wiki/Fedora") == nil)
        #expect(ConnectivityProbe.classify(host: "example.org", path: "/nm-check.txt") == nil)
    }
}
