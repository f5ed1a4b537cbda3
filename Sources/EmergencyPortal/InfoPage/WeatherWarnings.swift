import Foundation
import KiezboxCore

/// What the box's own latest readings say about heat, frost and air, for the plain-language warnings.
public struct WeatherWarnings: Sendable, Hashable {
    /// The heat index ("feels like") in °C when temperature and humidity are known, else nil.
    public var heatIndex: Double?
    /// What the heat warnings go by (docs/warnings.md): the heat index, or the air temperature without a humidity.
    public var perceivedCelsius: Double?
    public var heat: HeatRisk?
    /// At or below 0 °C.
    public var frost: Bool
    /// The worse of the PM2.5 and PM10 bands, when either is measured.
    public var airQuality: AirQualityBand?

    /// Readings older than this give no warnings: a warning must describe now, not this morning.
    public static let freshness: TimeInterval = 2 * 3600

    /// Warnings from the latest readings at `now`. Implausible readings are ignored. Temperature and humidity are
    /// taken from the same sensor when one measures both, so the heat index combines values taken together.
    public init(latest: [StoredReading], now: Date) {
        let usable = latest.map(\.reading).filter {
            $0.quality != .implausible && now.timeIntervalSince($0.measuredAt) <= Self.freshness
        }
        func newest(_ quantity: Quantity, sensor: String? = nil) -> Reading? {
            usable.filter { $0.quantity == quantity && (sensor == nil || $0.sensorID == sensor) }
                .max { $0.measuredAt < $1.measuredAt }
        }
        let temperatures = usable.filter { $0.quantity == .temperature }
        let paired = temperatures.filter { t in newest(.relativeHumidity, sensor: t.sensorID) != nil }
            .max { $0.measuredAt < $1.measuredAt }
        let temperature = paired ?? newest(.temperature)
        let humidity = temperature.flatMap { newest(.relativeHumidity, sensor: $0.sensorID) }

        if let temperature {
            let index = humidity.map {
                heatIndexCelsius(temperatureCelsius: temperature.value, relativeHumidity: $0.value)
            }
            self.heatIndex = index
            self.perceivedCelsius = index ?? temperature.value
            self.heat = HeatRisk(heatIndexCelsius: index ?? temperature.value)
            self.frost = temperature.value <= 0
        } else {
            self.heatIndex = nil
            self.perceivedCelsius = nil
            self.heat = nil
            self.frost = false
        }
        let bands = [newest(.pm2_5).map { AirQualityBand(pm2_5: $0.value) }, newest(.pm10).map { AirQualityBand(pm10: $0.value) }]
        self.airQuality = bands.compactMap { $0 }.max()
    }
}
