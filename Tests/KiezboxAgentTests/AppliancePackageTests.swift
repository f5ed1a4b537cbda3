import Foundation
import Synchronization
import Testing

/// The Debian package (`scripts/build-deb.sh`) and the appliance boot test (`scripts/appliance-vm/boot-test.sh`).
///
/// Both package the test build of `kiezbox` (the debug binary beside this bundle, which links the toolchain's
/// Swift libraries dynamically): a second, static release build does not fit the suite's time budget. `make deb`
/// packages the static release build the same way.
@Suite("Debian package and appliance", .serialized)
struct AppliancePackageTests {
    static let repositoryRoot = URL(filePath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The package built once from the test build, shared by the tests below.
    static let package = Mutex<String?>(nil)

    static func builtPackage() async throws -> String {
        if let cached = self.package.withLock({ $0 }) { return cached }
        let directory = try temporaryDirectory("kiezbox-deb")
        let result = try await runTool(
            "/bin/bash", [repositoryRoot.appending(path: "scripts/build-deb.sh").path, "--binary", kiezboxBinary, "--out", directory, "--fast"]
        )
        try #require(result.status == 0, "build-deb.sh failed: \(result.all)")
        let path = result.output.split(separator: "\n").last.map(String.init) ?? ""
        try #require(FileManager.default.fileExists(atPath: path), "build-deb.sh printed no package: \(result.all)")
        self.package.withLock { $0 = path }
        return path
    }

    @Test("the package holds the binary, the conffile, every unit and helper, the udev rule and the docs")
    func fileList() async throws {
        let package = try await Self.builtPackage()
        let listing = try await runTool("/usr/bin/dpkg-deb", ["--contents", package])
        try #require(listing.status == 0, "\(listing.all)")
        // "-rwxr-xr-x root/root  61154960 2026-12-07 07:36 ./usr/bin/kiezbox" → path: mode
        var modes: [String: String] = [:]
        for line in listing.output.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[1] == "root/root" else {
                Issue.record("not owned by root: \(line)")
                continue
            }
            modes[String(fields[5].dropFirst())] = String(fields[0])
        }
        #expect(modes["/usr/bin/kiezbox"] == "-rwxr-xr-x")
        #expect(modes["/etc/kiezbox/kiezbox.toml"] == "-rw-r--r--")
        #expect(modes["/usr/lib/udev/rules.d/60-kiezbox.rules"] != nil)
        for document in ["README.md", "copyright", "changelog.gz", "architecture.md", "emergency-wifi.md"] {
            #expect(modes["/usr/share/doc/kiezbox/\(document)"] != nil, "missing doc \(document)")
        }
        let units = try FileManager.default.contentsOfDirectory(atPath: Self.repositoryRoot.appending(path: "systemd").path)
        #expect(units.contains("kiezbox.service"))
        for unit in units {
            #expect(modes["/usr/lib/systemd/system/\(unit)"] == "-rw-r--r--", "unit \(unit) not packaged")
        }
        let helpers = (try? FileManager.default.contentsOfDirectory(atPath: Self.repositoryRoot.appending(path: "packaging/lib").path)) ?? []
        for helper in helpers {
            #expect(modes["/usr/lib/kiezbox/\(helper)"] == "-rwxr-xr-x", "helper \(helper) not packaged executable")
        }
    }

    @Test("control: this machine's architecture, computed library dependencies, the configuration as a conffile")
    func control() async throws {
        let package = try await Self.builtPackage()
        let fields = try await runTool("/usr/bin/dpkg-deb", ["--field", package, "Package", "Version", "Architecture", "Depends"])
        let architecture = try await runTool("/usr/bin/dpkg", ["--print-architecture"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(fields.output.contains("Package: kiezbox"))
        #expect(fields.output.contains("Architecture: \(architecture)"))
        #expect(package.hasSuffix("_\(architecture).deb"))
        // The libraries the binary links directly, as Debian packages (dpkg-shlibdeps), and the maintainer
        // scripts' adduser.
        for dependency in ["adduser", "libc6", "libsqlite3-0", "libmosquitto1", "libi2c0"] {
            #expect(fields.output.contains(dependency), "Depends lacks \(dependency): \(fields.output)")
        }
        let control = try await Self.controlFiles(of: package)
        #expect(control["conffiles"] == "/etc/kiezbox/kiezbox.toml\n")
    }

    @Test("maintainer scripts: valid sh, every unit with [Install] enabled, no placeholder left")
    func maintainerScripts() async throws {
        let control = try await Self.controlFiles(of: try await Self.builtPackage())
        let unitsDirectory = Self.repositoryRoot.appending(path: "systemd").path
        let installable = try FileManager.default.contentsOfDirectory(atPath: unitsDirectory).filter { unit in
            ((try? String(contentsOfFile: "\(unitsDirectory)/\(unit)", encoding: .utf8)) ?? "").split(separator: "\n").contains("[Install]")
        }
        #expect(installable.contains("kiezbox.service"))
        for script in ["preinst", "postinst", "prerm", "postrm"] {
            let text = try #require(control[script], "no \(script)")
            #expect(!text.contains("@"), "\(script) has an unreplaced placeholder")
            let syntax = try await runTool("/bin/sh", ["-n", "-c", text])
            #expect(syntax.status == 0, "\(script): \(syntax.all)")
        }
        let postinst = try #require(control["postinst"])
        let enabled = postinst.split(separator: "\n").first { $0.hasPrefix("UNITS=") }.map {
            Set($0.dropFirst("UNITS=\"".count).dropLast().split(separator: " ").map(String.init))
        }
        #expect(enabled == Set(installable))
        // The groups exist before the udev rule naming them is unpacked (udevd ignores a rule's unknown group).
        let preinst = try #require(control["preinst"])
        #expect(preinst.contains("groupadd --system \"$group\""))
        // Purge removes what install created: the user, groups it made, data and configuration.
        let postrm = try #require(control["postrm"])
        for removal in ["deluser --system", "rm -rf /var/lib/kiezbox", "delgroup --system"] {
            #expect(postrm.contains(removal), "postrm lacks \(removal)")
        }
    }

    @Test("the packaged configuration passes kiezbox config check")
    func packagedConfiguration() async throws {
        let check = try await runTool(kiezboxBinary, ["config", "check", Self.repositoryRoot.appending(path: "packaging/kiezbox.toml").path])
        #expect(check.status == 0, "\(check.all)")
    }

    @Test("systemd-analyze security rates the service's exposure at most 2.0 (this machine's systemd, offline)")
    func hardening() async throws {
        let unit = Self.repositoryRoot.appending(path: "systemd/kiezbox.service").path
        let result = try await runTool("/usr/bin/systemd-analyze", ["security", "--offline=yes", unit])
        let line = try #require(result.all.split(separator: "\n").first { $0.contains("Overall exposure level") }, "\(result.all)")
        let figure = try #require(line.split(separator: ":").last?.split(separator: " ").first.flatMap { Double($0) })
        print("systemd-analyze security kiezbox.service (offline): \(figure)")
        #expect(figure <= 2.0, "\(line)")
    }

    @Test("lintian reports no error but the test build's RUNPATH into the toolchain")
    func lintian() async throws {
        let result = try await runTool("/usr/bin/lintian", ["--tag-display-limit", "0", try await Self.builtPackage()])
        let errors = result.all.split(separator: "\n").filter { $0.hasPrefix("E: ") }
        // The one error a test build has and `make deb`'s static release build does not: its RUNPATH points at
        // the toolchain's Swift libraries.
        let unexpected = errors.filter { !$0.contains("custom-library-search-path RUNPATH /opt/swift/") }
        #expect(unexpected.isEmpty, "lintian: \(unexpected.joined(separator: "\n"))")
    }

    @Test(
        "appliance: Debian 13 with systemd boots in QEMU, installs the .deb, survives SIGSTOP and a blackout, purges clean",
        .timeLimit(.minutes(30))
    )
    func applianceBoot() async throws {
        let package = try await Self.builtPackage()
        let runtime = try await Self.swiftRuntimeDirectory()
        let script = Self.repositoryRoot.appending(path: "scripts/appliance-vm/boot-test.sh").path
        let directory = try temporaryDirectory("kiezbox-appliance-test")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Spawned, not run through Foundation's Process: the test process blocks SIGTERM, which a child would
        // inherit (QEMU then ignored the script's kill), and a pipe to the test would tie its end to QEMU's.
        let run = try SpawnedDaemon(["/bin/bash", script, "--swift-runtime", runtime, package], in: directory, keepOutput: true)
        // The script's own hang guard (--timeout, 1200 s) ends it; this wait only polls for its exit.
        var status: Int32?
        while status == nil {
            try await Task.sleep(for: .seconds(1))
            status = reapedStatus(run.pid)
        }
        let output = run.stderr
        print(output)
        let failed = output.split(separator: "\n").filter { $0.contains("appliance: FAIL") || $0.contains("cannot") }
        #expect(status == 0, "boot-test.sh exited \(status ?? -1):\n\(failed.joined(separator: "\n"))")
    }

    /// Where the test build finds libswiftCore.so: the directory `ldd` resolves it in.
    static func swiftRuntimeDirectory() async throws -> String {
        let ldd = try await runTool("/usr/bin/ldd", [kiezboxBinary])
        let line = try #require(ldd.output.split(separator: "\n").first { $0.contains("libswiftCore.so =>") })
        let path = try #require(line.split(separator: " ").first { $0.hasPrefix("/") })
        return (String(path) as NSString).deletingLastPathComponent
    }

    /// The package's control files, by name (conffiles, postinst, …).
    static func controlFiles(of package: String) async throws -> [String: String] {
        let directory = try temporaryDirectory("kiezbox-control")
        try FileManager.default.removeItem(atPath: directory)  // dpkg-deb --control makes it itself
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try await runTool("/usr/bin/dpkg-deb", ["--control", package, directory])
        try #require(result.status == 0, "\(result.all)")
        var files: [String: String] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
            files[name] = try String(contentsOfFile: "\(directory)/\(name)", encoding: .utf8)
        }
        return files
    }
}

/// ``runProgram(_:in:timeout:)`` in a scratch directory of its own.
func runTool(_ executable: String, _ arguments: [String], timeout: Duration = .seconds(300)) async throws -> ProgramRun {
    let directory = try temporaryDirectory("kiezbox-tool")
    defer { try? FileManager.default.removeItem(atPath: directory) }
    return try await runProgram([executable] + arguments, in: directory, timeout: timeout)
}
