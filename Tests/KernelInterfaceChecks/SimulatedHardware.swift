#if os(Linux)
import Glibc
import SensorDrivers

/// The simulated hardware the kernel VM provides (see scripts/kernel-vm/guest-init.sh), and how to reach it.
enum SimulatedHardware {
    /// The name i2c-stub gives its adapter.
    static let i2cStubAdapterName = "SMBus stub driver"
    /// The label of gpio-sim's first bank, the one chip the VM sets up.
    static let gpioSimLabel = "gpio-sim.0-node0"
    /// The register-map chips i2c-stub serves (`chip_addr=0x76,0x40`): a BME280 and an INA219.
    static let bme280Address: UInt8 = 0x76
    static let ina219Address: UInt8 = 0x40

    /// "/dev/i2c-N" of the i2c-stub adapter, found by its name in sysfs.
    static func i2cStubBusPath() throws(CheckFailure) -> String {
        for entry in directoryEntries("/sys/class/i2c-dev") where entry.hasPrefix("i2c-") {
            if (try? readFile("/sys/class/i2c-dev/\(entry)/name")) == i2cStubAdapterName { return "/dev/\(entry)" }
        }
        throw CheckFailure("no i2c-stub adapter: not inside the kernel VM? (run scripts/kernel-vm/run.sh)")
    }

    /// The i2c-stub bus, opened through the production ``LinuxI2CBus``.
    static func i2cStubBus() throws -> LinuxI2CBus {
        try LinuxI2CBus(path: try i2cStubBusPath())
    }

    /// The gpio-sim chip, opened by label through the production ``LinuxGPIOChip``.
    static func gpioSimChip() throws -> LinuxGPIOChip {
        try LinuxGPIOChip(label: gpioSimLabel)
    }

    /// The outside world of one gpio-sim line: its sysfs `pull` (drives an input) and `value` (shows an output).
    struct SimulatedLine {
        let chipName: String
        let offset: UInt32

        private var directory: String { "/sys/bus/gpio/devices/\(self.chipName)/sim_gpio\(self.offset)" }

        /// Pulls the line up or down, as a switch or a signal on the pin would.
        func pull(up: Bool) throws(CheckFailure) {
            try writeFile("\(self.directory)/pull", up ? "pull-up" : "pull-down")
        }

        /// The pull gpio-sim applies to the line, "pull-up" or "pull-down": set by ``pull(up:)`` and by the bias
        /// a request asks for.
        func appliedPull() throws(CheckFailure) -> String {
            try readFile("\(self.directory)/pull")
        }

        /// The level the line is at, as gpio-sim sees it (what an output drives).
        func level() throws(CheckFailure) -> Bool {
            let value = try readFile("\(self.directory)/value")
            guard value == "0" || value == "1" else { throw CheckFailure("\(self.directory)/value reads '\(value)'") }
            return value == "1"
        }
    }

    /// CLOCK_MONOTONIC now, the clock GPIO edge timestamps use.
    static func monotonicNow() -> Duration {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return .seconds(Int64(now.tv_sec)) + .nanoseconds(Int64(now.tv_nsec))
    }
}

// MARK: - Small file helpers (sysfs)

/// The whole file as text, without the trailing newline.
func readFile(_ path: String) throws(CheckFailure) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw CheckFailure("cannot open \(path): errno \(errno)") }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 256)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count >= 0 else { throw CheckFailure("cannot read \(path): errno \(errno)") }
        if count == 0 { break }
        bytes += chunk.prefix(count)
    }
    var text = String(decoding: bytes, as: UTF8.self)
    while text.hasSuffix("\n") { text.removeLast() }
    return text
}

func writeFile(_ path: String, _ text: String) throws(CheckFailure) {
    let fd = open(path, O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { throw CheckFailure("cannot open \(path): errno \(errno)") }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    guard written == bytes.count else { throw CheckFailure("cannot write '\(text)' to \(path): errno \(errno)") }
}

func directoryEntries(_ path: String) -> [String] {
    guard let directory = opendir(path) else { return [] }
    defer { closedir(directory) }
    var names: [String] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
}
#endif
