import Foundation
import KiezboxCore
import Testing

@Suite("Load shedding policy")
struct LoadSheddingPolicyTests {
    let policy = LoadSheddingPolicy()

    /// Walks the policy through a series of states of charge on battery, from step 0.
    func walk(_ charges: [Double], policy: LoadSheddingPolicy? = nil) -> [Int] {
        let policy = policy ?? self.policy
        var step = 0
        return charges.map { charge in
            step = policy.step(from: step, stateOfCharge: charge, onBattery: true)
            return step
        }
    }

    @Test("falling charge takes the steps in order at 50, 35, 20 and 10 %; a jump takes several at once")
    func stepsInOrder() {
        #expect(self.walk([0.80, 0.51, 0.499, 0.36, 0.349, 0.21, 0.199, 0.11, 0.099, 0.0]) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
        #expect(self.walk([0.9, 0.15]) == [0, 3])
        #expect(self.policy.stepCount == 4)
    }

    @Test("a step ends only 5 points above its threshold: noise around a threshold does not toggle it")
    func hysteresis() {
        // Noise of ±2 points around 35 %: once in step 2 it stays there.
        #expect(self.walk([0.40, 0.349, 0.36, 0.34, 0.37, 0.345, 0.39]) == [1, 2, 2, 2, 2, 2, 2])
        // Charging back: step 2 ends at 40 %, step 1 at 55 %.
        #expect(self.walk([0.30, 0.399, 0.40, 0.549, 0.55]) == [2, 2, 1, 1, 0])
        // Several steps end at once when the charge rose past them (mains-less solar morning).
        #expect(self.walk([0.05, 0.60]) == [4, 0])
        let wide = LoadSheddingPolicy(recoveryMargin: 0.10)
        #expect(self.walk([0.30, 0.44, 0.45], policy: wide) == [2, 2, 1])
    }

    @Test("steps apply only on battery; an unknown charge keeps the step")
    func onlyOnBattery() {
        #expect(self.policy.step(from: 3, stateOfCharge: 0.15, onBattery: false) == 0)
        #expect(self.policy.step(from: 0, stateOfCharge: 0.05, onBattery: false) == 0)
        #expect(self.policy.step(from: 2, stateOfCharge: nil, onBattery: true) == 2)
        #expect(self.policy.step(from: 0, stateOfCharge: nil, onBattery: true) == 0)
        #expect(LoadSheddingPolicy(thresholds: []).step(from: 0, stateOfCharge: 0.01, onBattery: true) == 0)
    }

    @Test("the order: particulate fan first, then the relay, then LoRa reports; every step sheds at least as much")
    func order() {
        let settings = (0...4).map { self.policy.settings(at: $0) }
        #expect(settings[0] == .none)
        #expect(settings[1] == ShedSettings(particulateEvery: 4))
        #expect(settings[2].relayIntervalFactor > 1 && settings[2].loRaReportFactor == 1)
        #expect(settings[3].loRaReportFactor > 1)
        #expect(settings[4].particulateEvery == 0)
        for (shallower, deeper) in zip(settings, settings.dropFirst()) {
            let particulate = { (s: ShedSettings) in s.particulateEvery == 0 ? Int.max : s.particulateEvery }
            #expect(particulate(deeper) >= particulate(shallower))
            #expect(deeper.relayIntervalFactor >= shallower.relayIntervalFactor)
            #expect(deeper.loRaReportFactor >= shallower.loRaReportFactor)
        }
        // Fewer configured steps: the deepest still sheds the most.
        let two = LoadSheddingPolicy(thresholds: [0.3, 0.1])
        #expect(two.settings(at: 1) == LoadSheddingPolicy.stepSettings[0])
        #expect(two.settings(at: 2) == LoadSheddingPolicy.stepSettings[3])
    }

    @Test("a particulate sensor reads every n-th slot, and not at all at 0")
    func particulateSlots() {
        let quarter = ShedSettings(particulateEvery: 4)
        #expect((1...8).map { quarter.readsParticulate(slotsSinceLastReading: $0) } == [false, false, false, true, true, true, true, true])
        #expect(ShedSettings.none.readsParticulate(slotsSinceLastReading: 1))
        #expect(!ShedSettings(particulateEvery: 0).readsParticulate(slotsSinceLastReading: 1_000))
    }
}
