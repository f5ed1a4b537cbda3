import Foundation
import Testing

@Suite("kiezbox token generate")
struct TokenCommandTests {
    @Test("prints a token once and [[authority]] lines whose token_sha256 is the token's SHA-256")
    func generate() throws {
        let directory = FileManager.default.temporaryDirectory.path
        let result = try runKiezbox(["token", "generate", "--name", #"Feuerwehr "Lage" \ Nord"#], in: directory)
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let token = try #require(lines.first { $0.hasPrefix("    ") }?.trimmingCharacters(in: .whitespaces))
        #expect(token.count == 43)
        #expect(lines.contains("[[authority]]"))
        #expect(lines.contains(#"name = "Feuerwehr \"Lage\" \\ Nord""#))
        let digestLine = try #require(lines.first { $0.hasPrefix("token_sha256 = ") })
        let digest = digestLine.dropFirst("token_sha256 = \"".count).dropLast()
        #expect(digest.count == 64)
        #expect(String(digest) == (try sha256Hex(token)))
        #expect(result.stdout.components(separatedBy: token).count == 2, "the token is printed exactly once")
    }

    @Test("an empty name is refused")
    func emptyName() throws {
        let result = try runKiezbox(["token", "generate", "--name", " "], in: FileManager.default.temporaryDirectory.path)
        #expect(result.status != 0)
        #expect(result.stderr.contains("--name"))
    }

    /// The digest from coreutils' sha256sum: an independent implementation.
    private func sha256Hex(_ text: String) throws -> String {
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-token-\(UUID().uuidString)")
        try Data(text.utf8).write(to: input)
        defer { try? FileManager.default.removeItem(at: input) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        process.arguments = [input.path]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(String(decoding: data, as: UTF8.self).prefix(64))
    }
}
