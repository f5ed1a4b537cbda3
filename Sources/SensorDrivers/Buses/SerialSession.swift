/// A conversation with a device on a serial port: reads through a resynchronising decoder until the frame (or
/// line) a driver waits for arrives, skipping noise, broken frames and frames of other kinds.
///
/// The same session serves binary sensor protocols (SDS011, PMS5003, SHDLC) and line-oriented ones (NMEA, a
/// modem's AT commands, see ``SerialLineFormat``). Every wait is bounded three ways, so a silent, babbling or noisy
/// line always ends the wait: a read that brings nothing within `timeout` ends it, and so do
/// ``Limits/maximumBytesPerWait`` bytes or ``Limits/maximumSkippedFrames`` frames that were not the one wanted.
/// The last bound is what ends the wait for a lost reply from a sensor in active mode, which streams a measurement
/// every second: such a wait lasts about ten seconds instead of `timeout`. Counting frames rather than reading a
/// clock keeps drivers deterministic on simulated ports.
public struct SerialSession<Format: SerialFrameFormat> {
    /// How long one wait may go on, in bytes and in unwanted frames.
    public struct Limits: Sendable, Hashable {
        /// Bytes read while waiting for one frame before giving up.
        public var maximumBytesPerWait: Int
        /// Frames of other kinds skipped while waiting for one frame before giving up.
        public var maximumSkippedFrames: Int
        /// Bytes asked for per read.
        public var readSize: Int

        public init(maximumBytesPerWait: Int = 8192, maximumSkippedFrames: Int = 10, readSize: Int = 256) {
            self.maximumBytesPerWait = maximumBytesPerWait
            self.maximumSkippedFrames = maximumSkippedFrames
            self.readSize = readSize
        }
    }

    public let port: any SerialPort
    public let limits: Limits
    private(set) var decoder = SerialStreamDecoder<Format>()

    public init(port: any SerialPort, limits: Limits = Limits()) {
        self.port = port
        self.limits = limits
    }

    /// Valid frames delivered, checksum failures and noise so far.
    public var statistics: SerialStreamStatistics { self.decoder.statistics }

    /// The most recent rejection by the decoder, for logs.
    public var lastRejection: Format.Failure? { self.decoder.lastRejection }

    /// The first frame `accept` maps to a value; frames it maps to nil are skipped. Nil when the wait ran out.
    public mutating func next<Value>(timeout: Duration, _ accept: (Format.Frame) -> Value?) async throws(SerialError) -> Value? {
        var bytesRead = 0
        var skippedFrames = 0
        while true {
            while let frame = self.decoder.next() {
                if let value = accept(frame) { return value }
                skippedFrames += 1
                if skippedFrames >= self.limits.maximumSkippedFrames { return nil }
            }
            guard bytesRead < self.limits.maximumBytesPerWait else { return nil }
            let bytes = try await self.port.read(maxCount: self.limits.readSize, timeout: timeout)
            if bytes.isEmpty { return nil }
            bytesRead += bytes.count
            self.decoder.append(bytes)
        }
    }

    /// Sends `request` and waits for the first frame `accept` maps to a value, as ``next(timeout:_:)`` does; when the
    /// wait runs out, sends `request` again, `attempts` times in all (at least once). Nil when no attempt got an answer.
    ///
    /// The request/reply-with-retries step of every command protocol on a serial line: a sensor's command and its
    /// reply frame, a modem's AT command and its answer line. A write failure or a port error ends it at once.
    public mutating func exchange<Value>(
        _ request: [UInt8],
        attempts: Int,
        timeout: Duration,
        _ accept: (Format.Frame) -> Value?
    ) async throws(SerialError) -> Value? {
        for _ in 0..<max(1, attempts) {
            try await self.port.write(request)
            if let value = try await self.next(timeout: timeout, accept) { return value }
        }
        return nil
    }

    /// Throws away what has arrived so far (frames sent during a warm-up, a stale half frame): reads without waiting
    /// until the port has nothing more, or `maximumBytes` bytes were discarded.
    public mutating func discardPending(maximumBytes: Int = 16384) async throws(SerialError) {
        var discarded = 0
        while discarded < maximumBytes {
            let bytes = try await self.port.read(maxCount: self.limits.readSize, timeout: .zero)
            if bytes.isEmpty { break }
            discarded += bytes.count
        }
        self.decoder.discardBufferedBytes()
    }
}
