import Foundation
import KiezboxCore
import Testing

@Suite("Manual clock")
struct ManualClockTests {
    @Test("a sleeper wakes when time reaches its deadline, not before")
    func wakesAtDeadline() async throws {
        let clock = ManualClock()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await clock.sleep(for: .seconds(10)) }
            await clock.waitForSleepers(1)
            clock.advance(by: .seconds(9))
            #expect(clock.sleeperCount == 1)
            clock.advance(by: .seconds(1))
            try await group.waitForAll()
            #expect(clock.sleeperCount == 0)
        }
    }

    @Test("a deadline already passed returns at once")
    func pastDeadline() async throws {
        let clock = ManualClock()
        clock.advance(by: .seconds(5))
        try await clock.sleep(until: .init(offset: .seconds(3)))
    }

    @Test("cancelling a sleeper throws CancellationError and removes it")
    func cancellation() async throws {
        let clock = ManualClock()
        let task = Task { try await clock.sleep(for: .seconds(60)) }
        await clock.waitForSleepers(1)
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(clock.sleeperCount == 0)
    }

    @Test("wall time follows the clock from its start date")
    func wallTime() {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let clock = ManualClock(startDate: start)
        clock.advance(by: .milliseconds(90_500))
        #expect(clock.currentDate() == start.addingTimeInterval(90.5))
    }
}

@Suite("Values")
struct ValueTests {
    @Test("every quantity has one unit, with a symbol and a UCUM code")
    func units() {
        #expect(Quantity.temperature.unit.symbol == "°C")
        #expect(Quantity.temperature.unit.ucum == "Cel")
        #expect(Quantity.pressure.unit == .hectopascal)
        #expect(Quantity.pm2_5.unit.ucum == "ug/m3")
        #expect(Quantity.allCases.allSatisfy { !$0.unit.ucum.isEmpty })
        #expect(Set(Quantity.allCases.map(\.rawValue)).count == Quantity.allCases.count)
    }

    @Test("a reading's unit comes from its quantity and survives a JSON round trip")
    func readingCodable() throws {
        let reading = Reading(sensorID: "climate", quantity: .relativeHumidity, value: 55.5, measuredAt: Date(timeIntervalSince1970: 1_800_000_000), quality: .implausible)
        #expect(reading.unit == .percent)
        let decoded = try JSONDecoder().decode(Reading.self, from: JSONEncoder().encode(reading))
        #expect(decoded == reading)
    }

    @Test("positions off the earth are invalid")
    func positions() {
        #expect(GeoPosition(latitude: 52.5, longitude: 13.4).isValid)
        #expect(!GeoPosition(latitude: 91, longitude: 13.4).isValid)
        #expect(!GeoPosition(latitude: 52.5, longitude: -181).isValid)
    }
}
