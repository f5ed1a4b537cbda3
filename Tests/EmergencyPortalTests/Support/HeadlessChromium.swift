import Foundation

/// The real Chromium (Debian's `chromium` package) run headless, as a phone-sized browser: each call starts a
/// fresh browser with a throw-away profile, loads one URL and exits.
struct HeadlessChromium {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static let defaultExecutable = "/usr/bin/chromium"

    var executable: String = Self.defaultExecutable
    var width = 360
    var height = 640
    /// The browser runs with JavaScript off unless a test needs the opposite, to prove that switching it off works.
    var javaScriptEnabled = false
    /// A hang guard only: a page load takes seconds; a wedged browser is killed after this.
    var timeout: Duration = .seconds(180)

    /// Fails with the fix when the browser is not installed, so a test never passes without it.
    static func installed() throws -> HeadlessChromium {
        guard FileManager.default.isExecutableFile(atPath: Self.defaultExecutable) else {
            throw Failure(description: "\(Self.defaultExecutable) is missing: apt-get install chromium fonts-noto-core (scripts/install-deps.sh tests)")
        }
        return HeadlessChromium()
    }

    /// The DOM after loading `url`, serialised as HTML.
    func dumpDOM(url: URL) async throws -> String {
        let output = try await self.run(url: url, extra: ["--dump-dom"])
        return String(decoding: output, as: UTF8.self)
    }

    /// A PNG of the viewport (``width`` × ``height`` CSS pixels) after loading `url`.
    func screenshot(url: URL, to file: URL) async throws {
        try? FileManager.default.removeItem(at: file)
        _ = try await self.run(url: url, extra: ["--screenshot=\(file.path)"])
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw Failure(description: "chromium wrote no screenshot to \(file.path)")
        }
    }

    private func run(url: URL, extra: [String]) async throws -> Data {
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("chromium-profile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: profile) }
        let stdoutFile = profile.appendingPathComponent("stdout")
        let stderrFile = profile.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: stdoutFile.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrFile.path, contents: nil)

        var arguments = [
            "--headless",
            // Tests run as root in CI, where Chromium refuses to start with its sandbox.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--user-data-dir=\(profile.path)",
            "--window-size=\(self.width),\(self.height)",
        ]
        if !self.javaScriptEnabled {
            // Chrome's own "Don't allow sites to use JavaScript" setting, in the fresh profile. The Blink switch
            // `--blink-settings=scriptEnabled=false` is no use here: with it, Chromium 156 exits 0 with an empty
            // `--dump-dom` and writes no `--screenshot`, because both read the page through script evaluation.
            let settings = profile.appendingPathComponent("Default")
            try FileManager.default.createDirectory(at: settings, withIntermediateDirectories: true)
            try Data(#"{"profile":{"default_content_setting_values":{"javascript":2}}}"#.utf8)
                .write(to: settings.appendingPathComponent("Preferences"))
        }
        arguments += extra + [url.absoluteString]

        let process = Process()
        process.executableURL = URL(fileURLWithPath: self.executable)
        process.arguments = arguments
        let stdout = try FileHandle(forWritingTo: stdoutFile)
        let stderr = try FileHandle(forWritingTo: stderrFile)
        defer {
            try? stdout.close()
            try? stderr.close()
        }
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice

        let exited = ProcessExit(process)
        try process.run()
        let status = try await exited.wait(timeout: self.timeout)
        let output = try Data(contentsOf: stdoutFile)
        guard status == 0 else {
            let log = String(decoding: (try? Data(contentsOf: stderrFile)) ?? Data(), as: UTF8.self)
            throw Failure(description: "chromium exited with \(status) for \(url): \(log.suffix(2000))")
        }
        return output
    }
}

/// Waits for a process to exit, terminating it after a timeout.
private final class ProcessExit: @unchecked Sendable {
    private let process: Process
    private let lock = NSLock()
    private var status: Int32?
    private var waiters: [CheckedContinuation<Int32, Never>] = []

    init(_ process: Process) {
        self.process = process
        process.terminationHandler = { [weak self] finished in
            self?.finish(finished.terminationStatus)
        }
    }

    private func finish(_ status: Int32) {
        self.lock.lock()
        self.status = status
        let waiters = self.waiters
        self.waiters = []
        self.lock.unlock()
        for waiter in waiters {
            waiter.resume(returning: status)
        }
    }

    private func exitStatus() async -> Int32 {
        await withCheckedContinuation { continuation in
            self.lock.lock()
            if let status = self.status {
                self.lock.unlock()
                continuation.resume(returning: status)
            } else {
                self.waiters.append(continuation)
                self.lock.unlock()
            }
        }
    }

    func wait(timeout: Duration) async throws -> Int32 {
        try await withThrowingTaskGroup(of: Int32?.self) { group in
            group.addTask { await self.exitStatus() }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            if let first {
                return first
            }
            self.process.terminate()
            _ = await self.exitStatus()
            throw HeadlessChromium.Failure(description: "chromium did not finish within \(timeout); killed")
        }
    }
}
