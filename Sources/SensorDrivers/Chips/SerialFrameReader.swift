/// Reads a serial port through a resynchronising decoder until the frame a driver waits for arrives.
///
/// Every wait is bounded three ways, so a silent, babbling or noisy line always ends the wait: a read that brings
/// nothing within `timeout` ends it, and so do ``maximumBytesPerWait`` bytes or ``maximumSkippedFrames`` frames
/// that were not the one wanted. The last bound is what ends the wait for a lost reply from a sensor in active
/// mode, which streams a measurement every second: such a wait lasts about ten seconds instead of `timeout`.
/// Counting frames rather than reading a clock keeps drivers deterministic on simulated ports.
struct SerialFrameReader<Format: SerialFrameFormat> {
    let port: any SerialPort
    private(set) var decoder = SerialStreamDecoder<Format>()

    /// Bytes read while waiting for one frame before giving up.
    static var maximumBytesPerWait: Int { 8192 }
    /// Frames of other kinds skipped while waiting for one frame before giving up.
    static var maximumSkippedFrames: Int { 10 }
    /// Bytes asked for per read.
    static var readSize: Int { 256 }

    init(port: any SerialPort) {
        self.port = port
    }

    /// Valid frames delivered, checksum failures and noise so far.
    var statistics: SerialStreamStatistics { self.decoder.statistics }

    /// The first frame `accept` maps to a value; frames it maps to nil are skipped. Nil when the wait ran out.
    mutating func next<Value>(timeout: Duration, _ accept: (Format.Frame) -> Value?) async throws(SerialError) -> Value? {
        var bytesRead = 0
        var skippedFrames = 0
        while true {
            while let frame = self.decoder.next() {
                if let value = accept(frame) { return value }
                skippedFrames += 1
                if skippedFrames >= Self.maximumSkippedFrames { return nil }
            }
            guard bytesRead < Self.maximumBytesPerWait else { return nil }
            let bytes = try await self.port.read(maxCount: Self.readSize, timeout: timeout)
            if bytes.isEmpty { return nil }
            bytesRead += bytes.count
            self.decoder.append(bytes)
        }
    }

    /// Throws away what has arrived so far (frames sent during a warm-up, a stale half frame): reads without waiting
    /// until the port has nothing more, or `maximumBytes` bytes were discarded.
    mutating func discardPending(maximumBytes: Int = 16384) async throws(SerialError) {
        var discarded = 0
        while discarded < maximumBytes {
            let bytes = try await self.port.read(maxCount: Self.readSize, timeout: .zero)
            if bytes.isEmpty { break }
            discarded += bytes.count
        }
        self.decoder.discardBufferedBytes()
    }
}
