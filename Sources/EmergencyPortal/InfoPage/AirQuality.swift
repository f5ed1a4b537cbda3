/// A band of the European Air Quality Index (European Environment Agency, six-level version in use 2021–2024)
/// for particulate matter, in µg/m³:
///
/// | band | PM2.5 | PM10 |
/// |---|---|---|
/// | good | 0–10 | 0–20 |
/// | fair | 10–20 | 20–40 |
/// | moderate | 20–25 | 40–50 |
/// | poor | 25–50 | 50–100 |
/// | very poor | 50–75 | 100–150 |
/// | extremely poor | 75– | 150– |
///
/// The EEA applies the bands to 24-hour running means; the box applies them to its latest reading, so the page
/// calls it an indication, not the official index.
public enum AirQualityBand: Int, Sendable, Hashable, CaseIterable, Comparable {
    case good = 1, fair, moderate, poor, veryPoor, extremelyPoor

    /// The band of a PM2.5 concentration, µg/m³.
    public init(pm2_5: Double) {
        self = Self.band(pm2_5, upperBounds: [10, 20, 25, 50, 75])
    }

    /// The band of a PM10 concentration, µg/m³.
    public init(pm10: Double) {
        self = Self.band(pm10, upperBounds: [20, 40, 50, 100, 150])
    }

    /// Whether the band asks anyone to change what they do (moderate and worse).
    public var needsAdvice: Bool { self >= .moderate }

    public static func < (lhs: AirQualityBand, rhs: AirQualityBand) -> Bool { lhs.rawValue < rhs.rawValue }

    private static func band(_ value: Double, upperBounds: [Double]) -> AirQualityBand {
        let index = upperBounds.firstIndex(where: { value <= $0 }) ?? upperBounds.count
        return AirQualityBand(rawValue: index + 1) ?? .extremelyPoor
    }
}
