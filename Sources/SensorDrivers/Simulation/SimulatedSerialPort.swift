import Synchronization

/// The far end of a ``SimulatedSerialPort``: a simulated chip that hears what the host writes and talks back.
///
/// Time is simulated: the port tells the device what time it is (a `Duration` since the port was created), so the
/// device can model warm-up after wake and periodic frames without anyone waiting in real time. The same devices run
/// against a real pseudo-terminal in tests, with the time taken from a clock there.
public protocol SimulatedSerialDevice: AnyObject, Sendable {
    /// The host wrote `bytes` at `time`; returns what the device sends back at once (possibly nothing). Bytes may
    /// arrive in any split: the device buffers partial commands.
    func received(_ bytes: [UInt8], at time: Duration) -> [UInt8]
    /// What the device sends on its own (periodic measurements, NMEA sentences) up to and including `time`, in the
    /// order sent. Called whenever simulated time moves forward.
    func transmissions(upTo time: Duration) -> [UInt8]
    /// When the device will next send something on its own, or nil when it is silent until a command arrives.
    func nextTransmissionTime() -> Duration?
}

extension SimulatedSerialDevice {
    public func transmissions(upTo time: Duration) -> [UInt8] { [] }
    public func nextTransmissionTime() -> Duration? { nil }
}

/// An in-memory serial port whose other end is a ``SimulatedSerialDevice``.
///
/// **Time.** The port keeps simulated time. It moves forward only when the host waits:
/// - ``read(maxCount:timeout:)`` returns at once (no real waiting) when bytes are queued. With nothing queued, it
///   moves time to the device's next transmission if that comes within `timeout`, or by the whole `timeout`
///   otherwise, and returns what arrived (possibly nothing). A read therefore never sleeps in real time.
/// - ``advance(by:)`` moves time as a driver's pause would; ``pause`` is a ``Pause`` that does exactly that, so a
///   driver's warm-up wait lets the device warm up and queue its periodic frames meanwhile.
///
/// **The line.** Bytes from the device queue up like a UART's receive buffer, which holds at most
/// ``receiveBufferCapacity`` bytes; further bytes are lost (an overrun), as after a long sleep on real hardware.
///
/// **Faults.** ``inject(_:)`` puts bytes on the line (noise, half frames), ``setMaximumBytesPerRead(_:)`` splits
/// frames across reads, and ``disconnect()`` makes the port fail with ``SerialError/Code/closed``.
///
/// In a demo, give the driver ``pause`` as well (or a pause that advances the port and then sleeps), otherwise the
/// simulated chip never sees its warm-up pass.
///
/// ```swift
/// let sensor = SimulatedSDS011()
/// let port = SimulatedSerialPort(device: sensor)
/// let driver = SDS011(port: port, pause: port.pause)
/// ```
public final class SimulatedSerialPort: SerialPort {
    public let name: String
    /// How many received bytes the port holds before it drops new ones (Linux's tty buffer is 4 KiB).
    public let receiveBufferCapacity: Int

    private struct State {
        var now: Duration = .zero
        var device: (any SimulatedSerialDevice)?
        var incoming: [UInt8] = []
        var incomingStart = 0
        var maximumBytesPerRead: Int?
        var written: [[UInt8]] = []
        var isDisconnected = false
        var overrunBytes = 0

        var queuedCount: Int { self.incoming.count - self.incomingStart }

        mutating func enqueue(_ bytes: [UInt8], capacity: Int) {
            let room = max(0, capacity - self.queuedCount)
            self.incoming.append(contentsOf: bytes.prefix(room))
            self.overrunBytes += max(0, bytes.count - room)
        }

        /// Moves time to `time` and queues what the device sent up to then.
        mutating func moveTime(to time: Duration, capacity: Int) {
            if time > self.now { self.now = time }
            if let device = self.device { self.enqueue(device.transmissions(upTo: self.now), capacity: capacity) }
        }

        mutating func dequeue(maxCount: Int) -> [UInt8] {
            let count = min(maxCount, self.queuedCount, self.maximumBytesPerRead ?? Int.max)
            let bytes = Array(self.incoming[self.incomingStart..<(self.incomingStart + count)])
            self.incomingStart += count
            if self.incomingStart == self.incoming.count {
                self.incoming.removeAll(keepingCapacity: true)
                self.incomingStart = 0
            }
            return bytes
        }
    }

    private let state: Mutex<State>

    /// - Parameters:
    ///   - name: shown in errors, "sim:" by convention.
    ///   - device: the chip at the other end; without one, only injected bytes arrive.
    ///   - receiveBufferCapacity: bytes held before an overrun.
    public init(name: String = "sim:/dev/serial0", device: (any SimulatedSerialDevice)? = nil, receiveBufferCapacity: Int = 4096) {
        self.name = name
        self.receiveBufferCapacity = max(1, receiveBufferCapacity)
        var state = State()
        state.device = device
        self.state = Mutex(state)
    }

    /// Connects a device (replacing any other), as when plugging a sensor in.
    public func attach(_ device: any SimulatedSerialDevice) {
        self.state.withLock { $0.device = device }
    }

    /// Unplugs the device: nothing more arrives from it.
    public func detachDevice() {
        self.state.withLock { $0.device = nil }
    }

    /// Simulated time since the port was created.
    public var now: Duration { self.state.withLock { $0.now } }

    /// Moves simulated time forward, queuing what the device sends meanwhile.
    public func advance(by duration: Duration) {
        self.state.withLock { state in
            state.moveTime(to: state.now + max(duration, .zero), capacity: self.receiveBufferCapacity)
        }
    }

    /// A ``Pause`` that advances this port's simulated time instead of sleeping: give it to the driver under test.
    public var pause: Pause {
        { [self] duration in self.advance(by: duration) }
    }

    /// Puts bytes on the line towards the host, after whatever is queued (noise, a half frame, a stale frame).
    public func inject(_ bytes: [UInt8]) {
        self.state.withLock { $0.enqueue(bytes, capacity: self.receiveBufferCapacity) }
    }

    /// Hands out at most `count` bytes per read (nil: no limit), so frames arrive split across reads.
    public func setMaximumBytesPerRead(_ count: Int?) {
        self.state.withLock { $0.maximumBytesPerRead = count.map { max(1, $0) } }
    }

    /// Makes every read and write fail with ``SerialError/Code/closed``, as an unplugged USB adapter does.
    public func disconnect() {
        self.state.withLock { $0.isDisconnected = true }
    }

    /// Ends ``disconnect()``.
    public func reconnect() {
        self.state.withLock { $0.isDisconnected = false }
    }

    /// Everything the host wrote, one element per write.
    public var writes: [[UInt8]] { self.state.withLock { $0.written } }

    /// Forgets the recorded writes.
    public func clearWrites() {
        self.state.withLock { $0.written.removeAll() }
    }

    /// Bytes queued towards the host and not yet read.
    public var queuedByteCount: Int { self.state.withLock { $0.queuedCount } }

    /// Bytes lost because the receive buffer was full.
    public var overrunByteCount: Int { self.state.withLock { $0.overrunBytes } }

    public func read(maxCount: Int, timeout: Duration) async throws(SerialError) -> [UInt8] {
        let result: Result<[UInt8], SerialError> = self.state.withLock { state in
            guard !state.isDisconnected else { return .failure(SerialError(.closed, port: self.name)) }
            guard maxCount > 0 else { return .success([]) }
            if state.queuedCount == 0, timeout > .zero {
                let deadline = state.now + timeout
                if let next = state.device?.nextTransmissionTime(), next <= deadline {
                    state.moveTime(to: max(next, state.now), capacity: self.receiveBufferCapacity)
                } else {
                    state.moveTime(to: deadline, capacity: self.receiveBufferCapacity)
                }
            }
            return .success(state.dequeue(maxCount: maxCount))
        }
        return try result.get()
    }

    public func write(_ bytes: [UInt8]) async throws(SerialError) {
        let result: Result<Void, SerialError> = self.state.withLock { state in
            guard !state.isDisconnected else { return .failure(SerialError(.closed, port: self.name)) }
            state.written.append(bytes)
            if let device = state.device {
                state.enqueue(device.received(bytes, at: state.now), capacity: self.receiveBufferCapacity)
            }
            return .success(())
        }
        try result.get()
    }
}
