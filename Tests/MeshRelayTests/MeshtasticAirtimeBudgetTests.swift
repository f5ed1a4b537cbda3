import KiezboxCore
import MeshRelay
import Testing

@Suite("The box's Meshtastic airtime budget: half the band's 10 %, routine status within 60 % of that")
struct MeshtasticAirtimeBudgetTests {
    typealias Instant = ManualClock.Instant
    static let start = Instant(offset: .seconds(10_000))

    @Test("limits: 360 s of the band, 180 s ours, 108 s for routine status")
    func limits() {
        let budget = MeshtasticAirtimeBudget<Instant>()
        #expect(budget.limit == .seconds(180))
        #expect(budget.cap(for: .crisis) == .seconds(180))
        #expect(budget.cap(for: .routine) == .seconds(108))
        let whole = MeshtasticAirtimeBudget<Instant>(airtimeShare: 1, routineShare: 1)
        #expect(whole.limit == .seconds(360))
        let packet = MeshtasticAirtime.airtime(dataLength: 60)
        #expect(whole.messagesPerHour(dataLength: 60) == Int(Duration.seconds(360) / packet))
        #expect(budget.messagesPerHour(dataLength: 60, as: .routine) == Int(Duration.seconds(108) / packet))
    }

    @Test("a rolling hour: each transmission counts until one hour after it")
    func rollingHour() {
        var budget = MeshtasticAirtimeBudget<Instant>()
        budget.record(airtime: .seconds(100), at: Self.start, as: .crisis)
        budget.record(airtime: .seconds(50), at: Self.start.advanced(by: .seconds(1200)), as: .crisis)
        let later = Self.start.advanced(by: .seconds(1800))
        #expect(budget.used(at: later) == .seconds(150))
        #expect(budget.remaining(for: .crisis, at: later) == .seconds(30))
        #expect(budget.canSend(airtime: .seconds(30), as: .crisis, at: later))
        #expect(!budget.canSend(airtime: .seconds(31), as: .crisis, at: later))
        // The first leaves the window exactly one hour after it.
        #expect(budget.used(at: Self.start.advanced(by: .seconds(3599))) == .seconds(150))
        #expect(budget.used(at: Self.start.advanced(by: .seconds(3600))) == .seconds(50))
        #expect(budget.nextAllowed(airtime: .seconds(31), as: .crisis, notBefore: later) == Self.start.advanced(by: .seconds(3600)))
        #expect(budget.nextAllowed(airtime: .seconds(140), as: .crisis, notBefore: later) == Self.start.advanced(by: .seconds(4800)))
        #expect(budget.nextAllowed(airtime: .seconds(10), as: .crisis, notBefore: later) == later)
        #expect(budget.nextAllowed(airtime: .seconds(181), as: .crisis, notBefore: later) == nil)
        // Recording prunes what left the window.
        budget.record(airtime: .seconds(1), at: Self.start.advanced(by: .seconds(4800)), as: .routine)
        #expect(budget.entries.count == 1)
    }

    @Test("routine status stops at 60 % of the share, so crisis traffic always finds the other 40 %")
    func classes() {
        var budget = MeshtasticAirtimeBudget<Instant>()
        var now = Self.start
        var routineSent = Duration.zero
        let packet = Duration.milliseconds(1_200)
        while budget.canSend(airtime: packet, as: .routine, at: now) {
            budget.record(airtime: packet, at: now, as: .routine)
            routineSent += packet
            now = now.advanced(by: .seconds(10))
        }
        #expect(routineSent == .seconds(108))
        #expect(budget.remaining(for: .routine, at: now) == .zero)
        #expect(budget.remaining(for: .crisis, at: now) == .seconds(72))
        #expect(budget.canSend(airtime: .seconds(72), as: .crisis, at: now))
        // Crisis traffic counts against routine status too: after it, no status until the hour rolls on.
        budget.record(airtime: .seconds(72), at: now, as: .crisis)
        #expect(!budget.canSend(airtime: packet, as: .crisis, at: now))
        let next = budget.nextAllowed(airtime: packet, as: .routine, notBefore: now)
        #expect(next == Self.start.advanced(by: .seconds(3600 + 10 * 60)), "61 status packets must leave the window first")
    }

    @Test("the share is configurable; a restored ledger resumes where it was")
    func shareAndRestore() {
        var budget = MeshtasticAirtimeBudget<Instant>(airtimeShare: 0.25, routineShare: 0.5)
        #expect(budget.limit == .seconds(90) && budget.cap(for: .routine) == .seconds(45))
        budget.record(airtime: .seconds(40), at: Self.start, as: .routine)
        budget.record(airtime: .seconds(5), at: Self.start.advanced(by: .seconds(1)), as: .crisis)
        let restored = MeshtasticAirtimeBudget<Instant>(airtimeShare: 0.25, routineShare: 0.5, entries: budget.entries.reversed())
        #expect(restored.entries == budget.entries)
        #expect(restored.used(at: Self.start.advanced(by: .seconds(2))) == .seconds(45))
        #expect(!restored.canSend(airtime: .milliseconds(1), as: .routine, at: Self.start.advanced(by: .seconds(2))))
        #expect(restored.canSend(airtime: .seconds(45), as: .crisis, at: Self.start.advanced(by: .seconds(2))))
    }
}
