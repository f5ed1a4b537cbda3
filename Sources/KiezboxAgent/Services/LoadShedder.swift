import Foundation
import KiezboxCore
import Logging
import ReadingStore
import ServiceLifecycle

/// Applies the load-shedding policy (docs/power.md, "Load shedding"): reads the power model's record and the
/// mains-fail input from the store, decides the step, and sets the shared ``ShedLevel`` that the sampler, the
/// relay and the LoRa uplinks read. Each change is logged and recorded in the store for `kiezbox status`,
/// `/metrics` and the portal. Continues from the recorded step after a restart (with the same hysteresis).
struct LoadShedder<C: KiezboxClock>: Service {
    let store: ReadingStore
    let policy: LoadSheddingPolicy
    let level: ShedLevel
    let clock: C
    let logger: Logger
    var interval: Duration = .seconds(30)
    /// A power-model record older than this says nothing about now (the model stopped): the step is kept.
    var recordStaleAfter: TimeInterval = 600
    /// A mains reading older than this says nothing about now (as for the mode controller).
    var mainsStaleAfter: TimeInterval = 300

    func run() async throws {
        let restored = self.restored()
        await cancelWhenGracefulShutdown {
            var current = restored
            while !Task.isCancelled {
                await self.update(&current)
                do { try await self.clock.sleep(for: self.interval) } catch { break }
            }
        }
    }

    /// One decision: reads the store, moves `current` to the step the policy says and applies it.
    func update(_ current: inout LoadShedRecord) async {
        let now = self.clock.currentDate()
        let record: BatteryRecord?
        let latest: [StoredReading]
        do {
            record = try self.store.batteryRecord()
            latest = try self.store.latest()
        } catch {
            self.logger.error("load shedding: the power model's record could not be read", metadata: ["error": "\(error)"])
            return
        }
        let mains = latest.first { $0.reading.quantity == .mainsPresent && now.timeIntervalSince($0.reading.measuredAt) <= self.mainsStaleAfter }
        let mainsPresent = mains.map { $0.reading.value >= 0.5 } ?? false
        let fresh = record.flatMap { now.timeIntervalSince($0.at) <= self.recordStaleAfter ? $0.estimate.stateOfCharge : nil }
        let step = self.policy.step(from: current.step, stateOfCharge: fresh, onBattery: !mainsPresent)
        if step != current.step || current.steps != self.policy.stepCount {
            let reason = Self.reason(step: step, from: current.step, stateOfCharge: fresh, mainsPresent: mainsPresent, policy: self.policy)
            if step != current.step {
                self.logger.notice(
                    step > current.step ? "saving power: shedding more load" : "saving power: shedding less load",
                    metadata: ["step": "\(step)", "of": "\(self.policy.stepCount)", "from": "\(current.step)", "reason": "\(reason)"]
                )
            }
            current = LoadShedRecord(step: step, steps: self.policy.stepCount, since: step != current.step ? now : current.since, reason: reason)
            do {
                try await self.store.setLoadShedRecord(current)
            } catch {
                self.logger.warning("load shedding: could not record the step", metadata: ["error": "\(error)"])
            }
        }
        self.level.set(.init(step: current.step, settings: self.policy.settings(at: current.step)))
    }

    static func reason(step: Int, from: Int, stateOfCharge: Double?, mainsPresent: Bool, policy: LoadSheddingPolicy) -> String {
        if mainsPresent { return "mains present" }
        guard let stateOfCharge else { return "state of charge unknown; step kept" }
        // One decimal: 49.96 % is "49.96 % below 50 %", which a whole number would round to "50 % below 50 %".
        let percent = String(format: "%.1f", stateOfCharge * 100)
        if step == 0 { return "state of charge \(percent) %" }
        if step >= from { return "state of charge \(percent) % below \(Self.percent(policy.thresholds[step - 1])) %" }
        return "state of charge \(percent) %, at least \(Self.percent(policy.thresholds[step] + policy.recoveryMargin)) %"
    }

    private static func percent(_ fraction: Double) -> Int { Int((fraction * 100).rounded()) }

    private func restored() -> LoadShedRecord {
        let start = LoadShedRecord(step: 0, steps: self.policy.stepCount, since: self.clock.currentDate(), reason: "starting")
        guard var record = try? self.store.loadShedRecord() else { return start }
        record.step = min(record.step, self.policy.stepCount)
        return record
    }
}
