import KiezboxTestSupport
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Just enough of an MQTT 3.1.1-only broker to watch a client fall back from MQTT 5 (mosquitto 2 speaks
/// both, so it cannot show this): it answers a CONNECT with protocol level 5 the way the 3.1.1 spec demands
/// (CONNACK return code 1, "unacceptable protocol version", then close) and accepts level 4.
final class FakeV311Broker: Sendable {
    let port: Int
    private let listener: Int32
    private let state = Mutex<(levels: [UInt8], connections: [Int32])>(([], []))

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
        var address = MosquittoBroker.loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 8) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard ok else {
            close(fd)
            throw TestFailure("bind/listen: errno \(errno)")
        }
        self.listener = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in self.acceptLoop() }
        thread.start()
    }

    /// The protocol level of every CONNECT received, in order.
    var protocolLevels: [UInt8] { self.state.withLock { $0.levels } }

    func stop() {
        shutdown(self.listener, Int32(SHUT_RDWR))
        close(self.listener)
        let connections = self.state.withLock { state in
            defer { state.connections = [] }
            return state.connections
        }
        for fd in connections { close(fd) }
    }

    private func acceptLoop() {
        while true {
            let fd = accept(self.listener, nil, nil)
            if fd < 0 { return }
            self.handle(fd)
        }
    }

    private func handle(_ fd: Int32) {
        // CONNECT: fixed header, remaining length (varint), protocol name (length-prefixed), protocol level.
        guard let header = readExactly(fd, 1), header[0] == 0x10 else {
            close(fd)
            return
        }
        var remaining = 0
        var multiplier = 1
        while true {
            guard let byte = readExactly(fd, 1) else {
            close(fd)
            return
        }
            remaining += Int(byte[0] & 0x7F) * multiplier
            multiplier *= 128
            if byte[0] & 0x80 == 0 { break }
        }
        guard let body = readExactly(fd, remaining), body.count > 2 else {
            close(fd)
            return
        }
        let nameLength = Int(body[0]) << 8 | Int(body[1])
        guard body.count > 2 + nameLength else {
            close(fd)
            return
        }
        let level = body[2 + nameLength]
        self.state.withLock { $0.levels.append(level) }
        if level == 4 {
            writeAll(fd, [0x20, 0x02, 0x00, 0x00])  // accepted
            self.state.withLock { $0.connections.append(fd) }
        } else {
            writeAll(fd, [0x20, 0x02, 0x00, 0x01])  // unacceptable protocol version
            close(fd)
        }
    }

    private func readExactly(_ fd: Int32, _ count: Int) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + offset, count - offset) }
            if n <= 0 { return nil }
            offset += n
        }
        return buffer
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }
}
