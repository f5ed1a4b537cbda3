import Foundation
import KiezboxCore
import Testing

@testable import EmergencyPortal

@Suite("Heat, air quality and distance for the info page")
struct WeatherWarningTests {
    /// The NWS heat index chart: 90 °F at 70 % reads 106 °F, 96 °F at 65 % reads 121 °F; 80 °F at 40 % stays
    /// below 80 °F (simple formula); the two Rothfusz adjustments for dry and for humid air.
    @Test(
        "Heat index against the NWS chart",
        arguments: [
            (90.0, 70.0, 105.9), (96, 65, 121.0), (80, 40, 79.6), (100, 10, 94.1), (84, 90, 98.3), (70, 50, 69.1),
        ]
    )
    func heatIndex(fahrenheit: Double, humidity: Double, expectedFahrenheit: Double) {
        let celsius = heatIndexCelsius(temperatureCelsius: (fahrenheit - 32) * 5 / 9, relativeHumidity: humidity)
        #expect(abs(celsius * 9 / 5 + 32 - expectedFahrenheit) < 0.05)
    }

    @Test("Heat classes at 27, 32, 41 and 54 °C")
    func heatClasses() {
        #expect(HeatRisk(heatIndexCelsius: 26.9) == nil)
        #expect(HeatRisk(heatIndexCelsius: 27) == .caution)
        #expect(HeatRisk(heatIndexCelsius: 32) == .extremeCaution)
        #expect(HeatRisk(heatIndexCelsius: 40.9) == .extremeCaution)
        #expect(HeatRisk(heatIndexCelsius: 41) == .danger)
        #expect(HeatRisk(heatIndexCelsius: 54) == .extremeDanger)
    }

    @Test("European Air Quality Index bands for PM2.5 and PM10")
    func airBands() {
        #expect(AirQualityBand(pm2_5: 0) == .good)
        #expect(AirQualityBand(pm2_5: 10) == .good)
        #expect(AirQualityBand(pm2_5: 10.1) == .fair)
        #expect(AirQualityBand(pm2_5: 25) == .moderate)
        #expect(AirQualityBand(pm2_5: 49) == .poor)
        #expect(AirQualityBand(pm2_5: 60) == .veryPoor)
        #expect(AirQualityBand(pm2_5: 300) == .extremelyPoor)
        #expect(AirQualityBand(pm10: 20) == .good)
        #expect(AirQualityBand(pm10: 45) == .moderate)
        #expect(AirQualityBand(pm10: 120) == .veryPoor)
        #expect(AirQualityBand(pm10: 151) == .extremelyPoor)
    }

    @Test("Warnings come from fresh, plausible readings of one sensor")
    func warnings() {
        let now = InfoPageFixtures.now
        func reading(_ sensor: String, _ quantity: Quantity, _ value: Double, age: TimeInterval = 60, quality: ReadingQuality = .good) -> StoredReading {
            StoredReading(id: 0, reading: Reading(sensorID: sensor, quantity: quantity, value: value, measuredAt: now - age, quality: quality))
        }
        let hot = WeatherWarnings(
            latest: [reading("climate", .temperature, (90 - 32) * 5 / 9), reading("climate", .relativeHumidity, 70), reading("co2", .temperature, 20)],
            now: now)
        #expect(hot.heat == .danger)
        #expect(abs((hot.heatIndex ?? 0) - 41.07) < 0.01)  // 105.9 °F, as the chart's 106
        let stale = WeatherWarnings(latest: [reading("climate", .temperature, 40, age: 3 * 3600)], now: now)
        #expect(stale.heat == nil)
        let implausible = WeatherWarnings(latest: [reading("climate", .temperature, 85, quality: .implausible)], now: now)
        #expect(implausible.heat == nil)
        let frost = WeatherWarnings(latest: [reading("climate", .temperature, -3)], now: now)
        #expect(frost.frost && frost.heat == nil)
        let smoke = WeatherWarnings(latest: [reading("pm", .pm2_5, 12), reading("pm", .pm10, 120)], now: now)
        #expect(smoke.airQuality == .veryPoor)
    }

    @Test("Distances: haversine and walking-sized rounding")
    func distances() {
        let gate = GeoPosition(latitude: 52.5163, longitude: 13.3777)
        let tower = GeoPosition(latitude: 52.5208, longitude: 13.4094)
        #expect(abs(gate.distance(to: tower) - 2202.5) < 0.5)
        #expect(gate.distance(to: gate) == 0)
        let german = PortalFormatter(strings: PortalStrings.forLanguage(.de), timeZone: InfoPage.berlin, now: InfoPageFixtures.now)
        #expect(german.distance(metres: 347) == "350\u{00A0}m")
        #expect(german.distance(metres: 996) == "1,0\u{00A0}km")
        #expect(german.distance(metres: 2202.5) == "2,2\u{00A0}km")
        #expect(german.distance(metres: 12_400) == "12\u{00A0}km")
        let english = PortalFormatter(strings: PortalStrings.forLanguage(.en), timeZone: InfoPage.berlin, now: InfoPageFixtures.now)
        #expect(english.distance(metres: 2202.5) == "2.2\u{00A0}km")
        #expect(english.number(-0.04, fractionDigits: 1) == "0.0")
    }

    @Test("Ages in coarse steps; clock times in Berlin")
    func times() {
        let now = InfoPageFixtures.now
        #expect(RelativeAge(of: now - 59, at: now) == .justNow)
        #expect(RelativeAge(of: now + 300, at: now) == .justNow)
        #expect(RelativeAge(of: now - 180, at: now) == .minutes(3))
        #expect(RelativeAge(of: now - 7200, at: now) == .hours(2))
        #expect(RelativeAge(of: now - 86_400 * 3, at: now) == .days(3))
        let format = PortalFormatter(strings: PortalStrings.forLanguage(.de), timeZone: InfoPage.berlin, now: now)
        // 1_795_000_000 is 2026-11-18 11:06:40 UTC, 12:06:40 in Berlin (CET).
        #expect(format.clockTime(now) == "12:06")
        #expect(format.clockTime(now + 86_400) == "19.11. 12:06")
    }
}
