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

/// The battery as configured: what it is and how far its measurements can be trusted.
public struct BatteryConfiguration: Sendable, Hashable, Codable {
    public var capacityAmpHours: Double
    public var chemistry: BatteryChemistry
    /// 12 or 24 (V): with the chemistry, the number of cells in series.
    public var nominalVolts: Double
    /// Below this |current| (A) the battery counts as resting; default 1 % of the capacity per hour (0.01 C).
    public var restCurrentAmps: Double
    /// How long the current must stay in the rest band before the voltage is read as the open-circuit voltage.
    public var restDuration: TimeInterval
    /// The battery's internal resistance (Ω): the rested voltage is corrected by current × resistance.
    public var internalResistanceOhms: Double
    /// How far the current monitor may be off at zero (A): the coulomb count drifts by at most this much.
    public var currentOffsetAmps: Double
    /// The current monitor's gain error (share of the reading).
    public var currentGainError: Double
    /// How far a rested voltage per cell may be from the curve's (V): meter error, temperature, relaxation.
    public var restedVoltsUncertaintyPerCell: Double
    /// The time constant of the average draw (s): how quickly "hours left" follows a change of load. A day by
    /// default, so a solar-charged box's day and night average out (docs/power.md compares shorter ones).
    public var drawTimeConstant: TimeInterval
    /// A charge current at or below this share of the capacity (C) at the full-charge voltage means full.
    public var tailCurrentFraction: Double
    /// A longer gap between samples (the daemon was stopped) is not integrated; it only adds uncertainty.
    public var maximumSampleGap: TimeInterval

    public init(
        capacityAmpHours: Double,
        chemistry: BatteryChemistry,
        nominalVolts: Double = 12,
        restCurrentAmps: Double? = nil,
        restDuration: TimeInterval = 1800,
        internalResistanceOhms: Double = 0.02,
        currentOffsetAmps: Double = 0.05,
        currentGainError: Double = 0.01,
        restedVoltsUncertaintyPerCell: Double = 0.01,
        drawTimeConstant: TimeInterval = 24 * 3600,
        tailCurrentFraction: Double = 0.02,
        maximumSampleGap: TimeInterval = 600
    ) {
        self.capacityAmpHours = capacityAmpHours
        self.chemistry = chemistry
        self.nominalVolts = nominalVolts
        self.restCurrentAmps = restCurrentAmps ?? capacityAmpHours * 0.01
        self.restDuration = restDuration
        self.internalResistanceOhms = internalResistanceOhms
        self.currentOffsetAmps = currentOffsetAmps
        self.currentGainError = currentGainError
        self.restedVoltsUncertaintyPerCell = restedVoltsUncertaintyPerCell
        self.drawTimeConstant = drawTimeConstant
        self.tailCurrentFraction = tailCurrentFraction
        self.maximumSampleGap = maximumSampleGap
    }

    /// Cells in series.
    public var cellCount: Int { self.chemistry.cellCount(nominalVolts: self.nominalVolts) }
}

/// What last pinned the state of charge to a measurement rather than to the coulomb count.
public enum BatteryAnchor: String, Sendable, Hashable, Codable {
    /// The open-circuit voltage of a rested battery, read against the chemistry's curve.
    case restedVoltage = "rested-voltage"
    /// The charger's end of charge: full-charge voltage with only a tail current flowing in.
    case fullCharge = "full-charge"
}

/// Everything the model has learnt; persisted (``ReadingStore``'s meta) so a restart continues from it.
public struct BatteryState: Sendable, Hashable, Codable {
    /// 0…1.
    public var stateOfCharge: Double
    /// One standard deviation of ``stateOfCharge`` (0…1): grows while counting, shrinks at each anchor.
    public var stateOfChargeUncertainty: Double
    public var lastSampleAt: Date?
    /// The last battery current (A, positive: discharging).
    public var lastAmps: Double?
    /// Since when the current has stayed in the rest band; nil while it is outside.
    public var restingSince: Date?
    /// Whether the present rest has already anchored the state of charge (one anchor per rest).
    public var anchoredDuringRest: Bool
    public var lastAnchorAt: Date?
    public var lastAnchor: BatteryAnchor?
    /// The exponentially weighted average battery current (A, positive: discharging), and its variance (A²).
    public var averageDrawAmps: Double?
    public var drawVariance: Double
    /// The exponentially weighted average solar input (W) where a monitor measures it, and when last measured.
    public var averageSolarWatts: Double?
    public var lastSolarAt: Date?

    /// A battery the model knows nothing about yet: half full, give or take half.
    public static let unknown = BatteryState(stateOfCharge: 0.5, stateOfChargeUncertainty: 0.5)

    public init(stateOfCharge: Double, stateOfChargeUncertainty: Double) {
        self.stateOfCharge = stateOfCharge
        self.stateOfChargeUncertainty = stateOfChargeUncertainty
        self.anchoredDuringRest = false
        self.drawVariance = 0
    }
}

/// How long the battery lasts at the present average draw, with a range (about one standard deviation).
public struct HoursLeft: Sendable, Hashable, Codable, CustomStringConvertible {
    public var likely: Double
    public var low: Double
    /// nil: the draw may be too small to say (the range is open upwards).
    public var high: Double?

    public init(likely: Double, low: Double, high: Double?) {
        self.likely = likely
        self.low = low
        self.high = high
    }

    /// "about 31 h (25–38 h)".
    public var description: String {
        let high = self.high.map { "\(Self.whole($0))" } ?? "?"
        return "about \(Self.whole(self.likely)) h (\(Self.whole(self.low))–\(high) h)"
    }

    private static func whole(_ hours: Double) -> Int { Int(hours.rounded()) }
}

/// What the model says now.
public struct PowerEstimate: Sendable, Hashable, Codable {
    /// 0…1, and its range (± one standard deviation, clamped to 0…1).
    public var stateOfCharge: Double
    public var stateOfChargeLow: Double
    public var stateOfChargeHigh: Double
    public var remainingAmpHours: Double
    /// The average battery current (A): positive discharging, negative charging; nil before the first sample.
    public var averageDrawAmps: Double?
    /// nil while the battery is charging on average or no draw is known.
    public var hoursLeft: HoursLeft?
    /// The average solar input (W), where a monitor measures it.
    public var solarWatts: Double?
    public var lastAnchor: BatteryAnchor?
    public var lastAnchorAt: Date?

    public init(
        stateOfCharge: Double, stateOfChargeLow: Double, stateOfChargeHigh: Double, remainingAmpHours: Double,
        averageDrawAmps: Double?, hoursLeft: HoursLeft?, solarWatts: Double?, lastAnchor: BatteryAnchor?, lastAnchorAt: Date?
    ) {
        self.stateOfCharge = stateOfCharge
        self.stateOfChargeLow = stateOfChargeLow
        self.stateOfChargeHigh = stateOfChargeHigh
        self.remainingAmpHours = remainingAmpHours
        self.averageDrawAmps = averageDrawAmps
        self.hoursLeft = hoursLeft
        self.solarWatts = solarWatts
        self.lastAnchor = lastAnchor
        self.lastAnchorAt = lastAnchorAt
    }
}

/// State of charge by coulomb counting, anchored to the chemistry's rested-voltage curve and to the charger's
/// end of charge, and hours left at the average draw. Pure: feed it samples with their times (see docs/power.md).
///
/// The state of charge is a one-dimensional Kalman filter: counting adds uncertainty (the current monitor's
/// offset and gain error over the time counted); an anchor is a measurement whose uncertainty is the chemistry
/// curve's slope times the voltage uncertainty, blended in by weight. A flat curve (LiFePO₄ between 40 and
/// 90 %) thus moves the estimate little, a steep one (lead-acid, LiFePO₄'s ends) much.
public struct BatteryModel: Sendable {
    public let configuration: BatteryConfiguration
    public private(set) var state: BatteryState

    public init(configuration: BatteryConfiguration, state: BatteryState = .unknown) {
        self.configuration = configuration
        self.state = state
    }

    /// Takes one battery sample: `amps` positive while discharging (the INA's sign in the packaged wiring),
    /// `volts` the battery's terminal voltage if measured.
    public mutating func observeBattery(volts: Double?, amps: Double, at time: Date) {
        let configuration = self.configuration
        if let previousAt = self.state.lastSampleAt {
            let seconds = time.timeIntervalSince(previousAt)
            guard seconds > 0 else { return }
            self.count(amps: amps, over: seconds)
            self.averageDraw(amps: amps, over: seconds)
        } else {
            self.state.averageDrawAmps = amps
        }
        self.state.lastSampleAt = time
        self.state.lastAmps = amps

        if abs(amps) <= configuration.restCurrentAmps {
            let since = self.state.restingSince ?? time
            self.state.restingSince = since
            if !self.state.anchoredDuringRest, let volts, time.timeIntervalSince(since) >= configuration.restDuration {
                self.anchorToRestedVoltage(volts: volts, amps: amps, at: time)
            }
        } else {
            self.state.restingSince = nil
            self.state.anchoredDuringRest = false
        }
        let cells = Double(configuration.cellCount)
        if let volts, amps <= 0, -amps <= configuration.tailCurrentFraction * configuration.capacityAmpHours,
            volts >= configuration.chemistry.fullChargeVoltsPerCell * cells
        {
            self.state.stateOfCharge = 1
            self.state.stateOfChargeUncertainty = 0.01
            self.state.lastAnchor = .fullCharge
            self.state.lastAnchorAt = time
        }
    }

    /// Takes one sample of the solar monitor: its power if it reports one, else volts × amps.
    public mutating func observeSolar(volts: Double?, amps: Double?, watts: Double?, at time: Date) {
        guard let watts = watts ?? volts.flatMap({ volts in amps.map { abs(volts * $0) } }) else { return }
        if let average = self.state.averageSolarWatts, let previousAt = self.state.lastSolarAt {
            let seconds = time.timeIntervalSince(previousAt)
            guard seconds > 0 else { return }
            let weight = 1 - exp(-seconds / self.configuration.drawTimeConstant)
            self.state.averageSolarWatts = average + weight * (watts - average)
        } else {
            self.state.averageSolarWatts = watts
        }
        self.state.lastSolarAt = time
    }

    /// Takes the battery and solar monitors' readings (any order, other sensors ignored): a monitor's voltage,
    /// current and power measured at the same moment make one sample. Samples not newer than the last one taken
    /// are skipped, so overlapping batches do no harm.
    public mutating func observe(_ readings: [Reading], batterySensorID: String, solarSensorID: String?) {
        struct Sample {
            var volts: Double?
            var amps: Double?
            var watts: Double?
        }
        struct Moment: Hashable {
            var sensorID: String
            var at: Date
        }
        var samples: [Moment: Sample] = [:]
        for reading in readings where reading.sensorID == batterySensorID || reading.sensorID == solarSensorID {
            let moment = Moment(sensorID: reading.sensorID, at: reading.measuredAt)
            switch reading.quantity {
            case .voltage: samples[moment, default: Sample()].volts = reading.value
            case .current: samples[moment, default: Sample()].amps = reading.value
            case .power: samples[moment, default: Sample()].watts = reading.value
            default: continue
            }
        }
        for (moment, sample) in samples.sorted(by: { $0.key.at < $1.key.at }) {
            if moment.sensorID == batterySensorID {
                guard let amps = sample.amps, moment.at > self.state.lastSampleAt ?? .distantPast else { continue }
                self.observeBattery(volts: sample.volts, amps: amps, at: moment.at)
            } else if moment.at > self.state.lastSolarAt ?? .distantPast {
                self.observeSolar(volts: sample.volts, amps: sample.amps, watts: sample.watts, at: moment.at)
            }
        }
    }

    /// The estimate now.
    public var estimate: PowerEstimate {
        let configuration = self.configuration
        let state = self.state
        let remaining = state.stateOfCharge * configuration.capacityAmpHours
        var hoursLeft: HoursLeft?
        if let draw = state.averageDrawAmps, draw > 0.001 {
            // The draw's spread (half its standard deviation, at most three quarters of it) and the state of
            // charge's make the range; a draw that may be near zero leaves it open upwards.
            let drawSpread = min(0.75 * draw, 0.5 * state.drawVariance.squareRoot())
            let chargeSpread = state.stateOfChargeUncertainty * configuration.capacityAmpHours
            let low = max(0, remaining - chargeSpread) / (draw + drawSpread)
            let high = draw - drawSpread > 0.001 ? (remaining + chargeSpread) / (draw - drawSpread) : nil
            hoursLeft = HoursLeft(likely: remaining / draw, low: low, high: high)
        }
        return PowerEstimate(
            stateOfCharge: state.stateOfCharge,
            stateOfChargeLow: max(0, state.stateOfCharge - state.stateOfChargeUncertainty),
            stateOfChargeHigh: min(1, state.stateOfCharge + state.stateOfChargeUncertainty),
            remainingAmpHours: remaining,
            averageDrawAmps: state.averageDrawAmps,
            hoursLeft: hoursLeft,
            solarWatts: state.averageSolarWatts,
            lastAnchor: state.lastAnchor,
            lastAnchorAt: state.lastAnchorAt
        )
    }

    /// Coulomb counting between the last sample and this one (trapezoid), and the uncertainty it adds.
    private mutating func count(amps: Double, over seconds: TimeInterval) {
        let configuration = self.configuration
        let counted = min(seconds, configuration.maximumSampleGap)
        let meanAmps = ((self.state.lastAmps ?? amps) + amps) / 2
        let ampHours = meanAmps * counted / 3600
        let efficiency = ampHours < 0 ? configuration.chemistry.chargeEfficiency : 1
        self.state.stateOfCharge -= ampHours * efficiency / configuration.capacityAmpHours
        self.state.stateOfCharge = min(1, max(0, self.state.stateOfCharge))
        // A monitor's offset is a bias, not noise: its error grows linearly with the time counted.
        var drift = (configuration.currentOffsetAmps + configuration.currentGainError * abs(meanAmps)) * counted / 3600
        // Across a gap nothing was measured: the last current may have gone on flowing, or not.
        drift += max(abs(amps), configuration.currentOffsetAmps) * (seconds - counted) / 3600
        self.state.stateOfChargeUncertainty = min(0.5, self.state.stateOfChargeUncertainty + drift / configuration.capacityAmpHours)
    }

    private mutating func averageDraw(amps: Double, over seconds: TimeInterval) {
        let average = self.state.averageDrawAmps ?? amps
        let weight = 1 - exp(-seconds / self.configuration.drawTimeConstant)
        let deviation = amps - average
        self.state.averageDrawAmps = average + weight * deviation
        self.state.drawVariance = (1 - weight) * (self.state.drawVariance + weight * deviation * deviation)
    }

    /// Blends the state of charge the rested voltage says into the counted one, by their uncertainties.
    private mutating func anchorToRestedVoltage(volts: Double, amps: Double, at time: Date) {
        let configuration = self.configuration
        let chemistry = configuration.chemistry
        let voltsPerCell = (volts + amps * configuration.internalResistanceOhms) / Double(configuration.cellCount)
        let measured = chemistry.stateOfCharge(restedVoltsPerCell: voltsPerCell)
        // 2 % for the curve itself being typical, not this battery's.
        let measuredUncertainty =
            chemistry.stateOfChargePerVolt(atVoltsPerCell: voltsPerCell) * configuration.restedVoltsUncertaintyPerCell + 0.02
        let priorVariance = self.state.stateOfChargeUncertainty * self.state.stateOfChargeUncertainty
        let measuredVariance = measuredUncertainty * measuredUncertainty
        let gain = priorVariance / (priorVariance + measuredVariance)
        self.state.stateOfCharge += gain * (measured - self.state.stateOfCharge)
        self.state.stateOfChargeUncertainty = ((1 - gain) * priorVariance).squareRoot()
        self.state.anchoredDuringRest = true
        self.state.lastAnchor = .restedVoltage
        self.state.lastAnchorAt = time
    }
}
