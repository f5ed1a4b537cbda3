/// Sensirion's CRC-8, as every Sensirion I²C chip (SHT3x, SHT4x, SCD30, SCD4x, SPS30) puts it after each 16-bit
/// word: polynomial 0x31 (x⁸ + x⁵ + x⁴ + 1), initial value 0xFF, no reflection, no final XOR
/// (`Sensirion/embedded-common sensirion_i2c.c`). The datasheet check value is CRC(0xBE, 0xEF) = 0x92.
public enum SensirionCRC {
    public static let polynomial: UInt8 = 0x31
    public static let initialValue: UInt8 = 0xFF

    /// The CRC of `bytes`, processed most significant bit first.
    public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt8 {
        var crc = Self.initialValue
        for byte in bytes {
            crc ^= byte
            for _ in 0..<8 {
                crc = crc & 0x80 != 0 ? (crc << 1) ^ Self.polynomial : crc << 1
            }
        }
        return crc
    }

    /// The CRC of one word as it goes on the wire: most significant byte first.
    public static func checksum(of word: UInt16) -> UInt8 {
        Self.checksum([UInt8(truncatingIfNeeded: word >> 8), UInt8(truncatingIfNeeded: word)])
    }
}

/// A Sensirion word sequence that did not survive the wire.
public struct SensirionWordError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// Word `word` (0-based) arrived with CRC `received`; its two bytes give `expected`.
        case checksumMismatch(word: Int, received: UInt8, expected: UInt8)
        /// The byte count is not a multiple of three, so the words cannot be separated from their CRCs.
        case incompleteWord(byteCount: Int)
    }

    public var code: Code

    public init(_ code: Code) {
        self.code = code
    }

    public var description: String {
        switch self.code {
        case .checksumMismatch(let word, let received, let expected):
            "CRC mismatch in word \(word): received \(SensirionWords.hex(received)), computed \(SensirionWords.hex(expected))"
        case .incompleteWord(let byteCount):
            "\(byteCount) bytes are not whole [MSB, LSB, CRC] words"
        }
    }
}

/// The framing every Sensirion I²C chip uses: 16-bit commands without CRC, then 16-bit data words sent
/// most significant byte first, each followed by its ``SensirionCRC``.
public enum SensirionWords {
    /// `[MSB, LSB, CRC]` for each word.
    public static func encode(_ words: [UInt16]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(words.count * 3)
        for word in words {
            bytes.append(UInt8(truncatingIfNeeded: word >> 8))
            bytes.append(UInt8(truncatingIfNeeded: word))
            bytes.append(SensirionCRC.checksum(of: word))
        }
        return bytes
    }

    /// The words in `bytes`, each checked against its CRC.
    ///
    /// - Throws: ``SensirionWordError`` naming the first word whose CRC does not match, so no word after a
    ///   corrupted one is trusted either.
    public static func decode(_ bytes: [UInt8]) throws(SensirionWordError) -> [UInt16] {
        guard bytes.count % 3 == 0 else { throw SensirionWordError(.incompleteWord(byteCount: bytes.count)) }
        var words: [UInt16] = []
        words.reserveCapacity(bytes.count / 3)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let word = UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1])
            let expected = SensirionCRC.checksum(of: word)
            let received = bytes[index + 2]
            guard received == expected else {
                throw SensirionWordError(.checksumMismatch(word: words.count, received: received, expected: expected))
            }
            words.append(word)
            index += 3
        }
        return words
    }

    /// A 16-bit command followed by its argument words (each with CRC), as written to the chip.
    public static func command(_ code: UInt16, arguments: [UInt16] = []) -> [UInt8] {
        [UInt8(truncatingIfNeeded: code >> 8), UInt8(truncatingIfNeeded: code)] + Self.encode(arguments)
    }

    /// The IEEE-754 single that two words carry, most significant word first (SCD30, SPS30 float format).
    public static func float(high: UInt16, low: UInt16) -> Float {
        Float(bitPattern: UInt32(high) << 16 | UInt32(low))
    }

    /// The two words that carry `value`, most significant word first.
    public static func words(of value: Float) -> [UInt16] {
        let bits = value.bitPattern
        return [UInt16(truncatingIfNeeded: bits >> 16), UInt16(truncatingIfNeeded: bits)]
    }

    /// Pairs of words read as big-endian floats; an odd last word is ignored.
    public static func floats(from words: [UInt16]) -> [Float] {
        stride(from: 0, to: words.count - 1, by: 2).map { Self.float(high: words[$0], low: words[$0 + 1]) }
    }

    /// The 32-bit value two words carry, most significant word first (SPS30 status register).
    public static func uint32(high: UInt16, low: UInt16) -> UInt32 {
        UInt32(high) << 16 | UInt32(low)
    }
}

extension SensirionWords {
    /// "0x5a": how bytes and addresses are written in Sensirion datasheets and `i2cdetect`.
    static func hex(_ value: UInt8) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 2 - digits.count)) + digits
    }

    /// "0x21b1": a 16-bit command or word.
    static func hex(_ value: UInt16) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
