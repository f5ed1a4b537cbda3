import KiezboxTestSupport
import Testing

/// The link-cut test failed once on CI because two links of its namespace drew the same /30 at random
/// (a 1-in-64 chance per run): the addresses must be distinct by construction, not by luck.
@Suite("Test namespaces' link addresses")
struct NetworkNamespaceAddressTests {
    @Test("links of one namespace never share a subnet", arguments: [2, 8, 64])
    func distinctSubnets(links: Int) {
        for _ in 0..<1_000 {
            let pairs = NetworkNamespace.linkAddresses(count: links)
            let subnets = Set(pairs.map { pair in pair.inside.split(separator: ".").dropLast().joined(separator: ".") + "/\(Int(pair.inside.split(separator: ".").last!)! / 4)" })
            #expect(subnets.count == links)
            #expect(Set(pairs.map(\.inside)).count == links)
            #expect(Set(pairs.map(\.outside)).count == links)
        }
    }
}
