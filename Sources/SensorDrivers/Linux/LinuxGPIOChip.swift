#if os(Linux)
import CGPIOD
import Glibc
import Synchronization

/// A Linux GPIO chip, `/dev/gpiochipN`, through libgpiod 1.6 (the character-device v1 interface).
///
/// Open the Raspberry Pi's header by label rather than by number, because the number has changed between
/// kernels: ``openRaspberryPiHeader()`` tries the labels of the Pi 5, Pi 4 and older boards.
///
/// Lines requested from the chip keep it open; the chip closes when the last of them and this object are gone.
///
/// ```swift
/// let chip = try LinuxGPIOChip.openRaspberryPiHeader()
/// let mainsPresent = try chip.requestEdgeEvents(line: 17, bias: .pullUp, consumer: "kiezbox")
/// for try await edge in mainsPresent.edges { … }
/// ```
public final class LinuxGPIOChip: GPIOChip {
    /// The labels of the Raspberry Pi header's GPIO controller: Pi 5 (RP1), Pi 4, Pi 3 / Zero and older.
    public static let raspberryPiHeaderLabels = ["pinctrl-rp1", "pinctrl-bcm2711", "pinctrl-bcm2835"]

    /// The kernel's name for the chip, "gpiochip0".
    public let name: String
    /// The driver's label, "pinctrl-bcm2711".
    public let label: String
    public let lineCount: Int
    private let handle: GPIOChipHandle

    /// Opens the chip that `descriptor` names, in any of the forms the gpio tools accept: a path
    /// ("/dev/gpiochip0"), a name ("gpiochip0"), a number ("0") or a label ("pinctrl-bcm2711").
    ///
    /// - Throws: ``GPIOError/Code/noSuchChip`` when nothing matches, ``GPIOError/Code/permissionDenied`` when the
    ///   user may not open it.
    public convenience init(_ descriptor: String) throws(GPIOError) {
        try self.init(describedAs: descriptor) { gpiod_chip_open_lookup(descriptor) }
    }

    /// Opens the chip whose driver label is `label` ("pinctrl-bcm2711"), whatever its number.
    public convenience init(label: String) throws(GPIOError) {
        try self.init(describedAs: label) { gpiod_chip_open_by_label(label) }
    }

    /// Opens the first chip found with one of `labels`, in their order.
    public static func open(anyLabelOf labels: [String]) throws(GPIOError) -> LinuxGPIOChip {
        var notFound = GPIOError(.noSuchChip, chip: labels.joined(separator: " or "))
        for label in labels {
            do throws(GPIOError) {
                return try LinuxGPIOChip(label: label)
            } catch where error.code == .noSuchChip {
                continue
            } catch {
                notFound = error
                break
            }
        }
        throw notFound
    }

    /// Opens the Raspberry Pi header's GPIO controller (see ``raspberryPiHeaderLabels``).
    public static func openRaspberryPiHeader() throws(GPIOError) -> LinuxGPIOChip {
        try self.open(anyLabelOf: self.raspberryPiHeaderLabels)
    }

    private init(describedAs description: String, opening opener: () -> OpaquePointer?) throws(GPIOError) {
        guard let chip = opener() else {
            let code: GPIOError.Code =
                switch errno {
                // ENODEV/ENOTTY: the path exists but is not a GPIO character device.
                case ENOENT, ENODEV, ENOTTY: .noSuchChip
                case EACCES, EPERM: .permissionDenied
                case let other: .io(errno: other)
                }
            throw GPIOError(code, chip: description)
        }
        self.name = String(cString: gpiod_chip_name(chip))
        self.label = String(cString: gpiod_chip_label(chip))
        self.lineCount = Int(gpiod_chip_num_lines(chip))
        self.handle = GPIOChipHandle(chip)
    }

    public func requestInput(line offset: UInt32, bias: GPIOBias, consumer: String) throws(GPIOError) -> any GPIOInput {
        let line = try self.request(offset) { line in gpiod_line_request_input_flags(line, consumer, bias.requestFlags) }
        return LinuxGPIOInput(chip: self.handle, line: line, chipName: self.name, offset: offset)
    }

    public func requestOutput(line offset: UInt32, initial: Bool, consumer: String) throws(GPIOError) -> any GPIOOutput {
        let line = try self.request(offset) { line in gpiod_line_request_output(line, consumer, initial ? 1 : 0) }
        return LinuxGPIOOutput(chip: self.handle, line: line, chipName: self.name, offset: offset)
    }

    /// Requests both edges of `line`. A thread of its own waits for them (see ``LinuxGPIOEdgeEvents``).
    public func requestEdgeEvents(
        line offset: UInt32,
        bias: GPIOBias,
        consumer: String
    ) throws(GPIOError) -> any GPIOEdgeEvents {
        let line = try self.request(offset) { line in
            gpiod_line_request_both_edges_events_flags(line, consumer, bias.requestFlags)
        }
        return try LinuxGPIOEdgeEvents(chip: self.handle, line: line, chipName: self.name, offset: offset)
    }

    /// Looks up line `offset` and requests it with `configure` (a libgpiod request returning 0 or -1 and errno).
    private func request(_ offset: UInt32, _ configure: (OpaquePointer) -> CInt) throws(GPIOError) -> GPIOLinePointer {
        let outcome: Result<GPIOLinePointer, GPIOError> = self.handle.withChip { chip in
            // libgpiod answers an offset past the chip's last line with EINVAL.
            guard let line = gpiod_chip_get_line(chip, offset) else {
                let code: GPIOError.Code = errno == EINVAL ? .noSuchLine : GPIOError.Code(requestErrno: errno)
                return .failure(GPIOError(code, chip: self.name, line: offset))
            }
            guard configure(line) == 0 else {
                return .failure(GPIOError(GPIOError.Code(requestErrno: errno), chip: self.name, line: offset))
            }
            return .success(GPIOLinePointer(line))
        }
        return try outcome.get()
    }
}

// MARK: - Handles and their threading contracts

/// Owns a `gpiod_chip`.
///
/// Threading contract: libgpiod 1.6 objects are not thread-safe (the chip creates its line objects lazily, and
/// requests and releases change a line's state), so every libgpiod call on the chip or on one of its lines runs
/// inside ``withChip(_:)``, under one lock per chip. The only calls made outside it are the event thread's
/// `gpiod_line_event_wait` and `gpiod_line_event_read_multiple` on the line that thread owns; they only poll
/// and read that line's file descriptor (see ``LinuxGPIOEdgeEvents``).
///
/// Closing the chip also releases its lines, so every line object holds this handle: the chip closes after the
/// last line is gone.
final class GPIOChipHandle: Sendable {
    private let chip: Mutex<GPIOChipPointer>

    init(_ chip: OpaquePointer) {
        self.chip = Mutex(GPIOChipPointer(raw: chip))
    }

    deinit {
        self.chip.withLock { gpiod_chip_close($0.raw) }
    }

    /// Runs `body` with the chip, holding the chip's lock. Keep it to non-blocking libgpiod calls.
    func withChip<T: Sendable>(_ body: (OpaquePointer) -> T) -> T {
        self.chip.withLock { body($0.raw) }
    }
}

/// A `gpiod_chip *`, only dereferenced under its ``GPIOChipHandle``'s lock.
private struct GPIOChipPointer: @unchecked Sendable {
    let raw: OpaquePointer
}

/// A requested `gpiod_line *`. It belongs to its chip, which outlives it (every holder also holds the chip's
/// handle). It is used only under the chip's lock, except by the event thread of a ``LinuxGPIOEdgeEvents``.
struct GPIOLinePointer: @unchecked Sendable {
    let raw: OpaquePointer

    init(_ raw: OpaquePointer) {
        self.raw = raw
    }
}

// MARK: - Requested lines

/// A line requested as an input; released when this object goes away.
final class LinuxGPIOInput: GPIOInput {
    private let chip: GPIOChipHandle
    private let line: GPIOLinePointer
    private let chipName: String
    private let offset: UInt32

    init(chip: GPIOChipHandle, line: GPIOLinePointer, chipName: String, offset: UInt32) {
        (self.chip, self.line, self.chipName, self.offset) = (chip, line, chipName, offset)
    }

    deinit {
        self.chip.withChip { _ in gpiod_line_release(self.line.raw) }
    }

    func read() async throws(GPIOError) -> Bool {
        try readLevel(of: self.line, on: self.chip, chipName: self.chipName, offset: self.offset)
    }
}

/// A line requested as an output; released when this object goes away.
final class LinuxGPIOOutput: GPIOOutput {
    private let chip: GPIOChipHandle
    private let line: GPIOLinePointer
    private let chipName: String
    private let offset: UInt32

    init(chip: GPIOChipHandle, line: GPIOLinePointer, chipName: String, offset: UInt32) {
        (self.chip, self.line, self.chipName, self.offset) = (chip, line, chipName, offset)
    }

    deinit {
        self.chip.withChip { _ in gpiod_line_release(self.line.raw) }
    }

    func write(_ value: Bool) async throws(GPIOError) {
        let failure: CInt? = self.chip.withChip { _ in
            gpiod_line_set_value(self.line.raw, value ? 1 : 0) == 0 ? nil : errno
        }
        if let failure { throw GPIOError(GPIOError.Code(requestErrno: failure), chip: self.chipName, line: self.offset) }
    }
}

/// A line requested for both edges, watched by a thread of its own.
///
/// Threading contract: a ``DedicatedThread`` loops on `gpiod_line_event_wait` with a short timeout
/// (``waitTimeout``) and drains what arrived with `gpiod_line_event_read_multiple`, yielding each event, with
/// the kernel's timestamp, into ``edges``. That thread is the line's only waiter and reader, and it is the one
/// that releases the line, after its last wait: so no wait or read can ever race with the release. ``release()``
/// (also run when this object goes away) asks the thread to stop and waits for it, at most one wait timeout;
/// the stream finishes once the thread has released the line. A consumer that stops iterating (its task
/// cancelled) stops the thread the same way, so the line is released then too; request it again to resume.
///
/// The kernel queues at most 16 events per line (`lineevent_state`'s fifo in `gpiolib-cdev.c`); the thread reads
/// them as they come, and ``edges`` buffers up to ``bufferedEdgeLimit`` for a slow consumer, keeping the newest.
public final class LinuxGPIOEdgeEvents: GPIOEdgeEvents {
    /// How long one wait blocks before the thread checks whether it should stop; bounds ``release()``.
    public static let waitTimeout = Duration.milliseconds(50)
    /// How many edges ``edges`` holds for a consumer that falls behind before dropping the oldest.
    public static let bufferedEdgeLimit = 1024
    /// The most events read from the kernel at once: its per-line queue length.
    static let kernelQueueLength = 16

    public let edges: AsyncThrowingStream<GPIOEdge, any Error>
    private let watch: EdgeWatch
    private let thread: DedicatedThread

    init(chip: GPIOChipHandle, line: GPIOLinePointer, chipName: String, offset: UInt32) throws(GPIOError) {
        let (edges, continuation) = AsyncThrowingStream<GPIOEdge, any Error>.makeStream(
            bufferingPolicy: .bufferingNewest(Self.bufferedEdgeLimit)
        )
        let watch = EdgeWatch(chip: chip, line: line, chipName: chipName, offset: offset, continuation: continuation)
        continuation.onTermination = { _ in watch.stopRequested.store(true, ordering: .releasing) }
        do {
            self.thread = try DedicatedThread.start { watch.run() }
        } catch {
            chip.withChip { _ in gpiod_line_release(line.raw) }
            throw GPIOError(.io(errno: error.errno), chip: chipName, line: offset)
        }
        self.edges = edges
        self.watch = watch
    }

    deinit {
        self.release()
    }

    /// The line's current level.
    ///
    /// - Throws: `GPIOError` with `.io(errno: EBADF)` once the line has been released.
    public func read() async throws(GPIOError) -> Bool {
        let watch = self.watch
        return try readLevel(of: watch.line, on: watch.chip, chipName: watch.chipName, offset: watch.offset) {
            watch.lineReleased.load(ordering: .acquiring)
        }
    }

    /// Stops the watching thread, releases the line and finishes ``edges``. Blocks for at most one
    /// ``waitTimeout``; later calls return at once.
    public func release() {
        self.watch.stopRequested.store(true, ordering: .releasing)
        self.thread.join()
    }
}

/// What the event thread works with; shared with the ``LinuxGPIOEdgeEvents`` that started it.
private final class EdgeWatch: Sendable {
    let chip: GPIOChipHandle
    let line: GPIOLinePointer
    let chipName: String
    let offset: UInt32
    let continuation: AsyncThrowingStream<GPIOEdge, any Error>.Continuation
    let stopRequested = Atomic<Bool>(false)
    /// Set by the event thread, under the chip lock, when it has released the line.
    let lineReleased = Atomic<Bool>(false)

    init(
        chip: GPIOChipHandle,
        line: GPIOLinePointer,
        chipName: String,
        offset: UInt32,
        continuation: AsyncThrowingStream<GPIOEdge, any Error>.Continuation
    ) {
        (self.chip, self.line, self.chipName, self.offset, self.continuation) = (chip, line, chipName, offset, continuation)
    }

    /// The event thread's loop (see ``LinuxGPIOEdgeEvents``).
    func run() {
        let wait = LinuxGPIOEdgeEvents.waitTimeout.components
        var timeout = timespec(tv_sec: Int(wait.seconds), tv_nsec: Int(wait.attoseconds / 1_000_000_000))
        var events = [gpiod_line_event](repeating: gpiod_line_event(), count: LinuxGPIOEdgeEvents.kernelQueueLength)
        var failure: CInt?
        while failure == nil, !self.stopRequested.load(ordering: .acquiring) {
            let ready = gpiod_line_event_wait(self.line.raw, &timeout)
            if ready == 0 { continue }
            if ready < 0 {
                if errno != EINTR { failure = errno }
                continue
            }
            let count = events.withUnsafeMutableBufferPointer { buffer in
                gpiod_line_event_read_multiple(self.line.raw, buffer.baseAddress, UInt32(buffer.count))
            }
            guard count >= 0 else {
                if errno != EINTR && errno != EAGAIN { failure = errno }
                continue
            }
            for event in events.prefix(Int(count)) {
                guard let kind = GPIOEdge.Kind(libgpiodEventType: event.event_type) else { continue }
                self.continuation.yield(GPIOEdge(kind, at: Duration(kernelTimestamp: event.ts)))
            }
        }
        self.chip.withChip { _ in
            gpiod_line_release(self.line.raw)
            self.lineReleased.store(true, ordering: .releasing)
        }
        if let failure {
            let error = GPIOError(GPIOError.Code(requestErrno: failure), chip: self.chipName, line: self.offset)
            self.continuation.finish(throwing: error)
        } else {
            self.continuation.finish()
        }
    }
}

// MARK: - Conversions

/// Reads a requested line's level under the chip lock, failing with EBADF if `isReleased` says the line is gone
/// (checked under the same lock, so the answer cannot change before the read).
private func readLevel(
    of line: GPIOLinePointer,
    on chip: GPIOChipHandle,
    chipName: String,
    offset: UInt32,
    isReleased: () -> Bool = { false }
) throws(GPIOError) -> Bool {
    let (value, failure): (CInt, CInt) = chip.withChip { _ in
        if isReleased() { return (-1, EBADF) }
        let value = gpiod_line_get_value(line.raw)
        return (value, value < 0 ? errno : 0)
    }
    guard value >= 0 else { throw GPIOError(GPIOError.Code(requestErrno: failure), chip: chipName, line: offset) }
    return value == 1
}

extension GPIOBias {
    /// The libgpiod 1.6 request flags for this bias; "as is" sets none.
    var requestFlags: CInt {
        switch self {
        case .asIs: 0
        case .disabled: CInt(GPIOD_LINE_REQUEST_FLAG_BIAS_DISABLE)
        case .pullUp: CInt(GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_UP)
        case .pullDown: CInt(GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_DOWN)
        }
    }
}

extension GPIOError.Code {
    /// How requests and line operations fail: EBUSY when someone else holds the line, EACCES/EPERM without access.
    init(requestErrno errno: CInt) {
        switch errno {
        case EBUSY: self = .busy
        case EACCES, EPERM: self = .permissionDenied
        case ENOENT: self = .noSuchChip
        default: self = .io(errno: errno)
        }
    }
}

extension GPIOEdge.Kind {
    init?(libgpiodEventType type: CInt) {
        switch type {
        case CInt(GPIOD_LINE_EVENT_RISING_EDGE): self = .rising
        case CInt(GPIOD_LINE_EVENT_FALLING_EDGE): self = .falling
        default: return nil
        }
    }
}

extension Duration {
    /// A kernel timestamp (CLOCK_MONOTONIC for GPIO events) as the time since boot.
    init(kernelTimestamp time: timespec) {
        self = .seconds(Int64(time.tv_sec)) + .nanoseconds(Int64(time.tv_nsec))
    }
}
#endif
