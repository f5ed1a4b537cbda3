import Foundation
import KiezboxCore
import Testing

/// The power model against a synthetic week (docs/power.md): a battery model with polarisation, a daily solar
/// curve under changing weather, load steps, a current monitor with offset and noise, and a model that starts
/// from a wrong state of charge. Prints the state-of-charge error and hours left against the truth.
@Suite("Battery model over a simulated week")
struct BatteryWeekSimulationTests {
    let start = Date(timeIntervalSince1970: 1_790_000_000 - 1_790_000_000.truncatingRemainder(dividingBy: 86_400))

    struct WeekResult {
        var firstAnchorHour: Double?
        var maximumError: Double
        var meanError: Double
        /// Over the whole week, before the first anchor too.
        var meanErrorOverall: Double
        var anchors: Int
        /// Hours left against the true time to empty, over the samples with 6 h or more to go.
        var hoursLeftMeanRelativeError: Double
        var hoursLeftTruthInRange: Double
    }

    /// Runs the model over the profile; prints a line every 12 hours.
    func run(
        _ chemistry: BatteryChemistry, anchoring: Bool, printing: Bool, drawTimeConstant: TimeInterval = 24 * 3600
    ) -> WeekResult {
        var battery = SimulatedBattery(chemistry: chemistry, capacityAmpHours: 50, stateOfCharge: 0.9)
        let samples = SyntheticPowerProfile(start: self.start).samples(for: 7 * 86_400, battery: &battery)
        let emptyAt = samples.first { $0.trueStateOfCharge <= 0 }?.at
        var model = BatteryModel(
            configuration: .init(
                capacityAmpHours: 50, chemistry: chemistry,
                restDuration: anchoring ? 1800 : .infinity,
                drawTimeConstant: drawTimeConstant,
                tailCurrentFraction: anchoring ? 0.02 : -1
            ),
            state: .init(stateOfCharge: 0.4, stateOfChargeUncertainty: 0.3)
        )
        var firstAnchorAt: Date?
        var errors: [Double] = []
        var errorSum = 0.0
        var hoursLeftErrors: [Double] = []
        var truthInRange = 0
        var anchors = 0
        if printing {
            print("\(chemistry.name): 50 Ah, true start 90 %, model starts at 40 % ± 30 %; battery empty at hour \(emptyAt.map { String(format: "%.1f", $0.timeIntervalSince(self.start) / 3600) } ?? "never")")
            print("  hour  true SoC  model SoC (range)    error  hours left (model)          true hours to empty")
        }
        for (index, sample) in samples.enumerated() {
            let anchorBefore = model.state.lastAnchorAt
            model.observeBattery(volts: sample.measuredVolts, amps: sample.measuredAmps, at: sample.at)
            model.observeSolar(volts: sample.solarVolts, amps: sample.solarAmps, watts: nil, at: sample.at)
            if model.state.lastAnchorAt != anchorBefore, model.state.lastAnchorAt != nil { anchors += 1 }
            if firstAnchorAt == nil { firstAnchorAt = model.state.lastAnchorAt }
            let error = abs(model.state.stateOfCharge - sample.trueStateOfCharge)
            errorSum += error
            if firstAnchorAt != nil { errors.append(error) }
            if let emptyAt, case let truth = emptyAt.timeIntervalSince(sample.at) / 3600, truth >= 6,
                let hoursLeft = model.estimate.hoursLeft
            {
                hoursLeftErrors.append(abs(hoursLeft.likely - truth) / truth)
                if truth >= hoursLeft.low, truth <= hoursLeft.high ?? .infinity { truthInRange += 1 }
            }
            if printing, (index + 1) % 720 == 0 {
                let estimate = model.estimate
                let truth = emptyAt.map { max(0, $0.timeIntervalSince(sample.at) / 3600) }
                print(
                    String(
                        format: "  %4.0f  %6.1f %%  %6.1f %% (%3.0f–%3.0f)  %5.1f  %-26@  %@",
                        sample.at.timeIntervalSince(self.start) / 3600, sample.trueStateOfCharge * 100,
                        estimate.stateOfCharge * 100, estimate.stateOfChargeLow * 100, estimate.stateOfChargeHigh * 100,
                        error * 100, (estimate.hoursLeft?.description ?? "charging") as NSString,
                        (truth.map { String(format: "%.0f h", $0) } ?? "beyond the week") as NSString
                    )
                )
            }
        }
        let result = WeekResult(
            firstAnchorHour: firstAnchorAt.map { $0.timeIntervalSince(self.start) / 3600 },
            maximumError: errors.max() ?? 1,
            meanError: errors.isEmpty ? 1 : errors.reduce(0, +) / Double(errors.count),
            meanErrorOverall: errorSum / Double(samples.count),
            anchors: anchors,
            hoursLeftMeanRelativeError: hoursLeftErrors.reduce(0, +) / Double(max(1, hoursLeftErrors.count)),
            hoursLeftTruthInRange: Double(truthInRange) / Double(max(1, hoursLeftErrors.count))
        )
        if printing {
            print(
                String(
                    format: "  %@: first anchor at hour %.1f, %d anchors; SoC error after it: max %.1f %%, mean %.1f %%; "
                        + "hours left (draw averaged over %.0f h) off the true time to empty by %.0f %% on average, "
                        + "the truth inside its range %.0f %% of the time",
                    chemistry.name as NSString, result.firstAnchorHour ?? -1, result.anchors,
                    result.maximumError * 100, result.meanError * 100, drawTimeConstant / 3600,
                    result.hoursLeftMeanRelativeError * 100, result.hoursLeftTruthInRange * 100
                )
            )
        }
        return result
    }

    @Test("a wrong start is corrected at the first rest and the error stays small for the week", arguments: [
        BatteryChemistry.lifePO4, BatteryChemistry.leadAcid,
    ])
    func week(chemistry: BatteryChemistry) throws {
        let anchored = self.run(chemistry, anchoring: true, printing: true)
        let firstAnchorHour = try #require(anchored.firstAnchorHour)
        #expect(firstAnchorHour < 24)
        #expect(anchored.maximumError < 0.10)
        // Without anchors the wrong start stays: what the anchors are for.
        let counting = self.run(chemistry, anchoring: false, printing: false)
        let quick = self.run(chemistry, anchoring: true, printing: false, drawTimeConstant: 3 * 3600)
        print(
            String(
                format: "  %@ with the draw averaged over 3 h instead: hours left off by %.0f %% on average, truth in range %.0f %%",
                chemistry.name as NSString, quick.hoursLeftMeanRelativeError * 100, quick.hoursLeftTruthInRange * 100
            )
        )
        print(
            String(
                format: "  %@ mean SoC error over the week: %.1f %% with anchors, %.1f %% counting only",
                chemistry.name as NSString, anchored.meanErrorOverall * 100, counting.meanErrorOverall * 100
            )
        )
        #expect(counting.firstAnchorHour == nil)
        #expect(counting.meanErrorOverall > anchored.meanErrorOverall)
    }
}
