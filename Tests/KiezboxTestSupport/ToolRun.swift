import Foundation

/// What a tool run by ``runToolWithStatus(_:_:)`` left behind.
public struct ToolResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    /// Standard output, then standard error (where xmllint reports).
    public var output: String { self.stdout + self.stderr }
}

/// Runs a tool to completion and gives its status and both streams (``runTool(_:_:in:)`` throws on failure instead). Its stdout and stderr go to files, so neither can fill a pipe and stall the tool.
public func runToolWithStatus(_ executable: String, _ arguments: [String]) throws -> ToolResult {
    let directory = FileManager.default.temporaryDirectory
    let outURL = directory.appendingPathComponent("kiezbox-tool-\(UUID().uuidString).out")
    let errURL = directory.appendingPathComponent("kiezbox-tool-\(UUID().uuidString).err")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    defer {
        try? FileManager.default.removeItem(at: outURL)
        try? FileManager.default.removeItem(at: errURL)
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardOutput = try FileHandle(forWritingTo: outURL)
    process.standardError = try FileHandle(forWritingTo: errURL)
    try process.run()
    process.waitUntilExit()
    let out = try Data(contentsOf: outURL)
    let err = try Data(contentsOf: errURL)
    return ToolResult(
        status: process.terminationStatus, stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: err, as: UTF8.self)
    )
}
