import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Where systemd listens for a service's notifications: `$NOTIFY_SOCKET`.
enum NotifySocketAddress: Sendable, Hashable, CustomStringConvertible {
    /// A socket file, `/run/systemd/notify`.
    case path(String)
    /// A Linux abstract socket, written `@name` in the environment.
    case abstract(String)

    /// Parses `$NOTIFY_SOCKET`: an absolute path, or `@` and an abstract name (sd_notify(3)).
    init(_ value: String) throws(SystemdNotifierError) {
        if value.hasPrefix("/") {
            self = .path(value)
        } else if value.hasPrefix("@"), value.count > 1 {
            self = .abstract(String(value.dropFirst()))
        } else {
            throw SystemdNotifierError(description: "NOTIFY_SOCKET=\"\(value)\" is neither a socket path (/…) nor an abstract socket (@…)")
        }
        // sun_path holds the path and its terminating NUL, or the abstract name after its leading NUL.
        let capacity = MemoryLayout.size(ofValue: sockaddr_un().sun_path)
        guard self.addressBytes.count <= capacity else {
            throw SystemdNotifierError(description: "NOTIFY_SOCKET=\"\(value)\" is longer than a socket address can be (\(capacity) bytes)")
        }
    }

    /// The bytes of `sun_path`: the path and its NUL, or a NUL and the abstract name (abstract names are
    /// length-sensitive, so nothing is padded).
    var addressBytes: [UInt8] {
        switch self {
        case .path(let path): Array(path.utf8) + [0]
        case .abstract(let name): [0] + Array(name.utf8)
        }
    }

    /// Calls `body` with the `sockaddr_un` of this address and its exact length (for `connect`, `bind`).
    func withSocketAddress<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> T) rethrows -> T {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = self.addressBytes
        withUnsafeMutableBytes(of: &address.sun_path) { path in path.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout.offset(of: \sockaddr_un.sun_path)! + bytes.count)
        return try withUnsafePointer(to: &address) {
            try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, length) }
        }
    }

    var description: String {
        switch self {
        case .path(let path): path
        case .abstract(let name): "@" + name
        }
    }
}

struct SystemdNotifierError: Error, CustomStringConvertible {
    var description: String
}

/// Tells systemd how the daemon is doing over the notify protocol, without libsystemd: one datagram of
/// newline-separated `KEY=VALUE` assignments per message on an AF_UNIX socket (sd_notify(3)).
struct SystemdNotifier: Sendable {
    /// How long a message may wait for room in systemd's queue.
    static let sendTimeout = Duration.seconds(1)

    let socket: NotifySocketAddress
    /// How long systemd waits for a `WATCHDOG=1` before it kills the daemon (`WatchdogSec=`); `nil` when no
    /// watchdog is set for this process.
    let watchdogTimeout: Duration?

    /// The notifier systemd asked for in `environment`; `nil` when `NOTIFY_SOCKET` is not set (the daemon does
    /// not run under systemd, or under a unit that is not `Type=notify`).
    ///
    /// - Parameter processID: this process: a `WATCHDOG_PID` naming another process means the watchdog is not ours.
    init?(environment: [String: String], processID: Int32 = getpid()) throws(SystemdNotifierError) {
        guard let value = environment["NOTIFY_SOCKET"] else { return nil }
        self.socket = try NotifySocketAddress(value)
        self.watchdogTimeout = try Self.watchdogTimeout(in: environment, processID: processID)
    }

    private static func watchdogTimeout(in environment: [String: String], processID: Int32) throws(SystemdNotifierError) -> Duration? {
        guard let value = environment["WATCHDOG_USEC"] else { return nil }
        if let pid = environment["WATCHDOG_PID"], pid != String(processID) { return nil }
        guard let microseconds = Int64(value), microseconds > 0 else {
            throw SystemdNotifierError(description: "WATCHDOG_USEC=\"\(value)\" is not a positive number of microseconds")
        }
        return .microseconds(microseconds)
    }

    /// Sends `assignments` (e.g. `["READY=1", "STATUS=…"]`) as one message.
    ///
    /// When systemd's queue is full (a few datagrams), waits for it at most ``sendTimeout``, then gives up with an
    /// error rather than stall a thread of the concurrency pool.
    func send(_ assignments: [String]) throws(SystemdNotifierError) {
        let message = assignments.joined(separator: "\n")
        let descriptor = Glibc.socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw self.failure("socket") }
        defer { close(descriptor) }
        let seconds = Self.sendTimeout.components.seconds
        var timeout = timeval(tv_sec: Int(seconds), tv_usec: Int(Self.sendTimeout.components.attoseconds / 1_000_000_000_000))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = self.socket.withSocketAddress { connect(descriptor, $0, $1) }
        guard connected == 0 else { throw self.failure("connect") }
        let sent = message.utf8CString.withUnsafeBufferPointer { buffer in
            Glibc.send(descriptor, buffer.baseAddress, buffer.count - 1, Int32(MSG_NOSIGNAL))
        }
        guard sent == message.utf8.count else { throw self.failure("send") }
    }

    private func failure(_ call: String) -> SystemdNotifierError {
        SystemdNotifierError(description: "\(call) on the systemd notify socket \(self.socket) failed: \(String(cString: strerror(errno)))")
    }
}
