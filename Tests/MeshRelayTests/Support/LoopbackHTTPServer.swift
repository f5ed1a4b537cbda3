import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(Glibc)
private let streamSocketType = Int32(SOCK_STREAM.rawValue)
#else
private let streamSocketType = SOCK_STREAM
#endif

/// One header line of a request or response.
struct HTTPHeaderField: Sendable, Hashable {
    var name: String
    var value: String
}

/// A request as the server read it off the socket.
struct RecordedRequest: Sendable {
    var method: String
    /// The request target as sent: path and query.
    var target: String
    var version: String
    var headers: [HTTPHeaderField]
    var body: Data
    /// Which connection (1, 2, …) carried it.
    var connection: Int

    var path: String { String(self.target.prefix { $0 != "?" }) }

    /// The first value of a header, by case-insensitive name.
    func header(_ name: String) -> String? {
        self.headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    func headers(named name: String) -> [String] {
        self.headers.filter { $0.name.caseInsensitiveCompare(name) == .orderedSame }.map(\.value)
    }

    var bodyText: String { String(decoding: self.body, as: UTF8.self) }
}

/// What the handler answers.
struct CannedResponse: Sendable {
    var status: Int
    var headers: [HTTPHeaderField] = []
    var body: Data = Data()
    /// Close the connection after this response even if the client wants to keep it.
    var close = false

    static func json(_ status: Int, _ text: String) -> CannedResponse {
        CannedResponse(
            status: status,
            headers: [HTTPHeaderField(name: "Content-Type", value: "application/json; charset=utf-8")],
            body: Data(text.utf8)
        )
    }

    /// `object` as JSON (anything JSONSerialization takes, fragments included).
    static func json(_ status: Int, object: Any) -> CannedResponse {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .fragmentsAllowed])) ?? Data()
        return .json(status, String(decoding: data, as: UTF8.self))
    }

    static func text(_ status: Int, _ text: String) -> CannedResponse {
        CannedResponse(
            status: status,
            headers: [HTTPHeaderField(name: "Content-Type", value: "text/plain; charset=utf-8")],
            body: Data(text.utf8)
        )
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 200: "OK"
        case 201: "Created"
        case 204: "No Content"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 411: "Length Required"
        case 413: "Payload Too Large"
        case 415: "Unsupported Media Type"
        case 422: "Unprocessable Entity"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        default: "Status \(status)"
        }
    }
}

struct LoopbackServerError: Error, CustomStringConvertible {
    var description: String
}

/// A small HTTP/1.1 server on 127.0.0.1 and an ephemeral port, on POSIX sockets, for tests.
///
/// It reads the request line, headers and a body framed by Content-Length or chunked transfer coding; answers
/// `Expect: 100-continue`; keeps connections alive unless told otherwise (HTTP/1.0, `Connection: close`, or a
/// response with ``CannedResponse/close``); serves every connection on its own thread, so concurrent requests
/// are simply handled side by side. The handler runs on that thread and must be thread-safe.
///
/// Threads, not tasks: blocking socket calls must stay off the cooperative pool (two threads on a 2-core
/// machine), or the code under test would starve.
final class LoopbackHTTPServer: Sendable {
    typealias Handler = @Sendable (RecordedRequest) -> CannedResponse

    let port: UInt16
    private let listener: Int32
    private let handler: Handler
    private let state = Mutex(State())

    private struct State {
        var stopped = false
        var listenerOpen = true
        var connections: Set<Int32> = []
        var connectionCount = 0
        var requests: [RecordedRequest] = []
    }

    init(handler: @escaping Handler) throws {
        let fd = socket(AF_INET, streamSocketType, 0)
        guard fd >= 0 else { throw LoopbackServerError(description: "socket: errno \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            let code = errno
            close(fd)
            throw LoopbackServerError(description: "bind/listen: errno \(code)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.port = UInt16(bigEndian: actual.sin_port)
        self.listener = fd
        self.handler = handler
        Thread.detachNewThread { [self] in self.acceptLoop() }
    }

    deinit {
        self.stop()
    }

    /// `http://127.0.0.1:<port><path>`
    func url(_ path: String) -> URL {
        URL(string: "http://127.0.0.1:\(self.port)\(path)")!
    }

    /// Every request read so far, in order of arrival.
    var requests: [RecordedRequest] { self.state.withLock { $0.requests } }

    /// How many connections were accepted so far.
    var connectionCount: Int { self.state.withLock { $0.connectionCount } }

    /// Stops accepting and wakes every connection thread; each closes its own socket.
    func stop() {
        self.state.withLock { state in
            guard !state.stopped else { return }
            state.stopped = true
            if state.listenerOpen { shutdown(self.listener, Int32(SHUT_RDWR)) }
            for fd in state.connections { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    private func acceptLoop() {
        while true {
            let fd = accept(self.listener, nil, nil)
            if fd < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                break
            }
            let number: Int? = self.state.withLock { state in
                guard !state.stopped else { return nil }
                state.connections.insert(fd)
                state.connectionCount += 1
                return state.connectionCount
            }
            guard let number else {
                close(fd)
                break
            }
            Thread.detachNewThread { [self] in self.serve(fd, number: number) }
        }
        self.state.withLock { $0.listenerOpen = false }
        close(self.listener)
    }

    // MARK: connection

    private func serve(_ fd: Int32, number: Int) {
        var timeout = timeval(tv_sec: 15, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var connection = Connection(fd: fd)
        while let outcome = self.readRequest(&connection, number: number) {
            guard case .request(let request) = outcome else {
                if case .malformed(let status) = outcome {
                    connection.write(Self.serialize(.text(status, "malformed request\n"), keepAlive: false))
                }
                break
            }
            self.state.withLock { $0.requests.append(request) }
            let response = self.handler(request)
            let wantsClose = request.version == "HTTP/1.0"
                || request.header("Connection")?.lowercased().contains("close") == true
            let keepAlive = !wantsClose && !response.close
            guard connection.write(Self.serialize(response, keepAlive: keepAlive)), keepAlive else { break }
        }
        self.state.withLock { _ = $0.connections.remove(fd) }
        close(fd)
    }

    private enum ReadOutcome {
        case request(RecordedRequest)
        case malformed(status: Int)
    }

    /// Reads one request; nil when the peer closed or went quiet between requests.
    private func readRequest(_ connection: inout Connection, number: Int) -> ReadOutcome? {
        let terminator: [UInt8] = [13, 10, 13, 10]
        var headEnd: Int?
        while headEnd == nil {
            if let found = connection.buffer.firstRange(of: terminator) {
                headEnd = found.upperBound
                break
            }
            if connection.buffer.count > 64 * 1024 { return .malformed(status: 431) }
            guard connection.fill() else { return nil }
        }
        guard let headEnd else { return nil }
        let head = String(decoding: connection.buffer[..<(headEnd - 4)], as: UTF8.self)
        connection.buffer.removeFirst(headEnd)
        var lines = head.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst().split(separator: " ", omittingEmptySubsequences: false)
        guard requestLine.count == 3, requestLine[2].hasPrefix("HTTP/1.") else { return .malformed(status: 400) }
        var headers: [HTTPHeaderField] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { return .malformed(status: 400) }
            headers.append(
                HTTPHeaderField(
                    name: String(line[..<colon]),
                    value: line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                )
            )
        }
        var request = RecordedRequest(
            method: String(requestLine[0]), target: String(requestLine[1]), version: String(requestLine[2]),
            headers: headers, body: Data(), connection: number
        )
        if request.header("Expect")?.lowercased() == "100-continue" {
            guard connection.write(Data("HTTP/1.1 100 Continue\r\n\r\n".utf8)) else { return nil }
        }
        if request.header("Transfer-Encoding")?.lowercased().contains("chunked") == true {
            guard let body = Self.readChunked(&connection) else { return .malformed(status: 400) }
            request.body = body
        } else if let lengthText = request.header("Content-Length") {
            guard let length = Int(lengthText), length >= 0 else { return .malformed(status: 400) }
            while connection.buffer.count < length {
                guard connection.fill() else { return nil }
            }
            request.body = Data(connection.buffer[..<length])
            connection.buffer.removeFirst(length)
        }
        return .request(request)
    }

    private static func readChunked(_ connection: inout Connection) -> Data? {
        var body = Data()
        while true {
            guard let sizeLine = connection.readLine(),
                let size = Int(sizeLine.split(separator: ";")[0].trimmingCharacters(in: .whitespaces), radix: 16)
            else { return nil }
            if size == 0 {
                // Trailers, up to the empty line.
                while let trailer = connection.readLine() {
                    if trailer.isEmpty { return body }
                }
                return nil
            }
            while connection.buffer.count < size + 2 {
                guard connection.fill() else { return nil }
            }
            body.append(contentsOf: connection.buffer[..<size])
            connection.buffer.removeFirst(size + 2)
        }
    }

    private static func serialize(_ response: CannedResponse, keepAlive: Bool) -> Data {
        var text = "HTTP/1.1 \(response.status) \(CannedResponse.reason(response.status))\r\n"
        for header in response.headers { text += "\(header.name): \(header.value)\r\n" }
        text += "Content-Length: \(response.body.count)\r\n"
        text += "Connection: \(keepAlive ? "keep-alive" : "close")\r\n\r\n"
        var data = Data(text.utf8)
        data.append(response.body)
        return data
    }

    private struct Connection {
        let fd: Int32
        var buffer: [UInt8] = []

        /// Reads what is there (blocking); false on end of stream, error or timeout.
        mutating func fill() -> Bool {
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let count = chunk.withUnsafeMutableBytes { recv(self.fd, $0.baseAddress, $0.count, 0) }
                if count > 0 {
                    self.buffer.append(contentsOf: chunk[..<count])
                    return true
                }
                if count < 0 && errno == EINTR { continue }
                return false
            }
        }

        mutating func readLine() -> String? {
            while true {
                if let end = self.buffer.firstRange(of: [13, 10]) {
                    let line = String(decoding: self.buffer[..<end.lowerBound], as: UTF8.self)
                    self.buffer.removeFirst(end.upperBound)
                    return line
                }
                guard self.fill() else { return nil }
            }
        }

        /// Writes everything; false when the peer is gone. Never raises SIGPIPE.
        @discardableResult
        func write(_ data: Data) -> Bool {
            data.withUnsafeBytes { raw -> Bool in
                var offset = 0
                while offset < raw.count {
                    #if canImport(Glibc)
                    let flags = Int32(MSG_NOSIGNAL)
                    #else
                    let flags: Int32 = 0
                    #endif
                    let sent = send(self.fd, raw.baseAddress! + offset, raw.count - offset, flags)
                    if sent < 0 && errno == EINTR { continue }
                    guard sent > 0 else { return false }
                    offset += sent
                }
                return true
            }
        }
    }
}

/// A TCP port on 127.0.0.1 that refuses connections: bound, never listening, held until ``close()``.
final class RefusingPort: Sendable {
    let port: UInt16
    private let fd: Int32

    init() throws {
        let fd = socket(AF_INET, streamSocketType, 0)
        guard fd >= 0 else { throw LoopbackServerError(description: "socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            close(fd)
            throw LoopbackServerError(description: "bind: errno \(errno)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.port = UInt16(bigEndian: actual.sin_port)
        self.fd = fd
    }

    deinit { close(self.fd) }

    func url(_ path: String) -> URL {
        URL(string: "http://127.0.0.1:\(self.port)\(path)")!
    }
}
