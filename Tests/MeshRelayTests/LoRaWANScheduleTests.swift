import Foundation
import KiezboxCore
import MeshRelay
import ReadingStore
import Testing

@Suite("LoRaWAN airtime budget and report schedule")
struct LoRaWANScheduleTests {
    let now = Date(timeIntervalSince1970: 1_790_000_000)
    let report = Duration.microseconds(61_696)  // 12 bytes at DR5

    func uplink(_ secondsAgo: TimeInterval, _ airtime: Duration) -> LoRaWANAirtimeEntry {
        LoRaWANAirtimeEntry(kind: .uplink, at: self.now.addingTimeInterval(-secondsAgo), airtime: airtime, dataRate: 5, payloadLength: 12)
    }

    @Test("the rolling window counts the last 24 hours only; downlinks are counted apart")
    func window() {
        let ledger = [
            self.uplink(25 * 3600, .seconds(5)),  // outside the window
            self.uplink(3600, .seconds(2)),
            LoRaWANAirtimeEntry(kind: .join, at: self.now.addingTimeInterval(-7200), airtime: .seconds(1), dataRate: 0, payloadLength: 0),
            LoRaWANAirtimeEntry(kind: .downlink, at: self.now.addingTimeInterval(-60), airtime: .zero, dataRate: 5, payloadLength: 4),
        ]
        let budget = LoRaWANAirtimeBudget(fairUse: .init(), now: self.now, ledger: ledger)
        #expect(budget.airtimeUsed == .seconds(3))
        #expect(budget.airtimeLeft == .seconds(27))
        #expect(budget.downlinksReceived == 1)
        #expect(budget.uplinksSent == 1)
    }

    @Test("a full window frees up when its oldest frames leave it; a frame longer than the cap never fits")
    func earliestSend() {
        let ledger = [self.uplink(20 * 3600, .seconds(10)), self.uplink(10 * 3600, .seconds(10)), self.uplink(3600, .seconds(10))]
        let budget = LoRaWANAirtimeBudget(fairUse: .init(), now: self.now, ledger: ledger)
        #expect(budget.earliestSend(cost: .zero, cap: .seconds(30)) == self.now)
        // 30 s used: the next frame waits until the frame sent 20 h ago is 24 h old.
        #expect(budget.earliestSend(cost: .seconds(1), cap: .seconds(30)) == self.now.addingTimeInterval(4 * 3600))
        // Needing 15 s of room waits for the second frame too.
        #expect(budget.earliestSend(cost: .seconds(15), cap: .seconds(30)) == self.now.addingTimeInterval(14 * 3600))
        #expect(budget.earliestSend(cost: .seconds(31), cap: .seconds(30)) == nil)
    }

    @Test("the paced interval spreads the routine allowance over the day")
    func paced() {
        let budget = LoRaWANAirtimeBudget(fairUse: .init(), now: self.now, ledger: [])
        // 22.5 s of routine airtime / 61.696 ms = 364 reports a day: every 237 s, so a 10-minute setting stands.
        #expect(budget.pacedInterval(cost: self.report, minimum: .seconds(600)) == .seconds(600))
        let paced = budget.pacedInterval(cost: self.report, minimum: .seconds(60))
        #expect(paced > .seconds(236) && paced < .seconds(238))
        // At DR0 (1482.752 ms for 12 bytes): 15.2 a day, every 95 minutes.
        let slow = budget.pacedInterval(cost: .microseconds(1_482_752), minimum: .seconds(600))
        #expect(slow > .seconds(94 * 60) && slow < .seconds(96 * 60))
    }

    @Test("a switch into crisis mode sends the summary first; a significant change brings a report forward")
    func schedule() {
        var schedule = LoRaWANReportSchedule(policy: .init(reportInterval: .seconds(600)))
        let budget = LoRaWANAirtimeBudget(fairUse: .init(), now: self.now, ledger: [])
        let costs: [LoRaWANReportSchedule.Frame: Duration] = [.routineReport: self.report, .crisisSummary: self.report]
        let values: [Quantity: Double] = [.temperature: 20, .pm2_5: 8]
        let first = schedule.next(now: self.now, values: values, crisis: false, budget: budget, costs: costs, dutyCycleFree: self.now)
        #expect(first?.frame == .routineReport && first?.at == self.now)
        schedule.sent(.routineReport, at: self.now, values: values, crisis: false)

        let later = self.now.addingTimeInterval(60)
        let routine = schedule.next(now: later, values: values, crisis: false, budget: budget, costs: costs, dutyCycleFree: later)
        #expect(routine?.at == self.now.addingTimeInterval(600) && routine?.reason == "routine")
        let smoky = schedule.next(now: later, values: [.temperature: 20, .pm2_5: 60], crisis: false, budget: budget, costs: costs, dutyCycleFree: later)
        #expect(smoky?.at == self.now.addingTimeInterval(150) && smoky?.reason == "significant change in pm2_5")

        let crisis = schedule.next(now: later, values: values, crisis: true, budget: budget, costs: costs, dutyCycleFree: later)
        #expect(crisis?.frame == .crisisSummary && crisis?.at == later && crisis?.reason == "crisis mode began")
        schedule.sent(.crisisSummary, at: later, values: values, crisis: true)
        let afterSummary = schedule.next(now: later, values: values, crisis: true, budget: budget, costs: costs, dutyCycleFree: later)
        #expect(afterSummary?.frame == .routineReport)
        // The duty cycle holds every frame back.
        let blocked = later.addingTimeInterval(900)
        #expect(schedule.next(now: later, values: values, crisis: false, budget: budget, costs: costs, dutyCycleFree: blocked)?.at == blocked)
    }

    @Test("routine reports leave the crisis reserve; a summary may spend it")
    func reserve() {
        // 23 s used: past the 22.5 s routine allowance, within the 30 s limit.
        let budget = LoRaWANAirtimeBudget(fairUse: .init(), now: self.now, ledger: [self.uplink(3600, .seconds(23))])
        var schedule = LoRaWANReportSchedule(policy: .init())
        let costs: [LoRaWANReportSchedule.Frame: Duration] = [.routineReport: self.report, .crisisSummary: self.report]
        let routine = schedule.next(now: self.now, values: [.temperature: 20], crisis: false, budget: budget, costs: costs, dutyCycleFree: self.now)
        #expect(routine?.at == self.now.addingTimeInterval(23 * 3600))
        schedule.observe(crisis: true)
        let summary = schedule.next(now: self.now, values: [.temperature: 20], crisis: true, budget: budget, costs: costs, dutyCycleFree: self.now)
        #expect(summary?.frame == .crisisSummary && summary?.at == self.now)
    }
}
