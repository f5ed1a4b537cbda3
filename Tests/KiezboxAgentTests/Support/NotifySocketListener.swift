import Foundation
import Synchronization

@testable import KiezboxAgent

/// A test's stand-in for systemd's notify socket: an AF_UNIX datagram socket, bound to a path or an abstract
/// name, whose messages a thread of its own collects (the kernel queues only a few datagrams per socket).
final class NotifySocketListener: Sendable {
    /// The value for `NOTIFY_SOCKET`.
    let address: String
    private let descriptor: Int32
    private let received = Mutex<[String]>([])
    private let closed = Mutex(false)
    private let receiverFinished = Mutex(false)
    private let directory: String?

    /// - Parameter abstract: bind to an abstract name (`@…`) rather than a socket file.
    init(abstract: Bool = false) throws {
        let name = "kiezbox-notify-\(UUID().uuidString.prefix(8))"
        let directory = abstract ? nil : FileManager.default.temporaryDirectory.appendingPathComponent(name).path
        if let directory { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        let path = directory.map { $0 + "/notify" }
        self.address = path ?? "@" + name
        self.directory = directory
        self.descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard self.descriptor >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        let descriptor = self.descriptor
        let bound = try NotifySocketAddress(self.address).withSocketAddress { bind(descriptor, $0, $1) }
        guard bound == 0 else {
            close(self.descriptor)
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
        // Wake up now and then to notice `stop()`.
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(self.descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        Thread { [self] in self.receiveUntilClosed() }.start()
    }

    private func receiveUntilClosed() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !self.closed.withLock({ $0 }) {
            let count = buffer.withUnsafeMutableBytes { recv(self.descriptor, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                let message = String(decoding: buffer[..<count], as: UTF8.self)
                self.received.withLock { $0.append(message) }
            }
        }
        self.receiverFinished.withLock { $0 = true }
    }

    /// Every message received so far, in order.
    var messages: [String] { self.received.withLock { $0 } }

    /// Waits (real time, a hang guard) until a received message satisfies `condition`; returns every message
    /// received up to and including it.
    func waitFor(
        _ what: String, timeout: Duration = .seconds(30), _ condition: @Sendable (String) -> Bool
    ) async throws -> [String] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let messages = self.messages
            if let index = messages.firstIndex(where: condition) { return Array(messages[...index]) }
            guard ContinuousClock.now < deadline else {
                throw TimeoutError(what: "\(what); received so far: \(messages)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Waits for the `number`-th message (counting from 1) and returns it.
    func message(_ number: Int, timeout: Duration = .seconds(30)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while self.messages.count < number {
            guard ContinuousClock.now < deadline else { throw TimeoutError(what: "message \(number); received: \(self.messages)") }
            try await Task.sleep(for: .milliseconds(10))
        }
        return self.messages[number - 1]
    }

    func stop() {
        let wasClosed = self.closed.withLock { closed in
            defer { closed = true }
            return closed
        }
        guard !wasClosed else { return }
        // The receiving thread wakes within its timeout and sees `closed`; the descriptor closes after it.
        while !self.receiverFinished.withLock({ $0 }) { usleep(10_000) }
        close(self.descriptor)
        if let directory { try? FileManager.default.removeItem(atPath: directory) }
    }
}
