import Foundation
import Testing

/// `packaging/lib/kiezbox-firstboot`, run with the real `kiezbox` binary against a temporary boot partition and
/// /etc/kiezbox: what a resident's kiezbox.toml on the SD card does at boot.
@Suite("First boot: kiezbox.toml from the boot partition", .serialized, .timeLimit(.minutes(2)))
struct FirstBootTests {
    static let script = repositoryRoot + "/packaging/lib/kiezbox-firstboot"
    static let secret = "mqtt-password-that-must-not-stay-on-the-card"

    /// A valid configuration with an [mqtt] password (the secret) and a [wifi] table.
    static let validConfiguration = """
        [box]
        id = "firstboot-test"
        district = "test-kiez"
        name = "Kiezbox Firstboot"

        [simulation]
        enabled = true

        [[sensor]]
        id = "climate"
        chip = "bme280"
        address = 0x76

        [mqtt]
        host = "broker.kiez"
        username = "firstboot-test"
        password = "\(Self.secret)"

        [portal]
        listen = "0.0.0.0"
        port = 8080

        [wifi]
        ssid = "Kiezbox Notfall-WLAN Test"

        """

    /// A temporary boot partition (`boot/firmware`, and `boot` for the older layout) and `etc/kiezbox`.
    struct Box {
        let root: String
        var firmware: String { self.root + "/boot/firmware" }
        var oldBoot: String { self.root + "/boot" }
        var etc: String { self.root + "/etc/kiezbox" }
        let previousConfiguration = "# the configuration the box ran with before\n"

        init() throws {
            self.root = try temporaryDirectory("kiezbox-firstboot")
            try FileManager.default.createDirectory(atPath: self.firmware, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: self.etc, withIntermediateDirectories: true)
            try self.previousConfiguration.write(toFile: self.etc + "/kiezbox.toml", atomically: true, encoding: .utf8)
        }

        func tearDown() { try? FileManager.default.removeItem(atPath: self.root) }

        /// Runs the script with this box's paths and the test's own user as the configuration's owner.
        func firstBoot() async throws -> ProgramRun {
            try #require(FileManager.default.isExecutableFile(atPath: kiezboxBinary), "no kiezbox binary at \(kiezboxBinary)")
            return try await runProgram([
                "/usr/bin/env",
                "KIEZBOX_BOOT_DIRS=\(self.firmware) \(self.oldBoot)",
                "KIEZBOX_ETC_DIR=\(self.etc)",
                "KIEZBOX_BIN=\(kiezboxBinary)",
                "KIEZBOX_CONFIG_OWNER=\(getuid()):\(getgid())",
                FirstBootTests.script,
            ], in: self.root)
        }

        func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }
        func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }
        /// Every file under `directory`, relative to it (what a run left behind).
        func listing(_ directory: String) -> [String] {
            ((try? FileManager.default.subpathsOfDirectory(atPath: directory)) ?? []).sorted()
        }
    }

    @Test("valid: installed 0640 with the old one as .previous, Wi-Fi files written, the card keeps a note without the secret")
    func validConfigurationIsApplied() async throws {
        let box = try Box()
        defer { box.tearDown() }
        try Self.validConfiguration.write(toFile: box.firmware + "/kiezbox.toml", atomically: true, encoding: .utf8)

        let run = try await box.firstBoot()
        #expect(run.status == 0, "\(run.all)")

        #expect(box.read(box.etc + "/kiezbox.toml") == Self.validConfiguration)
        let attributes = try FileManager.default.attributesOfItem(atPath: box.etc + "/kiezbox.toml")
        #expect((attributes[.posixPermissions] as? Int) == 0o640)
        #expect(box.read(box.etc + "/kiezbox.toml.previous") == box.previousConfiguration)
        for file in ["hostapd.conf", "dnsmasq.conf", "nftables.conf", "wifi.env"] {
            #expect(box.exists(box.etc + "/wifi/" + file), "missing \(file): \(run.all)")
        }
        #expect(box.read(box.etc + "/wifi/hostapd.conf")?.contains("ssid2=\"Kiezbox Notfall-WLAN Test\"") == true)
        #expect(!box.listing(box.etc).contains { $0.hasPrefix(".firstboot") }, "staging left behind: \(box.listing(box.etc))")

        // The card: no kiezbox.toml (it would apply again), a note the resident can read, and no secret anywhere.
        #expect(!box.exists(box.firmware + "/kiezbox.toml"))
        #expect(!box.exists(box.firmware + "/kiezbox.toml.error"))
        let note = try #require(box.read(box.firmware + "/kiezbox.toml.applied"), "\(run.all)")
        #expect(note.contains("applied"))
        #expect(note.contains("firstboot-test"), "the checker's summary names the box: \(note)")
        let digest = try await runProgram(["/usr/bin/sha256sum", box.etc + "/kiezbox.toml"], in: box.root)
        #expect(note.contains(String(digest.output.prefix(64))), "\(note)")
        for file in box.listing(box.firmware) {
            #expect(box.read(box.firmware + "/" + file)?.contains(Self.secret) != true, "\(file) keeps the secret")
        }

        // The next boot: nothing to apply, nothing changes.
        let before = box.listing(box.root)
        let again = try await box.firstBoot()
        #expect(again.status == 0, "\(again.all)")
        #expect(box.listing(box.root) == before)
        #expect(box.read(box.etc + "/kiezbox.toml") == Self.validConfiguration)
    }

    @Test("invalid: /etc untouched, the file stays, kiezbox.toml.error names the line and the key")
    func invalidConfigurationIsRefused() async throws {
        let box = try Box()
        defer { box.tearDown() }
        // Line 6 has a typo in a key.
        let invalid = """
            [box]
            id = "firstboot-test"
            district = "test-kiez"

            [store]
            flush_intervall = "10s"

            """
        try invalid.write(toFile: box.firmware + "/kiezbox.toml", atomically: true, encoding: .utf8)
        let etcBefore = box.listing(box.etc)

        let run = try await box.firstBoot()
        #expect(run.status == 1, "\(run.all)")
        #expect(box.listing(box.etc) == etcBefore)
        #expect(box.read(box.etc + "/kiezbox.toml") == box.previousConfiguration)
        #expect(box.read(box.firmware + "/kiezbox.toml") == invalid)
        #expect(!box.exists(box.firmware + "/kiezbox.toml.applied"))
        let error = try #require(box.read(box.firmware + "/kiezbox.toml.error"), "\(run.all)")
        #expect(error.contains("kiezbox.toml:6:"), "\(error)")
        #expect(error.contains("flush_intervall"), "\(error)")
        #expect(error.contains("NOT applied"), "\(error)")
    }

    @Test("a [wifi] the Wi-Fi generator refuses: nothing installed, the reason in kiezbox.toml.error (older /boot layout)")
    func refusedWiFiInstallsNothing() async throws {
        let box = try Box()
        defer { box.tearDown() }
        // Valid for the checker, but phones could not reach a portal on 127.0.0.1: `kiezbox wifi config` refuses.
        let configuration = Self.validConfiguration.replacingOccurrences(of: "listen = \"0.0.0.0\"", with: "listen = \"127.0.0.1\"")
        try configuration.write(toFile: box.oldBoot + "/kiezbox.toml", atomically: true, encoding: .utf8)
        let etcBefore = box.listing(box.etc)

        let run = try await box.firstBoot()
        #expect(run.status == 1, "\(run.all)")
        #expect(box.listing(box.etc) == etcBefore, "staging or files left in /etc: \(box.listing(box.etc))")
        #expect(box.read(box.etc + "/kiezbox.toml") == box.previousConfiguration)
        #expect(box.read(box.oldBoot + "/kiezbox.toml") == configuration)
        let error = try #require(box.read(box.oldBoot + "/kiezbox.toml.error"), "\(run.all)")
        #expect(error.contains("127.0.0.1"), "\(error)")
    }

    @Test("no [wifi] table, but the box has Wi-Fi files: they follow the new [portal], or the file is refused")
    func existingWiFiFilesFollowThePortal() async throws {
        let box = try Box()
        defer { box.tearDown() }
        try FileManager.default.createDirectory(atPath: box.etc + "/wifi", withIntermediateDirectories: true)
        for file in ["hostapd.conf", "dnsmasq.conf", "nftables.conf", "wifi.env"] {
            try "# from the configuration before\n".write(toFile: box.etc + "/wifi/" + file, atomically: true, encoding: .utf8)
        }
        let withoutWiFi = Self.validConfiguration.components(separatedBy: "[wifi]")[0]
        let moved = withoutWiFi.replacingOccurrences(of: "port = 8080", with: "port = 9090")
        try moved.write(toFile: box.firmware + "/kiezbox.toml", atomically: true, encoding: .utf8)

        let run = try await box.firstBoot()
        #expect(run.status == 0, "\(run.all)")
        #expect(box.read(box.etc + "/wifi/nftables.conf")?.contains(":9090") == true, "\(box.read(box.etc + "/wifi/nftables.conf") ?? "")")

        // A portal phones cannot reach: refused, and the box keeps what it had.
        let unreachable = withoutWiFi.replacingOccurrences(of: "listen = \"0.0.0.0\"", with: "listen = \"127.0.0.1\"")
        try unreachable.write(toFile: box.firmware + "/kiezbox.toml", atomically: true, encoding: .utf8)
        let refused = try await box.firstBoot()
        #expect(refused.status == 1, "\(refused.all)")
        #expect(box.read(box.etc + "/kiezbox.toml") == moved)
        let error = try #require(box.read(box.firmware + "/kiezbox.toml.error"), "\(refused.all)")
        #expect(error.contains("emergency Wi-Fi set up"), "\(error)")
    }

    @Test("no kiezbox.toml: nothing happens")
    func noFileDoesNothing() async throws {
        let box = try Box()
        defer { box.tearDown() }
        let before = box.listing(box.root)

        let run = try await box.firstBoot()
        #expect(run.status == 0, "\(run.all)")
        #expect(run.all.contains("nothing to apply"), "\(run.all)")
        #expect(box.listing(box.root) == before)
    }

    @Test("a power cut after the scrub: the zeroed remains are removed, not reported as an invalid file")
    func zeroedRemainsAreRemoved() async throws {
        let box = try Box()
        defer { box.tearDown() }
        try "applied before\n".write(toFile: box.firmware + "/kiezbox.toml.applied", atomically: true, encoding: .utf8)
        try Data(count: 300).write(to: URL(fileURLWithPath: box.firmware + "/kiezbox.toml"))

        let run = try await box.firstBoot()
        #expect(run.status == 0, "\(run.all)")
        #expect(!box.exists(box.firmware + "/kiezbox.toml"))
        #expect(!box.exists(box.firmware + "/kiezbox.toml.error"))
        #expect(box.read(box.etc + "/kiezbox.toml") == box.previousConfiguration)
    }
}
