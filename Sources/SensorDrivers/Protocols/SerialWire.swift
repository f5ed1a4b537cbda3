/// Small byte helpers the serial wire formats share.
enum SerialWire {
    /// "0x0a": bytes as datasheets write them.
    static func hex(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16)
        return "0x" + (digits.count < 2 ? "0" + digits : digits)
    }

    /// The four bytes of `value`, most significant first (SPS30 floats and registers).
    static func bigEndianBytes(_ value: UInt32) -> [UInt8] {
        [
            UInt8(truncatingIfNeeded: value >> 24), UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8),
            UInt8(truncatingIfNeeded: value),
        ]
    }

    /// The big-endian 32-bit value at `offset`; missing bytes read as zero.
    static func bigEndianUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { value, index in
            let position = offset + index
            return value << 8 | UInt32(position >= 0 && position < bytes.count ? bytes[position] : 0)
        }
    }
}
