#if canImport(Glibc)
import Glibc
import Synchronization

/// A serial port on Linux through termios: raw 8N1, no flow control, at a fixed baud rate.
///
/// **Opening** (`open(2)` with `O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC`):
/// - first the port is claimed with an exclusive `flock` (a second Kiezbox process, or anything else that locks,
///   gets ``SerialError/Code/busy`` and has changed nothing: not the owner's speed, not its unread bytes);
/// - then `cfmakeraw`, 8 data bits, no parity, 1 stop bit, `CLOCAL | CREAD`, no RTS/CTS, no XON/XOFF, and
///   `TIOCEXCL` (other non-root opens get `EBUSY`);
/// - both queues are flushed, so bytes from before the open (a stale half frame) are not read.
///
/// **Waiting without blocking the thread pool.** The descriptor stays non-blocking. A read first takes what the
/// kernel has; when there is nothing, it sleeps with `Task.sleep` in short slices (1 ms, doubling to at most 10 ms,
/// never past the deadline) and looks again. No cooperative thread is ever blocked in `poll` or `read`, a cancelled
/// task stops waiting at the next slice, and the cost is at most one wake-up per 10 ms while a driver waits for a
/// reply, which is the only time drivers read. At 9600 baud a 10 ms slice is about ten bytes, so no data is lost
/// (the kernel buffers 4 KiB) and latency stays below what the chips' own reply times are.
///
/// **Threading contract.** The descriptor lives in a `Mutex`, and every system call on it is non-blocking and made
/// while holding the lock, so ``close()`` (or `deinit`) can never close a descriptor another task is using, and a
/// descriptor number is never reused under a running call. Several tasks may share the port safely, but bytes go to
/// whichever task reads first: a driver (the only reader of its port) must not be measured concurrently with itself.
///
/// ```swift
/// let port = try LinuxSerialPort(path: "/dev/serial0", baudRate: SDS011.baudRate)
/// let sensor = SDS011(port: port)
/// ```
public final class LinuxSerialPort: SerialPort {
    /// The device path as given.
    public let name: String
    public let baudRate: SerialBaudRate

    /// The open descriptor, or -1 once closed.
    private let descriptor: Mutex<Int32>

    /// The longest sleep between two looks at the descriptor while waiting.
    static let maximumWaitSlice = Duration.milliseconds(10)
    /// How long a write may wait for room in the kernel's transmit buffer before it fails.
    static let writeTimeout = Duration.seconds(2)

    /// Opens and configures the port.
    ///
    /// - Parameters:
    ///   - path: the device, e.g. `/dev/serial0`, `/dev/ttyUSB0` or a stable `/dev/serial/by-id/…` link.
    ///   - baudRate: the chip's line speed (9600 for SDS011, PMS5003 and GPS; 115200 for the SPS30).
    /// - Throws: ``SerialError`` with ``SerialError/Code/noSuchPort``, ``SerialError/Code/permissionDenied``,
    ///   ``SerialError/Code/busy``, or ``SerialError/Code/io(errno:)`` (`ENOTTY` when the path is not a terminal).
    public init(path: String, baudRate: SerialBaudRate) throws(SerialError) {
        self.name = path
        self.baudRate = baudRate
        let fd = Glibc.open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw SerialError(Self.code(forErrno: errno), port: path) }
        do throws(SerialError) {
            try Self.configure(fd, baudRate: baudRate, path: path)
        } catch {
            Glibc.close(fd)
            throw error
        }
        self.descriptor = Mutex(fd)
    }

    deinit {
        self.close()
    }

    /// Closes the port; every later read or write fails with ``SerialError/Code/closed``. Closing twice is harmless.
    public func close() {
        self.descriptor.withLock { fd in
            if fd >= 0 {
                // Give up the exclusive claim explicitly, in case another descriptor keeps the tty open.
                _ = ioctl(fd, UInt(TIOCNXCL))
                Glibc.close(fd)
                fd = -1
            }
        }
    }

    /// Whether ``close()`` has been called.
    public var isClosed: Bool { self.descriptor.withLock { $0 < 0 } }

    public func read(maxCount: Int, timeout: Duration) async throws(SerialError) -> [UInt8] {
        guard maxCount > 0 else { return [] }
        let clock = ContinuousClock()
        let deadline = clock.now + max(timeout, .zero)
        var slice = Duration.milliseconds(1)
        while true {
            let bytes = try self.readAvailable(maxCount: maxCount)
            if !bytes.isEmpty { return bytes }
            let remaining = clock.now.duration(to: deadline)
            guard remaining > .zero else { return [] }
            do {
                try await Task.sleep(for: min(slice, remaining))
            } catch {
                // Cancelled: report "nothing arrived"; the caller sees the cancellation at its next suspension point.
                return []
            }
            slice = min(slice * 2, Self.maximumWaitSlice)
        }
    }

    public func write(_ bytes: [UInt8]) async throws(SerialError) {
        var written = 0
        let clock = ContinuousClock()
        let deadline = clock.now + Self.writeTimeout
        while written < bytes.count {
            let count = try self.writeAvailable(bytes[written...])
            written += count
            guard written < bytes.count else { break }
            if count == 0 {
                // The transmit buffer is full (a stalled line); wait for it to drain, boundedly.
                guard clock.now < deadline else { throw SerialError(.io(errno: EAGAIN), port: self.name) }
                do {
                    try await Task.sleep(for: .milliseconds(2))
                } catch {
                    throw SerialError(.io(errno: ECANCELED), port: self.name)
                }
            }
        }
    }

    // MARK: - Non-blocking system calls, each under the descriptor lock

    /// What the kernel has now, without waiting; empty when nothing is there.
    private func readAvailable(maxCount: Int) throws(SerialError) -> [UInt8] {
        let result: Result<[UInt8], SerialError> = self.descriptor.withLock { fd in
            guard fd >= 0 else { return .failure(SerialError(.closed, port: self.name)) }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 0)
            if ready < 0 {
                return errno == EINTR ? .success([]) : .failure(SerialError(Self.code(forErrno: errno), port: self.name))
            }
            let events = Int32(descriptor.revents)
            if events & Int32(POLLIN) != 0 {
                var buffer = [UInt8](repeating: 0, count: min(maxCount, 4096))
                let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if count > 0 { return .success(Array(buffer.prefix(count))) }
                // With VMIN = 1 a non-blocking read returns 0 only at end of file: the line was hung up.
                if count == 0 { return .failure(SerialError(.closed, port: self.name)) }
                if errno == EAGAIN || errno == EINTR { return .success([]) }
                return .failure(SerialError(Self.code(forErrno: errno), port: self.name))
            }
            if events & Int32(POLLHUP | POLLERR | POLLNVAL) != 0 { return .failure(SerialError(.closed, port: self.name)) }
            return .success([])
        }
        return try result.get()
    }

    /// Writes what fits now; 0 when the transmit buffer is full.
    private func writeAvailable(_ bytes: ArraySlice<UInt8>) throws(SerialError) -> Int {
        let result: Result<Int, SerialError> = self.descriptor.withLock { fd in
            guard fd >= 0 else { return .failure(SerialError(.closed, port: self.name)) }
            let count = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if count >= 0 { return .success(count) }
            if errno == EAGAIN || errno == EINTR { return .success(0) }
            return .failure(SerialError(Self.code(forErrno: errno), port: self.name))
        }
        return try result.get()
    }

    // MARK: - Setup

    private static func configure(_ fd: Int32, baudRate: SerialBaudRate, path: String) throws(SerialError) {
        func fail() -> SerialError { SerialError(self.code(forErrno: errno), port: path) }

        // Claim the port before touching it: a refused opener (`kiezbox doctor` probing at another speed while
        // the daemon runs) must leave the owner's settings and unread bytes alone. flock catches a second Kiezbox
        // even as root; TIOCEXCL below keeps other (non-root) programs out.
        // A lock held for a moment is not another Kiezbox: a fork anywhere in this process (a mode hook, a tool)
        // copies every descriptor until the child's exec closes it, and the copy of a port just closed still holds
        // its lock. So a refusal is only believed after a second of asking again.
        var attempts = 0
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let failure = errno
            guard failure == EWOULDBLOCK, attempts < Self.lockAttempts else {
                throw SerialError(failure == EWOULDBLOCK ? .busy : self.code(forErrno: failure), port: path)
            }
            attempts += 1
            usleep(20_000)
        }

        var options = termios()
        guard tcgetattr(fd, &options) == 0 else { throw fail() }
        cfmakeraw(&options)
        // 8N1, receiver on, modem lines ignored, no hardware or software flow control.
        options.c_cflag &= ~(tcflag_t(CSIZE) | tcflag_t(PARENB) | tcflag_t(CSTOPB) | tcflag_t(CRTSCTS))
        options.c_cflag |= tcflag_t(CS8) | tcflag_t(CLOCAL) | tcflag_t(CREAD)
        options.c_iflag &= ~(tcflag_t(IXON) | tcflag_t(IXOFF) | tcflag_t(IXANY))
        // VMIN 1, VTIME 0 (cfmakeraw's): with O_NONBLOCK an empty read is EAGAIN and 0 means hang-up.
        withUnsafeMutableBytes(of: &options.c_cc) { controlCharacters in
            controlCharacters[Int(VMIN)] = 1
            controlCharacters[Int(VTIME)] = 0
        }
        let speed = self.speed(for: baudRate)
        guard cfsetispeed(&options, speed) == 0, cfsetospeed(&options, speed) == 0 else { throw fail() }
        guard tcsetattr(fd, TCSANOW, &options) == 0 else { throw fail() }
        _ = ioctl(fd, UInt(TIOCEXCL))
        guard tcflush(fd, TCIOFLUSH) == 0 else { throw fail() }
    }

    /// How often the port's lock is asked for, 20 ms apart, before the port counts as in use.
    static let lockAttempts = 50

    /// The termios `Bxxx` constant for a rate.
    static func speed(for baudRate: SerialBaudRate) -> speed_t {
        switch baudRate {
        case .b1200: speed_t(B1200)
        case .b2400: speed_t(B2400)
        case .b4800: speed_t(B4800)
        case .b9600: speed_t(B9600)
        case .b19200: speed_t(B19200)
        case .b38400: speed_t(B38400)
        case .b57600: speed_t(B57600)
        case .b115200: speed_t(B115200)
        case .b230400: speed_t(B230400)
        case .b460800: speed_t(B460800)
        case .b921600: speed_t(B921600)
        }
    }

    /// The ``SerialError`` code for an errno from open, termios, read or write.
    static func code(forErrno number: Int32) -> SerialError.Code {
        switch number {
        case ENOENT, ENODEV, ENXIO: .noSuchPort
        case EACCES, EPERM: .permissionDenied
        case EBUSY: .busy
        case EIO: .closed
        default: .io(errno: number)
        }
    }
}
#endif
