import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A network namespace of one test's own, joined to the test process's namespace by veth links, each of
/// which the test can take down and bring back as a broken radio link would: packets in flight are lost and
/// nothing tells the TCP endpoints (no RST, no FIN). Addresses come from 10.150.0.0–10.199.255.255, a /30
/// per link, chosen at random (the mesh tests use 10.200 and above). The namespace and its links are removed
/// by ``with(links:_:)`` whatever happens.
public final class NetworkNamespace: Sendable {
    /// One veth pair: `outside` stays in the test's namespace, its peer lives in the namespace.
    public struct Link: Sendable {
        public let outside: String
        public let inside: String
        /// The address of `outside`, in the test's namespace.
        public let outsideAddress: String
        /// The address of the peer, inside the namespace: what the test process connects to.
        public let insideAddress: String
    }

    public let name: String
    public let links: [Link]

    /// Why namespaces cannot be used here (not root, no `ip`, `ip netns add` refused), or `nil` when they can.
    /// Found out by creating and deleting a namespace, once per process.
    public static let unavailableReason: String? = {
        guard getuid() == 0 else { return "network namespaces need root (uid \(getuid()))" }
        guard FileManager.default.isExecutableFile(atPath: ipTool) else { return "\(ipTool) is missing (scripts/install-deps.sh)" }
        let probe = "kbxprobe\(getpid() % 100_000)"
        do {
            try runTool(ipTool, ["netns", "add", probe])
            try runTool(ipTool, ["netns", "del", probe])
            return nil
        } catch {
            return "ip netns does not work here: \(error)"
        }
    }()

    static let ipTool = "/usr/sbin/ip"
    /// Names and subnets come from a counter, unique in this process, not from chance.
    private static let namespacesMade = Atomic<Int>(0)
    private static let subnetBase = Int.random(in: 0..<256)

    /// Creates a namespace with `links` links (their loopback up), runs `body`, and deletes the namespace (which
    /// removes the links with it) also when `body` throws. Processes started in the namespace must be ended by
    /// `body` itself (for example a ``MosquittoBroker`` started inside it, which `with` stops).
    public static func with<T: Sendable>(links: Int, _ body: (NetworkNamespace) async throws -> T) async throws -> T {
        let namespace = try NetworkNamespace(linkCount: links)
        do {
            let result = try await body(namespace)
            namespace.delete()
            return result
        } catch {
            namespace.delete()
            throw error
        }
    }

    private init(linkCount: Int) throws {
        // Interface names must stay within 15 characters.
        let number = Self.namespacesMade.add(1, ordering: .relaxed).oldValue
        let tag = "kbn\(getpid() % 10_000)\(number % 100)"
        self.name = tag
        self.links = Self.linkAddresses(count: linkCount, namespaceNumber: number).enumerated().map { index, pair in
            Link(outside: "\(tag)o\(index)", inside: "\(tag)i\(index)", outsideAddress: pair.outside, insideAddress: pair.inside)
        }
        do {
            try Self.ip("netns", "add", self.name)
            try Self.ip("netns", "exec", self.name, "ip", "link", "set", "lo", "up")
            for link in self.links {
                try Self.ip("link", "add", link.outside, "type", "veth", "peer", "name", link.inside)
                try Self.ip("link", "set", link.inside, "netns", self.name)
                try Self.ip("addr", "add", "\(link.outsideAddress)/30", "dev", link.outside)
                try Self.ip("link", "set", link.outside, "up")
                try Self.ip("netns", "exec", self.name, "ip", "addr", "add", "\(link.insideAddress)/30", "dev", link.inside)
                try Self.ip("netns", "exec", self.name, "ip", "link", "set", link.inside, "up")
            }
        } catch {
            self.delete()
            throw error
        }
    }

    /// Addresses for `count` links: consecutive /30s from a random start in a /24 of 10.150–10.199 that is the
    /// namespace's own (by its number in this process),
    /// so two links of one namespace never share a subnet (at most 64 links fit in the /24).
    public static func linkAddresses(count: Int, namespaceNumber number: Int = 0) -> [(outside: String, inside: String)] {
        precondition((1...64).contains(count), "1 to 64 links fit in one /24")
        let prefix = "10.\(150 + number % 50).\((Self.subnetBase + number / 50) % 256)"
        let firstSubnet = Int.random(in: 0...(64 - count))
        return (0..<count).map { index in
            let base = 4 * (firstSubnet + index)
            return (outside: "\(prefix).\(base + 1)", inside: "\(prefix).\(base + 2)")
        }
    }

    /// The command line that runs `arguments` inside the namespace.
    public func command(_ arguments: [String]) -> [String] {
        [Self.ipTool, "netns", "exec", self.name] + arguments
    }

    /// Takes the link down at the test's end: whatever is on the way is lost, both ends keep their sockets.
    public func cut(_ link: Link) throws { try Self.ip("link", "set", link.outside, "down") }

    /// Brings the link back up.
    public func restore(_ link: Link) throws { try Self.ip("link", "set", link.outside, "up") }

    private func delete() {
        _ = try? Self.ip("netns", "del", self.name)
        for link in self.links {
            _ = try? Self.ip("link", "del", link.outside)  // gone with the namespace already, normally
        }
    }

    @discardableResult
    private static func ip(_ arguments: String...) throws -> String {
        try runTool(self.ipTool, arguments)
    }
}
