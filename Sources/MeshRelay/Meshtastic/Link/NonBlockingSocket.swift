#if canImport(Glibc)
import Glibc
import Synchronization

/// A TCP socket that never blocks a thread: the descriptor is non-blocking, and waits are short `Task.sleep` slices
/// (1 ms doubling to 10 ms), as ``LinuxSerialPort`` waits. Every system call on the descriptor is made under its
/// lock, so ``close()`` never closes a descriptor another task is using. Used by the radio link's TCP transport and by
/// the simulated radio's listener.
final class NonBlockingSocket: Sendable {
    let name: String
    private let descriptor: Mutex<Int32>

    static let maximumWaitSlice = Duration.milliseconds(10)
    static let writeTimeout = Duration.seconds(5)

    init(descriptor: Int32, name: String) {
        self.descriptor = Mutex(descriptor)
        self.name = name
    }

    deinit { self.close() }

    func close() {
        self.descriptor.withLock { fd in
            if fd >= 0 {
                Glibc.close(fd)
                fd = -1
            }
        }
    }

    var isClosed: Bool { self.descriptor.withLock { $0 < 0 } }

    private func failure(_ code: MeshtasticTransportError.Code) -> MeshtasticTransportError {
        MeshtasticTransportError(code, endpoint: self.name)
    }

    // MARK: Connecting

    /// Resolves `host` and connects to the first address that accepts, within `timeout`.
    static func connect(host: String, port: Int, timeout: Duration, name: String) async throws(MeshtasticTransportError)
        -> NonBlockingSocket
    {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
            throw MeshtasticTransportError(.unknownHost, endpoint: name)
        }
        defer { freeaddrinfo(list) }
        let deadline = ContinuousClock.now + timeout
        var lastError = MeshtasticTransportError(.connectionRefused, endpoint: name)
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let address = entry {
            entry = address.pointee.ai_next
            let fd = socket(address.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { continue }
            let socket = NonBlockingSocket(descriptor: fd, name: name)
            do {
                try await socket.finishConnect(to: address.pointee.ai_addr, length: address.pointee.ai_addrlen, deadline: deadline)
                var one: Int32 = 1
                _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                return socket
            } catch {
                socket.close()
                lastError = error
                if error.code == .connectTimedOut { break }
            }
        }
        throw lastError
    }

    private func finishConnect(to address: UnsafeMutablePointer<sockaddr>, length: socklen_t, deadline: ContinuousClock.Instant)
        async throws(MeshtasticTransportError)
    {
        let started: Int32 = self.descriptor.withLock { fd in Glibc.connect(fd, address, length) == 0 ? 0 : errno }
        if started == 0 { return }
        guard started == EINPROGRESS || started == EINTR else { throw self.failure(Self.connectCode(started)) }
        var slice = Duration.milliseconds(1)
        while true {
            let outcome: Int32? = self.descriptor.withLock { fd in
                var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                guard poll(&poller, 1, 0) > 0 else { return nil }
                var result: Int32 = 0
                var size = socklen_t(MemoryLayout<Int32>.size)
                _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &result, &size)
                return result
            }
            if let outcome {
                guard outcome == 0 else { throw self.failure(Self.connectCode(outcome)) }
                return
            }
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero else { throw self.failure(.connectTimedOut) }
            do {
                try await Task.sleep(for: min(slice, remaining))
            } catch {
                throw self.failure(.io(errno: ECANCELED))
            }
            slice = min(slice * 2, Self.maximumWaitSlice)
        }
    }

    private static func connectCode(_ number: Int32) -> MeshtasticTransportError.Code {
        switch number {
        case ECONNREFUSED: .connectionRefused
        case ETIMEDOUT: .connectTimedOut
        default: .io(errno: number)
        }
    }

    // MARK: Listening

    /// A listener on `host` (an IPv4 address) at `port` (0: the kernel picks one), with SO_REUSEADDR so a restarted
    /// server gets its port back at once.
    static func listen(host: String, port: Int) throws(MeshtasticTransportError) -> (socket: NonBlockingSocket, port: Int) {
        let name = "\(host):\(port)"
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw MeshtasticTransportError(.io(errno: errno), endpoint: name) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            Glibc.close(fd)
            throw MeshtasticTransportError(.unknownHost, endpoint: name)
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, 4) == 0 else {
            let failure = errno
            Glibc.close(fd)
            throw MeshtasticTransportError(.io(errno: failure), endpoint: name)
        }
        var actual = sockaddr_in()
        var size = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &size) }
        }
        let actualPort = Int(UInt16(bigEndian: actual.sin_port))
        return (NonBlockingSocket(descriptor: fd, name: "\(host):\(actualPort)"), actualPort)
    }

    /// accept4(2), so a client socket is close-on-exec from the start: a process forked meanwhile (tests spawn
    /// daemons all the time) must not keep it open, or the client never sees the server drop it. Swift's Glibc
    /// module hides accept4 behind _GNU_SOURCE, so it is looked up once.
    private static let accept4: (@convention(c) (Int32, UnsafeMutablePointer<sockaddr>?, UnsafeMutablePointer<socklen_t>?, Int32) -> Int32)? = {
        guard let address = dlsym(dlopen(nil, RTLD_NOW), "accept4") else { return nil }
        return unsafeBitCast(
            address, to: (@convention(c) (Int32, UnsafeMutablePointer<sockaddr>?, UnsafeMutablePointer<socklen_t>?, Int32) -> Int32).self)
    }()

    /// The next client, or nil when none arrived within `timeout`.
    func accept(timeout: Duration) async throws(MeshtasticTransportError) -> NonBlockingSocket? {
        try await self.waitFor(timeout: timeout) { () throws(MeshtasticTransportError) -> NonBlockingSocket? in
            let result: Result<Int32, MeshtasticTransportError> = self.descriptor.withLock { fd in
                guard fd >= 0 else { return .failure(self.failure(.closed)) }
                let client: Int32
                if let accept4 = Self.accept4 {
                    client = accept4(fd, nil, nil, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
                } else {
                    client = Glibc.accept(fd, nil, nil)
                    if client >= 0 {
                        _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
                        _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                    }
                }
                if client >= 0 { return .success(client) }
                if errno == EAGAIN || errno == EINTR || errno == ECONNABORTED { return .success(-1) }
                return .failure(self.failure(.io(errno: errno)))
            }
            let client = try result.get()
            return client >= 0 ? NonBlockingSocket(descriptor: client, name: self.name) : nil
        }
    }

    // MARK: Reading and writing

    func read(maxCount: Int, timeout: Duration) async throws(MeshtasticTransportError) -> [UInt8] {
        guard maxCount > 0 else { return [] }
        return try await self.waitFor(timeout: timeout) { () throws(MeshtasticTransportError) -> [UInt8]? in
            let bytes = try self.readAvailable(maxCount: maxCount)
            return bytes.isEmpty ? nil : bytes
        } ?? []
    }

    /// Calls `attempt` until it has a value, sleeping in short slices between tries; nil when `timeout` ran out or
    /// the task was cancelled.
    private func waitFor<Value>(timeout: Duration, _ attempt: () throws(MeshtasticTransportError) -> Value?)
        async throws(MeshtasticTransportError) -> Value?
    {
        let deadline = ContinuousClock.now + max(timeout, .zero)
        var slice = Duration.milliseconds(1)
        while true {
            if let value = try attempt() { return value }
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero else { return nil }
            do {
                try await Task.sleep(for: min(slice, remaining))
            } catch {
                return nil
            }
            slice = min(slice * 2, Self.maximumWaitSlice)
        }
    }

    private func readAvailable(maxCount: Int) throws(MeshtasticTransportError) -> [UInt8] {
        let result: Result<[UInt8], MeshtasticTransportError> = self.descriptor.withLock { fd in
            guard fd >= 0 else { return .failure(self.failure(.closed)) }
            var buffer = [UInt8](repeating: 0, count: min(maxCount, 4096))
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count > 0 { return .success(Array(buffer.prefix(count))) }
            if count == 0 { return .failure(self.failure(.closed)) }
            if errno == EAGAIN || errno == EINTR { return .success([]) }
            if errno == ECONNRESET || errno == EPIPE || errno == ENOTCONN { return .failure(self.failure(.closed)) }
            return .failure(self.failure(.io(errno: errno)))
        }
        return try result.get()
    }

    func write(_ bytes: [UInt8]) async throws(MeshtasticTransportError) {
        var written = 0
        let deadline = ContinuousClock.now + Self.writeTimeout
        while written < bytes.count {
            let result: Result<Int, MeshtasticTransportError> = self.descriptor.withLock { fd in
                guard fd >= 0 else { return .failure(self.failure(.closed)) }
                let count = bytes[written...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                if count >= 0 { return .success(count) }
                if errno == EAGAIN || errno == EINTR { return .success(0) }
                if errno == ECONNRESET || errno == EPIPE || errno == ENOTCONN { return .failure(self.failure(.closed)) }
                return .failure(self.failure(.io(errno: errno)))
            }
            let count = try result.get()
            written += count
            if count == 0 {
                guard ContinuousClock.now < deadline else { throw self.failure(.io(errno: EAGAIN)) }
                do {
                    try await Task.sleep(for: .milliseconds(2))
                } catch {
                    throw self.failure(.io(errno: ECANCELED))
                }
            }
        }
    }
}
#endif
