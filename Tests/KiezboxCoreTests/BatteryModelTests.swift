import Foundation
import KiezboxCore
import Testing

@Suite("Battery chemistry curves")
struct BatteryChemistryTests {
    @Test("cells from the nominal voltage; rested voltage to state of charge per cell")
    func curves() {
        #expect(BatteryChemistry.lifePO4.cellCount(nominalVolts: 12) == 4)
        #expect(BatteryChemistry.lifePO4.cellCount(nominalVolts: 24) == 8)
        #expect(BatteryChemistry.leadAcid.cellCount(nominalVolts: 12) == 6)
        #expect(abs(BatteryChemistry.lifePO4.stateOfCharge(restedVoltsPerCell: 13.3 / 4) - 0.70) < 1e-9)
        #expect(abs(BatteryChemistry.lifePO4.stateOfCharge(restedVoltsPerCell: 12.9 / 4) - 0.25) < 1e-9)
        #expect(abs(BatteryChemistry.leadAcid.stateOfCharge(restedVoltsPerCell: 12.2 / 6) - 0.50) < 1e-9)
        #expect(BatteryChemistry.leadAcid.stateOfCharge(restedVoltsPerCell: 13.5 / 6) == 1)
        #expect(BatteryChemistry.leadAcid.stateOfCharge(restedVoltsPerCell: 10.5 / 6) == 0)
        #expect(abs(BatteryChemistry.leadAcid.restedVoltsPerCell(stateOfCharge: 0.5) * 6 - 12.2) < 1e-9)
        #expect(BatteryChemistry.named("LiFePO4") == .lifePO4)
        #expect(BatteryChemistry.named("lead_acid") == .leadAcid)
        #expect(BatteryChemistry.named("nickel-iron") == nil)
    }
}

@Suite("Battery model")
struct BatteryModelTests {
    let start = Date(timeIntervalSince1970: 1_790_000_000)

    @Test("coulomb counting: 10 A for an hour takes 10 Ah out of 100, and the uncertainty grows")
    func counting() {
        var model = BatteryModel(
            configuration: .init(capacityAmpHours: 100, chemistry: .lifePO4),
            state: .init(stateOfCharge: 1, stateOfChargeUncertainty: 0.01)
        )
        for minute in 0...60 {
            model.observeBattery(volts: 13.1, amps: 10, at: self.start.addingTimeInterval(Double(minute) * 60))
        }
        #expect(abs(model.state.stateOfCharge - 0.9) < 1e-9)
        // 0.05 A offset + 1 % of 10 A over an hour: 0.15 Ah of 100.
        #expect(abs(model.state.stateOfChargeUncertainty - 0.0115) < 1e-9)
        #expect(model.estimate.averageDrawAmps == 10)
        #expect(model.estimate.hoursLeft.map { abs($0.likely - 9) < 1e-9 } == true)
    }

    @Test("a rested lead-acid battery's voltage pulls a wrong count to the curve, once per rest")
    func restedAnchor() {
        var model = BatteryModel(
            configuration: .init(capacityAmpHours: 100, chemistry: .leadAcid, internalResistanceOhms: 0),
            state: .init(stateOfCharge: 0.9, stateOfChargeUncertainty: 0.3)
        )
        for minute in 0...29 {
            model.observeBattery(volts: 12.2, amps: 0.2, at: self.start.addingTimeInterval(Double(minute) * 60))
        }
        #expect(model.state.lastAnchor == nil)
        model.observeBattery(volts: 12.2, amps: 0.2, at: self.start.addingTimeInterval(30 * 60))
        #expect(model.state.lastAnchor == .restedVoltage)
        // Lead-acid: 10 % per 0.1 V, so 10 mV per cell is 6 %, plus 2 % for the curve: σ 8 % against 30 %.
        #expect(abs(model.state.stateOfCharge - 0.5) < 0.04)
        #expect(model.state.stateOfChargeUncertainty < 0.08)
        let anchored = model.state.stateOfCharge
        model.observeBattery(volts: 12.0, amps: 0.2, at: self.start.addingTimeInterval(61 * 60))
        #expect(abs(model.state.stateOfCharge - anchored) < 0.002)
    }

    @Test("the charger's end of charge means full")
    func fullCharge() {
        var model = BatteryModel(configuration: .init(capacityAmpHours: 100, chemistry: .lifePO4))
        model.observeBattery(volts: 14.2, amps: -8, at: self.start)
        #expect(model.state.lastAnchor == nil)
        model.observeBattery(volts: 14.2, amps: -1.5, at: self.start.addingTimeInterval(60))
        #expect(model.state.lastAnchor == .fullCharge)
        #expect(model.state.stateOfCharge == 1)
    }

    @Test("hours left reads 'about 31 h (25–38 h)'; none while charging")
    func hoursLeftText() {
        #expect(HoursLeft(likely: 31.2, low: 24.6, high: 38.4).description == "about 31 h (25–38 h)")
        #expect(HoursLeft(likely: 31.2, low: 24.6, high: nil).description == "about 31 h (25–? h)")
        var model = BatteryModel(configuration: .init(capacityAmpHours: 100, chemistry: .lifePO4))
        model.observeBattery(volts: 13.6, amps: -3, at: self.start)
        #expect(model.estimate.hoursLeft == nil)
    }

    @Test("solar input from a second monitor: volts × amps when it reports no power")
    func solar() {
        var model = BatteryModel(configuration: .init(capacityAmpHours: 100, chemistry: .lifePO4))
        model.observeSolar(volts: 18, amps: 2, watts: nil, at: self.start)
        #expect(model.estimate.solarWatts == 36)
    }
}
