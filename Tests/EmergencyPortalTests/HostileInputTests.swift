import EmergencyPortal
import Foundation
import ReadingStore
import Synchronization
import Testing

/// Generated hostile requests against the real server: whatever arrives, the answer is a 2xx/3xx/4xx (or, for
/// bytes that are not HTTP at all, a closed connection), never a 5xx or a crash, and nothing refused is stored.
@Suite("Hostile input")
struct HostileInputTests {
    /// What the workers saw, shared between them.
    final class Tally: Sendable {
        let statuses = Mutex<[Int: Int]>([:])
        let closedWithoutAnswer = Atomic<Int>(0)
        let storedExpected = Atomic<Int>(0)
        let failures = Mutex<[String]>([])
    }

    /// SplitMix64: a small deterministic generator, so a failing input can be regenerated from its seed.
    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            self.state &+= 0x9E37_79B9_7F4A_7C15
            var z = self.state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(self.next() % UInt64(n)) }
        mutating func pick<T>(_ items: [T]) -> T { items[self.below(items.count)] }
        mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: self.next()) } }
        mutating func chance(_ percent: Int) -> Bool { self.below(100) < percent }
    }

    static let hosts = [
        "kiez.box", "KIEZ.BOX", "kiez.box:80", "10.42.0.1", "[fd00::1]:80", "connectivitycheck.gstatic.com", "captive.apple.com",
        "www.msftconnecttest.com", "detectportal.firefox.com", "example.org", "", "kiez.box.", "a..b", "%00", "kiez.box:99999",
        String(repeating: "h", count: 3000), "ünïcode.example", "127.0.0.1:1",
    ]
    static let paths = [
        "/", "/?lang=ar", "/?lang=%00", "/?lang=" + String(repeating: "x", count: 2000), "/bulletin", "/acknowledge", "/api/captive",
        "/metrics", "/api/v1/situation.geojson", "/api/v1/alerts.cap", "/api/v1/announcements", "/generate_204",
        "/hotspot-detect.html", "/connecttest.txt", "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "//", "/%",
        "/%zz", "/a?b=%", "/?posted=1&posted=2", "*", "http://kiez.box/", "/" + String(repeating: "a/", count: 3000),
        "/\u{0}", "/<script>", "/?q=<script>alert(1)</script>",
    ]
    static let methods = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT", "G\u{0}T", "get", ""]
    static let fieldNames = ["kind", "category", "text", "place", "lang", "token", "x", "", "kind[]", "t%00ext"]
    static let fieldValues = [
        "request", "offer", "safe", "water", "medical", "<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>",
        String(repeating: "A", count: 300), "%", "%zz", "%C3%28", "%00", "%E2%80%AE", "+++", "", "🙂🙂🙂", "ع", "'; DROP TABLE bulletin_post;--",
    ]

    /// One generated request, as bytes.
    static func request(_ generator: inout Generator, token: String) -> (bytes: [UInt8], isBulletinPost: Bool) {
        var g = generator
        defer { generator = g }
        // A few percent are not HTTP at all.
        if g.chance(3) { return (g.bytes(1 + g.below(600)), false) }
        let method = g.chance(70) ? (g.chance(50) ? "GET" : "POST") : g.pick(methods)
        let path = g.chance(80) ? g.pick(paths) : "/" + String(decoding: g.bytes(g.below(40)).map { $0 & 0x7F }, as: UTF8.self)
        var head = "\(method) \(path) \(g.chance(95) ? "HTTP/1.1" : g.pick(["HTTP/1.0", "HTTP/2.0", "HTTP/9", "", "FOO"]))\r\n"
        if g.chance(95) { head += "Host: \(g.pick(hosts))\r\n" }
        if g.chance(30) { head += "User-Agent: \(g.pick(["CaptiveNetworkSupport-443.40.1 wispr", "Microsoft NCSI", String(repeating: "U", count: 5000)]))\r\n" }
        if g.chance(20) { head += "Accept-Language: \(g.pick(["ar-EG;q=0.9,*;q=0.1", "uk", ";;;q=x", "tr-TR,de;q=0.5", String(repeating: "x,", count: 2000)]))\r\n" }
        if g.chance(10) { head += "Authorization: \(g.pick(["Bearer ", "Bearer x", "Basic YTpi", String(repeating: "B", count: 9000)]))\r\n" }
        if g.chance(5) { head += "X-Junk: \(String(decoding: g.bytes(30).map { $0 | 0x80 }, as: UTF8.self))\r\n" }
        var body: [UInt8] = []
        if method == "POST" {
            if g.chance(10) {
                body = g.bytes(g.below(g.chance(10) ? 40_000 : 500))
            } else {
                var fields: [(String, String)] = []
                let valid = g.chance(5)
                if valid {
                    fields = [("kind", "offer"), ("category", g.pick(["food", "water", "power"])), ("text", "Hilfe \(g.below(1000))"), ("token", token)]
                } else {
                    for _ in 0..<g.below(7) { fields.append((g.pick(fieldNames), g.pick(fieldValues))) }
                    if g.chance(30) { fields.append(("token", g.chance(50) ? token : "forged\(g.below(99))")) }
                }
                body = Array(fields.map { "\($0.0)=\($0.1)" }.joined(separator: "&").utf8)
            }
            head += "Content-Type: \(g.chance(85) ? "application/x-www-form-urlencoded" : g.pick(["text/plain", "application/json", "multipart/form-data; boundary=x", ""]))\r\n"
            if g.chance(95) {
                // Sometimes a length that lies.
                let length = g.chance(90) ? body.count : g.pick([0, body.count + 10, 1 << 30, -1])
                head += "Content-Length: \(length)\r\n"
            }
        }
        head += "Connection: close\r\n\r\n"
        // Whatever the fields, only a post to the bulletin can be stored, and the server answers a stored one with 303.
        return (Array(head.utf8) + body, head.hasPrefix("POST /bulletin "))
    }

    @Test("100,000 generated hostile requests: never a 5xx or a crash; only valid posts are stored")
    func generatedRequests() async throws {
        try await withRunningPortal { portal in
            let total = 100_000
            let workers = 4
            let tally = Tally()
            // Each worker is a phone of its own with its own form token (tokens are bound to the address).
            // Each worker is a phone of its own with its own form token (tokens are bound to the address), on a
            // thread of its own: its socket calls block, and the server's handlers run on the concurrency pool.
            var workerThreads: [Thread] = []
            let finished = DispatchGroup()
            for worker in 0..<workers {
                let phone = RawHTTPClient(port: portal.port, source: "127.0.1.\(worker + 1)")
                let token = try BulletinTests.formToken(in: try await phone.get("/", host: "kiez.box").text)
                finished.enter()
                let thread = Thread {
                    defer { finished.leave() }
                    var generator = Generator(state: 0x4B1E_2B0C + UInt64(worker))
                    for index in 0..<(total / workers) {
                        let (bytes, isBulletinPost) = Self.request(&generator, token: token)
                        do {
                            let answer = try phone.blockingExchange(bytes)
                            tally.statuses.withLock { $0[answer.status, default: 0] += 1 }
                            if answer.status >= 500 {
                                tally.failures.withLock { $0.append("worker \(worker) #\(index): \(answer.status) for \(String(decoding: bytes.prefix(200), as: UTF8.self))") }
                            }
                            if isBulletinPost && answer.status == 303 { tally.storedExpected.add(1, ordering: .relaxed) }
                        } catch {
                            // Bytes that are not HTTP may be answered by closing the connection.
                            tally.closedWithoutAnswer.add(1, ordering: .relaxed)
                        }
                    }
                }
                workerThreads.append(thread)
            }
            workerThreads.forEach { $0.start() }
            await withCheckedContinuation { continuation in
                finished.notify(queue: .global()) { continuation.resume() }
            }
            let counts = tally.statuses.withLock { $0 }
            let answered = counts.values.reduce(0, +)
            print("hostile input: \(total) requests, \(answered) answered \(counts.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: " ")), \(tally.closedWithoutAnswer.load(ordering: .relaxed)) closed without an answer")
            #expect(tally.failures.withLock { $0 }.isEmpty, "\(tally.failures.withLock { $0.prefix(5) })")
            #expect(counts.keys.allSatisfy { $0 < 500 })
            // Only malformed bytes may go unanswered, and they are a few percent of the inputs.
            #expect(tally.closedWithoutAnswer.load(ordering: .relaxed) < total / 10)
            // The server still serves, and stored exactly the valid posts it accepted.
            #expect(try await portal.phone(9).get("/", host: "kiez.box").status == 200)
            let stored = try portal.store.openBulletinPosts(at: portal.clock.now, limit: 100_000)
            #expect(stored.count == tally.storedExpected.load(ordering: .relaxed))
        }
    }
}
