#if canImport(Glibc)
import Glibc
import KiezboxTestSupport
@testable import SensorDrivers
import Testing

@Suite("LinuxSerialPort on a real pseudo-terminal")
struct LinuxSerialPortTests {
    @Test("opening configures raw 8N1 at the baud rate, no flow control, CLOCAL and CREAD")
    func settings() throws {
        let terminal = try PseudoTerminal()
        defer { terminal.closeMaster() }
        let port = try LinuxSerialPort(path: terminal.slavePath, baudRate: .b9600)
        defer { port.close() }
        var settings = terminal.slaveSettings()
        #expect(settings.c_cflag & tcflag_t(CSIZE) == tcflag_t(CS8))
        #expect(settings.c_cflag & tcflag_t(PARENB) == 0)
        #expect(settings.c_cflag & tcflag_t(CSTOPB) == 0)
        #expect(settings.c_cflag & tcflag_t(CRTSCTS) == 0)
        #expect(settings.c_cflag & (tcflag_t(CLOCAL) | tcflag_t(CREAD)) == tcflag_t(CLOCAL) | tcflag_t(CREAD))
        #expect(settings.c_lflag & (tcflag_t(ICANON) | tcflag_t(ECHO) | tcflag_t(ISIG)) == 0)
        #expect(settings.c_iflag & (tcflag_t(IXON) | tcflag_t(IXOFF) | tcflag_t(ICRNL)) == 0)
        #expect(settings.c_oflag & tcflag_t(OPOST) == 0)
        #expect(cfgetospeed(&settings) == speed_t(B9600))
        #expect(cfgetispeed(&settings) == speed_t(B9600))
    }

    @Test("every supported rate maps to its termios constant", arguments: SerialBaudRate.allCases)
    func speeds(rate: SerialBaudRate) throws {
        let terminal = try PseudoTerminal()
        defer { terminal.closeMaster() }
        let port = try LinuxSerialPort(path: terminal.slavePath, baudRate: rate)
        defer { port.close() }
        var settings = terminal.slaveSettings()
        #expect(cfgetospeed(&settings) == LinuxSerialPort.speed(for: rate))
    }

    @Test("an unsupported rate is a typed error before anything is opened")
    func unsupportedRate() {
        #expect(throws: UnsupportedBaudRateError(requested: 9601)) { try SerialBaudRate(bitsPerSecond: 9601) }
        #expect(throws: Never.self) { try SerialBaudRate(bitsPerSecond: 115_200) }
        #expect(UnsupportedBaudRateError(requested: 31).description.contains("9600"))
    }

    @Test("bytes pass unchanged both ways, including CR, LF, XON, XOFF and 0xFF")
    func transparency() async throws {
        let terminal = try PseudoTerminal()
        defer { terminal.closeMaster() }
        let port = try LinuxSerialPort(path: terminal.slavePath, baudRate: .b115200)
        defer { port.close() }
        let bytes: [UInt8] = Array(0...255)
        await terminal.write(bytes)
        var received: [UInt8] = []
        while received.count < bytes.count {
            let chunk = try await port.read(maxCount: 64, timeout: .seconds(2))
            if chunk.isEmpty { break }
            #expect(chunk.count <= 64)
            received += chunk
        }
        #expect(received == bytes)

        try await port.write(bytes)
        var echoed: [UInt8] = []
        for _ in 0..<200 where echoed.count < bytes.count {
            echoed += terminal.readAvailable()
            if echoed.count < bytes.count { try await Task.sleep(for: .milliseconds(1)) }
        }
        #expect(echoed == bytes)
    }

    @Test("bytes written before the open are flushed, not read as a stale half frame")
    func flushOnOpen() async throws {
        let terminal = try PseudoTerminal()
        defer { terminal.closeMaster() }
        let first = try LinuxSerialPort(path: terminal.slavePath, baudRate: .b9600)
        await terminal.write([0xAA, 0xC0, 0x01])
        try await Task.sleep(for: .milliseconds(20))
        first.close()
        let port = try LinuxSerialPort(path: terminal.slavePath, baudRate: .b9600)
        defer { port.close() }
        #expect(try await port.read(maxCount: 16, timeout: .milliseconds(30)).isEmpty)
    }

    @Test("a read with nothing to read returns empty after about the timeout")
    func timeout() async throws {
        let terminal = try PseudoTerminal()
        defer { terminal.closeMaster() }
        let port = try LinuxSerialPort(path: terminal.slavePath, baudRate: .b9600)
        defer { port.close() }
        let clock = ContinuousClock()
        let start = clock.now
        let bytes = try await port.read(maxCount: 16, timeout: .milliseconds(60))
        let elapsed = start.duration(to: clock.now)
        #expect(bytes.isEmpty)
        #expect(elapsed >= .milliseconds(60))
        // Only a guard against hanging: how long past the timeout depends on the machine's load (the whole suite
        // runs in parallel on two cores, CPU-bound fuzzers included).
        #expect(elapsed < .seconds(60))
        #expect(try await port.read(maxCount: 0, timeout: .seconds(5)).isEmpty)
    }

    @Test("a read returns as soon as the first bytes arrive")
    func earlyReturn() async throws {
        let terminal = try PseudoTerminal()
        defer { terminal.closeMaster() }
        let port = try LinuxSerialPort(path: terminal.slavePath, baudRate: .b9600)
        defer { port.close() }
        let writer = Task {
            try? await Task.sleep(for: .milliseconds(20))
            await terminal.write([0x42])
        }
        let clock = ContinuousClock()
        let start = clock.now
        let bytes = try await port.read(maxCount: 16, timeout: .seconds(60))
        #expect(bytes == [0x42])
        // Well before the 60 s timeout, with room for a very loaded machine: it did not wait for the timeout.
        #expect(start.duration(to: clock.now) < .seconds(30))
        await writer.value
    }

    @Test("a cancelled read stops waiting")
    func cancellation() async throws {
        let terminal = try PseudoTerminal()
        defer { terminal.closeMaster() }
        let port = try LinuxSerialPort(path: terminal.slavePath, baudRate: .b9600)
        defer { port.close() }
        let clock = ContinuousClock()
        let start = clock.now
        let reader = Task { try await port.read(maxCount: 16, timeout: .seconds(300)) }
        try await Task.sleep(for: .milliseconds(20))
        reader.cancel()
        #expect(try await reader.value.isEmpty)
        // Well before the 300 s timeout: cancellation ended the wait (the bound is a hang guard for a busy machine).
        #expect(start.duration(to: clock.now) < .seconds(120))
    }

    @Test("a hung-up line (the master closed, like an unplugged adapter) is .closed")
    func hangUp() async throws {
        let terminal = try PseudoTerminal()
        let port = try LinuxSerialPort(path: terminal.slavePath, baudRate: .b9600)
        defer { port.close() }
        terminal.closeMaster()
        await #expect(throws: SerialError(.closed, port: terminal.slavePath)) { try await port.read(maxCount: 16, timeout: .seconds(1)) }
        await #expect(throws: SerialError(.closed, port: terminal.slavePath)) { try await port.write([0x00]) }
    }

    @Test("after close(), reads and writes are .closed; closing twice is harmless")
    func closed() async throws {
        let terminal = try PseudoTerminal()
        defer { terminal.closeMaster() }
        let port = try LinuxSerialPort(path: terminal.slavePath, baudRate: .b9600)
        port.close()
        port.close()
        #expect(port.isClosed)
        await #expect(throws: SerialError(.closed, port: terminal.slavePath)) { try await port.read(maxCount: 1, timeout: .zero) }
        await #expect(throws: SerialError(.closed, port: terminal.slavePath)) { try await port.write([1]) }
    }

    @Test("a port closed while a forked child still holds its descriptor (before the child's exec) opens again")
    func reopenWhileForkedChildHoldsDescriptor() throws {
        // Any fork in the process (a test spawning a program, the daemon running a mode hook) copies every
        // descriptor until the child's exec closes the O_CLOEXEC ones; the copy shares the first open's flock.
        // Seen in a full run: a port closed and reopened at such a moment was refused as busy.
        let terminal = try PseudoTerminal()
        defer { terminal.closeMaster() }
        let first = try LinuxSerialPort(path: terminal.slavePath, baudRate: .b9600)
        let child = fork()
        if child == 0 {
            // The child: only async-signal-safe calls, then leave without running anything of the parent's.
            usleep(300_000)
            _exit(0)
        }
        #expect(child > 0)
        first.close()
        let again = try LinuxSerialPort(path: terminal.slavePath, baudRate: .b9600)
        again.close()
        var status: Int32 = 0
        _ = waitpid(child, &status, 0)
    }

    @Test("a port already in use by another opener is .busy")
    func busy() throws {
        let terminal = try PseudoTerminal()
        defer { terminal.closeMaster() }
        let port = try LinuxSerialPort(path: terminal.slavePath, baudRate: .b9600)
        defer { port.close() }
        #expect(throws: SerialError(.busy, port: terminal.slavePath)) { try LinuxSerialPort(path: terminal.slavePath, baudRate: .b9600) }
        port.close()
        #expect(throws: Never.self) { try LinuxSerialPort(path: terminal.slavePath, baudRate: .b9600) }
    }

    @Test("a refused second opener leaves the port as its owner set it (kiezbox doctor while the daemon runs)")
    func busyOpenerChangesNothing() async throws {
        let terminal = try PseudoTerminal()
        defer { terminal.closeMaster() }
        let port = try LinuxSerialPort(path: terminal.slavePath, baudRate: .b115200)
        defer { port.close() }
        // The doctor probing another dialect at 9600 baud, as root (TIOCEXCL does not keep root out).
        #expect(throws: SerialError(.busy, port: terminal.slavePath)) { try LinuxSerialPort(path: terminal.slavePath, baudRate: .b9600) }
        var settings = terminal.slaveSettings()
        #expect(cfgetospeed(&settings) == speed_t(B115200))
        #expect(cfgetispeed(&settings) == speed_t(B115200))
        // Nothing waiting for the owner was thrown away either.
        await terminal.write([0x94, 0xC3, 0x00, 0x00])
        #expect(throws: SerialError(.busy, port: terminal.slavePath)) { try LinuxSerialPort(path: terminal.slavePath, baudRate: .b9600) }
        #expect(try await port.read(maxCount: 16, timeout: .seconds(5)) == [0x94, 0xC3, 0x00, 0x00])
    }

    @Test("a missing device is .noSuchPort; a file that is no terminal is an io error with ENOTTY")
    func openErrors() {
        #expect(throws: SerialError(.noSuchPort, port: "/dev/ttyKIEZBOX-missing")) {
            try LinuxSerialPort(path: "/dev/ttyKIEZBOX-missing", baudRate: .b9600)
        }
        #expect(throws: SerialError(.io(errno: ENOTTY), port: "/dev/null")) { try LinuxSerialPort(path: "/dev/null", baudRate: .b9600) }
    }

    @Test(
        "errno values map to the codes a resident can act on",
        arguments: [
            (ENOENT, SerialError.Code.noSuchPort), (ENODEV, .noSuchPort), (ENXIO, .noSuchPort), (EACCES, .permissionDenied),
            (EPERM, .permissionDenied), (EBUSY, .busy), (EIO, .closed), (EINVAL, .io(errno: EINVAL)),
        ] as [(Int32, SerialError.Code)]
    )
    func errnoMapping(number: Int32, code: SerialError.Code) {
        #expect(LinuxSerialPort.code(forErrno: number) == code)
    }
}
#endif
