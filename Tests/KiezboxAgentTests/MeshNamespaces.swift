import Foundation
import Synchronization
import Testing

/// Boxes in network namespaces of their own, joined by a bridge like boxes on the Freifunk mesh: each has
/// one link to the bridge that a test can cut and restore. The test process reaches every box through the
/// bridge's own address. Namespaces, links and the bridge are removed when the mesh is torn down.
final class MeshNamespaces: @unchecked Sendable {
    // @unchecked: set up once in init, then only read; `tearDown` runs once at the end of a test.
    let prefix: String
    let subnet: String
    let boxes: [String]

    private static let meshesMade = Atomic<Int>(0)
    /// Where this process's subnets start, so that two test processes at once are unlikely to meet.
    private static let subnetBase = Int.random(in: 0..<250)

    /// Whether this process may create namespaces (root, and `ip` present).
    static var available: Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")
    }

    /// - Parameter boxes: short names ("a", "b", "c"); box i gets address <subnet>.(i+1).
    init(boxes: [String]) throws {
        // Names and subnets unique in this process by a counter, not by chance: two suites drew the same random
        // tag once and tripped over each other's bridge (interface names must stay within 15 characters).
        let number = Self.meshesMade.add(1, ordering: .relaxed).oldValue
        self.prefix = "kbx" + String(UInt32(getpid()) % 10_000) + String(number % 100)
        self.subnet = "10.\(200 + number % 50).\(1 + (Self.subnetBase + number / 50) % 250)"
        self.boxes = boxes
        do {
            try Self.ip("link", "add", self.bridge, "type", "bridge")
            try Self.ip("addr", "add", "\(self.subnet).254/24", "dev", self.bridge)
            try Self.ip("link", "set", self.bridge, "up")
            for (index, box) in boxes.enumerated() {
                let namespace = self.namespace(box)
                try Self.ip("netns", "add", namespace)
                try Self.ip("link", "add", self.inside(box), "type", "veth", "peer", "name", self.outside(box))
                try Self.ip("link", "set", self.inside(box), "netns", namespace)
                try Self.ip("link", "set", self.outside(box), "master", self.bridge)
                try Self.ip("link", "set", self.outside(box), "up")
                try Self.ip("netns", "exec", namespace, "ip", "addr", "add", "\(self.subnet).\(index + 1)/24", "dev", self.inside(box))
                try Self.ip("netns", "exec", namespace, "ip", "link", "set", self.inside(box), "up")
                try Self.ip("netns", "exec", namespace, "ip", "link", "set", "lo", "up")
            }
        } catch {
            self.tearDown()
            throw error
        }
    }

    var bridge: String { self.prefix + "br" }
    func namespace(_ box: String) -> String { self.prefix + box }
    /// The box's end of its link, inside its namespace.
    func inside(_ box: String) -> String { self.prefix + box + "i" }
    private func outside(_ box: String) -> String { self.prefix + box + "o" }

    /// The box's address on the mesh.
    func address(_ box: String) -> String {
        "\(self.subnet).\((self.boxes.firstIndex(of: box) ?? 0) + 1)"
    }

    /// Takes the box's link to the mesh down, as a broken radio link would.
    func cut(_ box: String) throws { try Self.ip("link", "set", self.outside(box), "down") }

    /// Brings the box's link back.
    func restore(_ box: String) throws { try Self.ip("link", "set", self.outside(box), "up") }

    /// The command line that runs `arguments` inside the box's namespace.
    func inNamespace(_ box: String, _ arguments: [String]) -> [String] {
        ["/usr/sbin/ip", "netns", "exec", self.namespace(box)] + arguments
    }

    func tearDown() {
        for box in self.boxes {
            _ = try? Self.ip("netns", "del", self.namespace(box))
        }
        _ = try? Self.ip("link", "del", self.bridge)
    }

    struct CommandFailed: Error, CustomStringConvertible {
        var description: String
    }

    @discardableResult
    static func ip(_ arguments: String...) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw CommandFailed(description: "ip \(arguments.joined(separator: " ")): \(text)")
        }
        return text
    }
}
