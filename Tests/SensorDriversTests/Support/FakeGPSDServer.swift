import Glibc
import KiezboxTestSupport
import Synchronization

/// A stand-in for gpsd on 127.0.0.1 at an ephemeral port, written with plain POSIX sockets.
///
/// It accepts one client, greets it with a VERSION report as gpsd does, waits for the `?WATCH` command, then sends
/// the scripted lines and keeps the connection open until the client hangs up (or closes it when told to).
final class FakeGPSDServer: Sendable {
    let port: UInt16
    private let listener: Int32
    private let received = Mutex<[UInt8]>([])

    init() throws(PseudoTerminalError) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw PseudoTerminalError(call: "socket", errno: errno) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(fd, socketAddress, length) == 0 && listen(fd, 4) == 0 && getsockname(fd, socketAddress, &length) == 0
            }
        }
        guard bound else {
            Glibc.close(fd)
            throw PseudoTerminalError(call: "bind/listen", errno: errno)
        }
        self.listener = fd
        self.port = UInt16(bigEndian: address.sin_port)
    }

    /// What the client sent.
    var receivedText: String { String(decoding: self.received.withLock { $0 }, as: UTF8.self) }

    func close() {
        Glibc.close(self.listener)
    }

    /// Serves one client: VERSION, then after `?WATCH` the `lines`; hangs up afterwards when `hangUp` is set.
    /// `greet: false` sends nothing at all (a wedged gpsd).
    func serveOneClient(lines: [String], greet: Bool = true, hangUp: Bool = false, timeout: Duration = .seconds(5)) async {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var client: Int32 = -1
        while client < 0, clock.now < deadline, !Task.isCancelled {
            client = accept(self.listener, nil, nil)
            if client < 0 { try? await Task.sleep(for: .milliseconds(1)) }
        }
        guard client >= 0 else { return }
        _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
        defer { Glibc.close(client) }
        guard greet else {
            await self.waitForHangUp(client, until: deadline)
            return
        }
        Self.send(#"{"class":"VERSION","release":"3.22","rev":"3.22","proto_major":3,"proto_minor":14}"# + "\n", to: client)
        // gpsd answers only once it has seen the WATCH command.
        while clock.now < deadline, !Task.isCancelled, !self.receivedText.contains("?WATCH=") {
            self.receive(from: client)
            try? await Task.sleep(for: .milliseconds(1))
        }
        for line in lines {
            Self.send(line + "\n", to: client)
            try? await Task.sleep(for: .milliseconds(1))
        }
        if !hangUp { await self.waitForHangUp(client, until: deadline) }
    }

    private func waitForHangUp(_ client: Int32, until deadline: ContinuousClock.Instant) async {
        let clock = ContinuousClock()
        while clock.now < deadline, !Task.isCancelled {
            if !self.receive(from: client) { return }
            try? await Task.sleep(for: .milliseconds(1))
        }
    }

    /// Reads what is there; false once the client has hung up.
    @discardableResult
    private func receive(from client: Int32) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
        if count > 0 { self.received.withLock { $0 += buffer.prefix(count) } }
        return count != 0 && !(count < 0 && errno != EAGAIN && errno != EINTR)
    }

    private static func send(_ text: String, to client: Int32) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }
}
