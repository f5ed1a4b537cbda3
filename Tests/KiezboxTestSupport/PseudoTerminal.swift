#if canImport(Glibc)
import Glibc
import SensorDrivers
import Synchronization

/// Why a pseudo-terminal could not be set up.
public struct PseudoTerminalError: Error, CustomStringConvertible {
    public var call: String
    public var errno: Int32
    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }
    public var description: String { "\(self.call) failed with errno \(self.errno)" }
}

/// A Unix98 pseudo-terminal pair: the test keeps the master; the production ``LinuxSerialPort`` opens the slave
/// (`/dev/pts/N`) as it would open `/dev/ttyUSB0`.
///
/// The master is non-blocking. The kernel's line discipline sits on the slave side, so the bytes only pass
/// unchanged once the port under test has put the slave in raw mode: open the port before writing to the master.
public final class PseudoTerminal: Sendable {
    public let master: Int32
    public let slavePath: String

    public init() throws(PseudoTerminalError) {
        let calls = try PseudoTerminalCalls.load()
        // Close-on-exec: a process another test forks meanwhile must not keep the master open, or closing it here
        // would never hang up the slave (a "pulled cable" the port under test never notices).
        let fd = calls.openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else { throw PseudoTerminalError(call: "posix_openpt", errno: errno) }
        guard calls.grantpt(fd) == 0 else {
            Glibc.close(fd)
            throw PseudoTerminalError(call: "grantpt", errno: errno)
        }
        guard calls.unlockpt(fd) == 0 else {
            Glibc.close(fd)
            throw PseudoTerminalError(call: "unlockpt", errno: errno)
        }
        var name = [CChar](repeating: 0, count: 128)
        guard calls.ptsname(fd, &name, name.count) == 0 else {
            Glibc.close(fd)
            throw PseudoTerminalError(call: "ptsname_r", errno: errno)
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        self.master = fd
        self.slavePath = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Closing the master hangs up the slave.
    public func closeMaster() {
        Glibc.close(self.master)
    }

    /// What the slave side (the port under test) wrote; empty when nothing is there.
    public func readAvailable() -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { Glibc.read(self.master, $0.baseAddress, $0.count) }
        return count > 0 ? Array(buffer.prefix(count)) : []
    }

    /// Writes all bytes towards the port under test, waiting when the buffer is full.
    public func write(_ bytes: [UInt8]) async {
        var offset = 0
        var attempts = 0
        while offset < bytes.count, attempts < 2000 {
            let count = bytes[offset...].withUnsafeBytes { Glibc.write(self.master, $0.baseAddress, $0.count) }
            if count > 0 {
                offset += count
            } else {
                attempts += 1
                try? await Task.sleep(for: .milliseconds(1))
            }
        }
    }

    /// The slave's termios as the port under test set it (on Linux a pty master reports its slave's settings).
    public func slaveSettings() -> termios {
        var settings = termios()
        _ = tcgetattr(self.master, &settings)
        return settings
    }
}

/// The libc pseudo-terminal calls. Swift's Glibc module hides them (they need `_XOPEN_SOURCE`), so they are looked
/// up by name in the C library that is already loaded.
private struct PseudoTerminalCalls {
    var openpt: @convention(c) (Int32) -> Int32
    var grantpt: @convention(c) (Int32) -> Int32
    var unlockpt: @convention(c) (Int32) -> Int32
    var ptsname: @convention(c) (Int32, UnsafeMutablePointer<CChar>, Int) -> Int32

    static func load() throws(PseudoTerminalError) -> PseudoTerminalCalls {
        let library = dlopen(nil, RTLD_NOW)
        func symbol<T>(_ name: String, as type: T.Type) throws(PseudoTerminalError) -> T {
            guard let address = dlsym(library, name) else { throw PseudoTerminalError(call: "dlsym(\(name))", errno: 0) }
            return unsafeBitCast(address, to: type)
        }
        return PseudoTerminalCalls(
            openpt: try symbol("posix_openpt", as: (@convention(c) (Int32) -> Int32).self),
            grantpt: try symbol("grantpt", as: (@convention(c) (Int32) -> Int32).self),
            unlockpt: try symbol("unlockpt", as: (@convention(c) (Int32) -> Int32).self),
            ptsname: try symbol("ptsname_r", as: (@convention(c) (Int32, UnsafeMutablePointer<CChar>, Int) -> Int32).self)
        )
    }
}

/// Runs a simulated device behind the master side of a pseudo-terminal, in real time.
///
/// The device's time is the real time elapsed since the start, times `timeScale`, plus whatever the driver under
/// test "paused" through ``pause`` (which returns at once): a 30 s warm-up takes no real time, yet the device sees
/// 30 s pass. Faults of the line itself: ``noise`` before every burst of device output, and ``splitsWrites``,
/// which writes each burst in pieces of 1–7 bytes with a pause between them, so the port's reads see split frames.
public final class PseudoTerminalDevice: Sendable {
    public let terminal: PseudoTerminal
    public let device: any SimulatedSerialDevice
    public let timeScale: Double
    public let noise: [UInt8]
    public let splitsWrites: Bool
    private let virtualOffset = Mutex(Duration.zero)
    private let bytesFromHost = Mutex<[UInt8]>([])

    public init(terminal: PseudoTerminal, device: any SimulatedSerialDevice, timeScale: Double = 1, noise: [UInt8] = [], splitsWrites: Bool = false) {
        self.terminal = terminal
        self.device = device
        self.timeScale = timeScale
        self.noise = noise
        self.splitsWrites = splitsWrites
    }

    /// A pause for the driver under test: moves the device's clock instead of sleeping.
    ///
    /// A driver pauses right after writing a command (wake, then warm up). The pause first waits, in real time and
    /// boundedly, until the device has received every byte `port` has written, so the device sees the command
    /// before the time jump, as it would on a real line.
    public func pause(after port: CountingSerialPort) -> Pause {
        { [self] duration in
            for _ in 0..<2000 where self.bytesFromHost.withLock({ $0.count }) < port.writtenByteCount {
                try await Task.sleep(for: .milliseconds(1))
            }
            self.virtualOffset.withLock { $0 += duration }
        }
    }

    /// Every byte the port under test sent to the device, through the kernel.
    public var receivedFromHost: [UInt8] { self.bytesFromHost.withLock { $0 } }

    /// Pumps bytes both ways until the task is cancelled.
    public func run() async {
        let clock = ContinuousClock()
        let start = clock.now
        var random = SerialFuzzRandom(seed: 0x5EED)
        while !Task.isCancelled {
            let elapsed = start.duration(to: clock.now) * self.timeScale
            let now = elapsed + self.virtualOffset.withLock { $0 }
            var output = self.device.transmissions(upTo: now)
            let input = self.terminal.readAvailable()
            if !input.isEmpty {
                self.bytesFromHost.withLock { $0 += input }
                output += self.device.received(input, at: now)
            }
            if !output.isEmpty {
                let burst = self.noise + output
                if self.splitsWrites {
                    var offset = 0
                    while offset < burst.count {
                        let end = min(burst.count, offset + 1 + random.below(7))
                        await self.terminal.write(Array(burst[offset..<end]))
                        offset = end
                        try? await Task.sleep(for: .microseconds(300))
                    }
                } else {
                    await self.terminal.write(burst)
                }
            }
            try? await Task.sleep(for: .milliseconds(1))
        }
    }
}

/// A transparent wrapper that counts the bytes written through the port it wraps, so a test can tell when they
/// have all crossed the pseudo-terminal.
public final class CountingSerialPort: SerialPort {
    public let base: any SerialPort
    private let written = Mutex(0)

    public init(_ base: any SerialPort) {
        self.base = base
    }

    public var name: String { self.base.name }
    public var writtenByteCount: Int { self.written.withLock { $0 } }

    public func read(maxCount: Int, timeout: Duration) async throws(SerialError) -> [UInt8] {
        try await self.base.read(maxCount: maxCount, timeout: timeout)
    }

    public func write(_ bytes: [UInt8]) async throws(SerialError) {
        try await self.base.write(bytes)
        self.written.withLock { $0 += bytes.count }
    }
}
/// Runs `body` with the production ``LinuxSerialPort`` on the slave side of a new pseudo-terminal and `device`
/// behind the master (``PseudoTerminalDevice``, writes split into pieces by default). The port is opened first (raw
/// mode), then the device starts; the device stops before the descriptors close under it. `body` gets the port,
/// wrapped to count what it wrote, and a pause that moves the device's clock instead of sleeping.
///
/// Drivers under test should wait generously for replies (2 s or more): a hang guard, not a schedule, so that a
/// busy machine (a parallel build, CI) never turns a slow pty into a retried command.
@discardableResult
public func withSimulatedDeviceOnPseudoTerminal<T>(
    _ device: any SimulatedSerialDevice,
    baudRate: SerialBaudRate,
    timeScale: Double = 1,
    noise: [UInt8] = [],
    splitsWrites: Bool = true,
    body: (CountingSerialPort, @escaping Pause) async throws -> T
) async throws -> T {
    let terminal = try PseudoTerminal()
    defer { terminal.closeMaster() }
    let port = try LinuxSerialPort(path: terminal.slavePath, baudRate: baudRate)
    defer { port.close() }
    let line = PseudoTerminalDevice(terminal: terminal, device: device, timeScale: timeScale, noise: noise, splitsWrites: splitsWrites)
    let pump = Task { await line.run() }
    let counting = CountingSerialPort(port)
    let result: Result<T, any Error>
    do {
        result = .success(try await body(counting, line.pause(after: counting)))
    } catch {
        result = .failure(error)
    }
    pump.cancel()
    await pump.value
    return try result.get()
}
#endif
