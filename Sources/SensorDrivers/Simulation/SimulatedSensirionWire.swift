import Synchronization

/// The I²C side every simulated Sensirion chip shares: the framing (words with CRC), the transfer log, the chip's
/// execution time, and the wiring faults a test or demo can inject.
///
/// Each simulated chip (``SimulatedSHT3x``, ``SimulatedSHT4x``, ``SimulatedSCD30``, ``SimulatedSCD4x``,
/// ``SimulatedSPS30``) owns one, as `wire`:
///
/// ```swift
/// let chip = SimulatedSHT4x()
/// chip.wire.corruptChecksums(ofNextWords: 1)   // the next word read back carries a wrong CRC
/// chip.wire.setExecutionTime(prematureReads: 2) // two reads are NACKed before each answer is ready
/// ```
public final class SimulatedSensirionWire: Sendable {
    /// One transfer as the chip saw it on the wire.
    public enum Transfer: Sendable, Hashable {
        /// A write message the chip acknowledged.
        case write([UInt8])
        /// A read message of `count` bytes the chip answered.
        case read(count: Int)
        /// A write the chip NACKed (a fault, an unknown command, a bad argument CRC, a refused state).
        case nackedWrite([UInt8])
        /// A read the chip NACKed (no answer ready yet, or a fault).
        case nackedRead(count: Int)
    }

    private struct State {
        var transfers: [Transfer] = []
        var nacksLeft = 0
        var corruptWordsLeft = 0
        var intactWordsBeforeCorruption = 0
        var garbageReadsLeft = 0
        var prematureReads = 0
        /// xorshift32 state for garbage bytes: deterministic, so tests are repeatable.
        var garbageSeed: UInt32 = 0x2545_F491

        mutating func garbage(count: Int) -> [UInt8] {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(count)
            for _ in 0..<count {
                self.garbageSeed ^= self.garbageSeed << 13
                self.garbageSeed ^= self.garbageSeed >> 17
                self.garbageSeed ^= self.garbageSeed << 5
                bytes.append(UInt8(truncatingIfNeeded: self.garbageSeed))
            }
            if count >= 3 {
                let wordCRC = SensirionCRC.checksum(bytes[0..<2])
                if bytes[2] == wordCRC { bytes[2] = ~wordCRC }
            }
            return bytes
        }
    }

    private let state = Mutex(State())

    /// A wire without faults, with answers ready at the first read.
    public init() {}

    // MARK: Faults and timing

    /// NACKs the next `count` transfers of any kind, as a loose wire or a brown-out does.
    public func nackNextTransfers(_ count: Int) {
        self.state.withLock { $0.nacksLeft = max(0, count) }
    }

    /// Sends the next `count` words read from the chip with a wrong CRC (the data bytes stay right), after letting
    /// `skipping` words through intact (to hit, say, the humidity word of the next answer).
    public func corruptChecksums(ofNextWords count: Int, skipping: Int = 0) {
        self.state.withLock { state in
            state.corruptWordsLeft = max(0, count)
            state.intactWordsBeforeCorruption = max(0, skipping)
        }
    }

    /// Answers the next `count` reads with noise instead of the chip's words, as a disturbed bus does. The noise
    /// always breaks the first word's CRC, so a driver can tell; the chip's answer is consumed all the same.
    public func sendGarbage(onNextReads count: Int) {
        self.state.withLock { $0.garbageReadsLeft = max(0, count) }
    }

    /// How many reads each answer NACKs before it is ready: the chip's execution time, counted in premature reads
    /// (default 0: ready at the first read). `Int.max` makes a chip that never finishes.
    public func setExecutionTime(prematureReads: Int) {
        self.state.withLock { $0.prematureReads = max(0, prematureReads) }
    }

    /// The execution time set by ``setExecutionTime(prematureReads:)``.
    public var prematureReads: Int { self.state.withLock { $0.prematureReads } }

    /// Ends the NACK, CRC and garbage faults; the execution time stays.
    public func clearFaults() {
        self.state.withLock { state in
            state.nacksLeft = 0
            state.corruptWordsLeft = 0
            state.intactWordsBeforeCorruption = 0
            state.garbageReadsLeft = 0
        }
    }

    // MARK: Inspection

    /// Every transfer since creation or the last ``clearTransfers()``.
    public var transfers: [Transfer] { self.state.withLock { $0.transfers } }

    /// The acknowledged writes only: what the chip took as commands.
    public var acknowledgedWrites: [[UInt8]] {
        self.transfers.compactMap { if case .write(let bytes) = $0 { bytes } else { nil } }
    }

    /// How many reads the chip NACKed.
    public var nackedReadCount: Int {
        self.transfers.count { if case .nackedRead = $0 { true } else { false } }
    }

    /// Forgets the recorded transfers.
    public func clearTransfers() {
        self.state.withLock { $0.transfers.removeAll() }
    }

    // MARK: Serving transfers (for the chips)

    /// Serves one write message. A NACK fault refuses it before the chip sees it; `execute` may refuse it too (an
    /// unknown command, a bad argument CRC). `execute` gets the execution time to give its answer.
    func receive(_ bytes: [UInt8], _ execute: (_ prematureReads: Int) throws(I2CError.Code) -> Void) throws(I2CError.Code) {
        let (nacked, prematureReads) = self.state.withLock { state in
            guard state.nacksLeft == 0 else {
                state.nacksLeft -= 1
                return (true, 0)
            }
            return (false, state.prematureReads)
        }
        if nacked {
            self.record(.nackedWrite(bytes))
            throw .noAcknowledge
        }
        do {
            try execute(prematureReads)
        } catch {
            self.record(.nackedWrite(bytes))
            throw error
        }
        self.record(.write(bytes))
    }

    /// Serves one read message of `count` bytes: `answer` gives the words, or throws `.noAcknowledge` when the chip
    /// has nothing (ready) to send. Bytes past the answer read as 0xFF, the idle level of a pulled-up SDA.
    func transmit(count: Int, _ answer: () throws(I2CError.Code) -> [UInt16]) throws(I2CError.Code) -> [UInt8] {
        let nacked = self.state.withLock { state in
            guard state.nacksLeft == 0 else {
                state.nacksLeft -= 1
                return true
            }
            return false
        }
        if nacked {
            self.record(.nackedRead(count: count))
            throw .noAcknowledge
        }
        let words: [UInt16]
        do {
            words = try answer()
        } catch {
            self.record(.nackedRead(count: count))
            throw error
        }
        let bytes = self.state.withLock { state in
            state.transfers.append(.read(count: count))
            if state.garbageReadsLeft > 0 {
                state.garbageReadsLeft -= 1
                return state.garbage(count: count)
            }
            var bytes = SensirionWords.encode(words)
            for crcIndex in stride(from: 2, to: bytes.count, by: 3) where state.corruptWordsLeft > 0 {
                if state.intactWordsBeforeCorruption > 0 {
                    state.intactWordsBeforeCorruption -= 1
                    continue
                }
                bytes[crcIndex] ^= 0x5A
                state.corruptWordsLeft -= 1
            }
            let padding = [UInt8](repeating: 0xFF, count: max(0, count - bytes.count))
            return Array((bytes + padding).prefix(count))
        }
        return bytes
    }

    private func record(_ transfer: Transfer) {
        self.state.withLock { $0.transfers.append(transfer) }
    }
}

/// The command state machine of a simulated Sensirion chip, kept behind a lock and served through its
/// ``SimulatedSensirionWire``.
protocol SimulatedSensirionState: Sendable {
    /// The answer waiting for the next read.
    var answer: SensirionAnswer? { get set }
    /// Executes one write message the wire let through; `prematureReads` is the execution time to give its answer.
    /// Throwing refuses the message (NACK).
    mutating func execute(_ bytes: [UInt8], prematureReads: Int) throws(I2CError.Code)
    /// The words for one read message the wire let through; throwing `.noAcknowledge` NACKs the read.
    mutating func transmit() throws(I2CError.Code) -> [UInt16]
}

extension SimulatedSensirionState {
    /// The waiting answer, once (``SensirionAnswer/serve(_:)``).
    mutating func transmit() throws(I2CError.Code) -> [UInt16] {
        try SensirionAnswer.serve(&self.answer)
    }
}

/// A simulated Sensirion chip: a command state machine (`State`) kept behind a lock and served through a
/// ``SimulatedSensirionWire``. Conforming gives the chip its ``SimulatedI2CChip`` side.
protocol SimulatedSensirionChip: SimulatedI2CChip {
    associatedtype State: SimulatedSensirionState
    /// The framing, transfer log, execution time and wiring faults.
    var wire: SimulatedSensirionWire { get }
    /// Runs `body` on the chip's state, under its lock.
    func withState<Result, E: Error>(_ body: (inout State) throws(E) -> Result) throws(E) -> Result
}

extension SimulatedSensirionChip {
    /// The wire serves the message (or a fault refuses it), the state executes it.
    public func receive(_ bytes: [UInt8]) throws(I2CError.Code) {
        try self.withState { state throws(I2CError.Code) in
            try self.wire.receive(bytes) { prematureReads throws(I2CError.Code) in
                try state.execute(bytes, prematureReads: prematureReads)
            }
        }
    }

    /// The state gives the words, the wire frames them (and applies its faults).
    public func transmit(count: Int) throws(I2CError.Code) -> [UInt8] {
        try self.withState { state throws(I2CError.Code) in
            try self.wire.transmit(count: count) { () throws(I2CError.Code) in try state.transmit() }
        }
    }
}

/// An answer a simulated Sensirion chip has ready for the next read, and how many reads it still NACKs first.
struct SensirionAnswer: Sendable {
    var words: [UInt16]
    var prematureReadsLeft: Int
    /// Whether reading this answer empties the chip's measurement buffer (clears data-ready). Only a read that
    /// is actually answered does: a NACKed early read leaves the sample waiting.
    var consumesSample: Bool

    init(_ words: [UInt16], prematureReads: Int, consumesSample: Bool = false) {
        self.words = words
        self.prematureReadsLeft = prematureReads
        self.consumesSample = consumesSample
    }

    /// Serves a read of `answer`: NACK while it is not ready or when there is none; once read, it is gone, as on the
    /// chips (a second read without a new command is NACKed).
    static func serve(_ answer: inout SensirionAnswer?) throws(I2CError.Code) -> [UInt16] {
        guard var pending = answer else { throw .noAcknowledge }
        if pending.prematureReadsLeft > 0 {
            if pending.prematureReadsLeft != .max { pending.prematureReadsLeft -= 1 }
            answer = pending
            throw .noAcknowledge
        }
        answer = nil
        return pending.words
    }
}

/// A write message split into a command and its argument words, as Sensirion chips parse it.
struct SensirionCommandFrame: Sendable {
    let code: UInt16
    let arguments: [UInt16]

    /// Parses `bytes` as a command of `commandBytes` bytes followed by [MSB, LSB, CRC] argument words.
    ///
    /// - Throws: `.noAcknowledge` when an argument's CRC is wrong or a word is incomplete. The datasheets say the
    ///   command is then not executed; whether the chip NACKs the CRC byte or only flags it is not given for every
    ///   part (unverified), so the simulation NACKs, which at least makes the failure visible to the driver.
    init(_ bytes: [UInt8], commandBytes: Int = 2) throws(I2CError.Code) {
        guard bytes.count >= commandBytes else { throw .noAcknowledge }
        self.code = bytes.prefix(commandBytes).reduce(0) { $0 << 8 | UInt16($1) }
        do {
            self.arguments = try SensirionWords.decode(Array(bytes.dropFirst(commandBytes)))
        } catch {
            throw .noAcknowledge
        }
    }
}

extension SimulatedI2CChip {
    /// The raw value nearest to `fraction` of the 16-bit range, for inverting the datasheet conversions.
    static func sixteenBit(_ fraction: Double) -> UInt16 {
        let scaled = (fraction * 65535).rounded()
        guard scaled.isFinite else { return 0 }
        return UInt16(min(max(scaled, 0), 65535))
    }
}
