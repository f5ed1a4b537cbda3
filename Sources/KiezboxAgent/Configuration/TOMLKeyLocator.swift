/// One step of a path into a TOML document: a key in a table or an index into an array of tables.
enum TOMLPathElement: Hashable, Sendable, CustomStringConvertible {
    case key(String)
    case index(Int)

    var description: String {
        switch self {
        case .key(let key): key
        case .index(let index): "[\(index + 1)]"
        }
    }
}

/// Finds the line on which a key is defined, so that errors about values (not only syntax) can name the line.
///
/// The TOML library reports positions for syntax errors only. This scans the source for table headers
/// (`[a.b]`, `[[a]]`) and `key = value` lines, which is how configuration files are written; a key defined
/// inside an inline table or a multi-line value is reported at the line of its enclosing key.
struct TOMLKeyLocator {
    private var lines: [[TOMLPathElement]: Int] = [:]

    init(source: String) {
        var header: [TOMLPathElement] = []
        var arrayCounts: [[TOMLPathElement]: Int] = [:]
        for (index, rawLine) in source.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            let line = Self.stripComment(rawLine).trimmingWhitespace()
            guard !line.isEmpty else { continue }
            if line.hasPrefix("[[") && line.hasSuffix("]]") {
                let name = Self.keyPath(String(line.dropFirst(2).dropLast(2)))
                let count = arrayCounts[name, default: 0]
                arrayCounts[name] = count + 1
                header = name + [.index(count)]
                self.lines[header] = self.lines[header] ?? lineNumber
                if self.lines[name] == nil { self.lines[name] = lineNumber }
            } else if line.hasPrefix("[") && line.hasSuffix("]") {
                header = Self.resolve(Self.keyPath(String(line.dropFirst().dropLast())), arrayCounts: arrayCounts)
                self.lines[header] = self.lines[header] ?? lineNumber
            } else if let equals = Self.firstUnquoted("=", in: line) {
                let key = Self.keyPath(String(line[..<equals]))
                self.lines[header + key] = self.lines[header + key] ?? lineNumber
            }
        }
    }

    /// The line of `path`, or of the nearest enclosing table that appears in the file.
    func line(of path: [TOMLPathElement]) -> Int? {
        var path = path
        while !path.isEmpty {
            if let line = self.lines[path] { return line }
            path.removeLast()
        }
        return nil
    }

    /// `[sensor.foo]` after two `[[sensor]]` means the second sensor's `foo` table.
    private static func resolve(_ path: [TOMLPathElement], arrayCounts: [[TOMLPathElement]: Int]) -> [TOMLPathElement] {
        var resolved: [TOMLPathElement] = []
        for element in path {
            resolved.append(element)
            if let count = arrayCounts[resolved] { resolved.append(.index(count - 1)) }
        }
        return resolved
    }

    private static func keyPath(_ text: String) -> [TOMLPathElement] {
        var parts: [TOMLPathElement] = []
        var current = ""
        var quote: Character?
        for character in text {
            if let open = quote {
                if character == open { quote = nil } else { current.append(character) }
            } else if character == "\"" || character == "'" {
                quote = character
            } else if character == "." {
                parts.append(.key(current.trimmingWhitespace()))
                current = ""
            } else {
                current.append(character)
            }
        }
        parts.append(.key(current.trimmingWhitespace()))
        return parts
    }

    private static func stripComment(_ line: Substring) -> Substring {
        guard let hash = firstUnquoted("#", in: line) else { return line }
        return line[..<hash]
    }

    private static func firstUnquoted(_ target: Character, in text: some StringProtocol) -> String.Index? {
        var quote: Character?
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if let open = quote {
                if character == "\\" && open == "\"" {
                    index = text.index(after: index)
                    if index == text.endIndex { break }
                } else if character == open {
                    quote = nil
                }
            } else if character == "\"" || character == "'" {
                quote = character
            } else if character == target {
                return index
            }
            index = text.index(after: index)
        }
        return nil
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces, tabs and carriage returns.
    func trimmingWhitespace() -> String {
        var slice = Substring(self)
        while let first = slice.first, " \t\r".contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, " \t\r".contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
