/// SplitMix64: a tiny, fast, seeded generator, so fuzz runs are reproducible from their seed.
struct SerialFuzzRandom {
    private var state: UInt64

    init(seed: UInt64) {
        self.state = seed
    }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in `0..<bound` (bound > 0); the modulo bias is irrelevant for fuzzing.
    mutating func below(_ bound: Int) -> Int {
        Int(truncatingIfNeeded: self.next() % UInt64(max(bound, 1)))
    }

    mutating func byte() -> UInt8 {
        UInt8(truncatingIfNeeded: self.next())
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in self.byte() }
    }

    mutating func chance(_ oneIn: Int) -> Bool {
        self.below(oneIn) == 0
    }
}

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
