import KiezboxTestSupport

/// The mutations every fuzz test applies to valid frames.
enum SerialFuzzMutation: Int, CaseIterable {
    case none, randomBytes, bitFlips, truncation, duplication, insertedHeader, replacedBytes, trailingBytes, concatenation

    /// Fills `input` (cleared, capacity kept) with a mutation of `frame`; `header` are bytes that start a frame.
    static func apply(
        _ mutation: SerialFuzzMutation,
        to frame: [UInt8],
        other: [UInt8],
        header: [UInt8],
        maximumLength: Int,
        into input: inout [UInt8],
        random: inout SerialFuzzRandom
    ) {
        input.removeAll(keepingCapacity: true)
        switch mutation {
        case .none:
            input.append(contentsOf: frame)
        case .randomBytes:
            let count = random.below(maximumLength * 2 + 1)
            // Half of the random inputs start like a frame, so they get past the first check.
            if random.chance(2) { input.append(contentsOf: header) }
            for _ in 0..<count { input.append(random.byte()) }
        case .bitFlips:
            input.append(contentsOf: frame)
            for _ in 0...random.below(3) where !input.isEmpty {
                input[random.below(input.count)] ^= 1 << UInt8(random.below(8))
            }
        case .truncation:
            input.append(contentsOf: frame.prefix(random.below(max(frame.count, 1))))
        case .duplication:
            input.append(contentsOf: frame)
            guard !frame.isEmpty else { break }
            let start = random.below(frame.count)
            let end = start + random.below(frame.count - start) + 1
            input.insert(contentsOf: frame[start..<end], at: random.below(input.count + 1))
        case .insertedHeader:
            input.append(contentsOf: frame)
            for _ in 0...random.below(2) {
                input.insert(contentsOf: header.prefix(random.below(header.count) + 1), at: random.below(input.count + 1))
            }
        case .replacedBytes:
            input.append(contentsOf: frame)
            for _ in 0...random.below(3) where !input.isEmpty {
                input[random.below(input.count)] = random.chance(3) ? header[0] : random.byte()
            }
        case .trailingBytes:
            input.append(contentsOf: frame)
            for _ in 0...random.below(4) { input.append(random.byte()) }
        case .concatenation:
            input.append(contentsOf: frame)
            input.append(contentsOf: other)
        }
    }
}

/// Counts rejections by kind for the fuzz summary.
struct SerialFuzzTally {
    private(set) var counts: [String: Int] = [:]
    private(set) var total = 0

    mutating func record(_ kind: String) {
        self.counts[kind, default: 0] += 1
        self.total += 1
    }

    var summary: String {
        self.counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }
}
