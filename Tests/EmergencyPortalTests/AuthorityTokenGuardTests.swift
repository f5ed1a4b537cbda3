import Foundation
import Logging
import Testing

@testable import EmergencyPortal

/// Authority tokens: refused over plain HTTP (the open Wi-Fi and the mesh can read them), wrong ones logged and
/// slowed down per address, over real sockets. The portal's clock stands still unless the test moves it, so the
/// waits are exact and nothing depends on how fast the machine is.
@Suite("Authority tokens: plain HTTP refused, wrong ones logged and slowed down")
struct AuthorityTokenGuardTests {
    static let token = "civil-protection-test-token-0123456789abcdef"
    static var authorities: AuthorityTokens {
        get throws { AuthorityTokens([try AuthorityToken(name: "Lagedienst", tokenSHA256: AuthorityTokens.hash(token: Self.token))]) }
    }
    static let feed = "/api/v1/situation.geojson"
    static func bearer(_ token: String) -> [(String, String)] { [("Authorization", "Bearer \(token)")] }

    @Test("many wrong tokens from one address: 401 up to the threshold, then 429 with Retry-After doubling; another address's right token still works; the log shows the failures")
    func wrongTokensSlowedDownPerAddress() async throws {
        let (logger, lines) = RecordingLogHandler.logger()
        try await withRunningPortal(authorities: try Self.authorities, logger: logger) { portal in
            let policy = portal.server.settings.authorityAttempts
            let guesser = portal.phone(70)
            let authority = portal.phone(80)
            var statuses: [Int] = []
            for attempt in 0..<(policy.freeFailures + 20) {
                statuses.append(try await guesser.get(Self.feed, host: "kiez.box", headers: Self.bearer("guess-\(attempt)")).status)
            }
            #expect(Array(statuses.prefix(policy.freeFailures)) == Array(repeating: 401, count: policy.freeFailures), "\(statuses)")
            #expect(Array(statuses.dropFirst(policy.freeFailures)) == Array(repeating: 429, count: 20), "\(statuses)")

            // Waiting, even the right token is not looked at from that address...
            let waiting = try await guesser.get(Self.feed, host: "kiez.box", headers: Self.bearer(Self.token))
            #expect(waiting.status == 429)
            #expect(waiting.header("Retry-After") == "1")
            // ...but the authority elsewhere is not locked out, and the public feed stays open to everyone.
            let served = try await authority.get(Self.feed, host: "kiez.box", headers: Self.bearer(Self.token))
            #expect(served.status == 200, "\(served.text)")
            #expect(try await guesser.get(Self.feed, host: "kiez.box").status == 200)
            let announcement = try await guesser.post(
                "/api/v1/announcements", host: "kiez.box", contentType: "application/json", body: Array("{}".utf8), headers: Self.bearer("guess-x"))
            #expect(announcement.status == 429)

            // After the wait one more guess is checked, and the next wait is twice as long.
            portal.clock.advance(by: 1)
            #expect(try await guesser.get(Self.feed, host: "kiez.box", headers: Self.bearer("guess-after")).status == 401)
            #expect(try await guesser.get(Self.feed, host: "kiez.box", headers: Self.bearer("guess-again")).header("Retry-After") == "2")

            let logged = lines.all.filter { $0.contains("wrong authority token") }
            #expect(logged.contains { $0.contains("client=127.0.0.71") && $0.contains("failures=1 ") }, "\(lines.all)")
            #expect(logged.contains { $0.contains("must wait") && $0.contains("failures=\(policy.freeFailures) ") }, "\(lines.all)")
            // Rate-limited: the first failure and each wait, not one line per guess.
            #expect(logged.count <= 3, "\(logged)")
            #expect(!lines.all.contains { $0.contains("127.0.0.81") }, "\(lines.all)")
        }
    }

    @Test("a token over plain HTTP from the network is refused with 403 pointing to HTTPS, and a real one is logged as leaked; loopback may be allowed")
    func plainHTTPRefused() async throws {
        let (logger, lines) = RecordingLogHandler.logger()
        let settings = RunningPortal.settings {
            $0.tokensOverPlainHTTP = .refuse
            $0.httpsPort = 8443
        }
        try await withRunningPortal(settings: settings, authorities: try Self.authorities, logger: logger) { portal in
            let mesh = portal.phone(60)
            let refused = try await mesh.get(Self.feed, host: "kiez.box", headers: Self.bearer(Self.token))
            #expect(refused.status == 403)
            #expect(refused.text.contains("not accepted over plain HTTP"), "\(refused.text)")
            #expect(refused.text.contains("https://<this box>:8443/"), "\(refused.text)")
            // A wrong token gets the same answer: plain HTTP is no oracle for guesses.
            let guessed = try await mesh.get(Self.feed, host: "kiez.box", headers: Self.bearer("guessed"))
            #expect(guessed.status == 403)
            #expect(guessed.text == refused.text)
            let posted = try await mesh.post(
                "/api/v1/announcements", host: "kiez.box", contentType: "application/json", body: Array("{}".utf8), headers: Self.bearer(Self.token))
            #expect(posted.status == 403)
            #expect(lines.all.contains { $0.contains("crossed the network in clear") && $0.contains("authority=Lagedienst") && $0.contains("client=127.0.0.61") }, "\(lines.all)")
            // Without a token the public feed is served as before.
            #expect(try await mesh.get(Self.feed, host: "kiez.box").status == 200)
        }
        try await withRunningPortal(settings: RunningPortal.settings { $0.tokensOverPlainHTTP = .loopback }, authorities: try Self.authorities) { portal in
            let fromLoopback = try await portal.phone(60).get(Self.feed, host: "kiez.box", headers: Self.bearer(Self.token))
            #expect(fromLoopback.status == 200)
        }
    }

    @Test("an address that guesses whenever it is let gets a few dozen guesses a day (printed), not 1,300 a second")
    func guessesPerDay() {
        let attempts = AuthorityAttempts(logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        var now = start
        var checked = 0
        while now < start + 86_400 {
            if case .wait(let seconds) = attempts.admission(for: "10.0.0.1", at: now) {
                now += TimeInterval(seconds)
                continue
            }
            attempts.recordFailure(from: "10.0.0.1", at: now)
            checked += 1
        }
        print("wrong tokens compared in 24 h from one address guessing whenever allowed: \(checked) (default policy)")
        #expect(checked < 100)
    }

    @Test("the wait doubles up to the maximum, and the table of addresses stays bounded")
    func attemptsBounded() {
        let policy = AuthorityAttemptPolicy(freeFailures: 2, firstDelay: .seconds(1), maximumDelay: .seconds(8), maximumAddresses: 100)
        let attempts = AuthorityAttempts(policy: policy, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        var now = Date(timeIntervalSince1970: 1_800_000_000)
        var waits: [Int] = []
        for _ in 0..<8 {
            attempts.recordFailure(from: "10.0.0.1", at: now)
            guard case .wait(let seconds) = attempts.admission(for: "10.0.0.1", at: now) else { waits.append(0); continue }
            waits.append(seconds)
            now += TimeInterval(seconds)
        }
        #expect(waits == [0, 1, 2, 4, 8, 8, 8, 8])
        for host in 0..<1000 { attempts.recordFailure(from: "10.1.\(host / 256).\(host % 256)", at: now) }
        #expect(attempts.trackedAddresses <= 100)
        // IPv6 clients count by their /64; IPv4 (also as a mapped IPv6 address) by the address.
        #expect(PortalServer.guessingSource("fd00:1:2:3:aaaa::1") == PortalServer.guessingSource("fd00:1:2:3:bbbb::2"))
        #expect(PortalServer.guessingSource("fd00:1:2:3:aaaa::1") == "fd00:1:2:3::/64")
        #expect(PortalServer.guessingSource("fd00:1:2:4::1") != PortalServer.guessingSource("fd00:1:2:3::1"))
        #expect(PortalServer.guessingSource("::ffff:10.42.0.7") == "10.42.0.7")
    }
}
