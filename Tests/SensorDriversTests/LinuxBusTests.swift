#if os(Linux)
import Glibc
@testable import SensorDrivers
import Synchronization
import Testing

// The Linux buses' host-side behaviour: how they fail to open and how errnos map to typed errors. Transfers,
// edges and the drivers on top run against real kernel interfaces in KernelInterfaceTests (the kernel VM).

@Suite("LinuxI2CBus without an adapter")
struct LinuxI2CBusHostTests {
    @Test("a missing node, or a file that is no i2c-dev node, is noSuchBus", arguments: ["/dev/i2c-250", "/dev/null"])
    func openingSomethingElseIsNoSuchBus(path: String) {
        #expect(throws: I2CError(.noSuchBus, bus: path)) { try LinuxI2CBus(path: path) }
    }

    @Test(
        "transfer errnos map to the typed codes the Pi's controller and i2c-stub produce",
        arguments: [
            (EREMOTEIO, I2CError.Code.noAcknowledge),
            (ETIMEDOUT, .timeout),
            (ENXIO, .noDevice),
            (ENODEV, .noDevice),
            (EACCES, .permissionDenied),
            (EPERM, .permissionDenied),
            (EIO, .io(errno: EIO)),
            (EOPNOTSUPP, .io(errno: EOPNOTSUPP)),
        ]
    )
    func transferErrnoMapping(errno: CInt, code: I2CError.Code) {
        #expect(LinuxI2CBus.transferErrorCode(errno: errno) == code)
    }

    @Test("open errnos: a missing adapter is noSuchBus, a forbidden one permissionDenied")
    func openErrnoMapping() {
        for errno in [ENOENT, ENODEV, ENXIO, ENOTTY] { #expect(LinuxI2CBus.openErrorCode(errno: errno) == .noSuchBus) }
        for errno in [EACCES, EPERM] { #expect(LinuxI2CBus.openErrorCode(errno: errno) == .permissionDenied) }
        #expect(LinuxI2CBus.openErrorCode(errno: EIO) == .io(errno: EIO))
    }

    @Test("the SMBus-only error tells a resident what to do")
    func plainI2CUnsupportedDescription() {
        let error = I2CError(.plainI2CUnsupported, bus: "/dev/i2c-0", address: 0x61)
        #expect(error.description.contains("SMBus-only"))
        #expect(error.description.contains("0x61"))
        #expect(error.description.contains("/dev/i2c-1"))
    }
}

@Suite("LinuxGPIOChip without a chip")
struct LinuxGPIOChipHostTests {
    @Test("an absent path, name or label is noSuchChip", arguments: ["/dev/gpiochip250", "gpiochip250", "no-such-gpio-label"])
    func absentChipIsNoSuchChip(descriptor: String) {
        #expect(throws: GPIOError(.noSuchChip, chip: descriptor)) { try LinuxGPIOChip(descriptor) }
        #expect(throws: GPIOError(.noSuchChip, chip: descriptor)) { try LinuxGPIOChip(label: descriptor) }
    }

    @Test("a file that is no GPIO chip is noSuchChip")
    func otherDeviceIsNoSuchChip() {
        #expect(throws: GPIOError(.noSuchChip, chip: "/dev/null")) { try LinuxGPIOChip("/dev/null") }
    }

    @Test("trying several labels reports them all when none is there")
    func anyLabelOfReportsAllLabels() {
        #expect(throws: GPIOError(.noSuchChip, chip: "no-such-a or no-such-b")) {
            try LinuxGPIOChip.open(anyLabelOf: ["no-such-a", "no-such-b"])
        }
    }

    @Test("request errnos map to typed codes")
    func requestErrnoMapping() {
        #expect(GPIOError.Code(requestErrno: EBUSY) == .busy)
        #expect(GPIOError.Code(requestErrno: EACCES) == .permissionDenied)
        #expect(GPIOError.Code(requestErrno: EPERM) == .permissionDenied)
        #expect(GPIOError.Code(requestErrno: EIO) == .io(errno: EIO))
    }

    @Test("uAPI event ids and kernel timestamps convert; opening and request errnos map to typed codes")
    func uapiConversions() {
        #expect(Duration(kernelTimestampNanoseconds: 12_345_000_000) == .milliseconds(12_345))
        #expect(GPIOEdge.Kind(lineEventID: 1) == .rising)
        #expect(GPIOEdge.Kind(lineEventID: 2) == .falling)
        #expect(GPIOEdge.Kind(lineEventID: 3) == nil)
        #expect(GPIOError.Code(openErrno: ENOENT) == .noSuchChip)
        #expect(GPIOError.Code(openErrno: ENOTTY) == .noSuchChip)
        #expect(GPIOError.Code(openErrno: EACCES) == .permissionDenied)
        #expect(GPIOError.Code(requestErrno: ENODEV) == .noSuchChip)
    }
}

@Suite("DedicatedThread")
struct DedicatedThreadTests {
    @Test("runs its body on another thread; join waits for it and can be repeated")
    func runsAndJoins() throws {
        let record = ThreadRecord()
        let caller = pthread_self()
        let thread = try DedicatedThread.start { record.note(onCaller: pthread_equal(pthread_self(), caller) != 0) }
        thread.join()
        thread.join()
        #expect(record.runs == [false])
    }
}

/// Which threads a body ran on: false for "not the caller's".
private final class ThreadRecord: Sendable {
    private let onCaller = Mutex<[Bool]>([])
    var runs: [Bool] { self.onCaller.withLock { $0 } }
    func note(onCaller: Bool) {
        self.onCaller.withLock { $0.append(onCaller) }
    }
}
#endif
