import Foundation
import KiezboxCore
import Synchronization

/// What one attacking connection slot does, over and over, until the attack ends.
enum AttackRole: Sendable, Hashable {
    /// Fetches the info page for its form token, then posts to the bulletin (maximal, "Zalgo" and
    /// variation-selector posts in turn), then again: the rate limit answers most of them.
    case flood
    /// Loops on `GET /?all=1`, every post on one page.
    case allPostsLoop
    /// Loops on `GET /metrics`.
    case metricsLoop
    /// Holds a connection open without finishing a request (or idles after one), reopened after a while.
    case slowLoris(SlowLorisStyle)
    /// Announces a 100 MB body; `fast` sends it at full speed, otherwise at 1 KB/s.
    case oversized(fast: Bool)
    /// Sends malformed, smuggling and traversal requests.
    case malformed

    var name: String {
        switch self {
        case .flood: "flood"
        case .allPostsLoop: "all-posts loop"
        case .metricsLoop: "metrics loop"
        case .slowLoris(let style): "slow-loris (\(style.rawValue))"
        case .oversized(let fast): fast ? "oversized (fast)" : "oversized (1 KB/s)"
        case .malformed: "malformed"
        }
    }

    var isSlowLoris: Bool {
        if case .slowLoris = self { return true }
        return false
    }
}

enum SlowLorisStyle: String, Sendable, Hashable, CaseIterable {
    /// An unfinished request head, one more header line every few seconds.
    case dribbledHeaders = "dribbled headers"
    /// Connects and says nothing.
    case silent
    /// A complete head for a 1 KB form, then its body a few bytes at a time.
    case slowBody = "slow body"
    /// One complete keep-alive request, then the connection left open.
    case idleKeepAlive = "idle keep-alive"
}

/// One attacking connection slot: what it does and the loopback address it binds to before connecting.
struct AttackSlot: Sendable {
    var role: AttackRole
    var source: String
}

/// The whole attack: who does what against which address, for how long.
struct AttackPlan: Sendable {
    var port: Int
    /// The box's address the attackers reach (its emergency Wi-Fi address).
    var destination: String
    var duration: Duration
    var slots: [AttackSlot]
    /// Slow-loris connections are closed by the attacker after a random lifetime in this range and opened again,
    /// so that more of them are made in total than are held at once (the daemon's file limit caps the latter).
    var slowLorisLifetime: ClosedRange<Double> = 8...16
    /// Slots start over this long, so the listen backlog is not one burst of SYNs.
    var rampUp: Duration = .seconds(3)
    /// A request that has had no complete answer for this long is given up (a hang guard, counted).
    var requestTimeout: Duration = .seconds(15)
}

/// What the attack saw.
struct AttackReport: Sendable {
    /// Answers by status code, over every role.
    var statuses: [Int: Int] = [:]
    /// Answers by role, then status code.
    var statusesByRole: [String: [Int: Int]] = [:]
    /// Connections opened (connect succeeded) by role.
    var opened: [String: Int] = [:]
    /// Connections the server closed or reset before the attacker was done with them, by role.
    var closedByServer: [String: Int] = [:]
    /// Requests given up after ``AttackPlan/requestTimeout`` without an answer, by role.
    var unanswered: [String: Int] = [:]
    /// Connections that could not be made at all (refused, timed out, local errors).
    var connectFailures: [String: Int] = [:]
    /// Posts the bulletin accepted (303), in total and per source address.
    var postsAccepted = 0
    var postsAcceptedBySource: [String: Int] = [:]
    /// The first few 5xx answers, with the request that got them.
    var serverErrors: [String] = []
    /// The most attacking connections open at one time.
    var peakOpen = 0
    var peakSlowLorisOpen = 0
    var distinctSources = 0

    var slowLorisOpened: Int { self.opened.filter { $0.key.hasPrefix("slow-loris") }.values.reduce(0, +) }
    var serverErrorCount: Int { self.statuses.filter { $0.key >= 500 }.values.reduce(0, +) }
}

/// The hostile neighbours: many connections from many loopback addresses, driven by one thread with non-blocking
/// sockets and `poll`, so a thousand connections need no thousand threads.
///
/// Every request asks for `Connection: close` (but the idle keep-alive ones), so an answer is everything up to
/// the server's close; its status is taken from the first line.
final class HostileNeighbours {
    let plan: AttackPlan

    init(plan: AttackPlan) {
        self.plan = plan
    }

    /// Runs the attack on a thread of its own and returns what it saw once every connection is closed.
    static func attack(_ plan: AttackPlan) async -> AttackReport {
        await withCheckedContinuation { continuation in
            let thread = Thread {
                let neighbours = HostileNeighbours(plan: plan)
                continuation.resume(returning: neighbours.run())
            }
            thread.stackSize = 4 << 20
            thread.start()
        }
    }

    // MARK: - The connections

    private enum Phase {
        /// Waiting for `reopenAt` before connecting again.
        case waiting
        case connecting
        /// Sending the request (all at once, or a little at a time) and reading the answer.
        case exchanging
    }

    private final class Connection {
        let slot: Int
        let role: AttackRole
        let source: String
        var descriptor: Int32 = -1
        var phase = Phase.waiting
        var reopenAt: ContinuousClock.Instant
        var openedAt: ContinuousClock.Instant
        /// Slow-loris: when the attacker lets go of the connection.
        var closeAt: ContinuousClock.Instant?
        var requestStartedAt: ContinuousClock.Instant
        var outgoing: [UInt8] = []
        var sent = 0
        /// Bytes sent per step once the first `initialBytes` are out; `nil`: all at once.
        var dribble: (bytes: Int, every: Duration)?
        var initialBytes = Int.max
        var nextDribbleAt: ContinuousClock.Instant
        /// Oversized (fast): the body never ends; sent in chunks until the server answers.
        var endlessBody = false
        var incoming: [UInt8] = []
        var answered = false
        var requestName = ""
        /// Flood: the form token from the last page; `nil` means the next request fetches one.
        var token: String?
        var postVariant = 0
        var malformedIndex = 0

        init(slot: Int, role: AttackRole, source: String, startAt: ContinuousClock.Instant) {
            self.slot = slot
            self.role = role
            self.source = source
            self.reopenAt = startAt
            self.openedAt = startAt
            self.requestStartedAt = startAt
            self.nextDribbleAt = startAt
        }

        var isOpen: Bool { self.descriptor >= 0 }
        /// Whether `poll` should wake it for writing: only while there is something to send now (a dribbling
        /// connection sends on its timer instead).
        var wantsToWrite: Bool {
            guard self.phase == .exchanging, !self.answered else { return self.phase == .connecting }
            if self.endlessBody { return true }
            return self.sent < (self.dribble == nil ? self.outgoing.count : min(self.initialBytes, self.outgoing.count))
        }
    }

    private var report = AttackReport()
    private var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)
    private let clock = ContinuousClock()

    func run() -> AttackReport {
        let start = self.clock.now
        let end = start + self.plan.duration
        let count = max(1, self.plan.slots.count)
        let connections = self.plan.slots.enumerated().map { index, slot in
            Connection(slot: index, role: slot.role, source: slot.source, startAt: start + self.plan.rampUp * (Double(index) / Double(count)))
        }
        self.report.distinctSources = Set(self.plan.slots.map(\.source)).count
        var descriptors: [pollfd] = []
        var polled: [Connection] = []
        while self.clock.now < end {
            let now = self.clock.now
            for connection in connections {
                self.step(connection, now: now)
            }
            let open = connections.count(where: \.isOpen)
            self.report.peakOpen = max(self.report.peakOpen, open)
            self.report.peakSlowLorisOpen = max(self.report.peakSlowLorisOpen, connections.count { $0.isOpen && $0.role.isSlowLoris })
            descriptors.removeAll(keepingCapacity: true)
            polled.removeAll(keepingCapacity: true)
            for connection in connections where connection.isOpen {
                let events = Int16(POLLIN) | (connection.wantsToWrite ? Int16(POLLOUT) : 0)
                descriptors.append(pollfd(fd: connection.descriptor, events: events, revents: 0))
                polled.append(connection)
            }
            let ready = poll(&descriptors, nfds_t(descriptors.count), 20)
            guard ready > 0 else { continue }
            for (index, descriptor) in descriptors.enumerated() where descriptor.revents != 0 {
                self.handle(polled[index], events: descriptor.revents)
            }
        }
        for connection in connections where connection.isOpen {
            close(connection.descriptor)
            connection.descriptor = -1
        }
        return self.report
    }

    /// Timers: (re)connect, dribble the next bytes, let go of a slow-loris, give up on an unanswered request.
    private func step(_ connection: Connection, now: ContinuousClock.Instant) {
        switch connection.phase {
        case .waiting:
            if now >= connection.reopenAt { self.open(connection, now: now) }
        case .connecting:
            if now - connection.openedAt > self.plan.requestTimeout {
                // The listen backlog was full and the SYNs went unanswered.
                self.report.connectFailures["\(connection.role.name): not connected within \(Int(self.plan.requestTimeout.timeInterval)) s", default: 0] += 1
                self.finish(connection, now: now, pause: .milliseconds(200))
            }
        case .exchanging:
            if let closeAt = connection.closeAt, now >= closeAt {
                self.finish(connection, now: now, pause: .milliseconds(50))
                return
            }
            if connection.closeAt == nil, !connection.answered, now - connection.requestStartedAt > self.plan.requestTimeout {
                self.report.unanswered[connection.role.name, default: 0] += 1
                self.finish(connection, now: now, pause: .milliseconds(200))
                return
            }
            if connection.answered, connection.closeAt == nil, now - connection.requestStartedAt > self.plan.requestTimeout {
                // Answered but the server keeps the connection open despite `Connection: close`.
                self.finish(connection, now: now, pause: .milliseconds(50))
                return
            }
            if let dribble = connection.dribble, connection.sent >= connection.initialBytes, connection.sent < connection.outgoing.count,
                now >= connection.nextDribbleAt
            {
                let upTo = min(connection.outgoing.count, connection.sent + dribble.bytes)
                self.transmit(connection, upTo: upTo, now: now)
                connection.nextDribbleAt = now + dribble.every
            }
        }
    }

    private func open(_ connection: Connection, now: ContinuousClock.Instant) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else {
            self.report.connectFailures["socket: \(String(cString: strerror(errno)))", default: 0] += 1
            connection.reopenAt = now + .milliseconds(500)
            return
        }
        var reuse: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, connection.source, &local.sin_addr)
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = in_port_t(UInt16(self.plan.port).bigEndian)
        inet_pton(AF_INET, self.plan.destination, &remote.sin_addr)
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        let connected = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, connected == 0 || errno == EINPROGRESS else {
            self.report.connectFailures["\(connection.role.name): \(String(cString: strerror(errno)))", default: 0] += 1
            close(descriptor)
            connection.reopenAt = now + .milliseconds(500)
            return
        }
        connection.descriptor = descriptor
        connection.openedAt = now
        connection.phase = .connecting
    }

    private func handle(_ connection: Connection, events: Int16) {
        let now = self.clock.now
        if connection.phase == .connecting {
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(connection.descriptor, SOL_SOCKET, SO_ERROR, &error, &length)
            guard error == 0, events & Int16(POLLERR) == 0 else {
                self.report.connectFailures["\(connection.role.name): \(String(cString: strerror(error)))", default: 0] += 1
                self.finish(connection, now: now, pause: .milliseconds(500))
                return
            }
            guard events & Int16(POLLOUT) != 0 else { return }
            self.report.opened[connection.role.name, default: 0] += 1
            self.begin(connection, now: now)
            return
        }
        if events & Int16(POLLIN) != 0 || events & Int16(POLLHUP) != 0 || events & Int16(POLLERR) != 0 {
            while connection.isOpen {
                let count = self.readBuffer.withUnsafeMutableBytes { recv(connection.descriptor, $0.baseAddress, $0.count, 0) }
                if count > 0 {
                    self.received(connection, bytes: self.readBuffer[..<count], now: now)
                    continue
                }
                if count < 0, errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { break }
                // The server closed (or reset) the connection.
                self.closedByServer(connection, now: now)
                return
            }
        }
        if connection.isOpen, events & Int16(POLLOUT) != 0, connection.phase == .exchanging {
            let upTo = connection.sent < connection.initialBytes ? min(connection.initialBytes, connection.outgoing.count) : connection.outgoing.count
            if connection.dribble == nil || connection.sent < connection.initialBytes || connection.endlessBody {
                self.transmit(connection, upTo: connection.endlessBody ? connection.outgoing.count : upTo, now: now)
            }
        }
    }

    private func transmit(_ connection: Connection, upTo: Int, now: ContinuousClock.Instant) {
        while connection.isOpen, connection.sent < upTo {
            let sent = connection.outgoing[connection.sent..<upTo].withUnsafeBytes {
                send(connection.descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if sent > 0 {
                connection.sent += sent
                if connection.endlessBody, connection.sent == connection.outgoing.count {
                    // Another chunk of the 100 MB body that never ends.
                    connection.outgoing = Self.bodyChunk
                    connection.sent = 0
                    return
                }
                continue
            }
            if sent < 0, errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return }
            // EPIPE, ECONNRESET: the server is done with us; what it said (if anything) is read on POLLIN.
            connection.endlessBody = false
            connection.sent = connection.outgoing.count
            return
        }
    }

    private func received(_ connection: Connection, bytes: ArraySlice<UInt8>, now: ContinuousClock.Instant) {
        // Enough for the status line and the form token (the forms come before the posts).
        if connection.incoming.count < 256 * 1024 {
            connection.incoming += bytes
        }
        guard !connection.answered, let status = Self.status(connection.incoming) else { return }
        connection.answered = true
        connection.endlessBody = false
        self.report.statuses[status, default: 0] += 1
        self.report.statusesByRole[connection.role.name, default: [:]][status, default: 0] += 1
        if status >= 500, self.report.serverErrors.count < 10 {
            self.report.serverErrors.append("\(status) for \(connection.role.name) \(connection.requestName) from \(connection.source)")
        }
        if case .flood = connection.role, connection.requestName.hasPrefix("POST"), status == 303 {
            self.report.postsAccepted += 1
            self.report.postsAcceptedBySource[connection.source, default: 0] += 1
        }
        if case .oversized = connection.role {
            // The refusal is what the attack wanted to see; no point in sending more.
            self.finish(connection, now: now, pause: .milliseconds(100))
        }
    }

    /// The server ended the connection: an ordinary end of a `Connection: close` answer, or a cut.
    private func closedByServer(_ connection: Connection, now: ContinuousClock.Instant) {
        let expected = connection.answered && connection.closeAt == nil
        if !expected {
            self.report.closedByServer[connection.role.name, default: 0] += 1
        }
        if case .flood = connection.role, connection.answered, connection.requestName.hasPrefix("GET") {
            connection.token = Self.formToken(in: connection.incoming)
        }
        self.finish(connection, now: now, pause: expected ? .zero : .milliseconds(250))
    }

    private func finish(_ connection: Connection, now: ContinuousClock.Instant, pause: Duration) {
        if connection.isOpen { close(connection.descriptor) }
        connection.descriptor = -1
        connection.phase = .waiting
        connection.reopenAt = now + pause
        connection.closeAt = nil
        connection.endlessBody = false
        connection.dribble = nil
    }

    /// Starts the connection's next request.
    private func begin(_ connection: Connection, now: ContinuousClock.Instant) {
        connection.phase = .exchanging
        connection.incoming = []
        connection.answered = false
        connection.sent = 0
        connection.initialBytes = Int.max
        connection.dribble = nil
        connection.endlessBody = false
        connection.requestStartedAt = now
        switch connection.role {
        case .flood:
            if let token = connection.token {
                let body = Self.postBody(variant: connection.postVariant, token: token)
                connection.postVariant += 1
                connection.requestName = "POST /bulletin (\(body.count) bytes)"
                connection.outgoing = Self.request("POST", "/bulletin", headers: Self.formHeaders(length: body.count), body: body)
                connection.token = nil
            } else {
                connection.requestName = "GET /"
                connection.outgoing = Self.request("GET", "/")
            }
        case .allPostsLoop:
            connection.requestName = "GET /?all=1"
            connection.outgoing = Self.request("GET", "/?all=1")
        case .metricsLoop:
            connection.requestName = "GET /metrics"
            connection.outgoing = Self.request("GET", "/metrics")
        case .slowLoris(let style):
            connection.closeAt = now + .milliseconds(Int.random(in: Int(self.plan.slowLorisLifetime.lowerBound * 1000)...Int(self.plan.slowLorisLifetime.upperBound * 1000)))
            connection.requestName = style.rawValue
            switch style {
            case .dribbledHeaders:
                let head = "GET / HTTP/1.1\r\nHost: kiez.box\r\n" + (0..<200).map { "X-Slow-\($0): \(String(repeating: "z", count: 10))\r\n" }.joined()
                connection.outgoing = Array(head.utf8)
                connection.initialBytes = 32
                connection.dribble = (bytes: 24, every: .seconds(2))
            case .silent:
                connection.outgoing = []
            case .slowBody:
                let body = [UInt8](repeating: UInt8(ascii: "a"), count: 1024)
                connection.outgoing = Self.request("POST", "/bulletin", headers: Self.formHeaders(length: body.count), body: body)
                connection.initialBytes = connection.outgoing.count - body.count
                connection.dribble = (bytes: 8, every: .seconds(2))
            case .idleKeepAlive:
                connection.outgoing = Array("GET / HTTP/1.1\r\nHost: kiez.box\r\n\r\n".utf8)
            }
            connection.nextDribbleAt = now + (connection.dribble?.every ?? .zero)
        case .oversized(let fast):
            connection.requestName = "POST /bulletin with Content-Length: 104857600"
            connection.outgoing = Self.request("POST", "/bulletin", headers: Self.formHeaders(length: 104_857_600), body: [])
            if fast {
                connection.endlessBody = true
            } else {
                connection.outgoing += [UInt8](repeating: UInt8(ascii: "a"), count: 30_000)
                connection.initialBytes = connection.outgoing.count - 30_000
                connection.dribble = (bytes: 100, every: .milliseconds(100))
            }
            connection.nextDribbleAt = now
        case .malformed:
            let request = Self.malformedRequests[connection.malformedIndex % Self.malformedRequests.count]
            connection.malformedIndex += 1
            connection.requestName = "malformed #\(connection.malformedIndex % Self.malformedRequests.count)"
            connection.outgoing = request
        }
        let upTo = min(connection.initialBytes, connection.outgoing.count)
        self.transmit(connection, upTo: upTo, now: now)
    }

    // MARK: - Requests

    static func request(_ method: String, _ target: String, headers: [String] = [], body: [UInt8] = []) -> [UInt8] {
        let head = (["\(method) \(target) HTTP/1.1", "Host: kiez.box", "User-Agent: hostile-neighbour", "Connection: close"] + headers)
            .joined(separator: "\r\n") + "\r\n\r\n"
        return Array(head.utf8) + body
    }

    static func formHeaders(length: Int) -> [String] {
        ["Content-Type: application/x-www-form-urlencoded", "Content-Length: \(length)"]
    }

    static let bodyChunk = [UInt8](repeating: UInt8(ascii: "a"), count: 64 * 1024)

    /// The largest posts the form takes today, as raw UTF-8 (the form decoder takes it without percent-escapes):
    /// 280 four-byte letters with an 80-letter place; 280 letters each under a stack of combining marks; four
    /// letters and a run of variation selectors. Each body stays under the 16 KiB upload limit.
    static func postBody(variant: Int, token: String) -> [UInt8] {
        let fields: String
        switch variant % 3 {
        case 0:
            fields = "kind=request&category=medical&lang=de&text=" + String(repeating: "\u{1D505}", count: 280)
                + "&place=" + String(repeating: "\u{1D505}", count: 80)
        case 1:
            let marks = (0..<27).map { String(UnicodeScalar(0x0300 + UInt32($0 * 3 % 0x70))!) }.joined()
            fields = "kind=request&category=water&lang=de&text=" + String(repeating: "Z" + marks, count: 280)
        default:
            fields = "kind=offer&category=food&lang=de&text=Hilfe" + String(repeating: "\u{FE0F}", count: 5_300)
        }
        return Array((fields + "&token=" + token).utf8)
    }

    /// Broken, smuggling, oversized-header and traversal requests; each complete, so that the server can answer.
    static let malformedRequests: [[UInt8]] = {
        var requests: [String] = [
            "GARBAGE\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: kiez.box\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
            "GET /\u{0} HTTP/1.1\r\nHost: kiez.box\r\nConnection: close\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: kiez.box\r\nX-Long: " + String(repeating: "a", count: 100_000) + "\r\nConnection: close\r\n\r\n",
            "POST /bulletin HTTP/1.1\r\nHost: kiez.box\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
            "GET /../../../../etc/passwd HTTP/1.1\r\nHost: kiez.box\r\nConnection: close\r\n\r\n",
            "GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: kiez.box\r\nConnection: close\r\n\r\n",
            "GET / HTTP/9.9\r\nHost: kiez.box\r\nConnection: close\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: kiez.box\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
            "GET /api/v1/situation.geojson HTTP/1.1\r\nHost: kiez.box\r\nAuthorization: Bearer guessed-token\r\nConnection: close\r\n\r\n",
            "POST /bulletin HTTP/1.1\r\nHost: kiez.box\r\nContent-Length: -1\r\nConnection: close\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: kiez.box\r\nContent-Length: 99999999999999999999999\r\nConnection: close\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: kiez.box\r\nBad Header Name: x\r\nConnection: close\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: kiez.box\r\nX-Folded: a\r\n b\r\nConnection: close\r\n\r\n",
            "DELETE /bulletin HTTP/1.1\r\nHost: kiez.box\r\nConnection: close\r\n\r\n",
            "GET /?lang=%ZZ&all=%00 HTTP/1.1\r\nHost: kiez.box\r\nConnection: close\r\n\r\n",
        ]
        let badForm = "kind=%FF%FE&text=%ZZ&token=x"
        requests.append(
            "POST /bulletin HTTP/1.1\r\nHost: kiez.box\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: \(badForm.utf8.count)\r\nConnection: close\r\n\r\n"
                + badForm
        )
        return requests.map { Array($0.utf8) }
    }()

    /// "HTTP/1.1 303 See Other" → 303, once the first line is in.
    static func status(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 12, bytes.starts(with: Array("HTTP/1.".utf8)) else { return bytes.count >= 12 ? 0 : nil }
        return Int(String(decoding: bytes[9..<12], as: UTF8.self)) ?? 0
    }

    /// The hidden form token in an info page (`name="token" value="…"`).
    static func formToken(in page: [UInt8]) -> String? {
        let text = String(decoding: page, as: UTF8.self)
        guard let marker = text.range(of: "name=\"token\" value=\"") else { return nil }
        let rest = text[marker.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        return String(rest[..<end])
    }
}

/// A resident on the Wi-Fi who keeps opening the info page, one request after another on a fresh connection (as a
/// phone that just joined would), and notes how long each took. Blocking sockets on a thread of its own.
final class GenuineResident: Sendable {
    struct Measurements: Sendable {
        /// Latency of each answered `GET /`, in milliseconds, with when it started.
        var latencies: [(start: Date, milliseconds: Double)] = []
        var statuses: [Int: Int] = [:]
        /// Requests that got no answer (refused, reset, or nothing within the hang guard), with why.
        var failures: [String] = []
    }

    let port: Int
    let source: String
    let destination: String
    private let stopped = Atomic<Bool>(false)

    init(port: Int, source: String, destination: String) {
        self.port = port
        self.source = source
        self.destination = destination
    }

    func stop() {
        self.stopped.store(true, ordering: .relaxed)
    }

    /// Measures until ``stop()``; returns the measurements.
    func measure(pause: Duration = .milliseconds(100)) async -> Measurements {
        await withCheckedContinuation { continuation in
            let thread = Thread {
                var measurements = Measurements()
                let clock = ContinuousClock()
                while !self.stopped.load(ordering: .relaxed) {
                    let began = clock.now
                    let startedAt = Date()
                    do {
                        let status = try loopbackExchange(
                            source: self.source, destination: self.destination, port: self.port,
                            request: HostileNeighbours.request("GET", "/", headers: ["Accept-Language: de"])
                        ).status
                        let elapsed = clock.now - began
                        measurements.statuses[status, default: 0] += 1
                        measurements.latencies.append((startedAt, elapsed.timeInterval * 1000))
                        if status != 200 { measurements.failures.append("status \(status)") }
                    } catch {
                        measurements.failures.append("\(error)")
                    }
                    Thread.sleep(forTimeInterval: pause.timeInterval)
                }
                continuation.resume(returning: measurements)
            }
            thread.start()
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }
}

/// The value at `fraction` (0…1) of `values` sorted ascending (nearest rank).
func percentile(_ values: [Double], _ fraction: Double) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    let rank = Int((fraction * Double(sorted.count)).rounded(.up)) - 1
    return sorted[min(max(rank, 0), sorted.count - 1)]
}
