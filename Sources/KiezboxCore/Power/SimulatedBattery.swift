#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A simple physical battery to synthesise charge/discharge profiles from (docs/power.md, "The simulated battery").
///
/// Terminal voltage = cells × OCV(state of charge) − current × R₀ − the polarisation voltage of one RC branch
/// (R₁, τ), which relaxes towards current × R₁ and makes a battery that has just stopped discharging read low
/// for a while. A charger (solar, through a charge controller) feeds the load first and the battery with the
/// rest: constant current, then above 98 % constant voltage at the absorption voltage with the current tapering
/// to nothing at 100 %, then float. At 0 % a low-voltage disconnect cuts the load.
public struct SimulatedBattery: Sendable {
    public let chemistry: BatteryChemistry
    public let cells: Int
    public let capacityAmpHours: Double
    public let seriesResistanceOhms: Double
    public let polarisationResistanceOhms: Double
    public let polarisationTimeConstant: TimeInterval
    /// The true state of charge, 0…1.
    public private(set) var stateOfCharge: Double
    public private(set) var polarisationVolts: Double = 0

    public init(
        chemistry: BatteryChemistry,
        nominalVolts: Double = 12,
        capacityAmpHours: Double,
        stateOfCharge: Double,
        seriesResistanceOhms: Double = 0.02,
        polarisationResistanceOhms: Double = 0.02,
        polarisationTimeConstant: TimeInterval = 900
    ) {
        self.chemistry = chemistry
        self.cells = chemistry.cellCount(nominalVolts: nominalVolts)
        self.capacityAmpHours = capacityAmpHours
        self.stateOfCharge = stateOfCharge
        self.seriesResistanceOhms = seriesResistanceOhms
        self.polarisationResistanceOhms = polarisationResistanceOhms
        self.polarisationTimeConstant = polarisationTimeConstant
    }

    /// What the battery's monitor would see during one step, without measurement error.
    public struct Step: Sendable, Hashable {
        /// Terminal voltage (V).
        public var volts: Double
        /// Battery current (A), positive discharging.
        public var amps: Double
        /// The load the battery and charger actually fed (0 once disconnected).
        public var loadAmps: Double
    }

    /// Runs `seconds` with `loadAmps` drawn and `chargerAmps` offered by the charger; returns the state at the end.
    public mutating func step(loadAmps: Double, chargerAmps: Double, seconds: TimeInterval) -> Step {
        let cells = Double(self.cells)
        let absorptionVolts = (self.chemistry.fullChargeVoltsPerCell + 0.1) * cells
        let floatVolts = self.chemistry.restedVoltsPerCell(stateOfCharge: 1) * cells
        let load = self.stateOfCharge > 0 || chargerAmps > loadAmps ? loadAmps : 0
        var amps = load - chargerAmps
        var fixedVolts: Double?
        if amps < 0 {
            if self.stateOfCharge >= 0.9999 {
                amps = 0
                fixedVolts = floatVolts
            } else if self.stateOfCharge > 0.98 {
                amps *= (1 - self.stateOfCharge) / 0.02
                fixedVolts = absorptionVolts
            }
        }
        let ampHours = amps * seconds / 3600
        let efficiency = ampHours < 0 ? self.chemistry.chargeEfficiency : 1
        self.stateOfCharge = min(1, max(0, self.stateOfCharge - ampHours * efficiency / self.capacityAmpHours))
        let relax = 1 - exp(-seconds / self.polarisationTimeConstant)
        self.polarisationVolts += relax * (amps * self.polarisationResistanceOhms - self.polarisationVolts)
        let openCircuit = self.chemistry.restedVoltsPerCell(stateOfCharge: self.stateOfCharge) * cells
        let volts = fixedVolts ?? (openCircuit - amps * self.seriesResistanceOhms - self.polarisationVolts)
        return Step(volts: volts, amps: amps, loadAmps: load)
    }
}

/// A deterministic pseudo-random source (SplitMix64) for reproducible sensor noise in simulations.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { self.state = seed }

    public mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = self.state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }

    /// A normally distributed value (Box–Muller) with mean 0 and standard deviation `sigma`.
    public mutating func gaussian(sigma: Double) -> Double {
        let u1 = Double.random(in: Double.ulpOfOne..<1, using: &self)
        let u2 = Double.random(in: 0..<1, using: &self)
        return sigma * (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}

/// A synthetic week (or any span) of a Kiezbox's battery: a daily solar curve scaled by each day's weather, a
/// base load with evening and morning steps, and the battery's monitor readings with offset and noise.
public struct SyntheticPowerProfile: Sendable {
    /// One sample: the truth and what the monitors report.
    public struct Sample: Sendable, Hashable {
        public var at: Date
        public var trueStateOfCharge: Double
        public var measuredVolts: Double
        public var measuredAmps: Double
        public var solarVolts: Double
        public var solarAmps: Double
    }

    public var start: Date
    public var interval: TimeInterval = 60
    /// The panel's current at noon on a clear day (A at the battery's voltage).
    public var peakSolarAmps: Double = 2
    /// Each day's share of the clear-sky sun, repeated.
    public var dailySunshine: [Double] = [0.6, 0.2, 0.4, 0.1, 0.3, 0.5, 0.2]
    /// Always drawn: Pi, Wi-Fi, sensors (A).
    public var baseLoadAmps: Double = 0.35
    /// Added 18:00–22:00 (the portal busy) and 07:00–09:00 (A).
    public var eveningLoadAmps: Double = 1.2
    public var morningLoadAmps: Double = 0.8
    /// The battery monitor's zero offset (A) and noise (standard deviation, A; V).
    public var currentOffsetAmps: Double = 0.03
    public var currentNoiseAmps: Double = 0.01
    public var voltageNoiseVolts: Double = 0.005
    public var seed: UInt64 = 12

    public init(start: Date) { self.start = start }

    /// Samples every ``interval`` for `duration`, driving `battery`.
    public func samples(for duration: TimeInterval, battery: inout SimulatedBattery) -> [Sample] {
        var random = SeededRandom(seed: self.seed)
        var samples: [Sample] = []
        var elapsed: TimeInterval = 0
        while elapsed < duration {
            elapsed += self.interval
            let at = self.start.addingTimeInterval(elapsed)
            let day = Int(elapsed / 86_400)
            let hour = elapsed.truncatingRemainder(dividingBy: 86_400) / 3600
            let sunshine = self.dailySunshine.isEmpty ? 1 : self.dailySunshine[day % self.dailySunshine.count]
            let sun = max(0, sin(2 * Double.pi * (hour - 6) / 24))
            let solarAmps = self.peakSolarAmps * sunshine * sun
            var load = self.baseLoadAmps
            if hour >= 18 && hour < 22 { load += self.eveningLoadAmps }
            if hour >= 7 && hour < 9 { load += self.morningLoadAmps }
            let step = battery.step(loadAmps: load, chargerAmps: solarAmps, seconds: self.interval)
            samples.append(
                Sample(
                    at: at,
                    trueStateOfCharge: battery.stateOfCharge,
                    measuredVolts: step.volts + random.gaussian(sigma: self.voltageNoiseVolts),
                    measuredAmps: step.amps + self.currentOffsetAmps + random.gaussian(sigma: self.currentNoiseAmps),
                    solarVolts: solarAmps > 0 ? step.volts : 0,
                    solarAmps: solarAmps
                )
            )
        }
        return samples
    }
}
