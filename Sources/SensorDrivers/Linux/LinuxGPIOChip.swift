#if os(Linux)
import CLinuxGPIO
import Glibc
import Synchronization

/// A Linux GPIO chip, `/dev/gpiochipN`, through the kernel's GPIO character-device uAPI v2 (Linux 5.10 and later)
/// with no library in between, so one binary runs on Debian bookworm (6.1) and trixie (6.12) alike.
///
/// Open the Raspberry Pi's header by label rather than by number, because the number has changed between
/// kernels: ``openRaspberryPiHeader()`` tries the labels of the Pi 5, Pi 4 and older boards.
///
/// Every requested line is a file descriptor of its own, which the kernel ties to the chip: a line stays usable
/// after this object is gone, and is released when its handle goes away (or, for edge events, on
/// ``LinuxGPIOEdgeEvents/release()``). Debounce, when requested, runs in the kernel (see ``GPIOChip``).
///
/// ```swift
/// let chip = try LinuxGPIOChip.openRaspberryPiHeader()
/// let mainsPresent = try chip.requestEdgeEvents(line: 17, bias: .pullUp, debounce: .milliseconds(20), consumer: "kiezbox")
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
    /// The chip's character device, open for this object's lifetime; requests and line information go through it.
    private let descriptor: CInt

    /// Opens the chip that `descriptor` names, in any of the forms the gpio tools accept: a path
    /// ("/dev/gpiochip0"), a name ("gpiochip0"), a number ("0") or a label ("pinctrl-bcm2711").
    ///
    /// - Throws: ``GPIOError/Code/noSuchChip`` when nothing matches, ``GPIOError/Code/permissionDenied`` when the
    ///   user may not open it.
    public convenience init(_ descriptor: String) throws(GPIOError) {
        if descriptor.contains("/") {
            self.init(try OpenChip(path: descriptor, describedAs: descriptor))
        } else if let number = UInt(descriptor) {
            self.init(try OpenChip(path: "/dev/gpiochip\(number)", describedAs: descriptor))
        } else if descriptor.hasPrefix("gpiochip"), UInt(descriptor.dropFirst("gpiochip".count)) != nil {
            self.init(try OpenChip(path: "/dev/\(descriptor)", describedAs: descriptor))
        } else {
            self.init(try OpenChip(label: descriptor))
        }
    }

    /// Opens the chip whose driver label is `label` ("pinctrl-bcm2711"), whatever its number.
    ///
    /// - Throws: ``GPIOError/Code/noSuchChip`` when no chip has the label, ``GPIOError/Code/permissionDenied``
    ///   when none has it among the chips the user may open but some could not be opened.
    public convenience init(label: String) throws(GPIOError) {
        self.init(try OpenChip(label: label))
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

    private init(_ chip: OpenChip) {
        self.descriptor = chip.descriptor
        self.name = chip.name
        self.label = chip.label
        self.lineCount = chip.lineCount
    }

    deinit {
        close(self.descriptor)
    }

    public func requestInput(
        line offset: UInt32,
        bias: GPIOBias,
        debounce: Duration,
        consumer: String
    ) throws(GPIOError) -> any GPIOInput {
        let flags = UInt64(GPIO_V2_LINE_FLAG_INPUT.rawValue) | bias.lineFlags
        let request = try self.request(offset, flags: flags, debounce: debounce, consumer: consumer)
        return LinuxGPIOInput(request)
    }

    public func requestOutput(line offset: UInt32, initial: Bool, consumer: String) throws(GPIOError) -> any GPIOOutput {
        let flags = UInt64(GPIO_V2_LINE_FLAG_OUTPUT.rawValue)
        let request = try self.request(offset, flags: flags, outputValue: initial, consumer: consumer)
        return LinuxGPIOOutput(request)
    }

    /// Requests both edges of `line`. A thread of its own waits for them (see ``LinuxGPIOEdgeEvents``).
    public func requestEdgeEvents(
        line offset: UInt32,
        bias: GPIOBias,
        debounce: Duration,
        consumer: String
    ) throws(GPIOError) -> any GPIOEdgeEvents {
        let flags = UInt64(GPIO_V2_LINE_FLAG_INPUT.rawValue) | UInt64(GPIO_V2_LINE_FLAG_EDGE_RISING.rawValue)
            | UInt64(GPIO_V2_LINE_FLAG_EDGE_FALLING.rawValue) | bias.lineFlags
        let request = try self.request(
            offset, flags: flags, debounce: debounce, consumer: consumer,
            eventBufferSize: UInt32(LinuxGPIOEdgeEvents.kernelQueueLength)
        )
        return try LinuxGPIOEdgeEvents(request)
    }

    /// What the kernel reports about line `offset` now: who holds it and how (what `gpioinfo` shows).
    ///
    /// - Throws: ``GPIOError/Code/noSuchLine`` for an offset past the chip's last line.
    public func lineInfo(line offset: UInt32) throws(GPIOError) -> GPIOLineInfo {
        guard Int(offset) < self.lineCount else { throw GPIOError(.noSuchLine, chip: self.name, line: offset) }
        var info = gpio_v2_line_info()
        info.offset = offset
        let result = kz_gpio_ioctl(self.descriptor, kz_gpio_v2_get_lineinfo_ioctl(), &info)
        guard result >= 0 else { throw GPIOError(GPIOError.Code(requestErrno: -result), chip: self.name, line: offset) }
        return GPIOLineInfo(info)
    }

    /// Requests line `offset` with `flags` (`GPIO_V2_LINE_FLAG_*`) through `GPIO_V2_GET_LINE_IOCTL`.
    private func request(
        _ offset: UInt32,
        flags: UInt64,
        debounce: Duration = .zero,
        outputValue: Bool? = nil,
        consumer: String,
        eventBufferSize: UInt32 = 0
    ) throws(GPIOError) -> LineRequest {
        // The kernel answers EINVAL for an offset past the end, as for any other invalid request.
        guard Int(offset) < self.lineCount else { throw GPIOError(.noSuchLine, chip: self.name, line: offset) }
        var request = gpio_v2_line_request()
        request.offsets.0 = offset
        request.num_lines = 1
        request.event_buffer_size = eventBufferSize
        withUnsafeMutableBytes(of: &request.consumer) { field in
            // Truncated to the kernel's 31 bytes; the zeroed remainder terminates it.
            field.copyBytes(from: consumer.utf8.prefix(field.count - 1))
        }
        request.config.flags = flags
        var attributes: [gpio_v2_line_config_attribute] = []
        // Each attribute applies to the lines its mask selects: bit 0, the one line requested.
        if let outputValue {
            var attribute = gpio_v2_line_config_attribute()
            attribute.attr.id = GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES.rawValue
            attribute.attr.values = outputValue ? 1 : 0
            attribute.mask = 1
            attributes.append(attribute)
        }
        let debounceMicroseconds = debounce.gpioDebounceMicroseconds
        if debounceMicroseconds > 0 {
            var attribute = gpio_v2_line_config_attribute()
            attribute.attr.id = GPIO_V2_LINE_ATTR_ID_DEBOUNCE.rawValue
            attribute.attr.debounce_period_us = debounceMicroseconds
            attribute.mask = 1
            attributes.append(attribute)
        }
        withUnsafeMutableBytes(of: &request.config.attrs) { slots in
            for (index, attribute) in attributes.enumerated() {
                slots.storeBytes(
                    of: attribute,
                    toByteOffset: index * MemoryLayout<gpio_v2_line_config_attribute>.stride,
                    as: gpio_v2_line_config_attribute.self
                )
            }
        }
        request.config.num_attrs = UInt32(attributes.count)

        let result = kz_gpio_ioctl(self.descriptor, kz_gpio_v2_get_line_ioctl(), &request)
        guard result >= 0 else { throw GPIOError(GPIOError.Code(requestErrno: -result), chip: self.name, line: offset) }
        return LineRequest(descriptor: request.fd, chipName: self.name, offset: offset)
    }
}

/// What the kernel reports about one line of a ``LinuxGPIOChip`` (`GPIO_V2_GET_LINEINFO_IOCTL`).
public struct GPIOLineInfo: Sendable, Hashable {
    /// The line's name from the device tree ("GPIO17"), or "" when it has none.
    public var name: String
    /// Who requested the line ("kiezbox rain"), or "" when nobody has.
    public var consumer: String
    /// Whether the line is in use: requested, or claimed by a kernel driver.
    public var isUsed: Bool
    /// Whether the line is an output (otherwise an input).
    public var isOutput: Bool
    /// The bias the line was requested with; ``GPIOBias/asIs`` when none.
    public var bias: GPIOBias
    /// The edges the kernel watches for: both for an edge-events request, none otherwise.
    public var edgeDetection: Set<GPIOEdge.Kind>
    /// The kernel's debounce period, `.zero` when the line is not debounced.
    public var debounce: Duration

    init(_ info: gpio_v2_line_info) {
        func has(_ flag: gpio_v2_line_flag) -> Bool { info.flags & UInt64(flag.rawValue) != 0 }
        self.name = String(cCharacters: info.name)
        self.consumer = String(cCharacters: info.consumer)
        self.isUsed = has(GPIO_V2_LINE_FLAG_USED)
        self.isOutput = has(GPIO_V2_LINE_FLAG_OUTPUT)
        self.bias =
            if has(GPIO_V2_LINE_FLAG_BIAS_PULL_UP) { .pullUp }
            else if has(GPIO_V2_LINE_FLAG_BIAS_PULL_DOWN) { .pullDown }
            else if has(GPIO_V2_LINE_FLAG_BIAS_DISABLED) { .disabled }
            else { .asIs }
        self.edgeDetection = Set(
            [(GPIO_V2_LINE_FLAG_EDGE_RISING, GPIOEdge.Kind.rising), (GPIO_V2_LINE_FLAG_EDGE_FALLING, .falling)]
                .filter { has($0.0) }.map(\.1)
        )
        let count = min(Int(info.num_attrs), Int(GPIO_V2_LINE_NUM_ATTRS_MAX))
        let debounceMicroseconds = withUnsafeBytes(of: info.attrs) { raw in
            raw.bindMemory(to: gpio_v2_line_attribute.self).prefix(count)
                .first { $0.id == GPIO_V2_LINE_ATTR_ID_DEBOUNCE.rawValue }?.debounce_period_us ?? 0
        }
        self.debounce = .microseconds(debounceMicroseconds)
    }
}

// MARK: - Opening

/// A chip's character device, opened and identified with `GPIO_GET_CHIPINFO_IOCTL`; closed unless handed to a
/// ``LinuxGPIOChip``.
private struct OpenChip {
    let descriptor: CInt
    let name: String
    let label: String
    let lineCount: Int

    /// Opens the chip at `path`; errors name it `description`.
    init(path: String, describedAs description: String) throws(GPIOError) {
        let descriptor = open(path, O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else { throw GPIOError(GPIOError.Code(openErrno: errno), chip: description) }
        var info = gpiochip_info()
        // Anything but a GPIO chip (/dev/null, a regular file) fails this ioctl, most often with ENOTTY.
        let result = kz_gpio_ioctl(descriptor, kz_gpio_get_chipinfo_ioctl(), &info)
        guard result >= 0 else {
            close(descriptor)
            throw GPIOError(GPIOError.Code(openErrno: -result), chip: description)
        }
        self.descriptor = descriptor
        self.name = String(cCharacters: info.name)
        self.label = String(cCharacters: info.label)
        self.lineCount = Int(info.lines)
    }

    /// Opens the first `/dev/gpiochipN`, lowest N first, whose label is `label`.
    init(label: String) throws(GPIOError) {
        var permissionDenied = false
        for path in Self.chipDevicePaths() {
            let chip: OpenChip
            do throws(GPIOError) {
                chip = try OpenChip(path: path, describedAs: path)
            } catch {
                if error.code == .permissionDenied { permissionDenied = true }
                continue
            }
            if chip.label == label {
                self = chip
                return
            }
            close(chip.descriptor)
        }
        // A chip the user may not open might have been the one: say so rather than "no such chip".
        throw GPIOError(permissionDenied ? .permissionDenied : .noSuchChip, chip: label)
    }

    /// The `/dev/gpiochipN` device nodes, by number.
    static func chipDevicePaths() -> [String] {
        guard let directory = opendir("/dev") else { return [] }
        defer { closedir(directory) }
        var numbers: [UInt] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasPrefix("gpiochip"), let number = UInt(name.dropFirst("gpiochip".count)) { numbers.append(number) }
        }
        return numbers.sorted().map { "/dev/gpiochip\($0)" }
    }
}

// MARK: - Requested lines

/// One line request's file descriptor: its level is read and written with ioctls, its edge events read from it.
///
/// Threading contract: the kernel serialises the ioctls and reads on a request, so they need no lock of ours;
/// the lock only keeps the descriptor from being closed (and its number reused by another open) while a call uses
/// it. Closing releases the line; calls after that fail with EBADF. The event thread of a
/// ``LinuxGPIOEdgeEvents`` polls and reads ``ownerDescriptor`` without the lock, because it is the one that closes.
final class LineRequest: Sendable {
    let chipName: String
    let offset: UInt32
    /// The descriptor, for the one thread that will also close it.
    let ownerDescriptor: CInt
    /// The descriptor while open, nil once closed.
    private let descriptor: Mutex<CInt?>

    init(descriptor: CInt, chipName: String, offset: UInt32) {
        self.ownerDescriptor = descriptor
        self.descriptor = Mutex(descriptor)
        self.chipName = chipName
        self.offset = offset
    }

    deinit {
        self.close()
    }

    /// The line's level (`GPIO_V2_LINE_GET_VALUES_IOCTL`); for a debounced line, the debounced level.
    func level() throws(GPIOError) -> Bool {
        var values = gpio_v2_line_values(bits: 0, mask: 1)
        try self.ioctl(kz_gpio_v2_line_get_values_ioctl(), &values)
        return values.bits & 1 != 0
    }

    /// Drives an output line (`GPIO_V2_LINE_SET_VALUES_IOCTL`).
    func setLevel(_ high: Bool) throws(GPIOError) {
        var values = gpio_v2_line_values(bits: high ? 1 : 0, mask: 1)
        try self.ioctl(kz_gpio_v2_line_set_values_ioctl(), &values)
    }

    /// Releases the line. Later calls return at once.
    func close() {
        self.descriptor.withLock { descriptor in
            if let open = descriptor.take() { _ = Glibc.close(open) }
        }
    }

    private func ioctl(_ request: UInt, _ argument: UnsafeMutableRawPointer) throws(GPIOError) {
        let result: CInt = self.descriptor.withLock { descriptor in
            guard let descriptor else { return -EBADF }
            return kz_gpio_ioctl(descriptor, request, argument)
        }
        guard result >= 0 else {
            throw GPIOError(GPIOError.Code(requestErrno: -result), chip: self.chipName, line: self.offset)
        }
    }
}

/// A line requested as an input; released when this object goes away.
final class LinuxGPIOInput: GPIOInput {
    private let request: LineRequest

    init(_ request: LineRequest) {
        self.request = request
    }

    func read() async throws(GPIOError) -> Bool {
        try self.request.level()
    }
}

/// A line requested as an output; released when this object goes away.
final class LinuxGPIOOutput: GPIOOutput {
    private let request: LineRequest

    init(_ request: LineRequest) {
        self.request = request
    }

    func write(_ value: Bool) async throws(GPIOError) {
        try self.request.setLevel(value)
    }
}

/// A line requested for both edges, watched by a thread of its own.
///
/// Threading contract: a ``DedicatedThread`` loops on `poll()` of the request's descriptor with a short timeout
/// (``waitTimeout``) and drains what arrived with one `read()` of up to ``kernelQueueLength`` events (48 bytes
/// each), yielding each, with the kernel's `CLOCK_MONOTONIC` timestamp, into ``edges``. That thread is the
/// descriptor's only poller and reader, and it is the one that closes it (releasing the line) after its last poll:
/// so no poll or read can ever race with the close. ``read()`` may run on any thread at the same time; it takes
/// the request's lock, which the close also takes (see ``LineRequest``). ``release()`` (also run when this object
/// goes away) asks the thread to stop and waits for it, at most one wait timeout; the stream finishes once the
/// thread has released the line. A consumer that stops iterating (its task cancelled) stops the thread the same
/// way, so the line is released then too; request it again to resume.
///
/// The kernel queues ``kernelQueueLength`` events for the request (the request asks for that many instead of its
/// default 16 per line) and drops the newest beyond; the thread reads them as they come, and ``edges`` buffers up
/// to ``bufferedEdgeLimit`` for a slow consumer, keeping the newest.
public final class LinuxGPIOEdgeEvents: GPIOEdgeEvents {
    /// How long one wait blocks before the thread checks whether it should stop; bounds ``release()``.
    public static let waitTimeout = Duration.milliseconds(50)
    /// How many edges ``edges`` holds for a consumer that falls behind before dropping the oldest.
    public static let bufferedEdgeLimit = 1024
    /// The kernel's event queue for the request, and the most events read at once.
    static let kernelQueueLength = 64

    public let edges: AsyncThrowingStream<GPIOEdge, any Error>
    private let watch: EdgeWatch
    private let thread: DedicatedThread

    init(_ request: LineRequest) throws(GPIOError) {
        let (edges, continuation) = AsyncThrowingStream<GPIOEdge, any Error>.makeStream(
            bufferingPolicy: .bufferingNewest(Self.bufferedEdgeLimit)
        )
        let watch = EdgeWatch(request: request, continuation: continuation)
        continuation.onTermination = { _ in watch.stopRequested.store(true, ordering: .releasing) }
        do {
            self.thread = try DedicatedThread.start { watch.run() }
        } catch {
            request.close()
            throw GPIOError(.io(errno: error.errno), chip: request.chipName, line: request.offset)
        }
        self.edges = edges
        self.watch = watch
    }

    deinit {
        self.release()
    }

    /// The line's current level (debounced, if the request is).
    ///
    /// - Throws: `GPIOError` with `.io(errno: EBADF)` once the line has been released.
    public func read() async throws(GPIOError) -> Bool {
        try self.watch.request.level()
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
    let request: LineRequest
    let continuation: AsyncThrowingStream<GPIOEdge, any Error>.Continuation
    let stopRequested = Atomic<Bool>(false)

    init(request: LineRequest, continuation: AsyncThrowingStream<GPIOEdge, any Error>.Continuation) {
        self.request = request
        self.continuation = continuation
    }

    /// The event thread's loop (see ``LinuxGPIOEdgeEvents``).
    func run() {
        let timeoutMilliseconds = CInt(LinuxGPIOEdgeEvents.waitTimeout / .milliseconds(1))
        let eventSize = MemoryLayout<gpio_v2_line_event>.stride
        var events = [gpio_v2_line_event](repeating: gpio_v2_line_event(), count: LinuxGPIOEdgeEvents.kernelQueueLength)
        var waiter = pollfd(fd: self.request.ownerDescriptor, events: Int16(POLLIN), revents: 0)
        var failure: CInt?
        while failure == nil, !self.stopRequested.load(ordering: .acquiring) {
            waiter.revents = 0
            let ready = poll(&waiter, 1, timeoutMilliseconds)
            if ready == 0 { continue }
            if ready < 0 {
                if errno != EINTR { failure = errno }
                continue
            }
            // POLLHUP/POLLERR (the chip went away) fall through to the read, which says why.
            let bytes = events.withUnsafeMutableBytes { buffer in
                Glibc.read(self.request.ownerDescriptor, buffer.baseAddress, buffer.count)
            }
            guard bytes >= 0 else {
                if errno != EINTR && errno != EAGAIN { failure = errno }
                continue
            }
            // The kernel never ends a request's stream; were it to, stop rather than spin on a readable descriptor.
            guard bytes > 0 else {
                failure = EIO
                continue
            }
            for event in events.prefix(bytes / eventSize) {
                guard let kind = GPIOEdge.Kind(lineEventID: event.id) else { continue }
                self.continuation.yield(GPIOEdge(kind, at: Duration(kernelTimestampNanoseconds: event.timestamp_ns)))
            }
        }
        self.request.close()
        if let failure {
            let error = GPIOError(
                GPIOError.Code(requestErrno: failure), chip: self.request.chipName, line: self.request.offset
            )
            self.continuation.finish(throwing: error)
        } else {
            self.continuation.finish()
        }
    }
}

// MARK: - Conversions

extension GPIOBias {
    /// The uAPI v2 line flags for this bias; "as is" sets none.
    var lineFlags: UInt64 {
        switch self {
        case .asIs: 0
        case .disabled: UInt64(GPIO_V2_LINE_FLAG_BIAS_DISABLED.rawValue)
        case .pullUp: UInt64(GPIO_V2_LINE_FLAG_BIAS_PULL_UP.rawValue)
        case .pullDown: UInt64(GPIO_V2_LINE_FLAG_BIAS_PULL_DOWN.rawValue)
        }
    }
}

extension GPIOError.Code {
    /// How requests and line operations fail: EBUSY when someone else holds the line, EACCES/EPERM without access,
    /// ENOENT/ENODEV when the chip is gone.
    init(requestErrno errno: CInt) {
        switch errno {
        case EBUSY: self = .busy
        case EACCES, EPERM: self = .permissionDenied
        case ENOENT, ENODEV: self = .noSuchChip
        default: self = .io(errno: errno)
        }
    }

    /// How opening a chip fails: ENOENT when nothing is there; ENODEV, ENXIO, EISDIR or ENOTTY when what is there
    /// is no GPIO chip; EACCES/EPERM without access.
    init(openErrno errno: CInt) {
        switch errno {
        case ENOENT, ENODEV, ENXIO, EISDIR, ENOTTY: self = .noSuchChip
        case EACCES, EPERM: self = .permissionDenied
        default: self = .io(errno: errno)
        }
    }
}

extension GPIOEdge.Kind {
    init?(lineEventID id: UInt32) {
        switch id {
        case GPIO_V2_LINE_EVENT_RISING_EDGE.rawValue: self = .rising
        case GPIO_V2_LINE_EVENT_FALLING_EDGE.rawValue: self = .falling
        default: return nil
        }
    }
}

extension Duration {
    /// A kernel timestamp in nanoseconds (`CLOCK_MONOTONIC` for GPIO events) as the time since boot.
    init(kernelTimestampNanoseconds nanoseconds: UInt64) {
        self = .nanoseconds(Int64(clamping: nanoseconds))
    }
}

extension String {
    /// A NUL-terminated C string in a fixed-size field that Swift imports as a tuple of `CChar`.
    init<Field>(cCharacters field: Field) {
        self = withUnsafeBytes(of: field) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
    }
}
#endif
