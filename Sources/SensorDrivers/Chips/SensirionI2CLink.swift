import Synchronization

/// A Sensirion command code: one byte on the SHT4x, two bytes (most significant first) on the others. Commands
/// carry no CRC; only their argument words do.
struct SensirionCommand: Sendable, Hashable, CustomStringConvertible {
    /// The bytes that go on the wire.
    let bytes: [UInt8]

    /// A 16-bit command (SHT3x, SCD30, SCD4x, SPS30).
    init(_ code: UInt16) {
        self.bytes = [UInt8(truncatingIfNeeded: code >> 8), UInt8(truncatingIfNeeded: code)]
    }

    /// An 8-bit command (SHT4x).
    init(byte: UInt8) {
        self.bytes = [byte]
    }

    /// The command as a number, for errors: 0x00FD for the SHT4x's 0xFD.
    var code: UInt16 { self.bytes.reduce(0) { $0 << 8 | UInt16($1) } }

    var description: String { self.bytes.count == 1 ? SensirionWords.hex(self.bytes[0]) : SensirionWords.hex(self.code) }
}

/// Why a conversation with a Sensirion chip produced no data. Drivers turn it into their own typed error,
/// which names the chip and tells a resident what to check.
enum SensirionLinkFailure: Error, Sendable, Hashable {
    /// The answer to `command` failed its CRC on every attempt; `error` is the last failure.
    case checksum(command: SensirionCommand, error: SensirionWordError)
    /// The chip NACKed every read of the answer to `command`: it never finished.
    case notReady(command: SensirionCommand)
}

/// The conversation every Sensirion I²C chip has, and the bookkeeping drivers share.
///
/// A command goes out as one write message, ending with STOP; after the chip's execution time the answer comes back
/// as a separate read message (`sensors.md` §0: the SCD30 cannot do a repeated start, and none of these chips needs
/// one). A NACK on that read header is how the chips say "not finished yet" (§16.1), so it is reported as "no data"
/// rather than as a bus error. Every word is checked against its CRC; a mismatch is counted in
/// ``checksumErrorCount`` and no word of that answer is used.
final class SensirionI2CLink: Sendable {
    let device: any I2CDevice
    let pause: Pause
    private let checksumErrors = Atomic<Int>(0)

    init(device: any I2CDevice, pause: @escaping Pause) {
        self.device = device
        self.pause = pause
    }

    /// How many answers failed their CRC since the driver was created.
    var checksumErrorCount: Int { self.checksumErrors.load(ordering: .relaxed) }

    /// Sends `command` with its argument words (each followed by its CRC).
    func write(_ command: SensirionCommand, arguments: [UInt16] = []) async throws(I2CError) {
        try await self.device.write(command.bytes + SensirionWords.encode(arguments))
    }

    /// Reads `wordCount` words of an answer already asked for.
    ///
    /// - Returns: the words, or nil when the chip NACKed the read header because it has no data yet.
    /// - Throws: ``SensirionLinkFailure/checksum(command:error:)`` (already counted) when a word fails its CRC,
    ///   ``I2CError`` for any other bus failure.
    func readAnswer(to command: SensirionCommand, wordCount: Int) async throws -> [UInt16]? {
        let bytes: [UInt8]
        do {
            bytes = try await self.device.read(count: wordCount * 3)
        } catch where error.code == .noAcknowledge {
            return nil
        }
        // A short read is what the Linux adapter reports as EIO.
        guard bytes.count == wordCount * 3 else {
            throw I2CError(.io(errno: 5), bus: self.device.busName, address: self.device.address)
        }
        do {
            return try SensirionWords.decode(bytes)
        } catch {
            self.checksumErrors.add(1, ordering: .relaxed)
            throw SensirionLinkFailure.checksum(command: command, error: error)
        }
    }

    /// Sends `command`, waits `executionTime` (if any), then reads `wordCount` words in a separate message.
    ///
    /// - Returns: the words, or nil when the chip NACKed the read header (no data yet).
    func query(
        _ command: SensirionCommand,
        arguments: [UInt16] = [],
        executionTime: Duration,
        wordCount: Int
    ) async throws -> [UInt16]? {
        try await self.write(command, arguments: arguments)
        if executionTime > .zero { try await self.pause(executionTime) }
        return try await self.readAnswer(to: command, wordCount: wordCount)
    }

    /// Like ``query(_:arguments:executionTime:wordCount:)``, but a NACKed read header is read again (the
    /// command is not repeated) up to `notReadyRetries` times, `retryDelay` apart.
    ///
    /// - Throws: ``SensirionLinkFailure/notReady(command:)`` when every read was NACKed.
    func read(
        _ command: SensirionCommand,
        arguments: [UInt16] = [],
        executionTime: Duration,
        wordCount: Int,
        notReadyRetries: Int = 0,
        retryDelay: Duration = .milliseconds(1)
    ) async throws -> [UInt16] {
        if let words = try await self.query(command, arguments: arguments, executionTime: executionTime, wordCount: wordCount) {
            return words
        }
        for _ in 0..<max(0, notReadyRetries) {
            try await self.pause(retryDelay)
            if let words = try await self.readAnswer(to: command, wordCount: wordCount) { return words }
        }
        throw SensirionLinkFailure.notReady(command: command)
    }

    /// Runs `body`, and runs it again after a CRC failure, `attempts` times at most.
    ///
    /// An answer is consumed by reading it, so `body` must ask the chip again (send the command anew, or wait for
    /// the next sample), not re-read.
    func retryingChecksumFailures<T>(attempts: Int, _ body: () async throws -> T) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await body()
            } catch let failure as SensirionLinkFailure {
                guard case .checksum = failure, attempt < attempts else { throw failure }
                attempt += 1
            }
        }
    }
}
