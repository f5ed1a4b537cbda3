import Foundation
import KiezboxCore
import Testing

@Suite("The box's own heat and heavy-rain warnings: levels, sums and lifecycle")
struct LocalWarningTests {
    private let defaults = WarningThresholds()
    private let start = Date(timeIntervalSince1970: 1_782_900_000)

    @Test("DWD heat levels on perceived temperature: strong from 32 °C, extreme from 38 °C")
    func heatLevels() {
        #expect(self.defaults.heatLevel(perceivedCelsius: nil) == 0)
        #expect(self.defaults.heatLevel(perceivedCelsius: 31.9) == 0)
        #expect(self.defaults.heatLevel(perceivedCelsius: 32) == 1)
        #expect(self.defaults.heatLevel(perceivedCelsius: 37.9) == 1)
        #expect(self.defaults.heatLevel(perceivedCelsius: 38) == 2)
        #expect(self.defaults.heatLevel(perceivedCelsius: .nan) == 0)
    }

    /// The DWD's Starkregen criteria: 15 l/m² in 1 h or 20 l/m² in 6 h; Unwetter 25/35; extreme 40/60.
    @Test(
        "DWD heavy-rain levels on the 1 h and 6 h sums",
        arguments: [
            (14.9, 19.9, 0), (15, 0, 1), (0, 20, 1), (24.9, 34.9, 1), (25, 0, 2), (10, 35, 2), (39.9, 59.9, 2), (40, 0, 3),
            (0, 60, 3), (100, 100, 3),
        ] as [(Double, Double, Int)]
    )
    func rainLevels(oneHour: Double, sixHours: Double, level: Int) {
        #expect(self.defaults.rainLevel(oneHour: oneHour, sixHours: sixHours) == level)
    }

    @Test("rainfall sums count the readings inside the window, skip implausible ones, and are nil without a gauge")
    func rainfallSums() {
        let now = self.start
        func rain(_ minutesAgo: Double, _ millimetres: Double, _ quality: ReadingQuality = .good) -> Reading {
            Reading(sensorID: "rain", quantity: .rainfall, value: millimetres, measuredAt: now - minutesAgo * 60, quality: quality)
        }
        let readings = [rain(0, 1), rain(30, 2), rain(59, 3), rain(60, 4), rain(200, 5), rain(361, 6), rain(10, 500, .implausible)]
        #expect(WarningObservation.rainfall(in: readings, window: 3600, endingAt: now) == 6)
        #expect(WarningObservation.rainfall(in: readings, window: 6 * 3600, endingAt: now) == 15)
        let temperature = Reading(sensorID: "t", quantity: .temperature, value: 30, measuredAt: now)
        #expect(WarningObservation.rainfall(in: [temperature], window: 3600, endingAt: now) == nil)
        #expect(WarningObservation.rainfall(in: [rain(120, 1)], window: 3600, endingAt: now) == 0)
    }

    @Test("Alert when it starts, Update at once when it rises, no flapping below, lowered and cancelled only after the calm time")
    func lifecycle() {
        var book = WarningBook()
        var thresholds = WarningThresholds()
        thresholds.calmAfter = 1800
        thresholds.cancelKept = 3600
        func observe(_ minute: Int, perceived: Double?) -> Bool {
            book.evaluate(
                WarningObservation(perceivedCelsius: perceived, rainOneHour: nil, rainSixHours: nil), thresholds: thresholds,
                at: self.start + Double(minute) * 60)
        }
        #expect(!observe(0, perceived: 30))
        #expect(book.warnings.isEmpty)
        #expect(observe(1, perceived: 33))
        #expect(book.active.map(\.level) == [1])
        #expect(book.warnings[0].messages.map(\.kind) == [.alert])
        #expect(observe(2, perceived: 39))
        #expect(book.warnings[0].messages.map(\.kind) == [.alert, .update])
        #expect(book.warnings[0].level == 2)
        // A dip below 38 °C for less than the calm time changes nothing.
        #expect(!observe(3, perceived: 36))
        #expect(!observe(20, perceived: 36))
        #expect(!observe(21, perceived: 38.5))
        #expect(!observe(22, perceived: 33))
        #expect(!observe(51, perceived: 33))
        // Half an hour below 38 °C (from minute 22): lowered to strong.
        #expect(observe(52, perceived: 33))
        #expect(book.warnings[0].level == 1)
        // Half an hour below 32 °C (or no temperature at all) from minute 53: ends.
        #expect(!observe(53, perceived: 30))
        #expect(!observe(82, perceived: 30))
        #expect(observe(83, perceived: nil))
        #expect(book.active.isEmpty)
        let messages = book.warnings[0].messages
        #expect(messages.map(\.kind) == [.alert, .update, .update, .cancel])
        #expect(messages.map(\.number) == [1, 2, 3, 4])
        #expect(messages.map(\.level) == [1, 2, 1, 1])
        // The Cancel stays for cancelKept, then the warning is dropped; a new one starts afresh.
        #expect(!observe(142, perceived: 30))
        #expect(book.warnings.count == 1)
        #expect(observe(143, perceived: 30))
        #expect(book.warnings.isEmpty)
        #expect(observe(144, perceived: 40))
        #expect(book.warnings.map(\.messages.count) == [1])
        #expect(book.warnings[0].startedAt == self.start + 144 * 60)
    }

    @Test("the book survives JSON, as the store keeps it")
    func codable() throws {
        var book = WarningBook()
        book.evaluate(WarningObservation(perceivedCelsius: 33, rainOneHour: 16, rainSixHours: 18), thresholds: self.defaults, at: self.start)
        #expect(book.active.map(\.hazard) == [.heat, .heavyRain])
        let decoded = try JSONDecoder().decode(WarningBook.self, from: JSONEncoder().encode(book))
        #expect(decoded == book)
    }
}
