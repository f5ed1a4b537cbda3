import EmergencyPortal
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import KiezboxTestSupport
import Logging
import Synchronization
import Testing

/// Slow, idle and crowding connections and oversized bodies, tried as a hostile neighbour would: over real
/// sockets from loopback addresses of their own. Timeouts are short here; every wait is a hang guard only.
@Suite("Connection limits")
struct ConnectionLimitTests {
    /// Short timeouts; the ones a test does not exercise are long, so only the one under test can close.
    static func settings(
        header: Duration = .seconds(120), idle: Duration = .seconds(120), body: Duration = .seconds(120), perAddress: Int = 32, total: Int = 1024
    ) -> PortalSettings {
        RunningPortal.settings {
            $0.connectionLimits = ConnectionLimits(
                headerTimeout: header, idleTimeout: idle, bodyTimeout: body, maximumPerAddress: perAddress, maximumTotal: total
            )
        }
    }

    /// When the emergency Wi-Fi comes up, every phone in range probes for a captive portal at once; a listen queue
    /// smaller than the connections the portal serves dropped SYNs on a loaded box (a resident's connect then waits
    /// for TCP's retransmits, 1 s, 3 s, 7 s ...). `ss` reads the listening socket's queue limit from the kernel.
    @Test("the listen queue holds as many connections as the portal serves at once")
    func listenQueueHoldsAPhoneStorm() async throws {
        try await withRunningPortal(settings: Self.settings(total: 1500)) { portal in
            let listing = try runTool("/usr/bin/ss", ["-H", "-l", "-t", "-n", "sport = :\(portal.port)"])
            // A listening socket's line: State, Recv-Q (waiting to be accepted), Send-Q (the queue's limit), ...
            let fields = listing.split(whereSeparator: \.isWhitespace)
            #expect(fields.count >= 4 && fields[2] == "1500", "ss: \(listing)")
        }
    }

    @Test("a slow-loris header (one byte every few hundred ms) is cut off after the header timeout, with 408")
    func slowLorisHeader() async throws {
        try await withRunningPortal(settings: Self.settings(header: .seconds(2))) { portal in
            let connection = try await OpenConnection.open(port: portal.port, source: "127.0.1.2")
            defer { connection.close() }
            let started = ContinuousClock.now
            try await connection.send("GET / HTTP/1.1\r\nHost: kiez.box\r\n")
            var sent = 0
            // Hang guard: 60 s of trickling; the server must have closed long before.
            while try await connection.isOpen(waiting: .milliseconds(400)), ContinuousClock.now - started < .seconds(60) {
                try? await connection.send("X-Pad-\(sent): a\r\n")
                sent += 1
            }
            let answer = try await connection.remainingAnswer()
            print("slow-loris: closed after \(ContinuousClock.now - started) and \(sent) header lines; answered \(answer.map { "\($0.status)" } ?? "nothing")")
            #expect(try await !connection.isOpen(waiting: .zero), "the slow header is still being read after 60 s")
            #expect(answer?.status == 408)
        }
    }

    @Test("an idle keep-alive connection is closed after the idle timeout")
    func idleKeepAlive() async throws {
        try await withRunningPortal(settings: Self.settings(idle: .seconds(2))) { portal in
            let connection = try await OpenConnection.open(port: portal.port, source: "127.0.1.3")
            defer { connection.close() }
            try await connection.send("GET /api/captive HTTP/1.1\r\nHost: kiez.box\r\n\r\n")
            let answer = try await connection.readAnswer()
            #expect(answer.status == 200)
            let started = ContinuousClock.now
            var open = true
            while open, ContinuousClock.now - started < .seconds(60) { open = try await connection.isOpen(waiting: .milliseconds(500)) }
            print("idle keep-alive: closed after \(ContinuousClock.now - started)")
            #expect(!open, "the idle connection is still open after 60 s")
        }
    }

    @Test("a body trickling in is cut off after the body timeout")
    func slowBody() async throws {
        try await withRunningPortal(settings: Self.settings(body: .seconds(2))) { portal in
            let connection = try await OpenConnection.open(port: portal.port, source: "127.0.1.4")
            defer { connection.close() }
            try await connection.send(
                "POST /bulletin HTTP/1.1\r\nHost: kiez.box\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 4000\r\n\r\n"
            )
            let started = ContinuousClock.now
            while try await connection.isOpen(waiting: .milliseconds(300)), ContinuousClock.now - started < .seconds(60) {
                try? await connection.send("kind=")
            }
            print("slow body: closed after \(ContinuousClock.now - started)")
            #expect(try await !connection.isOpen(waiting: .zero), "the slow body is still being read after 60 s")
        }
    }

    @Test("a declared Content-Length above every route's limit gets 413 at once, and the connection is closed")
    func oversizedContentLength() async throws {
        try await withRunningPortal { portal in
            let connection = try await OpenConnection.open(port: portal.port, source: "127.0.1.5")
            defer { connection.close() }
            try await connection.send(
                "POST /bulletin HTTP/1.1\r\nHost: kiez.box\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000000\r\n\r\n"
            )
            // Not a byte of the body is sent: the answer must come from the header alone.
            let answer = try await connection.readAnswer(timeout: .seconds(30))
            #expect(answer.status == 413)
            #expect(answer.header("Connection")?.lowercased() == "close")
            var open = true
            let started = ContinuousClock.now
            while open, ContinuousClock.now - started < .seconds(90) { open = try await connection.isOpen(waiting: .milliseconds(200)) }
            #expect(!open, "the connection stays open after the 413")
            // A body within the limit is still read and judged by its route.
            let small = try await portal.phone(6).post("/bulletin", host: "kiez.box", contentType: "application/x-www-form-urlencoded", body: Array("kind=safe".utf8))
            #expect((400..<500).contains(small.status) && small.status != 413, "\(small.status)")
        }
    }

    @Test("connections beyond the per-address cap are refused (429, one log line) while another address is served")
    func perAddressCap() async throws {
        let (logger, log) = RecordingLogHandler.logger()
        try await withRunningPortal(settings: Self.settings(perAddress: 4), logger: logger) { portal in
            var crowd: [OpenConnection] = []
            defer { crowd.forEach { $0.close() } }
            for _ in 0..<4 { crowd.append(try await OpenConnection.open(port: portal.port, source: "127.0.2.2")) }
            // Wait until the server has admitted all four, so the fifth is certainly over the cap.
            try await crowd[3].send("GET /api/captive HTTP/1.1\r\nHost: kiez.box\r\n\r\n")
            #expect(try await crowd[3].readAnswer().status == 200)
            for attempt in 0..<5 {
                let extra = try await OpenConnection.open(port: portal.port, source: "127.0.2.2")
                defer { extra.close() }
                let answer = try await extra.readAnswer(timeout: .seconds(30))
                #expect(answer.status == 429, "attempt \(attempt)")
                #expect(try await !extra.isOpen(waiting: .seconds(30)))
            }
            // Someone else is served as usual.
            #expect(try await portal.phone(40).get("/", host: "kiez.box").status == 200)
            // When one of the four goes, its address may connect again.
            crowd[0].close()
            try await waitUntilTrue("a slot is free again") {
                (try? await RawHTTPClient(port: portal.port, source: "127.0.2.2").get("/api/captive", host: "kiez.box").status) == 200
            }
        }
        let lines = log.all.filter { $0.contains("refused a connection") }
        print("per-address cap: log lines for the refusals: \(lines)")
        #expect(lines.count == 1, "refusals are logged, at most once a minute")
        #expect(lines.first?.contains("127.0.2.2") == true)
    }

    @Test("at the total cap the most crowded address gives up its oldest connection to a newcomer; 503 only when none is more crowded")
    func totalCap() async throws {
        try await withRunningPortal(settings: Self.settings(perAddress: 3, total: 5)) { portal in
            var crowd: [OpenConnection] = []
            defer { crowd.forEach { $0.close() } }
            for source in ["127.0.3.2", "127.0.3.2", "127.0.3.2", "127.0.3.3", "127.0.3.3"] {
                crowd.append(try await OpenConnection.open(port: portal.port, source: source))
            }
            try await crowd[4].send("GET /api/captive HTTP/1.1\r\nHost: kiez.box\r\n\r\n")
            #expect(try await crowd[4].readAnswer().status == 200)
            // A resident arrives at a full box: served, and one of the most crowded address's connections is gone.
            let resident = try await OpenConnection.open(port: portal.port, source: "127.0.3.4")
            defer { resident.close() }
            try await resident.send("GET /api/captive HTTP/1.1\r\nHost: kiez.box\r\n\r\n")
            #expect(try await resident.readAnswer(timeout: .seconds(30)).status == 200)
            try await waitUntilTrue("one of 127.0.3.2's connections is closed") {
                for connection in crowd[0..<3] where (try? await connection.isOpen(waiting: .milliseconds(10))) == false { return true }
                return false
            }
            for connection in crowd[3...] { #expect(try await connection.isOpen(waiting: .milliseconds(10))) }
            crowd.forEach { $0.close() }
            try await waitUntilTrue("the crowd is gone") {
                (try? await portal.phone(41).get("/api/captive", host: "kiez.box").status) == 200
            }
        }
        // Every address holds one: nobody is more crowded than a newcomer would be, so the newcomer is refused.
        try await withRunningPortal(settings: Self.settings(perAddress: 3, total: 3)) { portal in
            var crowd: [OpenConnection] = []
            defer { crowd.forEach { $0.close() } }
            for source in ["127.0.3.5", "127.0.3.6", "127.0.3.7"] {
                crowd.append(try await OpenConnection.open(port: portal.port, source: source))
            }
            try await crowd[2].send("GET /api/captive HTTP/1.1\r\nHost: kiez.box\r\n\r\n")
            #expect(try await crowd[2].readAnswer().status == 200)
            let extra = try await OpenConnection.open(port: portal.port, source: "127.0.3.8")
            defer { extra.close() }
            #expect(try await extra.readAnswer(timeout: .seconds(30)).status == 503)
        }
    }
}

/// Polls `condition` until it holds; a hang guard, not a schedule.
func waitUntilTrue(_ what: String, timeout: Duration = .seconds(60), _ condition: () async -> Bool) async throws {
    let start = ContinuousClock.now
    while !(await condition()) {
        guard ContinuousClock.now - start < timeout else { throw RawHTTPClient.Failure(description: "timed out waiting until \(what)") }
        try await Task.sleep(for: .milliseconds(100))
    }
}

/// One TCP connection held open from a chosen loopback address; every blocking call runs on a thread of its own,
/// off the Swift concurrency pool the portal's handlers run on.
final class OpenConnection: Sendable {
    let descriptor: Int32
    private let received = Mutex<[UInt8]>([])

    private init(descriptor: Int32) { self.descriptor = descriptor }

    static func open(port: Int, source: String) async throws -> OpenConnection {
        try await onThread {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw RawHTTPClient.Failure(description: "socket: \(String(cString: strerror(errno)))") }
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            inet_pton(AF_INET, source, &local.sin_addr)
            var remote = sockaddr_in()
            remote.sin_family = sa_family_t(AF_INET)
            remote.sin_port = in_port_t(UInt16(port).bigEndian)
            inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr)
            let size = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, size) } }
            let connected = withUnsafePointer(to: &remote) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, size) } }
            guard bound == 0, connected == 0 else {
                Glibc.close(fd)
                throw RawHTTPClient.Failure(description: "connect from \(source): \(String(cString: strerror(errno)))")
            }
            return OpenConnection(descriptor: fd)
        }
    }

    func send(_ text: String) async throws {
        let bytes = Array(text.utf8)
        try await onThread {
            let sent = bytes.withUnsafeBytes { Glibc.send(self.descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent == bytes.count else { throw RawHTTPClient.Failure(description: "send: \(String(cString: strerror(errno)))") }
        }
    }

    /// Waits up to `waiting` for bytes or the end; keeps what arrives. `false` once the server has closed.
    func isOpen(waiting: Duration) async throws -> Bool {
        try await onThread {
            var poller = pollfd(fd: self.descriptor, events: Int16(POLLIN), revents: 0)
            let milliseconds = Int32(waiting.components.seconds * 1000 + waiting.components.attoseconds / 1_000_000_000_000_000)
            guard poll(&poller, 1, milliseconds) > 0 else { return true }
            var buffer = [UInt8](repeating: 0, count: 65536)
            let count = recv(self.descriptor, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if count > 0 {
                self.received.withLock { $0 += buffer[0..<count] }
                return true
            }
            return count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
        }
    }

    /// Reads until one complete answer (head and Content-Length body) has arrived; consumes it.
    func readAnswer(timeout: Duration = .seconds(30)) async throws -> RawHTTPClient.Answer {
        let start = ContinuousClock.now
        while true {
            if let answer = self.takeAnswer() { return answer }
            guard ContinuousClock.now - start < timeout else { throw RawHTTPClient.Failure(description: "no answer within \(timeout)") }
            guard try await self.isOpen(waiting: .milliseconds(200)) else {
                if let answer = self.takeAnswer() { return answer }
                throw RawHTTPClient.Failure(description: "closed without a complete answer")
            }
        }
    }

    /// Whatever complete answer arrived before the close.
    func remainingAnswer() async throws -> RawHTTPClient.Answer? { self.takeAnswer() }

    private func takeAnswer() -> RawHTTPClient.Answer? {
        self.received.withLock { bytes -> RawHTTPClient.Answer? in
            guard let head = try? RawHTTPClient.parse(bytes) else { return nil }
            let length = head.header("Content-Length").flatMap(Int.init) ?? 0
            let headBytes = head.wireBytes - head.body.count
            guard head.body.count >= length else { return nil }
            let answer = RawHTTPClient.Answer(
                status: head.status, headers: head.headers, body: Array(head.body.prefix(length)), wireBytes: headBytes + length
            )
            bytes.removeFirst(headBytes + length)
            return answer
        }
    }

    private let closed = Mutex(false)

    /// Closes the socket (once; later calls do nothing).
    func close() {
        let first = self.closed.withLock { closed in
            defer { closed = true }
            return !closed
        }
        if first { Glibc.close(self.descriptor) }
    }
}

/// Runs blocking work on a thread of its own.
func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}
