import KiezboxCore
import Testing

@testable import MeshRelay

@Suite("EU868 duty cycle")
struct EU868DutyCycleTests {
    typealias Instant = ManualClock.Instant
    static func at(_ duration: Duration) -> Instant { Instant(offset: duration) }
    /// A 51-byte uplink at DR0: 2.793472 s on air.
    static let dr0Frame = uplinkAirtime(applicationPayloadLength: 51, dataRate: .dr0)

    @Test("sub-bands by frequency and their duty cycles; TTN's channels lie in M and L")
    func subBands() {
        let bands = EU868SubBand.ttnChannelFrequencies.map { EU868SubBand.containing(frequency: $0) }
        #expect(bands == [.m, .m, .m, .l, .l, .l, .l, .l])
        #expect(EU868SubBand.containing(frequency: 869_525_000) == .p)
        #expect(EU868SubBand.containing(frequency: 868_000_000) == .l)
        #expect(EU868SubBand.containing(frequency: 868_650_000) == nil)
        #expect(EU868SubBand.containing(frequency: 869_300_000) == nil)
        #expect(EU868SubBand.containing(frequency: 870_100_000) == nil)
        #expect(EU868SubBand.allCases.map(\.dutyCycleDivisor) == [1000, 100, 100, 1000, 10, 100])
        #expect(EU868DutyCycle<Instant>().subBands == [.l, .m])
    }

    @Test("per-frame rule: a band rests ToA/DC − ToA after a frame (99 × ToA at 1 %, 9 × at 10 %)")
    func perFrameRule() throws {
        var m = EU868DutyCycle<Instant>(channelFrequencies: [868_100_000])
        let end = Self.at(.seconds(10))
        #expect(m.nextAllowedSend(airtime: Self.dr0Frame, notBefore: end) == end)
        m.recordTransmission(airtime: Self.dr0Frame, endedAt: end)
        #expect(m.nextAllowedSend(airtime: Self.dr0Frame, notBefore: end) == end.advanced(by: Self.dr0Frame * 99))
        // Asked later than that, the answer is "now".
        let later = Self.at(.seconds(400))
        #expect(m.nextAllowedSend(airtime: Self.dr0Frame, notBefore: later) == later)

        var p = EU868DutyCycle<Instant>(channelFrequencies: [869_525_000])
        p.recordTransmission(airtime: Self.dr0Frame, endedAt: end)
        #expect(p.nextAllowedSend(airtime: Self.dr0Frame, notBefore: end) == end.advanced(by: Self.dr0Frame * 9))
    }

    /// A modem enforcing only LoRaMac-node's hourly budget lets 13 DR0 frames go back to back (36.3 s: the
    /// credits refill while it sends). After them the budget, not the per-frame rule, decides.
    @Test("hourly budget: 36 s of airtime per 1 % band per hour, spendable in a burst; the later rule wins")
    func hourlyBudget() {
        var m = EU868DutyCycle<Instant>(channelFrequencies: [868_100_000])
        #expect(m.burstAirtime(in: .m, at: Self.at(.zero)) == .seconds(36))
        let frame = Self.dr0Frame
        for index in 1...13 {
            m.recordTransmission(airtime: frame, endedAt: Self.at(frame * index), frequency: 868_300_000)
        }
        let last = Self.at(frame * 13)
        // Credits: 3600 s − 13 × 100 T + 12 T (earned while sending) = 3600 s − 1288 T = 2.008064 s.
        let credits = Duration.seconds(3600) - frame * 1288
        #expect(credits == .microseconds(2_008_064))
        #expect(m.burstAirtime(in: .m, at: last) == credits / 100)
        let perFrame = last.advanced(by: frame * 99)
        let budget = last.advanced(by: frame * 100 - credits + .milliseconds(1))
        #expect(budget > perFrame)
        #expect(m.nextAllowedSend(airtime: frame, notBefore: last) == budget)
        // One frame after a rested hour: the per-frame rule decides.
        var rested = EU868DutyCycle<Instant>(channelFrequencies: [868_100_000])
        rested.recordTransmission(airtime: frame, endedAt: last)
        #expect(rested.nextAllowedSend(airtime: frame, notBefore: last) == perFrame)
    }

    @Test("a frame on an unknown channel is charged to every band of the plan; a known one to its band only")
    func unknownChannel() {
        let end = Self.at(.seconds(5))
        var unknown = EU868DutyCycle<Instant>()
        unknown.recordTransmission(airtime: Self.dr0Frame, endedAt: end)
        #expect(unknown.nextAllowedSend(airtime: Self.dr0Frame, notBefore: end) == end.advanced(by: Self.dr0Frame * 99))
        #expect(unknown.nextAllowedSend(in: .l, airtime: Self.dr0Frame, notBefore: end) == end.advanced(by: Self.dr0Frame * 99))

        var known = EU868DutyCycle<Instant>()
        known.recordTransmission(airtime: Self.dr0Frame, endedAt: end, frequency: 868_100_000)
        #expect(known.nextAllowedSend(airtime: Self.dr0Frame, notBefore: end) == end)
        #expect(known.nextAllowedSend(in: .m, airtime: Self.dr0Frame, notBefore: end) == end.advanced(by: Self.dr0Frame * 99))
    }

    @Test("a frame costing more than an hour of credits is never allowed (over 3.6 s in a 0.1 % band)")
    func neverAllowed() {
        let n = EU868DutyCycle<Instant>(channelFrequencies: [869_000_000])
        #expect(n.nextAllowedSend(airtime: .seconds(4), notBefore: Self.at(.zero)) == nil)
        #expect(n.nextAllowedSend(airtime: Self.dr0Frame, notBefore: Self.at(.zero)) == Self.at(.zero))
    }
}
