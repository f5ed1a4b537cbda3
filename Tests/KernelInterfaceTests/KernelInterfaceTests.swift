#if os(Linux)
import Foundation
import Synchronization
import Testing

/// Boots the kernel VM (`scripts/kernel-vm/run.sh`) with the `KernelInterfaceChecks` executable, which runs the
/// production Linux buses and drivers against i2c-stub and gpio-sim inside it.
///
/// This test needs root (or passwordless sudo) the first time, to install qemu and the kernel headers; it then
/// takes about 5 s per run. When the VM cannot start it fails with the rig's reason: it never skips.
@Suite("Kernel interfaces")
struct KernelInterfaceTests {
    /// The package root, three levels above this file (Tests/KernelInterfaceTests/<file>).
    static let packageRoot = URL(filePath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test("production I²C and GPIO code passes its checks on real kernel interfaces", .timeLimit(.minutes(10)))
    func kernelInterfaceChecksPassInTheVM() async throws {
        let checks = try Self.checksExecutable()
        let rig = Self.packageRoot.appending(path: "scripts/kernel-vm/run.sh")
        let run = try await RigRun.start(rig: rig, executable: checks)

        Attachment.record(run.output, named: "kernel-vm-console.txt")
        let failedChecks = run.output.split(separator: "\n").filter { $0.hasPrefix("FAIL ") }.map(String.init)
        #expect(run.status == 0, "kernel-vm exited with \(run.status): \(([run.reason] + failedChecks).joined(separator: "\n"))")
    }

    /// `KernelInterfaceChecks`, built beside this test bundle (`.build/<triple>/debug/`), which this target's
    /// dependency on it makes `swift test` build first.
    static func checksExecutable() throws -> URL {
        let runner = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let candidate = URL(filePath: runner).deletingLastPathComponent().appending(path: "KernelInterfaceChecks")
        try #require(
            FileManager.default.isExecutableFile(atPath: candidate.path),
            """
            no KernelInterfaceChecks beside the test bundle at \(candidate.path): \
            build it with `swift build --product KernelInterfaceChecks`
            """
        )
        return candidate
    }
}

/// One run of the rig: its combined output, streamed to stderr as it comes, and its exit status.
struct RigRun {
    var status: Int32
    var output: String

    /// The rig's own verdict: its last "kernel-vm:" line ("cannot start the VM: …", "VM timed out …").
    var reason: String {
        self.output.split(separator: "\n").last { $0.hasPrefix("kernel-vm:") }.map(String.init) ?? "no reason given"
    }

    /// Runs the rig and waits for it. A thread of its own reads the output until every writer has closed it
    /// (the rig and qemu), so nothing written just before the exit is lost.
    static func start(rig: URL, executable: URL) async throws -> RigRun {
        let process = Process()
        process.executableURL = URL(filePath: "/bin/bash")
        process.arguments = [rig.path, "--timeout", "300", executable.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()

        let output = OutputBuffer()
        let status: Int32 = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                let reader = pipe.fileHandleForReading
                while case let chunk = reader.availableData, !chunk.isEmpty {
                    FileHandle.standardError.write(chunk)
                    output.append(chunk)
                }
                process.waitUntilExit()
                continuation.resume(returning: process.terminationStatus)
            }
        }
        return RigRun(status: status, output: output.text)
    }
}

/// The rig's output as it arrives.
final class OutputBuffer: Sendable {
    private let data = Mutex(Data())

    func append(_ chunk: Data) {
        self.data.withLock { $0.append(chunk) }
    }

    var text: String { self.data.withLock { String(decoding: $0, as: UTF8.self) } }
}
#endif
