/// What ``SensirionError`` needs to know about the chip it describes: its name, what a resident can do about its
/// failures, and the failures only it has. The Sensirion drivers (``SHT3x``, ``SHT4x``, ``SCD30``, ``SCD4x``,
/// ``SPS30``) conform.
public protocol SensirionChip {
    /// Failures only this chip has, beside the CRC and "no answer" failures every Sensirion chip has; `Never` for a
    /// chip that has none.
    associatedtype Failure: Sendable, Hashable = Never

    /// The chip's name as residents see it in logs and `doctor` ("SHT3x").
    static var name: String { get }

    /// How many bytes the chip's commands take: 2, or 1 on the SHT4x. Errors print commands at that width, as the
    /// datasheet does ("0x2400", "0xfd").
    static var commandByteCount: Int { get }

    /// What to check when every answer to a command failed its CRC.
    static var checksumAdvice: String { get }

    /// What it means that `command` went unanswered and what to do, where the chip has more to say than
    /// "no answer to 0x…: power-cycle the sensor" (nil).
    static func notReadyExplanation(command: UInt16) -> String?

    /// What a failure only this chip has means, and what to do about it.
    static func explanation(of failure: Failure) -> String
}

extension SensirionChip {
    /// 2: the commands of every Sensirion chip but the SHT4x are 16 bits.
    public static var commandByteCount: Int { 2 }

    /// Nil: "no answer to 0x…: power-cycle the sensor" says it all.
    public static func notReadyExplanation(command: UInt16) -> String? { nil }

    /// `command` as the datasheet writes it, at the chip's command width.
    static func hex(command: UInt16) -> String {
        Self.commandByteCount == 1 ? SensirionWords.hex(UInt8(truncatingIfNeeded: command)) : SensirionWords.hex(command)
    }
}

extension SensirionChip where Failure == Never {
    /// A chip without failures of its own has nothing to explain.
    public static func explanation(of failure: Never) -> String {}
}

extension SensirionChip where Self: SensorDriver {
    /// The chip's ``SensirionChip/name``.
    public var chipName: String { Self.name }
}

/// A Sensirion chip that answered on the bus but not with a usable measurement, with what a resident can do about it.
///
/// Each driver throws its own kind, named for it: ``SHT3xError`` is `SensirionError<SHT3x>`, ``SPS30Error`` is
/// `SensirionError<SPS30>`. The codes every Sensirion chip has are shared; a chip's own failures (an SPS30 fan that
/// stopped) come as ``Code/chip(_:)``.
public struct SensirionError<Chip: SensirionChip>: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// Every answer to `command` had a CRC error, first in word `word`; noise on the wires.
        case checksumMismatch(command: UInt16, word: Int)
        /// `command` went unanswered: the chip NACKed every read of its answer, or, for the data-ready command of a
        /// chip that measures on its own, no sample arrived in time.
        case notReady(command: UInt16)
        /// A failure only this chip has.
        case chip(Chip.Failure)
    }

    public var code: Code
    /// The bus name ("/dev/i2c-1", "sim:i2c-1").
    public var bus: String
    public var address: UInt8

    public init(_ code: Code, bus: String, address: UInt8) {
        self.code = code
        self.bus = bus
        self.address = address
    }

    public var description: String {
        let at = "\(Chip.name) at \(SensirionWords.hex(self.address)) on \(self.bus)"
        switch self.code {
        case .checksumMismatch(let command, let word):
            return "\(at): CRC error in word \(word) of the answer to \(Chip.hex(command: command)), on every attempt: "
                + Chip.checksumAdvice
        case .notReady(let command):
            let explanation = Chip.notReadyExplanation(command: command)
            return "\(at): " + (explanation ?? "no answer to \(Chip.hex(command: command)): power-cycle the sensor")
        case .chip(let failure):
            return "\(at): " + Chip.explanation(of: failure)
        }
    }
}
