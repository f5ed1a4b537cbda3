/// SplitMix64: a tiny, fast, seeded generator, so fuzz runs are reproducible from their seed.
public struct SerialFuzzRandom: RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) {
        self.state = seed
    }

    public mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in `0..<bound` (bound > 0); the modulo bias is irrelevant for fuzzing.
    public mutating func below(_ bound: Int) -> Int {
        Int(truncatingIfNeeded: self.next() % UInt64(max(bound, 1)))
    }

    public mutating func byte() -> UInt8 {
        UInt8(truncatingIfNeeded: self.next())
    }

    public mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in self.byte() }
    }

    public mutating func chance(_ oneIn: Int) -> Bool {
        self.below(oneIn) == 0
    }
}
