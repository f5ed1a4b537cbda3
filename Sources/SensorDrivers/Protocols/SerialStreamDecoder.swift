/// What a frame format made of the bytes at the front of a stream.
public enum SerialFrameScan<Frame, Failure: Error> {
    /// The bytes may be the beginning of a frame: wait for more.
    case incomplete
    /// A valid frame that occupies the first `length` bytes.
    case frame(Frame, length: Int)
    /// The bytes at the front are no valid frame: drop `skip` bytes (at least one) and look again.
    case rejected(Failure, skip: Int)
    /// Bytes that are neither a frame nor an error (a repeated delimiter): drop `skip` bytes silently.
    case padding(skip: Int)
}

/// A wire format whose frames a ``SerialStreamDecoder`` can find in a byte stream.
///
/// Implementations are pure and total: every input gives a ``SerialFrameScan``, never a trap.
public protocol SerialFrameFormat {
    associatedtype Frame: Sendable
    associatedtype Failure: Error & Sendable

    /// The longest a frame can be, delimiters and stuffing included. A candidate that grows past this without
    /// completing is rejected with ``frameTooLong(_:)``, so a stream of noise never grows the buffer.
    static var maximumFrameLength: Int { get }
    /// Whether `byte` can start a frame; bytes that cannot are skipped as noise.
    static func canStartFrame(_ byte: UInt8) -> Bool
    /// Examines `bytes`, whose first byte can start a frame.
    static func scan(_ bytes: ArraySlice<UInt8>) -> SerialFrameScan<Frame, Failure>
    /// Whether a rejection means "a frame arrived but its checksum is wrong" (as opposed to noise or a cut frame).
    static func isChecksumFailure(_ failure: Failure) -> Bool
    /// The rejection for a candidate that reached ``maximumFrameLength`` bytes without completing.
    static func frameTooLong(_ length: Int) -> Failure
}

/// What a stream decoder has seen so far.
public struct SerialStreamStatistics: Sendable, Hashable {
    /// Valid frames delivered.
    public var frames = 0
    /// Candidates with a correct structure and a wrong checksum.
    public var checksumErrors = 0
    /// Candidates rejected for any other reason (wrong length, wrong trailer, bad escape, cut off).
    public var malformedFrames = 0
    /// Bytes dropped outside of delivered frames: noise, and the bytes of rejected candidates.
    public var skippedBytes = 0

    public init() {}
}

/// A resynchronising decoder: feed it bytes as they arrive, in any split, and take out the valid frames.
///
/// It scans for a byte that can start a frame, lets the format judge the bytes from there, and after a rejection
/// drops as few bytes as the format says (usually one) before looking again, so a real frame that follows noise or
/// a false start is still found. Counters tell how much was noise and how many frames failed their checksum.
///
/// ```swift
/// var decoder = SDS011StreamDecoder()
/// decoder.append(try await port.read(maxCount: 64, timeout: .seconds(1)))
/// while let frame = decoder.next() { … }
/// ```
public struct SerialStreamDecoder<Format: SerialFrameFormat>: Sendable {
    private var buffer: [UInt8] = []
    /// Index of the first byte not yet consumed; the bytes before it are dropped lazily, in batches.
    private var start = 0
    /// What the decoder has seen since it was created.
    public private(set) var statistics = SerialStreamStatistics()
    /// The most recent rejection, for logs and tests.
    public private(set) var lastRejection: Format.Failure?

    public init() {}

    /// Bytes received but not yet part of a delivered frame or dropped.
    public var bufferedByteCount: Int { self.buffer.count - self.start }

    /// Adds bytes as they came off the line.
    public mutating func append(_ bytes: [UInt8]) {
        self.buffer.append(contentsOf: bytes)
    }

    /// Adds bytes as they came off the line.
    public mutating func append(_ bytes: ArraySlice<UInt8>) {
        self.buffer.append(contentsOf: bytes)
    }

    /// Forgets every buffered byte (after a port was flushed); the statistics stay.
    public mutating func discardBufferedBytes() {
        self.statistics.skippedBytes += self.bufferedByteCount
        self.buffer.removeAll(keepingCapacity: true)
        self.start = 0
    }

    /// The next valid frame in the bytes appended so far, or nil when more bytes are needed.
    public mutating func next() -> Format.Frame? {
        defer { self.compact() }
        while true {
            while self.start < self.buffer.count, !Format.canStartFrame(self.buffer[self.start]) {
                self.start += 1
                self.statistics.skippedBytes += 1
            }
            let remaining = self.buffer.count - self.start
            guard remaining > 0 else { return nil }

            switch Format.scan(self.buffer[self.start...]) {
            case .incomplete:
                guard remaining >= Format.maximumFrameLength else { return nil }
                self.reject(Format.frameTooLong(remaining), skip: 1)
            case .frame(let frame, let length):
                self.start += min(max(length, 1), remaining)
                self.statistics.frames += 1
                return frame
            case .rejected(let failure, let skip):
                self.reject(failure, skip: min(max(skip, 1), remaining))
            case .padding(let skip):
                let dropped = min(max(skip, 1), remaining)
                self.start += dropped
                self.statistics.skippedBytes += dropped
            }
        }
    }

    private mutating func reject(_ failure: Format.Failure, skip: Int) {
        if Format.isChecksumFailure(failure) {
            self.statistics.checksumErrors += 1
        } else {
            self.statistics.malformedFrames += 1
        }
        self.lastRejection = failure
        self.start += skip
        self.statistics.skippedBytes += skip
    }

    /// Drops consumed bytes once they are the larger part of the buffer, so appends stay amortised O(1).
    private mutating func compact() {
        if self.start == self.buffer.count {
            self.buffer.removeAll(keepingCapacity: true)
            self.start = 0
        } else if self.start > 512, self.start * 2 > self.buffer.count {
            self.buffer.removeFirst(self.start)
            self.start = 0
        }
    }
}

extension ArraySlice where Element == UInt8 {
    /// The byte `offset` bytes from the start of the slice (slices keep their parent's indices).
    @inline(__always)
    func byte(atOffset offset: Int) -> UInt8 { self[self.startIndex + offset] }
}
