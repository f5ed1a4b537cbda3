/// An IPv4 address, for the emergency Wi-Fi's own addressing (the box, the DHCP range). Only the dotted-quad
/// form is accepted: dnsmasq and nftables are given exactly what the resident wrote, so no shorthand.
struct IPv4Address: Sendable, Hashable, Comparable, CustomStringConvertible {
    var value: UInt32

    init(_ value: UInt32) { self.value = value }

    /// "10.42.0.1"; `nil` for anything else (leading zeros included, which some tools read as octal).
    init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                part == "0" || !part.hasPrefix("0"), let octet = UInt32(part), octet <= 255
            else { return nil }
            value = value << 8 | octet
        }
        self.value = value
    }

    var description: String {
        [24, 16, 8, 0].map { String(self.value >> UInt32($0) & 0xFF) }.joined(separator: ".")
    }

    /// The network mask for a prefix length (0–32).
    static func mask(prefixLength: Int) -> IPv4Address {
        IPv4Address(prefixLength == 0 ? 0 : UInt32.max << UInt32(32 - prefixLength))
    }

    /// Whether `self` and `other` are in the same network of the given prefix length.
    func sharesNetwork(with other: IPv4Address, prefixLength: Int) -> Bool {
        let mask = Self.mask(prefixLength: prefixLength).value
        return self.value & mask == other.value & mask
    }

    static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.value < rhs.value }
}
