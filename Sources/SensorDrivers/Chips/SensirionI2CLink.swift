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

/// How a chip that measures on its own (SCD30, SCD4x, SPS30) says that a sample waits, and hands it over.
struct SensirionSampling: Sendable {
    /// The data-ready command, and whether its answer word says a sample waits.
    var dataReady: SensirionCommand
    var isReady: @Sendable (UInt16) -> Bool
    /// The read-measurement command, and how many words its answer has.
    var readMeasurement: SensirionCommand
    var wordCount: Int
    /// The wait between either command and the read of its answer.
    var executionTime: Duration
    /// The wait between data-ready polls, and how many polls are made before the chip counts as hung.
    var pollInterval: Duration
    var maximumPolls: Int
    /// Whether the chip NACKs read-measurement when it has no data after all (SCD4x): polling then goes on, where
    /// for other chips the unanswered read is a failure.
    var pollsOnWhenMeasurementIsMissing = false
    /// Samples discarded after each start while the chip settles.
    var warmUpSamples: Int
}

/// The conversation every Sensirion I²C chip has, and the bookkeeping drivers share.
///
/// A command goes out as one write message, ending with STOP; after the chip's execution time the answer comes back
/// as a separate read message (`sensors.md` §0: the SCD30 cannot do a repeated start, and none of these chips needs
/// one). A NACK on that read header is how the chips say "not finished yet" (§16.1), so it is reported as "no data"
/// and the header read again, not as a bus error. Every word is checked against its CRC; a mismatch is counted in
/// ``checksumErrorCount``, no word of that answer is used, and the chip is asked again.
///
/// The link also keeps whether the chip is set up (``measure(initialise:_:)``) and, for chips that measure on their
/// own, how many samples it took since it was started (``sampleAfterWarmUp(_:)``). Failures are thrown as
/// ``SensirionError`` of `Chip`, or as ``I2CError`` when the bus fails.
final class SensirionI2CLink<Chip: SensirionChip>: Sendable {
    let device: any I2CDevice
    let pause: Pause
    /// How many times an answer that fails its CRC is asked for in all, at least 1.
    let checksumAttempts: Int
    /// Re-reads of a NACKed answer, `retryDelay` apart, before the command counts as unanswered.
    let notReadyRetries: Int
    let retryDelay: Duration

    private struct Cycle {
        var initialised = false
        var samplesSinceStart = 0
    }

    private let checksumErrors = Atomic<Int>(0)
    private let cycle = Mutex(Cycle())

    init(
        device: any I2CDevice,
        pause: @escaping Pause,
        checksumAttempts: Int,
        notReadyRetries: Int,
        retryDelay: Duration = .milliseconds(1)
    ) {
        self.device = device
        self.pause = pause
        self.checksumAttempts = max(1, checksumAttempts)
        self.notReadyRetries = max(0, notReadyRetries)
        self.retryDelay = retryDelay
    }

    /// How many answers failed their CRC since the driver was created.
    var checksumErrorCount: Int { self.checksumErrors.load(ordering: .relaxed) }

    /// A ``SensirionError`` naming this chip, bus and address.
    func error(_ code: SensirionError<Chip>.Code) -> SensirionError<Chip> {
        SensirionError(code, bus: self.device.busName, address: self.device.address)
    }

    // MARK: - Commands and answers

    /// Sends `command` with its argument words (each followed by its CRC).
    func write(_ command: SensirionCommand, arguments: [UInt16] = []) async throws(I2CError) {
        try await self.device.write(command.bytes + SensirionWords.encode(arguments))
    }

    /// Sends `command`, waits `executionTime` (if any), then reads `wordCount` words in a separate message.
    ///
    /// A NACKed read header is read again (the command is not repeated) up to ``notReadyRetries`` times,
    /// ``retryDelay`` apart. An answer that fails its CRC is asked for again, the command sent anew, up to
    /// ``checksumAttempts`` times in all.
    ///
    /// - Throws: ``SensirionError/Code/notReady(command:)`` when every read was NACKed,
    ///   ``SensirionError/Code/checksumMismatch(command:word:)`` when every answer failed its CRC, ``I2CError``
    ///   for any other bus failure.
    func read(
        _ command: SensirionCommand,
        arguments: [UInt16] = [],
        executionTime: Duration,
        wordCount: Int
    ) async throws -> [UInt16] {
        try await self.retryingChecksumFailures {
            try await self.readOnce(command, arguments: arguments, executionTime: executionTime, wordCount: wordCount)
        }
    }

    /// Runs `body`, and runs it again after a CRC failure, ``checksumAttempts`` times at most.
    ///
    /// An answer is consumed by reading it, so `body` must ask the chip again (send the command anew, or wait for
    /// the next sample), not re-read.
    private func retryingChecksumFailures<T>(_ body: () async throws -> T) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await body()
            } catch let error as SensirionError<Chip> {
                guard case .checksumMismatch = error.code, attempt < self.checksumAttempts else { throw error }
                attempt += 1
            }
        }
    }

    /// ``read(_:arguments:executionTime:wordCount:)`` without asking again after a CRC failure.
    private func readOnce(
        _ command: SensirionCommand,
        arguments: [UInt16] = [],
        executionTime: Duration,
        wordCount: Int
    ) async throws -> [UInt16] {
        try await self.write(command, arguments: arguments)
        if executionTime > .zero { try await self.pause(executionTime) }
        if let words = try await self.readAnswer(to: command, wordCount: wordCount) { return words }
        for _ in 0..<self.notReadyRetries {
            try await self.pause(self.retryDelay)
            if let words = try await self.readAnswer(to: command, wordCount: wordCount) { return words }
        }
        throw self.error(.notReady(command: command.code))
    }

    /// Reads `wordCount` words of an answer already asked for.
    ///
    /// - Returns: the words, or nil when the chip NACKed the read header because it has no data yet.
    /// - Throws: ``SensirionError/Code/checksumMismatch(command:word:)`` (already counted) when a word fails its
    ///   CRC, ``I2CError`` for any other bus failure.
    private func readAnswer(to command: SensirionCommand, wordCount: Int) async throws -> [UInt16]? {
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
            let word = if case .checksumMismatch(let word, _, _) = error.code { word } else { 0 }
            throw self.error(.checksumMismatch(command: command.code, word: word))
        }
    }

    // MARK: - Measurement cycle

    /// Runs `body` on a chip that is set up: `initialise` runs first on the first call and again after any failure,
    /// so a chip that restarted, or that another program changed, is put back in a known state.
    func measure<T>(initialise: () async throws -> Void, _ body: () async throws -> T) async throws -> T {
        do {
            if !self.cycle.withLock({ $0.initialised }) {
                try await initialise()
                self.cycle.withLock { $0.initialised = true }
            }
            return try await body()
        } catch {
            self.cycle.withLock { $0.initialised = false }
            throw error
        }
    }

    /// The chip was (re)started: the warm-up of ``sampleAfterWarmUp(_:)`` begins again.
    func measurementStarted() {
        self.cycle.withLock { $0.samplesSinceStart = 0 }
    }

    /// Waits for the next sample after the warm-up and returns its words. The samples of the warm-up are read and
    /// discarded; a CRC failure anywhere throws the sample away and waits for the next one (a measurement is gone
    /// once read), ``checksumAttempts`` times in all.
    ///
    /// - Throws: ``SensirionError/Code/notReady(command:)`` for the data-ready command when no sample arrived
    ///   within `maximumPolls` polls.
    func sampleAfterWarmUp(_ sampling: SensirionSampling) async throws -> [UInt16] {
        while true {
            let words = try await self.retryingChecksumFailures { try await self.nextSample(sampling) }
            let sampleNumber = self.cycle.withLock { cycle in
                cycle.samplesSinceStart += 1
                return cycle.samplesSinceStart
            }
            if sampleNumber > sampling.warmUpSamples { return words }
        }
    }

    /// Polls data-ready until a sample waits, then reads it.
    private func nextSample(_ sampling: SensirionSampling) async throws -> [UInt16] {
        for poll in 0..<sampling.maximumPolls {
            if poll > 0 { try await self.pause(sampling.pollInterval) }
            let status = try await self.readOnce(sampling.dataReady, executionTime: sampling.executionTime, wordCount: 1)
            guard sampling.isReady(status[0]) else { continue }
            do {
                return try await self.readOnce(
                    sampling.readMeasurement,
                    executionTime: sampling.executionTime,
                    wordCount: sampling.wordCount
                )
            } catch let error as SensirionError<Chip>
                where sampling.pollsOnWhenMeasurementIsMissing && error.code == .notReady(command: sampling.readMeasurement.code)
            {
                // No data after all (the buffer is cleared on read): keep polling.
                continue
            }
        }
        throw self.error(.notReady(command: sampling.dataReady.code))
    }
}
