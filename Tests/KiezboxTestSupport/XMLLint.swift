import Foundation

/// The real `xmllint` (libxml2-utils) against the real OASIS CAP 1.2 schema, fetched once by
/// scripts/cap-schema.sh into the user's cache.
public enum XMLLint {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public typealias Result = ToolResult

    public static let executable = "/usr/bin/xmllint"

    /// The repository's scripts/cap-schema.sh, found from this file's place in Tests/KiezboxTestSupport.
    public static let capSchemaScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/cap-schema.sh").path

    /// The schema's path; fails the test with the script's own message when it cannot be had.
    ///
    /// The path is the last line of the script's standard output only: pip's warnings on the first fetch go to
    /// standard error and are not a path.
    public static func capSchema(script: String = capSchemaScript) throws -> String {
        let result = try runToolWithStatus("/bin/bash", [script])
        guard result.status == 0 else {
            throw Failure(description: "\(script) failed (\(result.status)): \(result.output)")
        }
        let path = result.stdout.split(separator: "\n").last.map(String.init) ?? ""
        guard FileManager.default.fileExists(atPath: path) else {
            throw Failure(description: "\(script) printed no schema path: \(result.output)")
        }
        return path
    }

    private static func requireTool() throws {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw Failure(description: "\(executable) is missing: install libxml2-utils (scripts/install-deps.sh tests)")
        }
    }

    /// `xmllint --noout --schema CAP-v1.2.xsd <file>`: status 0 when the document is valid.
    public static func validateCAP(_ document: Data) throws -> Result {
        try requireTool()
        let schema = try capSchema()
        return try withTemporaryFile(document) { path in try runToolWithStatus(executable, ["--noout", "--schema", schema, path]) }
    }

    /// The string value of an XPath expression over the document (namespace-agnostic paths use local-name()).
    public static func xpath(_ expression: String, in document: Data) throws -> String {
        try requireTool()
        let result = try withTemporaryFile(document) { path in try runToolWithStatus(executable, ["--xpath", expression, path]) }
        guard result.status == 0 else { throw Failure(description: "xmllint --xpath \(expression) failed: \(result.output)") }
        // xmllint ends the value with one newline of its own.
        return result.output.hasSuffix("\n") ? String(result.output.dropLast()) : result.output
    }

    private static func withTemporaryFile<T>(_ data: Data, _ body: (String) throws -> T) throws -> T {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-cap-\(UUID().uuidString).xml")
        try data.write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        return try body(url.path)
    }
}
