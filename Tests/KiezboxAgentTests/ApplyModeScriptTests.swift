import Foundation
import KiezboxCore
import Testing

@testable import KiezboxAgent

/// The root side of crisis mode: packaging/lib/kiezbox-apply-mode, run by kiezbox-mode.service, with a stand-in
/// `systemctl` that records what it was asked to do.
@Suite("kiezbox-apply-mode: the mode file starts or stops the emergency Wi-Fi")
struct ApplyModeScriptTests {
    static let script = repositoryRoot + "/packaging/lib/kiezbox-apply-mode"

    /// A directory with the stand-in systemctl; `run` executes the script against `directory/mode`.
    struct Rig {
        let directory: String
        var modeFile: String { self.directory + "/mode" }
        var calls: String { self.directory + "/systemctl-calls" }

        init(systemctlStatus: Int = 0) throws {
            self.directory = try temporaryDirectory("kiezbox-apply-mode")
            let standIn = """
                #!/bin/sh
                echo "$*" >> "\(self.calls)"
                exit \(systemctlStatus)

                """
            try writeExecutable(standIn, to: self.directory + "/systemctl")
        }

        /// Runs the script with /bin/sh (dash on Debian, as on the box): its status, its log, what systemctl was told.
        func run() async throws -> (status: Int32, log: String, systemctl: [String]) {
            let run = try await runProgram(
                [
                    "/usr/bin/env", "-i", "PATH=/usr/bin:/bin", "KIEZBOX_MODE_FILE=\(self.modeFile)",
                    "KIEZBOX_SYSTEMCTL=\(self.directory)/systemctl", "/bin/sh", ApplyModeScriptTests.script,
                ],
                in: self.directory, timeout: .seconds(20)
            )
            let calls = (try? String(contentsOfFile: self.calls, encoding: .utf8)) ?? ""
            try? FileManager.default.removeItem(atPath: self.calls)
            return (run.status, run.all, calls.split(separator: "\n").map(String.init))
        }

        func remove() { try? FileManager.default.removeItem(atPath: self.directory) }
    }

    static let start = ["start kiezbox-emergency-wifi.target"]
    static let stop = ["stop kiezbox-emergency-wifi.target"]

    @Test("the file the daemon writes: crisis starts the target; normal and maintenance stop it")
    func daemonModes() async throws {
        let rig = try Rig()
        defer { rig.remove() }
        let file = ModeStateFile(path: rig.modeFile)
        for (mode, expected) in [(Mode.crisis, Self.start), (.normal, Self.stop), (.maintenance, Self.stop)] {
            try file.write(mode)
            let run = try await rig.run()
            #expect(run.status == 0, "\(mode): \(run.log)")
            #expect(run.systemctl == expected, "\(mode): \(run.log)")
            #expect(run.log.contains("says: \(mode.rawValue)"), "\(mode): \(run.log)")
        }
    }

    @Test(
        "anything but exactly crisis stops the target, and its content is never echoed",
        arguments: ["crisis; reboot\n", "CRISIS\n", " crisis\n", "crisis\n\n", "crisis\ncrisis\n", "", String(repeating: "crisis", count: 10_000)]
    )
    func untrustedContent(_ contents: String) async throws {
        let rig = try Rig()
        defer { rig.remove() }
        try contents.write(toFile: rig.modeFile, atomically: true, encoding: .utf8)
        let run = try await rig.run()
        #expect(run.status == 0, "\(run.log)")
        #expect(run.systemctl == Self.stop, "\(run.log)")
        #expect(run.log.contains("says: unrecognised"), "\(run.log)")
        #expect(!run.log.contains("reboot"), "\(run.log)")
    }

    @Test("no file (the daemon stopped and /run/kiezbox went with it) stops the target")
    func missingFile() async throws {
        let rig = try Rig()
        defer { rig.remove() }
        let run = try await rig.run()
        #expect(run.status == 0, "\(run.log)")
        #expect(run.systemctl == Self.stop, "\(run.log)")
        #expect(run.log.contains("says: missing"), "\(run.log)")
    }

    @Test("a symlink or a FIFO in place of the file is not followed or opened; the target stops")
    func notARegularFile() async throws {
        let rig = try Rig()
        defer { rig.remove() }
        try "crisis\n".write(toFile: rig.directory + "/elsewhere", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: rig.modeFile, withDestinationPath: rig.directory + "/elsewhere")
        let symlink = try await rig.run()
        #expect(symlink.systemctl == Self.stop, "\(symlink.log)")
        #expect(symlink.log.contains("says: not-a-regular-file"), "\(symlink.log)")

        try FileManager.default.removeItem(atPath: rig.modeFile)
        #expect(mkfifo(rig.modeFile, 0o644) == 0)
        // A read would block forever (the runProgram timeout would fail the test).
        let fifo = try await rig.run()
        #expect(fifo.systemctl == Self.stop, "\(fifo.log)")
    }

    @Test("a failing systemctl fails the service with its status, so the journal shows it")
    func systemctlFails() async throws {
        let rig = try Rig(systemctlStatus: 5)
        defer { rig.remove() }
        try ModeStateFile(path: rig.modeFile).write(.crisis)
        let run = try await rig.run()
        #expect(run.status == 5, "\(run.log)")
        #expect(run.systemctl == Self.start)
        #expect(run.log.contains("failed with status 5"), "\(run.log)")
    }
}
