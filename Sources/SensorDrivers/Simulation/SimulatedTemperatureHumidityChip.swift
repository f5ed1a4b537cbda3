/// A simulated chip that measures temperature and relative humidity on command and sends them as 16-bit signals
/// (``SimulatedSHT3x``, ``SimulatedSHT4x``).
public protocol SimulatedTemperatureHumidityChip: SimulatedI2CChip {
    /// Sets the raw ticks the next measurements return.
    func setRawSignals(temperature: UInt16, humidity: UInt16)

    /// Sets the ticks that the datasheet conversion turns into these values (nearest tick; values the 16-bit signal
    /// cannot carry give the end of its range).
    func setEnvironment(celsius: Double, percentRH: Double)

    /// The temperature signal for `celsius`, to the nearest tick.
    static func temperatureTicks(_ celsius: Double) -> UInt16

    /// The humidity signal for `percentRH`, to the nearest tick.
    static func humidityTicks(_ percentRH: Double) -> UInt16
}

extension SimulatedTemperatureHumidityChip {
    public func setEnvironment(celsius: Double, percentRH: Double) {
        self.setRawSignals(temperature: Self.temperatureTicks(celsius), humidity: Self.humidityTicks(percentRH))
    }

    /// Inverse of `T = −45 + 175·S/65535`, the temperature conversion of both the SHT3x and the SHT4x.
    public static func temperatureTicks(_ celsius: Double) -> UInt16 { Self.sixteenBit((celsius + 45) / 175) }
}

/// The state of a simulated chip with a temperature and a humidity signal.
protocol SimulatedSignalState: SimulatedSensirionState {
    var temperatureTicks: UInt16 { get set }
    var humidityTicks: UInt16 { get set }
}

/// A simulated Sensirion chip with a temperature and a humidity signal in its state.
protocol SimulatedSignalChip: SimulatedSensirionChip, SimulatedTemperatureHumidityChip where State: SimulatedSignalState {}

extension SimulatedSignalChip {
    public func setRawSignals(temperature: UInt16, humidity: UInt16) {
        self.withState { state in
            state.temperatureTicks = temperature
            state.humidityTicks = humidity
        }
    }
}
