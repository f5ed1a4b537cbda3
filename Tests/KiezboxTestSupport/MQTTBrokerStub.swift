import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A minimal MQTT 3.1.1 / 5 broker on 127.0.0.1 that acknowledges every QoS 1 PUBLISH except the ones it is
/// told to swallow: a broker (or bridge) that drops a message without a word, so its PUBACK never comes.
///
/// It speaks just enough of the protocol for libmosquitto as a publisher: CONNACK (in the version of the
/// CONNECT), PUBACK, SUBACK, UNSUBACK, PINGRESP; it routes nothing and keeps no retained messages. Every
/// connection has a blocking thread of its own. The first ``swallowFirst`` PUBLISH packets whose topic ends in
/// ``swallowTopicSuffix`` and that are not re-sends get no PUBACK, and neither do their re-sends (DUP set, same
/// packet id and payload), also on later connections: only a client that ended its session with DISCONNECT
/// (a new libmosquitto handle, whose messages are new ones) starts afresh.
public final class MQTTBrokerStub: Sendable {
    /// A PUBLISH as it arrived.
    public struct Publish: Sendable {
        public var topic: String
        public var payload: [UInt8]
        public var packetID: UInt16
        public var duplicate: Bool
        public var acknowledged: Bool
    }

    /// What the stub has seen so far.
    public struct Tally: Sendable {
        public var connections = 0
        public var publishes: [Publish] = []
        /// New messages swallowed (not their re-sends).
        public var swallowed = 0
        /// Re-sends (DUP) of swallowed messages, swallowed again.
        public var swallowedResends = 0
    }

    private struct Swallowed: Hashable {
        var packetID: UInt16
        var payload: [UInt8]
    }

    private struct State {
        var tally = Tally()
        var swallowRemaining: Int
        var swallowed = Set<Swallowed>()
        var connections: Set<Int32> = []
        var closed = false
    }

    public let port: Int
    public let swallowFirst: Int
    public let swallowTopicSuffix: String
    private let listener: Int32
    private let state: Mutex<State>

    /// Listens on an ephemeral port of 127.0.0.1.
    public init(swallowFirst: Int = 0, topicSuffix: String = "/readings") throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        var reuse: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = MosquittoBroker.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw TestFailure("bind/listen on 127.0.0.1: \(reason)")
        }
        var local = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.listener = fd
        self.port = Int(UInt16(bigEndian: local.sin_port))
        self.swallowFirst = swallowFirst
        self.swallowTopicSuffix = topicSuffix
        self.state = Mutex(State(swallowRemaining: swallowFirst))
        let thread = Thread { self.acceptConnections() }
        thread.name = "mqtt stub accept"
        thread.start()
    }

    /// Starts a stub, runs `body`, and closes the stub whatever happens.
    public static func with<T: Sendable>(
        swallowFirst: Int = 0, _ body: (MQTTBrokerStub) async throws -> T
    ) async throws -> T {
        let stub = try MQTTBrokerStub(swallowFirst: swallowFirst)
        defer { stub.shutDown() }
        return try await body(stub)
    }

    public var tally: Tally { self.state.withLock { $0.tally } }

    /// Closes the listener and every connection; the threads end.
    public func shutDown() {
        let connections = self.state.withLock { state -> Set<Int32> in
            guard !state.closed else { return [] }
            state.closed = true
            return state.connections
        }
        _ = Glibc.shutdown(self.listener, Int32(SHUT_RDWR))
        for connection in connections { _ = Glibc.shutdown(connection, Int32(SHUT_RDWR)) }
    }

    private func acceptConnections() {
        defer { close(self.listener) }
        while true {
            let connection = accept(self.listener, nil, nil)
            if connection < 0 {
                if errno == EINTR { continue }
                return
            }
            let accepted = self.state.withLock { state -> Bool in
                guard !state.closed else { return false }
                state.connections.insert(connection)
                state.tally.connections += 1
                return true
            }
            guard accepted else {
                close(connection)
                return
            }
            let thread = Thread { self.serve(connection) }
            thread.name = "mqtt stub connection"
            thread.start()
        }
    }

    // MARK: - Protocol

    private func serve(_ connection: Int32) {
        defer {
            self.state.withLock { _ = $0.connections.remove(connection) }
            close(connection)
        }
        var version: UInt8 = 4
        while let (header, body) = Self.readPacket(connection) {
            var reader = Reader(body)
            switch header >> 4 {
            case 1:  // CONNECT
                _ = reader.string()
                version = reader.byte() ?? 4
                let reply: [UInt8] = version == 5 ? [0x20, 3, 0, 0, 0] : [0x20, 2, 0, 0]
                guard Self.write(reply, to: connection) else { return }
            case 3:  // PUBLISH
                guard let reply = self.received(header: header, &reader, version: version) else { continue }
                guard Self.write(reply, to: connection) else { return }
            case 8, 10:  // SUBSCRIBE, UNSUBSCRIBE
                guard let packetID = reader.uint16() else { return }
                if version == 5 { reader.skipProperties() }
                var codes: [UInt8] = []
                while reader.string() != nil {
                    // SUBSCRIBE: grant the requested QoS; UNSUBSCRIBE (MQTT 5 only has codes): success.
                    if header >> 4 == 8 { codes.append((reader.byte() ?? 0) & 0x03) } else if version == 5 { codes.append(0) }
                }
                var variable: [UInt8] = [UInt8(packetID >> 8), UInt8(packetID & 0xFF)]
                if version == 5 { variable.append(0) }
                let type: UInt8 = header >> 4 == 8 ? 0x90 : 0xB0
                guard Self.write([type, UInt8(variable.count + codes.count)] + variable + codes, to: connection) else { return }
            case 12:  // PINGREQ
                guard Self.write([0xD0, 0], to: connection) else { return }
            case 14:  // DISCONNECT: the client's session ends; a new handle's messages are new messages.
                self.state.withLock { $0.swallowed = [] }
                return
            default:
                continue
            }
        }
    }

    /// Records a PUBLISH; returns its PUBACK, or `nil` when it is swallowed (or QoS 0).
    private func received(header: UInt8, _ reader: inout Reader, version: UInt8) -> [UInt8]? {
        let qos = (header >> 1) & 0x03
        let duplicate = header & 0x08 != 0
        guard let topic = reader.string() else { return nil }
        let packetID = qos > 0 ? (reader.uint16() ?? 0) : 0
        if version == 5 { reader.skipProperties() }
        let payload = reader.rest()
        let acknowledged = self.state.withLock { state -> Bool in
            let acknowledged = self.acknowledges(qos: qos, topic: topic, key: Swallowed(packetID: packetID, payload: payload), duplicate: duplicate, &state)
            state.tally.publishes.append(
                Publish(topic: topic, payload: payload, packetID: packetID, duplicate: duplicate, acknowledged: acknowledged))
            return acknowledged
        }
        guard acknowledged else { return nil }
        return [qos == 1 ? 0x40 : 0x50, 2, UInt8(packetID >> 8), UInt8(packetID & 0xFF)]
    }

    /// Whether a PUBLISH gets its PUBACK; counts what is swallowed.
    private func acknowledges(qos: UInt8, topic: String, key: Swallowed, duplicate: Bool, _ state: inout State) -> Bool {
        guard qos > 0 else { return false }
        guard topic.hasSuffix(self.swallowTopicSuffix) else { return true }
        if duplicate, state.swallowed.contains(key) {
            state.tally.swallowedResends += 1
            return false
        }
        guard state.swallowRemaining > 0 else { return true }
        state.swallowRemaining -= 1
        state.swallowed.insert(key)
        state.tally.swallowed += 1
        return false
    }

    /// One control packet: its first byte and its body; `nil` when the connection has ended.
    private static func readPacket(_ connection: Int32) -> (UInt8, [UInt8])? {
        guard let header = readExactly(1, from: connection)?.first else { return nil }
        var length = 0
        var shift = 0
        while true {
            guard shift <= 21, let byte = readExactly(1, from: connection)?.first else { return nil }
            length |= Int(byte & 0x7F) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
        }
        guard let body = readExactly(length, from: connection) else { return nil }
        return (header, body)
    }

    private static func readExactly(_ count: Int, from connection: Int32) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let n = bytes.withUnsafeMutableBytes { recv(connection, $0.baseAddress! + filled, count - filled, 0) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return nil }
            filled += n
        }
        return bytes
    }

    private static func write(_ bytes: [UInt8], to connection: Int32) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(connection, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return false }
            sent += n
        }
        return true
    }

    /// Reads the fields of a packet body.
    private struct Reader {
        let bytes: [UInt8]
        var offset = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        mutating func byte() -> UInt8? {
            guard self.offset < self.bytes.count else { return nil }
            defer { self.offset += 1 }
            return self.bytes[self.offset]
        }

        mutating func uint16() -> UInt16? {
            guard let high = self.byte(), let low = self.byte() else { return nil }
            return UInt16(high) << 8 | UInt16(low)
        }

        mutating func string() -> String? {
            guard let length = self.uint16(), self.offset + Int(length) <= self.bytes.count else { return nil }
            defer { self.offset += Int(length) }
            return String(decoding: self.bytes[self.offset..<self.offset + Int(length)], as: UTF8.self)
        }

        /// Skips an MQTT 5 property block (a variable byte integer length, then that many bytes).
        mutating func skipProperties() {
            var length = 0
            var shift = 0
            while let byte = self.byte() {
                length |= Int(byte & 0x7F) << shift
                if byte & 0x80 == 0 || shift > 21 { break }
                shift += 7
            }
            self.offset = min(self.bytes.count, self.offset + length)
        }

        mutating func rest() -> [UInt8] {
            defer { self.offset = self.bytes.count }
            return Array(self.bytes[self.offset...])
        }
    }
}
