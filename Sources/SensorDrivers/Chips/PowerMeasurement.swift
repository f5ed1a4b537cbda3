public import KiezboxCore

/// One reading of a shunt power monitor (INA219, INA226) in SI units, with how far each value can be trusted.
public struct PowerMeasurement: Sendable, Hashable {
    /// The voltage between IN− (the load side of the shunt) and ground, V.
    public var busVolts: Double
    /// The voltage across the shunt, V: positive when current flows from IN+ to IN−.
    public var shuntVolts: Double
    /// The current through the shunt, A, with the shunt voltage's sign (+ discharge / − charge, or the other
    /// way round, depending on how the shunt is wired).
    public var amps: Double
    /// The power the chip computed, W: |current| × bus voltage, never negative.
    public var watts: Double
    public var voltageQuality: ReadingQuality
    /// The quality of ``amps`` and ``shuntVolts``.
    public var currentQuality: ReadingQuality
    /// The quality of ``watts``: no better than that of the voltage and the current it is made of.
    public var powerQuality: ReadingQuality

    public init(
        busVolts: Double,
        shuntVolts: Double,
        amps: Double,
        watts: Double,
        voltageQuality: ReadingQuality = .good,
        currentQuality: ReadingQuality = .good,
        powerQuality: ReadingQuality = .good
    ) {
        self.busVolts = busVolts
        self.shuntVolts = shuntVolts
        self.amps = amps
        self.watts = watts
        self.voltageQuality = voltageQuality
        self.currentQuality = currentQuality
        self.powerQuality = powerQuality
    }

    /// What a driver's `measure()` reports: bus voltage (V), current (A) and power (W).
    public var measuredValues: [MeasuredValue] {
        [
            MeasuredValue(.voltage, self.busVolts, quality: self.voltageQuality),
            MeasuredValue(.current, self.amps, quality: self.currentQuality),
            MeasuredValue(.power, self.watts, quality: self.powerQuality),
        ]
    }
}
