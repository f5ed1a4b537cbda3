import Foundation
import Synchronization
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A raw TCP client for checking the test server byte by byte.
private final class RawClient {
    private let fd: Int32
    private var received: [UInt8] = []

    init(port: UInt16) throws {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw LoopbackServerError(description: "connect: errno \(errno)")
        }
        self.fd = fd
    }

    deinit { close(self.fd) }

    func write(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { send(self.fd, $0.baseAddress, $0.count, 0) }
    }

    /// Reads until `text` has arrived (or the peer closes / 5 s pass); returns everything read so far.
    func read(until text: String) -> String {
        while !String(decoding: self.received, as: UTF8.self).contains(text) {
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { recv(self.fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { break }
            self.received += chunk[..<count]
        }
        return String(decoding: self.received, as: UTF8.self)
    }

    /// Reads until the server closes the connection.
    func readToEnd() -> String {
        self.read(until: "\u{0}never\u{0}")
    }
}

@Suite("loopback HTTP test server")
struct LoopbackHTTPServerTests {
    private func echoServer() throws -> LoopbackHTTPServer {
        try LoopbackHTTPServer { request in
            .text(201, "\(request.method) \(request.target) \(request.body.count) \(request.bodyText)")
        }
    }

    @Test("two requests on one kept-alive connection, Content-Length bodies, close on request")
    func keepAlive() throws {
        let server = try echoServer()
        defer { server.stop() }
        let client = try RawClient(port: server.port)
        client.write("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        #expect(client.read(until: "POST /a 5 hello").contains("HTTP/1.1 201 Created\r\n"))
        client.write("POST /b?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
        let all = client.readToEnd()
        #expect(all.contains("POST /b?q=1 3 abc"))
        #expect(all.contains("Connection: close\r\n"))
        #expect(server.connectionCount == 1)
        #expect(server.requests.map(\.path) == ["/a", "/b"])
        #expect(server.requests.map(\.connection) == [1, 1])
    }

    @Test("Expect: 100-continue is answered before the body; chunked bodies are decoded")
    func continueAndChunked() throws {
        let server = try echoServer()
        defer { server.stop() }
        let client = try RawClient(port: server.port)
        client.write("POST /c HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(client.read(until: "\r\n\r\n") == "HTTP/1.1 100 Continue\r\n\r\n")
        client.write("4\r\nWiki\r\n6;ext=1\r\npedia \r\n0\r\nTrailer: x\r\n\r\n")
        #expect(client.read(until: "Wikipedia ").hasSuffix("POST /c 10 Wikipedia "))
    }

    @Test("concurrent requests are served side by side")
    func concurrentRequests() async throws {
        let load = Mutex((current: 0, highest: 0))
        let server = try LoopbackHTTPServer { request in
            load.withLock { $0.current += 1; $0.highest = max($0.highest, $0.current) }
            Thread.sleep(forTimeInterval: 0.3)
            load.withLock { $0.current -= 1 }
            return .text(200, request.path)
        }
        defer { server.stop() }
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpMaximumConnectionsPerHost = 4
        let session = URLSession(configuration: configuration)
        defer { session.finishTasksAndInvalidate() }
        let paths = try await withThrowingTaskGroup(of: String.self) { group in
            for index in 0..<4 {
                group.addTask {
                    let (data, _) = try await session.data(from: server.url("/r\(index)"))
                    return String(decoding: data, as: UTF8.self)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(paths) == ["/r0", "/r1", "/r2", "/r3"])
        #expect(load.withLock { $0.highest } >= 2, "requests on separate connections overlap in the handler")
    }

    @Test("a malformed request line gets 400 and the connection is closed")
    func malformed() throws {
        let server = try echoServer()
        defer { server.stop() }
        let client = try RawClient(port: server.port)
        client.write("NONSENSE\r\n\r\n")
        #expect(client.readToEnd().hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(server.requests.isEmpty)
    }
}
