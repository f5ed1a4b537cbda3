import Foundation
import KiezboxCore
import ServiceLifecycle

/// A plausible Berlin day for the simulated chips: temperature peaking mid-afternoon, humidity falling as it
/// warms, pressure drifting over days, CO₂ and particulates with the traffic and heating hours, a solar-charged
/// battery, and the odd shower. Deterministic in the date, so a demo is reproducible.
enum SimulatedWeather {
    struct Conditions: Sendable, Hashable {
        var celsius: Double
        var hectopascal: Double
        var percentRH: Double
        var co2PPM: Double
        /// PM1, PM2.5, PM4, PM10 in µg/m³.
        var particulates: (pm1: Double, pm2_5: Double, pm4: Double, pm10: Double)
        var batteryVolts: Double
        /// Positive: the battery is discharging.
        var batteryAmps: Double
        var rainMillimetresPerHour: Double
        var mainsPresent: Bool

        static func == (lhs: Conditions, rhs: Conditions) -> Bool {
            lhs.celsius == rhs.celsius && lhs.hectopascal == rhs.hectopascal && lhs.percentRH == rhs.percentRH
                && lhs.co2PPM == rhs.co2PPM && lhs.particulates == rhs.particulates && lhs.batteryVolts == rhs.batteryVolts
                && lhs.batteryAmps == rhs.batteryAmps && lhs.rainMillimetresPerHour == rhs.rainMillimetresPerHour
                && lhs.mainsPresent == rhs.mainsPresent
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(self.celsius)
            hasher.combine(self.co2PPM)
        }
    }

    /// A day the fixture asks for (`scenario`, docs/simulation.md) instead of the ordinary one, to see the
    /// warnings work (docs/warnings.md).
    enum Scenario: String, Sendable, Hashable, CaseIterable {
        case ordinary
        /// A Berlin heat wave: 18 °C at 03:00 UTC to 36 °C at 15:00 UTC, humidity falling from 70 % to 40 % as it
        /// warms: perceived temperature above 32 °C from late morning and above 38 °C in the afternoon.
        case heatWave = "heat-wave"
        /// An ordinary day with a cloudburst from 14:00 to 15:00 UTC: 36 mm/h for half an hour, then 60 mm/h,
        /// 48 mm in the hour, and dry before and after.
        case cloudburst
    }

    static func conditions(at date: Date, scenario: Scenario) -> Conditions {
        var conditions = Self.conditions(at: date)
        let dayFraction = date.timeIntervalSince1970.truncatingRemainder(dividingBy: 86_400) / 86_400
        switch scenario {
        case .ordinary:
            break
        case .heatWave:
            let daily = sin(2 * Double.pi * (dayFraction - 0.375))
            conditions.celsius = 27 + 9 * daily
            conditions.percentRH = 55 - 15 * daily
        case .cloudburst:
            let hour = dayFraction * 24
            conditions.rainMillimetresPerHour = switch hour {
            case 14..<14.5: 36
            case 14.5..<15: 60
            default: 0
            }
        }
        return conditions
    }

    static func conditions(at date: Date) -> Conditions {
        let seconds = date.timeIntervalSince1970
        let dayFraction = (seconds.truncatingRemainder(dividingBy: 86_400)) / 86_400
        let yearFraction = (seconds.truncatingRemainder(dividingBy: 31_557_600)) / 31_557_600
        // Seasonal mean from about 0 °C in January to 19 °C in July; daily swing of ±5 °C peaking at 15:00 UTC+1.
        let seasonal = 9.5 - 9.5 * cos(2 * Double.pi * (yearFraction - 0.03))
        let daily = 5 * sin(2 * Double.pi * (dayFraction - 0.375))
        let wobble = 0.3 * sin(seconds / 600) + 0.1 * sin(seconds / 97)
        let celsius = seasonal + daily + wobble
        let humidity = min(98, max(25, 70 - 3.5 * daily + 2 * sin(seconds / 1300)))
        let pressure = 1013 + 8 * sin(2 * Double.pi * seconds / 259_200) + 0.2 * sin(seconds / 300)
        // Rush hours (07:00 and 17:00 UTC) raise CO₂ and particulates a little over the urban background.
        let rush = exp(-pow((dayFraction - 0.29) * 24 / 1.5, 2)) + exp(-pow((dayFraction - 0.71) * 24 / 2, 2))
        let co2 = 425 + 35 * rush + 5 * sin(seconds / 700)
        let pm2_5 = max(1, 9 + 6 * rush + 1.5 * sin(seconds / 900))
        // Daylight from 06:00 to 18:00 UTC charges the battery; at night the box draws about 0.4 A.
        let sun = max(0, sin(2 * Double.pi * (dayFraction - 0.25)))
        let amps = 0.4 - 1.6 * sun
        let volts = 12.9 + 0.5 * sun - 0.1 * cos(2 * Double.pi * dayFraction)
        // A shower of up to 6 mm/h for about 40 minutes every 7 hours.
        let showerPhase = seconds.truncatingRemainder(dividingBy: 25_200) / 2400
        let rain = showerPhase < 1 ? 6 * sin(Double.pi * showerPhase) : 0
        return Conditions(
            celsius: celsius, hectopascal: pressure, percentRH: humidity, co2PPM: co2,
            particulates: (pm1: pm2_5 * 0.7, pm2_5: pm2_5, pm4: pm2_5 * 1.15, pm10: pm2_5 * 1.6),
            batteryVolts: volts, batteryAmps: amps, rainMillimetresPerHour: rain, mainsPresent: true
        )
    }
}

/// Moves the simulated chips' world along with the clock.
struct SimulatedWeatherService<C: KiezboxClock>: Service {
    let kit: SimulatedKit
    let clock: C
    var period: Duration = .seconds(5)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                self.kit.updateWorld(at: self.clock.currentDate())
                do { try await self.clock.sleep(for: self.period) } catch { break }
            }
        }
    }
}
