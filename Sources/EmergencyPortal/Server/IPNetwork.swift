#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 network in CIDR form ("127.0.0.0/8", "fd00::/8", or one address): who may read `/metrics`.
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    private let network: [UInt8]
    private let prefixLength: Int
    public let description: String

    /// Loopback only, IPv4 and IPv6: the default audience of `/metrics`.
    public static let loopback: [IPNetwork] = [IPNetwork("127.0.0.0/8")!, IPNetwork("::1/128")!]

    /// `nil` for anything that is not an address with an optional prefix length no longer than the address.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let bytes = Self.bytes(of: String(parts[0])) else { return nil }
        let length = parts.count == 2 ? Int(parts[1]) : bytes.count * 8
        guard let length, (0...bytes.count * 8).contains(length), parts.count == 1 || parts[1].allSatisfy(\.isNumber) else { return nil }
        self.network = Self.masked(bytes, prefixLength: length)
        self.prefixLength = length
        self.description = text
    }

    /// Whether `address` ("10.42.0.23", "::ffff:127.0.0.1", "fd00::17") is in this network.
    public func contains(_ address: String) -> Bool {
        guard let bytes = Self.bytes(of: address), bytes.count == self.network.count else { return false }
        return Self.masked(bytes, prefixLength: self.prefixLength) == self.network
    }

    /// The address's bytes in network order; an IPv4 client of a dual-stack socket is the IPv4 address it is.
    private static func bytes(of text: String) -> [UInt8]? {
        guard let canonical = canonicalIPAddress(text) else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, canonical, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, canonical, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    private static func masked(_ bytes: [UInt8], prefixLength: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let bitsKept = min(8, max(0, prefixLength - index * 8))
            return bitsKept == 0 ? 0 : byte & UInt8(truncatingIfNeeded: 0xFF << (8 - bitsKept))
        }
    }
}
