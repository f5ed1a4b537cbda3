import Foundation
import KiezboxCore
import SensorDrivers
import ServiceLifecycle

/// A plausible Berlin day for the simulated chips: temperature peaking mid-afternoon, humidity falling as it
/// warms, pressure drifting over days. Deterministic in the date, so a demo is reproducible.
enum SimulatedWeather {
    struct Conditions: Sendable, Hashable {
        var celsius: Double
        var hectopascal: Double
        var percentRH: Double
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
        return Conditions(celsius: celsius, hectopascal: pressure, percentRH: humidity)
    }
}

/// Moves the simulated chips' environment along with the clock.
struct SimulatedWeatherService<C: KiezboxClock>: Service {
    let kit: SimulatedKit
    let clock: C
    var period: Duration = .seconds(5)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                self.update()
                do { try await self.clock.sleep(for: self.period) } catch { break }
            }
        }
    }

    /// Sets every chip to the conditions of now.
    func update() {
        self.kit.updateEnvironment(at: self.clock.currentDate())
    }
}
