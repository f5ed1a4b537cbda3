#if os(Linux)
import Glibc
#endif

/// Checks the production Linux buses against real kernel interfaces: run inside the VM that
/// `scripts/kernel-vm/run.sh` boots (i2c-stub with chips at 0x76 and 0x40, gpio-sim with 8 lines).
///
/// Prints one `ok` or `FAIL` line per check and a summary; exits 1 if any check failed. Add a chip's checks as
/// `<Chip>Checks.all` to the list below.
@main
enum KernelInterfaceChecks {
    #if os(Linux)
    static let checks: [Check] =
        I2CBusChecks.all + BME280Checks.all + INA219Checks.all + GPIOChipChecks.all + GPIOSensorChecks.all

    static func main() async {
        let failed = await runChecks(self.checks)
        exit(failed == 0 ? 0 : 1)
    }
    #else
    static func main() {
        print("KernelInterfaceChecks runs on Linux only, inside scripts/kernel-vm/run.sh")
    }
    #endif
}
