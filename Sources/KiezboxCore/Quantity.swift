/// What a reading measures. Each quantity has exactly one unit in Kiezbox, so a value never travels
/// without knowing what it means, and a receiver never has to convert.
public enum Quantity: String, Sendable, Hashable, Codable, CaseIterable {
    case temperature
    case relativeHumidity = "relative_humidity"
    case pressure
    case pm1 = "pm1"
    case pm2_5 = "pm2_5"
    case pm4 = "pm4"
    case pm10 = "pm10"
    case co2
    case voltage
    case current
    case power
    case batteryLevel = "battery_level"
    case latitude
    case longitude
    case altitude
    case rainfall
    case rainIntensity = "rain_intensity"
    case mainsPresent = "mains_present"

    /// The unit every value of this quantity is stored and sent in.
    public var unit: Unit {
        switch self {
        case .temperature: .degreeCelsius
        case .relativeHumidity, .batteryLevel: .percent
        case .pressure: .hectopascal
        case .pm1, .pm2_5, .pm4, .pm10: .microgramPerCubicMetre
        case .co2: .partsPerMillion
        case .voltage: .volt
        case .current: .ampere
        case .power: .watt
        case .latitude, .longitude: .degree
        case .altitude: .metre
        case .rainfall: .millimetre
        case .rainIntensity: .millimetrePerHour
        case .mainsPresent: .boolean
        }
    }
}

/// A unit of measurement: SI where residents expect it, customary where they do not (hPa, not Pa).
public struct Unit: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The symbol a person reads ("°C", "µg/m³").
    public let symbol: String
    /// The UCUM code machines read (OGC SensorThings, openSenseMap): "Cel", "ug/m3".
    public let ucum: String

    public var description: String { self.symbol }

    public static let degreeCelsius = Unit(symbol: "°C", ucum: "Cel")
    public static let percent = Unit(symbol: "%", ucum: "%")
    public static let hectopascal = Unit(symbol: "hPa", ucum: "hPa")
    public static let microgramPerCubicMetre = Unit(symbol: "µg/m³", ucum: "ug/m3")
    public static let partsPerMillion = Unit(symbol: "ppm", ucum: "ppm")
    public static let volt = Unit(symbol: "V", ucum: "V")
    public static let ampere = Unit(symbol: "A", ucum: "A")
    public static let watt = Unit(symbol: "W", ucum: "W")
    public static let degree = Unit(symbol: "°", ucum: "deg")
    public static let metre = Unit(symbol: "m", ucum: "m")
    public static let millimetre = Unit(symbol: "mm", ucum: "mm")
    public static let millimetrePerHour = Unit(symbol: "mm/h", ucum: "mm/h")
    public static let boolean = Unit(symbol: "", ucum: "1")
}
