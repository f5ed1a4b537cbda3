import Foundation
import KiezboxTestSupport
import Testing

/// The lines of a `kiezbox run` log at level error or worse (swift-log's stream format: `<time> <level> <label> …`).
func errorLines(_ log: String) -> [Substring] {
    log.split(separator: "\n").filter { line in
        let level = line.split(separator: " ").dropFirst().first
        return level == "error" || level == "critical"
    }
}

/// A keep-alive HTTP/1.1 connection to the portal: one request answered, the connection left open.
final class IdleHTTPConnection {
    private let descriptor: Int32

    init(port: Int) throws {
        self.descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard self.descriptor >= 0 else { throw TestFailure("socket: errno \(errno)") }
        // A hang guard for the read below, not a timed assertion.
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(self.descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(self.descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw TestFailure("connect to port \(port): errno \(errno)") }
        let request = "GET / HTTP/1.1\r\nHost: kiez.box\r\n\r\n"
        _ = request.withCString { send(self.descriptor, $0, strlen($0), 0) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = buffer.withUnsafeMutableBytes { recv(self.descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0, String(decoding: buffer[..<count], as: UTF8.self).hasPrefix("HTTP/1.1 ") else {
            throw TestFailure("no HTTP answer from port \(port)")
        }
    }

    deinit {
        close(self.descriptor)
    }
}

@Suite("kiezbox run: stopping, and telling systemd", .serialized, .timeLimit(.minutes(3)))
struct DaemonSignalTests {
    func withWorkspace(_ body: (_ directory: String, _ configuration: String, _ port: Int) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-signal-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try MosquittoBroker.freePort()
        let configuration = DaemonProcessTests.configuration + """

            [portal]
            listen = "127.0.0.1"
            port = \(port)
            https_port = \(try MosquittoBroker.freePort())
            """
        try configuration.write(toFile: directory + "/kiezbox.toml", atomically: true, encoding: .utf8)
        try await body(directory, directory + "/kiezbox.toml", port)
    }

    @Test("Ctrl-C (SIGINT) with the portal serving a keep-alive connection: exit 0, no error in the log")
    func interrupt() async throws {
        try await self.withWorkspace { directory, configuration, port in
            let daemon = try KiezboxProcess(["run", "--config", configuration, "--data-dir", directory + "/data"], in: directory)
            defer { if daemon.process.isRunning { daemon.signal(SIGKILL) } }
            try await waitUntil("the portal to listen") { daemon.stderr.contains("emergency portal listening") }
            let connection = try IdleHTTPConnection(port: port)
            daemon.signal(SIGINT)
            #expect(try await daemon.waitForExit() == 0, "\(daemon.stderr)")
            withExtendedLifetime(connection) {}
            #expect(errorLines(daemon.stderr).isEmpty, "\(daemon.stderr)")
            #expect(daemon.stderr.contains("kiezbox stopped"))
        }
    }

    @Test("under a Type=notify unit: READY=1 with the status line, watchdog pings, STOPPING=1 on SIGTERM")
    func notify() async throws {
        try await self.withWorkspace { directory, configuration, port in
            let listener = try NotifySocketListener()
            defer { listener.stop() }
            let daemon = try KiezboxProcess(
                ["run", "--config", configuration, "--data-dir", directory + "/data"], in: directory,
                environment: ["NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "2000000"]
            )
            defer { if daemon.process.isRunning { daemon.signal(SIGKILL) } }
            let ready = try #require(try await listener.waitFor("READY=1") { $0.hasPrefix("READY=1\n") }.last)
            #expect(ready.hasPrefix("READY=1\nSTATUS=normal · sensors "), "\(ready)")
            #expect(ready.hasSuffix(" · portal :\(port)"), "\(ready)")
            _ = try await listener.waitFor("a watchdog ping") { $0 == "WATCHDOG=1" }
            let settled = "STATUS=normal · sensors 2/2 ok · portal :\(port)"
            _ = try await listener.waitFor("both sensors answering") { $0.contains(settled) }
            daemon.signal(SIGTERM)
            #expect(try await daemon.waitForExit() == 0, "\(daemon.stderr)")
            #expect(listener.messages.last == "STOPPING=1", "\(listener.messages)")
            #expect(!listener.messages.contains { $0.hasPrefix("READY=1") && $0 != ready })
            #expect(errorLines(daemon.stderr).isEmpty, "\(daemon.stderr)")
        }
    }

    /// Found by the appliance test: under the unit's `UMask=0027` the mode file came out 0640, which root's
    /// kiezbox-mode.service (no CAP_DAC_OVERRIDE) cannot read, so crisis mode never started the Wi-Fi.
    @Test("under the service's umask 0027 the mode file is still readable by everyone (0644)")
    func modeFileUnderServiceUmask() async throws {
        try await self.withWorkspace { directory, configuration, _ in
            let modeFile = directory + "/run/mode"
            try FileManager.default.createDirectory(atPath: directory + "/run", withIntermediateDirectories: true)
            let withStateFile = try String(contentsOfFile: configuration, encoding: .utf8) + """

                [mode]
                state_file = "\(modeFile)"
                """
            try withStateFile.write(toFile: configuration, atomically: true, encoding: .utf8)
            let daemon = try KiezboxProcess(
                ["-c", "umask 0027 && exec \"$0\" run --config \"$1\" --data-dir \"$2\"", kiezboxBinary, configuration, directory + "/data"],
                in: directory, executable: "/bin/sh"
            )
            defer { if daemon.process.isRunning { daemon.signal(SIGKILL) } }
            try await waitUntil("the mode file") { FileManager.default.fileExists(atPath: modeFile) }
            let permissions = try FileManager.default.attributesOfItem(atPath: modeFile)[.posixPermissions] as? Int
            #expect(permissions == 0o644, "mode file permissions \(String(permissions ?? 0, radix: 8))")
            daemon.signal(SIGTERM)
            #expect(try await daemon.waitForExit() == 0, "\(daemon.stderr)")
        }
    }
}
