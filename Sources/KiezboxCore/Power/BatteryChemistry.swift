/// A battery chemistry: how a rested cell's open-circuit voltage maps to its state of charge, and the voltages a
/// charger holds it at when full.
///
/// The curves are per cell, so one table serves 12 V and 24 V batteries (``cellCount(nominalVolts:)``). They are
/// typical values from public charts, not a calibration of any particular battery (see docs/power.md):
/// - LiFePO₄: the 12 V chart of gridwright.com's LiFePO4 voltage chart (13.6 V 99 %, 13.4 V 90 %, 13.3 V 70 %,
///   13.2 V 40 %, 13.0 V 30 %, 12.8 V 20 %, 12.0 V 10 %, 10.0 V 0 %), divided by its 4 cells; 13.6 V (3.40 V per
///   cell) is taken as 100 %, since the chart's 14.6 V point is a charging voltage, not a rested one.
/// - Lead-acid: the rested 12 V table on vanjunkies.co.uk ("state of charge", after Victron Energy's: 12.7 V
///   100 % down to 11.8 V 10 % in steps of 0.1 V per 10 %), divided by its 6 cells; its 0 % ("below 11.8 V") is
///   placed at 11.7 V here.
public struct BatteryChemistry: Sendable, Hashable, Codable {
    /// One point of the curve: a rested cell's voltage and the state of charge (0…1) it means.
    public struct CurvePoint: Sendable, Hashable, Codable {
        public var voltsPerCell: Double
        public var stateOfCharge: Double

        public init(voltsPerCell: Double, stateOfCharge: Double) {
            self.voltsPerCell = voltsPerCell
            self.stateOfCharge = stateOfCharge
        }
    }

    /// The name used in the configuration ("lifepo4", "lead-acid").
    public var name: String
    /// A cell's nominal voltage: 12 V is 4 LiFePO₄ cells (3.2 V) or 6 lead-acid cells (2.0 V).
    public var nominalVoltsPerCell: Double
    /// Rested open-circuit voltage per cell against state of charge, voltage ascending.
    public var curve: [CurvePoint]
    /// At or above this voltage per cell with only a tail current flowing in, the charger has finished: 100 %.
    public var fullChargeVoltsPerCell: Double
    /// The share of the charge put in that can be taken out again (coulombic efficiency).
    public var chargeEfficiency: Double

    public init(
        name: String, nominalVoltsPerCell: Double, curve: [CurvePoint], fullChargeVoltsPerCell: Double,
        chargeEfficiency: Double
    ) {
        self.name = name
        self.nominalVoltsPerCell = nominalVoltsPerCell
        self.curve = curve.sorted { $0.voltsPerCell < $1.voltsPerCell }
        self.fullChargeVoltsPerCell = fullChargeVoltsPerCell
        self.chargeEfficiency = chargeEfficiency
    }

    public static let lifePO4 = BatteryChemistry(
        name: "lifepo4",
        nominalVoltsPerCell: 3.2,
        curve: [
            .init(voltsPerCell: 2.500, stateOfCharge: 0.00),
            .init(voltsPerCell: 3.000, stateOfCharge: 0.10),
            .init(voltsPerCell: 3.200, stateOfCharge: 0.20),
            .init(voltsPerCell: 3.250, stateOfCharge: 0.30),
            .init(voltsPerCell: 3.300, stateOfCharge: 0.40),
            .init(voltsPerCell: 3.325, stateOfCharge: 0.70),
            .init(voltsPerCell: 3.350, stateOfCharge: 0.90),
            .init(voltsPerCell: 3.400, stateOfCharge: 1.00),
        ],
        // A LiFePO₄ charger's absorption voltage is 14.2–14.6 V per 12 V battery; 13.8 V (3.45 V) is passed by all.
        fullChargeVoltsPerCell: 3.45,
        chargeEfficiency: 0.99
    )

    public static let leadAcid = BatteryChemistry(
        name: "lead-acid",
        nominalVoltsPerCell: 2.0,
        curve: [11.7, 11.8, 11.9, 12.0, 12.1, 12.2, 12.3, 12.4, 12.5, 12.6, 12.7].enumerated().map { index, volts in
            .init(voltsPerCell: volts / 6, stateOfCharge: Double(index) / 10)
        },
        // Absorption is 14.1–14.7 V per 12 V battery; float (13.5–13.8 V) is passed only at the end of a charge.
        fullChargeVoltsPerCell: 2.35,
        // Part of a lead-acid charge goes into gassing: 85–90 % comes back out.
        chargeEfficiency: 0.88
    )

    /// The chemistries the configuration knows, by name.
    public static let known: [BatteryChemistry] = [.lifePO4, .leadAcid]

    /// The chemistry called `name` ("lifepo4", "lead-acid"; case and "_"/"-" do not matter), or nil.
    public static func named(_ name: String) -> BatteryChemistry? {
        let wanted = name.lowercased().replacing("_", with: "-")
        return self.known.first { $0.name == wanted }
    }

    /// How many cells in series make a battery of `nominalVolts` (12 V: 4 LiFePO₄ or 6 lead-acid cells).
    public func cellCount(nominalVolts: Double) -> Int {
        max(1, Int((nominalVolts / self.nominalVoltsPerCell).rounded()))
    }

    /// The state of charge (0…1) a rested cell at `voltsPerCell` has, by linear interpolation; clamped to the curve.
    public func stateOfCharge(restedVoltsPerCell voltsPerCell: Double) -> Double {
        let (lower, upper) = self.segment(around: voltsPerCell)
        guard upper.voltsPerCell > lower.voltsPerCell else { return lower.stateOfCharge }
        let fraction = (voltsPerCell - lower.voltsPerCell) / (upper.voltsPerCell - lower.voltsPerCell)
        return lower.stateOfCharge + min(1, max(0, fraction)) * (upper.stateOfCharge - lower.stateOfCharge)
    }

    /// How much state of charge one volt per cell is worth where the cell rests at `voltsPerCell` (1/V): large on
    /// a flat stretch of the curve, where a voltage says little about the charge.
    public func stateOfChargePerVolt(atVoltsPerCell voltsPerCell: Double) -> Double {
        let (lower, upper) = self.segment(around: voltsPerCell)
        guard upper.voltsPerCell > lower.voltsPerCell else { return 0 }
        return (upper.stateOfCharge - lower.stateOfCharge) / (upper.voltsPerCell - lower.voltsPerCell)
    }

    /// The rested voltage per cell at state of charge `stateOfCharge` (0…1): the curve read the other way.
    public func restedVoltsPerCell(stateOfCharge: Double) -> Double {
        let points = self.curve
        guard let first = points.first, let last = points.last else { return 0 }
        if stateOfCharge <= first.stateOfCharge { return first.voltsPerCell }
        if stateOfCharge >= last.stateOfCharge { return last.voltsPerCell }
        for (lower, upper) in zip(points, points.dropFirst()) where stateOfCharge <= upper.stateOfCharge {
            let fraction = (stateOfCharge - lower.stateOfCharge) / (upper.stateOfCharge - lower.stateOfCharge)
            return lower.voltsPerCell + fraction * (upper.voltsPerCell - lower.voltsPerCell)
        }
        return last.voltsPerCell
    }

    /// The two curve points around `voltsPerCell` (the first or last segment outside the curve).
    private func segment(around voltsPerCell: Double) -> (CurvePoint, CurvePoint) {
        let points = self.curve
        guard points.count >= 2 else {
            let only = points.first ?? CurvePoint(voltsPerCell: 0, stateOfCharge: 0)
            return (only, only)
        }
        let upperIndex = points.firstIndex { $0.voltsPerCell >= voltsPerCell } ?? points.count - 1
        let clampedUpper = max(1, upperIndex)
        return (points[clampedUpper - 1], points[clampedUpper])
    }
}
