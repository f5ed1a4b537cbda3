import TOMLKit

/// Reads typed values out of one TOML table and turns every mistake into a ``ConfigurationError`` that names
/// the line, the key and what was expected. Unknown keys are mistakes too: a misspelt key must not be ignored.
struct TOMLTableReader {
    /// Parses a whole document and returns a reader for its root table; syntax errors carry line and column.
    static func document(_ source: String, file: String) throws(ConfigurationError) -> TOMLTableReader {
        let document: TOMLTable
        do {
            document = try TOMLTable(string: source)
        } catch let error as TOMLParseError {
            throw ConfigurationError(
                file: file, line: error.source.begin.line, column: error.source.begin.column, key: "",
                message: "not valid TOML: \(error.description)"
            )
        } catch {
            throw ConfigurationError(file: file, line: nil, column: nil, key: "", message: "not valid TOML: \(error)")
        }
        return TOMLTableReader(table: document, path: [], context: .init(file: file, locator: TOMLKeyLocator(source: source)))
    }

    let table: TOMLTable
    let path: [TOMLPathElement]
    let context: Context

    /// What every reader of one document shares.
    struct Context {
        let file: String
        let locator: TOMLKeyLocator
    }

    /// The dotted name of a key as a resident would write it: "store.flush_interval", "sensor[2].address".
    func displayName(_ key: String? = nil) -> String {
        var text = ""
        for element in self.path + (key.map { [.key($0)] } ?? []) {
            switch element {
            case .key(let name): text += text.isEmpty ? name : ".\(name)"
            case .index: text += element.description
            }
        }
        return text
    }

    func error(_ key: String?, _ message: String) -> ConfigurationError {
        let fullPath = self.path + (key.map { [.key($0)] } ?? [])
        return ConfigurationError(
            file: self.context.file, line: self.context.locator.line(of: fullPath), column: nil,
            key: self.displayName(key), message: message
        )
    }

    /// Refuses any key not in `known`, suggesting the closest known one.
    func rejectUnknownKeys(_ known: [String]) throws(ConfigurationError) {
        for key in self.table.keys where !known.contains(key) {
            let suggestion = known.min { editDistance($0, key) < editDistance($1, key) }
            let hint =
                if let suggestion, editDistance(suggestion, key) <= 3 { "did you mean '\(suggestion)'?" } else {
                    "known keys here: \(known.joined(separator: ", "))"
                }
            throw self.error(key, "unknown key; \(hint)")
        }
    }

    private func value(_ key: String) -> (any TOMLValueConvertible)? { self.table[key] }

    private func typeMismatch(_ key: String, expected: String, found value: any TOMLValueConvertible) -> ConfigurationError {
        self.error(key, "expected \(expected), found \(describe(value))")
    }

    func string(_ key: String) throws(ConfigurationError) -> String? {
        guard let value = self.value(key) else { return nil }
        guard let string = value.string else { throw self.typeMismatch(key, expected: "a string in quotes", found: value) }
        return string
    }

    func requiredString(_ key: String) throws(ConfigurationError) -> String {
        guard let string = try self.string(key) else { throw self.error(key, "missing; this key is required") }
        return string
    }

    func int(_ key: String, in range: ClosedRange<Int>? = nil) throws(ConfigurationError) -> Int? {
        guard let value = self.value(key) else { return nil }
        guard let int = value.int else { throw self.typeMismatch(key, expected: "a whole number", found: value) }
        if let range, !range.contains(int) {
            throw self.error(key, "\(int) is out of range; expected \(range.lowerBound) to \(range.upperBound)")
        }
        return int
    }

    func double(_ key: String, in range: ClosedRange<Double>? = nil) throws(ConfigurationError) -> Double? {
        guard let value = self.value(key) else { return nil }
        guard let number = value.double ?? value.int.map(Double.init) else {
            throw self.typeMismatch(key, expected: "a number", found: value)
        }
        if let range, !range.contains(number) {
            throw self.error(key, "\(number) is out of range; expected \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    func bool(_ key: String) throws(ConfigurationError) -> Bool? {
        guard let value = self.value(key) else { return nil }
        guard let bool = value.bool else { throw self.typeMismatch(key, expected: "true or false", found: value) }
        return bool
    }

    /// A duration written as "10s", "5m", "500ms", "1h30m".
    func duration(_ key: String, atLeast minimum: Duration = .milliseconds(1)) throws(ConfigurationError) -> Duration? {
        guard let value = self.value(key) else { return nil }
        guard let text = value.string, let duration = parseDuration(text) else {
            throw self.typeMismatch(key, expected: "a duration in quotes such as \"10s\", \"5m\" or \"500ms\"", found: value)
        }
        if duration < minimum { throw self.error(key, "\(text) is too short; at least \(format(minimum)) is needed") }
        return duration
    }

    /// A size written as a number of bytes or "256 MiB", "1 GB".
    func byteCount(_ key: String, atLeast minimum: Int64) throws(ConfigurationError) -> Int64? {
        guard let value = self.value(key) else { return nil }
        let bytes: Int64? = if let int = value.int { Int64(int) } else { value.string.flatMap(parseByteCount) }
        guard let bytes else {
            throw self.typeMismatch(key, expected: "a size such as \"256 MiB\", \"1 GB\" or a number of bytes", found: value)
        }
        if bytes < minimum { throw self.error(key, "\(bytes) bytes is too small; at least \(minimum) bytes are needed") }
        return bytes
    }

    /// A list of strings (`faults = ["nack"]`); absent means empty.
    func strings(_ key: String) throws(ConfigurationError) -> [String] {
        guard let value = self.value(key) else { return [] }
        guard let array = value.array else { throw self.typeMismatch(key, expected: "a list of strings", found: value) }
        var strings: [String] = []
        for index in 0..<array.count {
            guard let string = array[index].string else {
                throw self.typeMismatch(key, expected: "a list of strings", found: array[index])
            }
            strings.append(string)
        }
        return strings
    }

    /// A list of numbers (`shed_at = [50, 35]`), or nil when absent.
    func numbers(_ key: String) throws(ConfigurationError) -> [Double]? {
        guard let value = self.value(key) else { return nil }
        guard let array = value.array else { throw self.typeMismatch(key, expected: "a list of numbers", found: value) }
        var numbers: [Double] = []
        for index in 0..<array.count {
            guard let number = array[index].double ?? array[index].int.map(Double.init) else {
                throw self.typeMismatch(key, expected: "a list of numbers", found: array[index])
            }
            numbers.append(number)
        }
        return numbers
    }

    /// A sub-table (`[box]`, or `offsets = { … }`).
    func table(_ key: String) throws(ConfigurationError) -> TOMLTableReader? {
        guard let value = self.value(key) else { return nil }
        guard let table = value.table else { throw self.typeMismatch(key, expected: "a table", found: value) }
        return TOMLTableReader(table: table, path: self.path + [.key(key)], context: self.context)
    }

    /// An array of tables (`[[sensor]]`).
    func arrayOfTables(_ key: String) throws(ConfigurationError) -> [TOMLTableReader] {
        guard let value = self.value(key) else { return [] }
        guard let array = value.array else {
            throw self.typeMismatch(key, expected: "a list of [[\(key)]] tables", found: value)
        }
        var readers: [TOMLTableReader] = []
        for index in 0..<array.count {
            guard let table = array[index].table else {
                throw self.typeMismatch(key, expected: "a list of [[\(key)]] tables", found: array[index])
            }
            readers.append(TOMLTableReader(table: table, path: self.path + [.key(key), .index(index)], context: self.context))
        }
        return readers
    }
}

private func describe(_ value: any TOMLValueConvertible) -> String {
    switch value.type {
    case .string: "the string \"\(value.string ?? "")\""
    case .int: "the whole number \(value.int ?? 0)"
    case .double: "the number \(value.double ?? 0)"
    case .bool: "\(value.bool ?? false)"
    case .table: "a table"
    case .array: "a list"
    case .date, .time, .dateTime: "a date or time"
    }
}

/// Parses "10s", "5m", "1h30m", "500ms", "2d".
func parseDuration(_ text: String) -> Duration? {
    var total = Duration.zero
    var number = ""
    var unit = ""
    var sawComponent = false
    func commit() -> Bool {
        guard let value = Int64(number), !unit.isEmpty else { return false }
        switch unit {
        case "ms": total += .milliseconds(value)
        case "s": total += .seconds(value)
        case "m", "min": total += .seconds(value * 60)
        case "h": total += .seconds(value * 3600)
        case "d": total += .seconds(value * 86_400)
        default: return false
        }
        number = ""
        unit = ""
        sawComponent = true
        return true
    }
    for character in text.trimmingWhitespace() {
        if character.isASCII && character.isNumber {
            if !unit.isEmpty { guard commit() else { return nil } }
            number.append(character)
        } else if character.isLetter {
            guard !number.isEmpty else { return nil }
            unit.append(character)
        } else if character == "_" || character == " " {
            continue
        } else {
            return nil
        }
    }
    guard commit(), sawComponent else { return nil }
    return total
}

/// Parses "256 MiB", "1GB", "500 kB", "4096".
func parseByteCount(_ text: String) -> Int64? {
    let trimmed = text.trimmingWhitespace()
    let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
    guard let value = Int64(digits) else { return nil }
    let unit = trimmed.dropFirst(digits.count).trimmingWhitespace().lowercased()
    let factor: Int64? =
        switch unit {
        case "", "b": 1
        case "k", "kb": 1000
        case "kib": 1 << 10
        case "m", "mb": 1_000_000
        case "mib": 1 << 20
        case "g", "gb": 1_000_000_000
        case "gib": 1 << 30
        default: nil
        }
    guard let factor else { return nil }
    let (product, overflow) = value.multipliedReportingOverflow(by: factor)
    return overflow ? nil : product
}

/// "10s", "1m30s", "500ms": how durations are written back to residents.
func format(_ duration: Duration) -> String {
    let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    if milliseconds % 1000 != 0 { return "\(milliseconds)ms" }
    var seconds = milliseconds / 1000
    var text = ""
    for (unit, size) in [("d", Int64(86_400)), ("h", 3600), ("m", 60)] where seconds >= size {
        text += "\(seconds / size)\(unit)"
        seconds %= size
    }
    if seconds > 0 || text.isEmpty { text += "\(seconds)s" }
    return text
}

/// Levenshtein distance, for "did you mean" hints on misspelt keys.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    guard !a.isEmpty else { return b.count }
    guard !b.isEmpty else { return a.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}
