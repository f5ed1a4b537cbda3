/// The mutations every fuzz test applies to valid frames.
public enum SerialFuzzMutation: Int, CaseIterable, Sendable {
    case none, randomBytes, bitFlips, truncation, duplication, insertedHeader, replacedBytes, trailingBytes, concatenation

    /// Fills `input` (cleared, capacity kept) with a mutation of `frame`; `header` are bytes that start a frame.
    public static func apply(
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
public struct SerialFuzzTally: Sendable {
    public private(set) var counts: [String: Int] = [:]
    public private(set) var total = 0

    public init() {}

    public mutating func record(_ kind: String) {
        self.counts[kind, default: 0] += 1
        self.total += 1
    }

    public var summary: String {
        self.counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }
}

/// What a parser made of one fuzz input.
public enum SerialFuzzOutcome {
    /// A frame; `roundTrips` says whether it re-encodes to exactly the input.
    case accepted(roundTrips: Bool)
    /// The kind of typed error it threw.
    case rejected(String)
}

/// The figures of one fuzz run.
public struct SerialFuzzResult: Sendable {
    public var inputCount = 0
    public var accepted = 0
    /// Unmutated valid frames among the inputs, and how many of them were accepted.
    public var validInputs = 0
    public var validAccepted = 0
    public var roundTripFailures = 0
    public var tally = SerialFuzzTally()

    /// What is wrong with the run: empty when every input got a frame or a typed error, every unmutated frame was
    /// accepted and re-encodes to its input, and every kind in `expectedKinds` was exercised.
    public func problems(expectedKinds: [String]) -> [String] {
        var problems: [String] = []
        if self.accepted + self.tally.total != self.inputCount { problems.append("inputs without an outcome") }
        if self.validInputs <= self.inputCount / 20 { problems.append("too few unmutated frames (\(self.validInputs))") }
        if self.validAccepted != self.validInputs { problems.append("unmutated valid frames rejected: \(self.validInputs - self.validAccepted)") }
        if self.roundTripFailures != 0 { problems.append("accepted frames that do not re-encode to the input: \(self.roundTripFailures)") }
        for kind in expectedKinds where self.tally.counts[kind, default: 0] == 0 {
            problems.append("rejection kind \(kind) was not exercised")
        }
        return problems
    }
}

/// Feeds `inputCount` generated inputs to `decode`: valid frames from `pool`, mutated by a random
/// ``SerialFuzzMutation`` (or, for ``SerialFuzzMutation/replacedBytes`` half of the time, by `extraMutation`), and
/// prints the counts.
public func runSerialFuzz(
    name: String,
    seed: UInt64,
    inputCount: Int = 1_000_000,
    pool: [[UInt8]],
    header: [UInt8],
    maximumLength: Int,
    extraMutation: ((inout [UInt8], inout SerialFuzzRandom) -> Void)? = nil,
    decode: (ArraySlice<UInt8>) -> SerialFuzzOutcome
) async -> SerialFuzzResult {
    var random = SerialFuzzRandom(seed: seed)
    var input: [UInt8] = []
    input.reserveCapacity(maximumLength * 4)
    var result = SerialFuzzResult()
    result.inputCount = inputCount
    let mutations = SerialFuzzMutation.allCases
    for index in 0..<inputCount {
        // A long synchronous loop would hold a cooperative thread for seconds and starve the real-time tests
        // (pseudo-terminals, sockets) running beside it; yielding every 200 inputs keeps them on time.
        if index % 200 == 0 { await Task.yield() }
        let frame = pool[random.below(pool.count)]
        let other = pool[random.below(pool.count)]
        let mutation = mutations[random.below(mutations.count)]
        SerialFuzzMutation.apply(mutation, to: frame, other: other, header: header, maximumLength: maximumLength, into: &input, random: &random)
        if let extraMutation, mutation == .replacedBytes, random.chance(2) {
            input.removeAll(keepingCapacity: true)
            input.append(contentsOf: frame)
            extraMutation(&input, &random)
        }
        let isOriginal = mutation == .none
        if isOriginal { result.validInputs += 1 }
        switch decode(input[...]) {
        case .accepted(let roundTrips):
            result.accepted += 1
            if isOriginal { result.validAccepted += 1 }
            if !roundTrips { result.roundTripFailures += 1 }
        case .rejected(let kind):
            result.tally.record(kind)
        }
    }
    print(
        "\(name) fuzz: \(inputCount) inputs, \(result.accepted) accepted (\(result.validAccepted) of \(result.validInputs) unmutated), "
            + "\(result.tally.total) rejected: \(result.tally.summary)")
    return result
}
