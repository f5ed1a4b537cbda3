/// What went wrong on a GPIO line, with what a resident can check.
public struct GPIOError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: Error, Sendable, Hashable {
        /// No such GPIO chip (`/dev/gpiochipN` or label not found).
        case noSuchChip
        /// The chip has no line with that offset.
        case noSuchLine
        /// The line is already requested by another program (or another sensor in the configuration).
        case busy
        /// Permission denied: the user is not in the `gpio` group.
        case permissionDenied
        /// Any other error, with its errno.
        case io(errno: Int32)
    }

    public var code: Code
    /// "gpiochip0", "pinctrl-bcm2711", "sim:gpiochip0".
    public var chip: String
    public var line: UInt32?

    public init(_ code: Code, chip: String, line: UInt32? = nil) {
        self.code = code
        self.chip = chip
        self.line = line
    }

    public var description: String {
        let at = self.line.map { " line \($0)" } ?? ""
        switch self.code {
        case .noSuchChip: return "no GPIO chip '\(self.chip)': check the chip name or label (gpiodetect lists them)"
        case .noSuchLine: return "\(self.chip) has no\(at): check the line offset (gpioinfo lists them)"
        case .busy: return "\(self.chip)\(at) is in use by another program or sensor"
        case .permissionDenied: return "no permission for \(self.chip): add the kiezbox user to the gpio group"
        case .io(let errno): return "GPIO error on \(self.chip)\(at) (errno \(errno))"
        }
    }
}

/// The internal pull resistor to request on an input.
public enum GPIOBias: String, Sendable, Hashable, CaseIterable {
    /// Leave the line as the hardware and device tree have it.
    case asIs = "as-is"
    case disabled
    case pullUp = "pull-up"
    case pullDown = "pull-down"
}

/// One level change on an input line.
public struct GPIOEdge: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case rising
        case falling
    }

    public var kind: Kind
    /// When the kernel saw the edge (CLOCK_MONOTONIC on Linux; the simulation's own time base otherwise).
    /// Debouncing and rates use these timestamps, not the time the event was read.
    public var timestamp: Duration

    public init(_ kind: Kind, at timestamp: Duration) {
        self.kind = kind
        self.timestamp = timestamp
    }
}

/// A line requested as an input.
public protocol GPIOInput: Sendable {
    func read() async throws(GPIOError) -> Bool
}

/// A line requested as an output.
public protocol GPIOOutput: Sendable {
    func write(_ value: Bool) async throws(GPIOError)
}

/// A line requested for edge events (both edges).
public protocol GPIOEdgeEvents: Sendable {
    /// The line's current level.
    func read() async throws(GPIOError) -> Bool
    /// Edges as the kernel timestamped them, in order. One consumer; the stream ends when the line is released.
    var edges: AsyncThrowingStream<GPIOEdge, any Error> { get }
    /// Releases the line; the edge stream finishes.
    func release()
}

/// A GPIO chip: a Linux `/dev/gpiochipN` (the kernel's character-device uAPI v2) or a simulated one.
///
/// **Debounce.** Inputs and edge events can be debounced the way the Linux kernel does it (the uAPI's
/// `GPIO_V2_LINE_ATTR_ID_DEBOUNCE`): every level change restarts a timer of `debounce`, and only when the line has
/// then held a level for the whole period is that level reported, as one edge if it differs from the level
/// reported before. So a pulse or bounce shorter than the period gives no edge at all, and an edge is stamped when
/// the period ended (the last change plus `debounce`, which the kernel rounds up to its timer tick), not when the
/// line first moved. Reads return the debounced level. `.zero` turns debounce off; periods are rounded up to whole
/// microseconds and capped at `UInt32.max` µs (about 71 minutes), the kernel's limits.
public protocol GPIOChip: Sendable {
    var name: String { get }
    var lineCount: Int { get }
    /// Requests `line` as an input with `bias`, debounced by `debounce` (`.zero` for none).
    func requestInput(line: UInt32, bias: GPIOBias, debounce: Duration, consumer: String) throws(GPIOError) -> any GPIOInput
    /// Requests `line` as an output driving `initial` from the start.
    func requestOutput(line: UInt32, initial: Bool, consumer: String) throws(GPIOError) -> any GPIOOutput
    /// Requests both edges of `line` with `bias`, debounced by `debounce` (`.zero` for none).
    func requestEdgeEvents(
        line: UInt32,
        bias: GPIOBias,
        debounce: Duration,
        consumer: String
    ) throws(GPIOError) -> any GPIOEdgeEvents
}

extension GPIOChip {
    /// Requests `line` as an input with `bias`, without debounce.
    public func requestInput(line: UInt32, bias: GPIOBias, consumer: String) throws(GPIOError) -> any GPIOInput {
        try self.requestInput(line: line, bias: bias, debounce: .zero, consumer: consumer)
    }

    /// Requests both edges of `line` with `bias`, without debounce.
    public func requestEdgeEvents(line: UInt32, bias: GPIOBias, consumer: String) throws(GPIOError) -> any GPIOEdgeEvents {
        try self.requestEdgeEvents(line: line, bias: bias, debounce: .zero, consumer: consumer)
    }
}

extension Duration {
    /// This duration as a kernel GPIO debounce period: whole microseconds, rounded up so that a period above zero
    /// never turns debounce off, and capped at the uAPI's 32 bits. Zero or less is zero.
    public var gpioDebounceMicroseconds: UInt32 {
        guard self > .zero else { return 0 }
        let (seconds, attoseconds) = self.components
        guard seconds < Int64(UInt32.max / 1_000_000) + 1 else { return UInt32.max }
        let attosecondsPerMicrosecond: Int64 = 1_000_000_000_000
        let microseconds = seconds * 1_000_000 + (attoseconds + attosecondsPerMicrosecond - 1) / attosecondsPerMicrosecond
        return UInt32(clamping: microseconds)
    }
}
