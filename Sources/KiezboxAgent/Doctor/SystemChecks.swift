import Foundation

/// One line of `kiezbox doctor`: what was checked, whether it is fine, and if not, how to fix it.
struct DoctorFinding: Sendable, Hashable, Codable {
    enum Status: String, Sendable, Hashable, Codable {
        /// Configured and found as configured.
        case found
        /// Configured, not found.
        case missing
        /// Found, but not what the configuration says (another chip, a BMP280 instead of a BME280).
        case wrong
        /// Found on a bus but not in the configuration.
        case unexpected
        /// A system check passed.
        case ok
        /// A system check failed.
        case problem
    }

    var status: Status
    /// The configured sensor id, when the finding is about one; `lorawan` for the `[lorawan]` modem.
    var sensor: String?
    /// The chip as configured or identified ("BME280", "BMP280?").
    var chip: String?
    /// Where: "/dev/i2c-1 0x76", "/dev/ttyUSB0", "gpiochip0 line 17", "system".
    var place: String
    /// What was seen.
    var detail: String
    /// What to do about it, when something is wrong.
    var fix: String?
}

/// The access a device node needs and the group that grants it on Raspberry Pi OS.
struct DeviceAccessCheck {
    /// The groups Raspberry Pi OS gives access to I²C, GPIO and serial devices.
    enum DeviceKind {
        case i2c
        case gpio
        case serial

        var group: String {
            switch self {
            case .i2c: "i2c"
            case .gpio: "gpio"
            case .serial: "dialout"
            }
        }

        var missingFix: String {
            switch self {
            case .i2c:
                "enable I²C: sudo raspi-config nonint do_i2c 0 (or dtparam=i2c_arm=on in /boot/firmware/config.txt), then reboot"
            case .gpio:
                "no GPIO chip by that name: `gpiodetect` lists the chips; on a Pi use gpiochip0 or the label pinctrl-bcm2711 (Pi 4) / pinctrl-rp1 (Pi 5)"
            case .serial:
                "enable the UART (raspi-config → Interface Options → Serial Port: login shell no, hardware yes) or plug in the USB adapter; `dmesg | tail` shows what appeared"
            }
        }
    }

    /// Checks that `path` exists and that this process may read and write it.
    static func check(_ path: String, kind: DeviceKind, sensor: String? = nil) -> DoctorFinding {
        let user = ProcessInfo.processInfo.environment["USER"] ?? "kiezbox"
        guard FileManager.default.fileExists(atPath: path) else {
            return DoctorFinding(status: .problem, sensor: sensor, place: path, detail: "\(path) does not exist", fix: kind.missingFix)
        }
        guard access(path, R_OK | W_OK) == 0 else {
            return DoctorFinding(
                status: .problem, sensor: sensor, place: path, detail: "no read/write permission on \(path)",
                fix: "sudo adduser \(user) \(kind.group), then log out and in again (or restart the kiezbox service)"
            )
        }
        return DoctorFinding(status: .ok, sensor: sensor, place: path, detail: "present and accessible")
    }
}

/// Checks that the data directory can be written.
func checkDataDirectory(_ directory: String) -> DoctorFinding {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
        guard isDirectory.boolValue else {
            return DoctorFinding(status: .problem, place: directory, detail: "\(directory) is a file, not a directory", fix: "set store.data_dir to a directory")
        }
        guard access(directory, W_OK) == 0 else {
            return DoctorFinding(status: .problem, place: directory, detail: "cannot write to \(directory)", fix: "sudo chown kiezbox: \(directory)")
        }
        return DoctorFinding(status: .ok, place: directory, detail: "data directory is writable")
    }
    let parent = (directory as NSString).deletingLastPathComponent
    guard access(parent.isEmpty ? "." : parent, W_OK) == 0 else {
        return DoctorFinding(status: .problem, place: directory, detail: "\(directory) does not exist and cannot be created", fix: "sudo install -d -o kiezbox \(directory)")
    }
    return DoctorFinding(status: .ok, place: directory, detail: "data directory will be created on first run")
}
