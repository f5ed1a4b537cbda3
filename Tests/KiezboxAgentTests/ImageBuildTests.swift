import Foundation
import Testing

/// The pi-gen stage's parts that run on the build host (image-build/pi-gen/stage-kiezbox), against a temporary
/// "root filesystem": the hardware edits and the package selection. What runs inside the arm64 chroot (apt, the
/// package's postinst, systemctl) needs an arm64 machine or binfmt emulation and is not tested here.
@Suite("Image build: the pi-gen stage's host-side scripts", .serialized, .timeLimit(.minutes(2)))
struct ImageBuildTests {
    static let stage = repositoryRoot + "/image-build/pi-gen/stage-kiezbox"
    static let configureHardware = Self.stage + "/01-hardware/configure-hardware.sh"

    /// Raspberry Pi OS bookworm's config.txt as its images ship it (comments shortened).
    static let configTxt = """
        # For more options and information see
        # http://rptl.io/configtxt

        # Uncomment some or all of these to enable the optional hardware interfaces
        #dtparam=i2c_arm=on
        #dtparam=i2s=on
        #dtparam=spi=on

        # Enable audio (loads snd_bcm2835)
        dtparam=audio=on

        # Automatically load overlays for detected cameras
        camera_auto_detect=1

        # Automatically load overlays for detected DSI displays
        display_auto_detect=1

        # Enable DRM VC4 V3D driver
        dtoverlay=vc4-kms-v3d
        max_framebuffers=2

        # Run in 64-bit mode
        arm_64bit=1

        [cm4]
        # Enable host mode on the 2711 built-in XHCI USB controller.
        otg_mode=1

        [cm5]
        dtoverlay=dwc2,dr_mode=host

        [all]

        """

    /// Rewritten to `expectedCmdline`: only the serial console goes.
    static let cmdlineTxt =
        "console=serial0,115200 console=tty1 root=PARTUUID=0a1b2c3d-02 rootfstype=ext4 fsck.repair=yes rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot\n"
    static let expectedCmdline =
        "console=tty1 root=PARTUUID=0a1b2c3d-02 rootfstype=ext4 fsck.repair=yes rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot\n"

    /// A root filesystem laid out as pi-gen's stage1 leaves it: the FAT files in boot/firmware, symlinks in boot/.
    static func rootfs(config: String = Self.configTxt, cmdline: String = Self.cmdlineTxt) throws -> String {
        let root = try temporaryDirectory("kiezbox-rootfs")
        let firmware = root + "/boot/firmware"
        try FileManager.default.createDirectory(atPath: firmware, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        try config.write(toFile: firmware + "/config.txt", atomically: true, encoding: .utf8)
        try cmdline.write(toFile: firmware + "/cmdline.txt", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: root + "/boot/config.txt", withDestinationPath: "firmware/config.txt")
        return root
    }

    static func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    /// The config.txt lines that apply to every model: before the first [filter], and in [all] sections.
    static func globalLines(_ config: String) -> [String] {
        var global = true
        var lines: [String] = []
        for line in config.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("[") { global = line == "[all]"; continue }
            if global { lines.append(line) }
        }
        return lines
    }

    @Test("I²C on, UART on without a console, the rest of config.txt and cmdline.txt intact; a second run changes nothing")
    func hardwareEdits() async throws {
        let root = try Self.rootfs()
        defer { try? FileManager.default.removeItem(atPath: root) }

        let first = try await runProgram([Self.configureHardware, root], in: root)
        #expect(first.status == 0, "\(first.all)")

        let config = Self.read(root + "/boot/firmware/config.txt")
        let global = Self.globalLines(config)
        #expect(global.contains("dtparam=i2c_arm=on"), "\(config)")
        #expect(global.contains("enable_uart=1"), "\(config)")
        #expect(!config.contains("#dtparam=i2c_arm=on"), "the commented line is the one switched on, not a second one")
        #expect(config.components(separatedBy: "dtparam=i2c_arm=on").count == 2, "exactly one dtparam=i2c_arm=on: \(config)")
        #expect(config.contains("[pi5]\ndtparam=uart0=on\n[all]\n"), "\(config)")
        // Every line that was there is still there, in order, apart from the one uncommented.
        let original = Self.configTxt.split(separator: "\n").filter { $0 != "#dtparam=i2c_arm=on" }
        var remaining = config.split(separator: "\n")[...]
        for line in original {
            guard let found = remaining.firstIndex(of: line) else {
                Issue.record("'\(line)' is gone or out of order: \(config)")
                break
            }
            remaining = remaining[(found + 1)...]
        }
        #expect(FileManager.default.fileExists(atPath: root + "/boot/config.txt"), "the boot/config.txt symlink survives")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: root + "/boot/config.txt")) == "firmware/config.txt")

        #expect(Self.read(root + "/boot/firmware/cmdline.txt") == Self.expectedCmdline)
        for tty in ["ttyAMA0", "ttyS0"] {
            let mask = root + "/etc/systemd/system/serial-getty@\(tty).service"
            #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: mask)) == "/dev/null", "\(tty) getty not masked")
        }
        #expect(Self.read(root + "/etc/modules-load.d/kiezbox-i2c.conf").split(separator: "\n").contains("i2c-dev"))

        // Idempotent: same bytes, and the script says it changed nothing.
        let files = ["boot/firmware/config.txt", "boot/firmware/cmdline.txt", "etc/modules-load.d/kiezbox-i2c.conf"]
        let before = files.map { Self.read(root + "/" + $0) }
        let second = try await runProgram([Self.configureHardware, root], in: root)
        #expect(second.status == 0, "\(second.all)")
        #expect(files.map { Self.read(root + "/" + $0) } == before)
        #expect(!second.output.split(separator: "\n").contains { $0.hasPrefix("changed:") }, "\(second.output)")
    }

    @Test("settings switched off are switched on in place; pi-gen's ROOTDEV placeholder and other consoles are kept")
    func existingSettingsAreReplaced() async throws {
        let config = """
            dtparam=audio=on
            dtparam=i2c_arm=off
            enable_uart=0
            [pi4]
            enable_uart=0

            """
        // As pi-gen's stage1 writes it, before export-image puts the partition in.
        let cmdline = "console=serial0,115200 console=ttyAMA0,115200 console=tty1 root=ROOTDEV rootfstype=ext4 fsck.repair=yes rootwait\n"
        let root = try Self.rootfs(config: config, cmdline: cmdline)
        defer { try? FileManager.default.removeItem(atPath: root) }

        let run = try await runProgram([Self.configureHardware, root], in: root)
        #expect(run.status == 0, "\(run.all)")
        #expect(Self.read(root + "/boot/firmware/config.txt") == """
            dtparam=audio=on
            dtparam=i2c_arm=on
            enable_uart=1
            [pi4]
            enable_uart=0
            [pi5]
            dtparam=uart0=on
            [all]

            """)
        #expect(Self.read(root + "/boot/firmware/cmdline.txt") == "console=tty1 root=ROOTDEV rootfstype=ext4 fsck.repair=yes rootwait\n")
    }

    @Test("bad input is refused with a reason: no root filesystem, a cmdline.txt of two lines, a getty unit that is not a mask")
    func badInputIsRefused() async throws {
        let scratch = try temporaryDirectory("kiezbox-rootfs-scratch")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let missing = try await runProgram([Self.configureHardware, scratch + "/nonexistent-rootfs"], in: scratch)
        #expect(missing.status == 1)
        #expect(missing.errors.contains("not a root filesystem"), "\(missing.all)")

        let usage = try await runProgram([Self.configureHardware], in: scratch)
        #expect(usage.status == 2)
        #expect(usage.errors.contains("usage:"), "\(usage.all)")

        let twoLines = try Self.rootfs(cmdline: "console=tty1 root=ROOTDEV\nrootwait\n")
        defer { try? FileManager.default.removeItem(atPath: twoLines) }
        let split = try await runProgram([Self.configureHardware, twoLines], in: twoLines)
        #expect(split.status == 1)
        #expect(split.errors.contains("more than one line"), "\(split.all)")
        #expect(Self.read(twoLines + "/boot/firmware/cmdline.txt") == "console=tty1 root=ROOTDEV\nrootwait\n")

        let overridden = try Self.rootfs()
        defer { try? FileManager.default.removeItem(atPath: overridden) }
        try FileManager.default.createDirectory(atPath: overridden + "/etc/systemd/system", withIntermediateDirectories: true)
        try "[Service]\n".write(toFile: overridden + "/etc/systemd/system/serial-getty@ttyS0.service", atomically: true, encoding: .utf8)
        let unit = try await runProgram([Self.configureHardware, overridden], in: overridden)
        #expect(unit.status == 1)
        #expect(unit.errors.contains("is not a mask"), "\(unit.all)")
    }

    /// Runs 00-install-kiezbox/00-run.sh as pi-gen does (in its directory, ROOTFS_DIR set), with `on_chroot`
    /// replaced by a function that records the commands and what the image's staging directory held then.
    static func runInstallStep(stageCopy: String, rootfs: String, log: String) async throws -> ProgramRun {
        let script = """
            on_chroot() { { cat; ls "$ROOTFS_DIR/var/cache/kiezbox-image" 2>&1 || true; } >> "\(log)"; }
            export -f on_chroot
            export ROOTFS_DIR="\(rootfs)"
            cd "\(stageCopy)/00-install-kiezbox" && ./00-run.sh
            """
        return try await runProgram(["/bin/bash", "-c", script], in: stageCopy)
    }

    /// A minimal .deb (control file only) named like the real one.
    static func buildPackage(name: String, architecture: String, into directory: String) async throws {
        let tree = try temporaryDirectory("kiezbox-fake-deb")
        defer { try? FileManager.default.removeItem(atPath: tree) }
        try FileManager.default.createDirectory(atPath: tree + "/DEBIAN", withIntermediateDirectories: true)
        try """
            Package: \(name)
            Version: 1.0
            Architecture: \(architecture)
            Maintainer: Test <test@example.org>
            Description: test package

            """.write(toFile: tree + "/DEBIAN/control", atomically: true, encoding: .utf8)
        let build = try await runProgram(
            ["/usr/bin/dpkg-deb", "--root-owner-group", "--build", tree, directory + "/\(name)_1.0_\(architecture).deb"], in: tree)
        try #require(build.status == 0, "\(build.all)")
    }

    @Test("the package step: exactly one kiezbox arm64 .deb, copied into the image and installed with apt there")
    func packageSelection() async throws {
        try requireProgram("/usr/bin/dpkg-deb", package: "dpkg")
        let work = try temporaryDirectory("kiezbox-stage")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let stageCopy = work + "/stage-kiezbox"
        let copy = try await runProgram(["/bin/cp", "-a", Self.stage, stageCopy], in: work)
        try #require(copy.status == 0, "\(copy.all)")
        let files = stageCopy + "/00-install-kiezbox/files"
        for file in try FileManager.default.contentsOfDirectory(atPath: files) where file.hasSuffix(".deb") {
            try FileManager.default.removeItem(atPath: files + "/" + file)  // a developer's real package
        }
        let rootfs = work + "/rootfs"
        try FileManager.default.createDirectory(atPath: rootfs, withIntermediateDirectories: true)
        let log = work + "/chroot.log"

        let none = try await Self.runInstallStep(stageCopy: stageCopy, rootfs: rootfs, log: log)
        #expect(none.status == 1)
        #expect(none.errors.contains("make deb"), "\(none.all)")

        // kiezbox_1.0_amd64.deb does not match the name; a package for amd64 renamed to arm64 is caught by its control file.
        try await Self.buildPackage(name: "kiezbox", architecture: "amd64", into: files)
        try FileManager.default.moveItem(atPath: files + "/kiezbox_1.0_amd64.deb", toPath: files + "/kiezbox_1.0_arm64.deb")
        let wrong = try await Self.runInstallStep(stageCopy: stageCopy, rootfs: rootfs, log: log)
        #expect(wrong.status == 1)
        #expect(wrong.errors.contains("'amd64'"), "\(wrong.all)")
        #expect(!FileManager.default.fileExists(atPath: log), "nothing ran in the image")

        try FileManager.default.removeItem(atPath: files + "/kiezbox_1.0_arm64.deb")
        try await Self.buildPackage(name: "kiezbox", architecture: "arm64", into: files)
        let right = try await Self.runInstallStep(stageCopy: stageCopy, rootfs: rootfs, log: log)
        #expect(right.status == 0, "\(right.all)")
        let commands = Self.read(log)
        #expect(commands.contains("apt-get install -y \"/var/cache/kiezbox-image/kiezbox_1.0_arm64.deb\""), "\(commands)")
        #expect(commands.contains("\nkiezbox_1.0_arm64.deb\n"), "the package was in the image when apt ran: \(commands)")
        #expect(commands.contains("systemctl mask hostapd.service"), "\(commands)")
        #expect(!FileManager.default.fileExists(atPath: rootfs + "/var/cache/kiezbox-image"), "the copy is removed from the image")

        try await Self.buildPackage(name: "kiezbox-extra", architecture: "arm64", into: files)
        try FileManager.default.moveItem(atPath: files + "/kiezbox-extra_1.0_arm64.deb", toPath: files + "/kiezbox_2.0_arm64.deb")
        let two = try await Self.runInstallStep(stageCopy: stageCopy, rootfs: rootfs, log: log)
        #expect(two.status == 1)
        #expect(two.errors.contains("more than one"), "\(two.all)")
    }

    @Test("shellcheck finds nothing in the first-boot and image-build scripts")
    func shellcheck() async throws {
        try requireProgram("/usr/bin/shellcheck", package: "shellcheck")
        let posix = [
            repositoryRoot + "/packaging/lib/kiezbox-firstboot",
            Self.configureHardware,
        ]
        // pi-gen runs and sources these with bash.
        let bash = [
            Self.stage + "/prerun.sh",
            Self.stage + "/EXPORT_IMAGE",
            Self.stage + "/00-install-kiezbox/00-run.sh",
            Self.stage + "/01-hardware/00-run.sh",
            Self.stage + "/02-first-boot/00-run-chroot.sh",
            repositoryRoot + "/image-build/pi-gen/config",
        ]
        let sh = try await runProgram(["/usr/bin/shellcheck", "--shell=sh"] + posix, in: repositoryRoot)
        #expect(sh.status == 0, "\(sh.all)")
        let bashRun = try await runProgram(["/usr/bin/shellcheck", "--shell=bash"] + bash, in: repositoryRoot)
        #expect(bashRun.status == 0, "\(bashRun.all)")
    }

    @Test("systemd accepts kiezbox-firstboot.service (systemd-analyze verify)")
    func unitVerifies() async throws {
        try requireProgram("/usr/bin/systemd-analyze", package: "systemd")
        let directory = try temporaryDirectory("kiezbox-unit")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // verify insists that ExecStart exists: point it at the script in the repository.
        let unit = Self.read(repositoryRoot + "/systemd/kiezbox-firstboot.service")
            .replacingOccurrences(of: "ExecStart=/usr/lib/kiezbox/kiezbox-firstboot", with: "ExecStart=\(repositoryRoot)/packaging/lib/kiezbox-firstboot")
        try #require(unit.contains("ExecStart=\(repositoryRoot)"))
        try unit.write(toFile: directory + "/kiezbox-firstboot.service", atomically: true, encoding: .utf8)
        let verify = try await runProgram(["/usr/bin/systemd-analyze", "verify", "--man=no", directory + "/kiezbox-firstboot.service"], in: directory)
        #expect(verify.status == 0, "\(verify.all)")
        #expect(verify.all.isEmpty, "\(verify.all)")
    }
}
