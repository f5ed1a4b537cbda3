import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A private mosquitto 2.0 for one test: its own config file, log and port in a temporary directory, on
/// 127.0.0.1 only. It can be stopped (killed) and started again on the same port, paused (SIGSTOP) to stop
/// acknowledging, and is killed when the test ends, also when the test fails (``with(_:_:)``), or at the
/// latest when the object is released.
public final class MosquittoBroker: Sendable {
    public struct Options: Sendable {
        /// Lines added to the listener section: `cafile`, `certfile`, `require_certificate`, …
        public var listener: [String] = []
        /// `user:password` pairs; when non-empty, anonymous clients are refused.
        public var users: [(user: String, password: String)] = []
        /// Where the broker listens (one listener per address, all on the broker's port): 127.0.0.1 unless set.
        public var addresses: [String]
        /// Runs the broker inside this namespace (`ip netns exec`); `addresses` are then its addresses there.
        public var networkNamespace: NetworkNamespace?

        public init(
            listener: [String] = [], users: [(user: String, password: String)] = [], addresses: [String] = ["127.0.0.1"],
            networkNamespace: NetworkNamespace? = nil
        ) {
            self.listener = listener
            self.users = users
            self.addresses = addresses
            self.networkNamespace = networkNamespace
        }
    }

    public let directory: URL
    public let port: Int
    private let options: Options
    private let process = Mutex<Process?>(nil)

    public static let executable = "/usr/sbin/mosquitto"

    /// Starts a broker, runs `body`, and stops the broker and removes its directory whatever happens.
    public static func with<T: Sendable>(
        _ options: Options = Options(), _ body: (MosquittoBroker) async throws -> T
    ) async throws -> T {
        let broker = try await MosquittoBroker.started(options)
        do {
            let result = try await body(broker)
            await broker.shutDown()
            return result
        } catch {
            await broker.shutDown()
            throw error
        }
    }

    /// A started broker on a free port (a few ports are tried if another process takes the first one).
    public static func started(_ options: Options = Options()) async throws -> MosquittoBroker {
        var lastError: (any Error)?
        for _ in 0..<5 {
            let broker = try MosquittoBroker(options: options, port: try freePort())
            do {
                try await broker.start()
                return broker
            } catch {
                lastError = error
                await broker.shutDown()
            }
        }
        throw lastError ?? TestFailure("mosquitto did not start")
    }

    private init(options: Options, port: Int) throws {
        self.options = options
        self.port = port
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "kiezbox-mosquitto-\(port)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        var lines = [
            "# Written by the Kiezbox MQTT tests",
            "per_listener_settings false",
            // Started as root, mosquitto would drop privileges to `mosquitto`, which cannot read this directory.
            "user root",
            "persistence false",
            "log_dest stderr",
            "log_type all",
            "log_timestamp true",
        ]
        lines += options.addresses.map { "listener \(port) \($0)" }
        lines += options.listener
        if options.users.isEmpty {
            lines.append("allow_anonymous true")
        } else {
            let passwordFile = self.directory.appendingPathComponent("passwd").path
            _ = FileManager.default.createFile(atPath: passwordFile, contents: Data())
            for (user, password) in options.users {
                try runTool("/usr/bin/mosquitto_passwd", ["-b", passwordFile, user, password])
            }
            lines += ["allow_anonymous false", "password_file \(passwordFile)"]
        }
        try (lines.joined(separator: "\n") + "\n").write(to: self.configURL, atomically: true, encoding: .utf8)
    }

    deinit {
        // Last resort: never leave a broker behind.
        if let process = self.process.withLock({ $0 }), process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
    }

    /// The first address the broker listens on.
    public var host: String { self.options.addresses.first ?? "127.0.0.1" }

    public var configURL: URL { self.directory.appendingPathComponent("mosquitto.conf") }
    public var logURL: URL { self.directory.appendingPathComponent("mosquitto.log") }

    /// Everything the broker logged so far (all log types), across restarts.
    public var log: String { (try? String(contentsOf: self.logURL, encoding: .utf8)) ?? "" }

    /// Starts (or restarts) the broker and waits until it accepts TCP connections.
    public func start() async throws {
        if !FileManager.default.fileExists(atPath: self.logURL.path) {
            _ = FileManager.default.createFile(atPath: self.logURL.path, contents: Data())
        }
        let log = try FileHandle(forWritingTo: self.logURL)
        try log.seekToEnd()
        let process = Process()
        // `ip netns exec` execs the broker in the same process: the process below is the broker either way.
        let command = (self.options.networkNamespace?.command([Self.executable]) ?? [Self.executable]) + ["-c", self.configURL.path]
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? log.close()
        self.process.withLock { $0 = process }
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        while !Self.acceptsConnections(host: self.host, port: self.port) {
            guard process.isRunning else {
                throw TestFailure("mosquitto exited with \(process.terminationStatus):\n\(self.log)")
            }
            guard ContinuousClock.now < deadline else {
                throw TestFailure("mosquitto did not accept connections on \(self.port):\n\(self.log)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Kills the broker (SIGKILL) and waits until it has exited: its connections drop as in a power cut.
    ///
    /// Not SIGTERM: a process started from a Swift concurrency thread inherits that thread's signal mask, and
    /// libdispatch worker threads block SIGTERM, SIGINT, SIGHUP, SIGUSR1 and SIGUSR2. mosquitto never unblocks
    /// them, so it would ignore SIGTERM. (SIGKILL, SIGSTOP and SIGCONT cannot be blocked.)
    public func stop() async {
        guard let process = self.process.withLock({ $0 }) else { return }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        while process.isRunning {
            try? await Task.sleep(for: .milliseconds(5))
        }
        self.process.withLock { $0 = nil }
    }

    /// SIGSTOP: connections stay open, but nothing is read or acknowledged.
    public func pause() {
        if let process = self.process.withLock({ $0 }) { kill(process.processIdentifier, SIGSTOP) }
    }

    /// SIGCONT after ``pause()``.
    public func resume() {
        if let process = self.process.withLock({ $0 }) { kill(process.processIdentifier, SIGCONT) }
    }

    public func shutDown() async {
        await self.stop()
        try? FileManager.default.removeItem(at: self.directory)
    }

    /// A port that was free a moment ago (bind to port 0 and read back what the kernel chose).
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
        defer { close(fd) }
        var address = loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw TestFailure("bind: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    public static func loopback(port: Int, host: String = "127.0.0.1") -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr(host)
        return address
    }

    public static func acceptsConnections(host: String = "127.0.0.1", port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = loopback(port: port, host: host)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return result == 0
    }
}

/// Runs a command line tool to completion; throws with its output if it fails.
@discardableResult
public func runTool(_ executable: String, _ arguments: [String], in directory: URL? = nil) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = directory }
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    guard process.terminationStatus == 0 else {
        throw TestFailure("\(executable) \(arguments.joined(separator: " ")) failed (\(process.terminationStatus)):\n\(text)")
    }
    return text
}

/// Polls `condition` until it returns a value (a wait for a condition, not a fixed sleep).
@discardableResult
public func eventually<T>(
    _ what: String, timeout: Duration = .seconds(60), _ condition: () async throws -> T?
) async throws -> T {
    let deadline = ContinuousClock.now.advanced(by: timeout)
    while true {
        if let value = try await condition() { return value }
        guard ContinuousClock.now < deadline else { throw TestFailure("timed out after \(timeout) waiting for \(what)") }
        try await Task.sleep(for: .milliseconds(10))
    }
}
