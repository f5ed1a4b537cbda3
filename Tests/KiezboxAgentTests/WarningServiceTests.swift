import Foundation
import KiezboxCore
import KiezboxTestSupport
import Logging
import MeshRelay
import ReadingStore
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

@testable import EmergencyPortal
@testable import KiezboxAgent

/// A simulated summer day through the simulated kit on the manual clock: the production sampler (climate chip and
/// rain gauge), flush service, sensor watch, simulated weather and warning service, the real MQTT uplink and a
/// real mosquitto; the CAP alerts checked by xmllint against the OASIS schema.
@Suite("Heat and heavy-rain warnings from a simulated day", .serialized, .timeLimit(.minutes(15)))
struct WarningServiceTests {
    private static let configurationText = """
        [box]
        id = "warn-box"
        district = "test-kiez"
        name = "Warnbox"
        [store]
        flush_interval = "60s"
        [[sensor]]
        id = "climate"
        chip = "bme280"
        interval = "60s"
        [[sensor]]
        id = "rain"
        chip = "rain-gauge"
        line = 17
        interval = "60s"
        """

    /// What one simulated day produced.
    struct Day: Sendable {
        /// Every CAP message, in the order the service sent them.
        var messages: [(hazard: WarningHazard, message: WarningMessage, alert: Data)] = []
        /// The first warning's msg_type in each MQTT document, in the order they arrived.
        var published: [String] = []
        /// The info page in every language while the first warning was active.
        var pages: [PortalLanguage: String] = [:]
    }

    /// Runs the kit through `scenario` from `start` for `hours`, a simulated minute at a time.
    private func simulate(_ scenario: SimulatedWeather.Scenario, from start: Date, hours: Int) async throws -> Day {
        try await MosquittoBroker.with { broker in
            let directory = try temporaryDirectory("kiezbox-warnings")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let configuration = try KiezboxConfiguration.parse(Self.configurationText, file: "k.toml")
            let clock = ManualClock(startDate: start)
            let store = try ReadingStore(directory: directory, configuration: configuration.store)
            defer { try? store.close() }
            let kit = SimulatedKit(following: configuration.sensors, position: nil, scenario: scenario)
            kit.updateWorld(at: clock.currentDate())
            var logger = Logger(label: "warnings-test")
            logger.logLevel = .notice
            let sensors = SensorFactory(buses: kit).scheduledSensors(configuration.sensors)
            let uplink = try MQTTUplink(
                configuration: .init(host: "127.0.0.1", port: broker.port),
                sender: SenderIdentity(box: configuration.identity, storeInstance: store.instanceID))
            let topic = uplink.topics.warnings
            let subscriber = try await TestSubscriber.connected(port: broker.port, filter: topic)
            try await uplink.start()
            try await uplink.waitUntilConnected(timeout: .seconds(30))
            let services: [any Service] = [
                SimulatedWeatherService(kit: kit, clock: clock, period: .seconds(60)),
                Sampler(sensors: sensors, clock: clock, logger: logger) { try await store.record($0) },
                SensorWatchService(sensors: [sensors[1]], clock: clock, backoff: RetryBackoff(), logger: logger),
                StoreFlushService(store: store, clock: clock, logger: logger),
                WarningService(
                    store: store, configuration: configuration.warnings, identity: configuration.identity, uplink: uplink, clock: clock,
                    logger: {
                        // Its failed publications (debug) say why a document is missing, if one is.
                        var logger = Logger(label: "warning-service")
                        logger.logLevel = .debug
                        return logger
                    }()),
            ]
            let content = PortalContent(
                identity: configuration.identity, settings: configuration.portal.settings, store: store, clients: CaptiveClients(),
                announcements: { _ in [] }, logger: logger)
            // Weather, two sampler tasks, flush, warnings: five sleepers between steps.
            let sleepers = 5
            var day: Day = try await testGracefulShutdown { trigger in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    var day = Day()
                    var seen = Set<String>()
                    for service in services { group.addTask { try await service.run() } }
                    for _ in 0..<(hours * 60) {
                        await clock.waitForSleepers(sleepers)
                        clock.advance(by: .seconds(60))
                        await clock.waitForSleepers(sleepers)
                        let book = try store.warningBook()
                        for warning in book.warnings {
                            for message in warning.messages {
                                let identifier = WarningFeed.identifier(warning, message, identity: configuration.identity)
                                guard seen.insert(identifier).inserted else { continue }
                                let alert = WarningFeed.alert(
                                    warning, message, identity: configuration.identity, mode: .crisis, sender: "kiezbox.warn-box.test-kiez")
                                day.messages.append((warning.hazard, message, alert))
                                print("\(timelineTime(message.sent)) \(warning.hazard.rawValue) \(message.kind.rawValue) level \(message.level)")
                            }
                        }
                        if day.pages.isEmpty, !book.active.isEmpty {
                            content.invalidate()
                            let snapshot = content.snapshot(at: clock.currentDate()).snapshot
                            for language in PortalLanguage.allCases {
                                day.pages[language] = InfoPage.render(
                                    snapshot: snapshot, language: language, form: BulletinFormContext(token: "t"), portalURL: "http://kiez.box/")
                            }
                        }
                    }
                    await clock.waitForSleepers(sleepers)
                    trigger.triggerGracefulShutdown()
                    try await group.waitForAll()
                    return day
                }
            }
            // Every change was published; the last document is the one retained.
            let expected = day.messages.count
            do {
                // A hang guard only: in a full parallel test run on two cores this test's tasks wait minutes for a thread.
                _ = try await eventually("\(expected) warning messages on MQTT", timeout: .seconds(300)) {
                    Self.publishedMessageCount(subscriber.messages) >= expected ? true : nil
                }
            } catch {
                print(subscriber.messages.map { String(decoding: $0.payload, as: UTF8.self) }.joined(separator: "\n"))
                throw error
            }
            day.published = subscriber.messages.compactMap { message in
                let object = try? JSONSerialization.jsonObject(with: Data(message.payload)) as? [String: Any]
                return (object?["warnings"] as? [[String: Any]])?.first?["msg_type"] as? String
            }
            await subscriber.stop()
            await uplink.stop()
            return day
        }
    }

    /// How many distinct messages (identifiers) the published documents named.
    private static func publishedMessageCount(_ messages: [MQTTMessage]) -> Int {
        var identifiers = Set<String>()
        for message in messages {
            guard let object = try? JSONSerialization.jsonObject(with: Data(message.payload)) as? [String: Any],
                let warnings = object["warnings"] as? [[String: Any]]
            else { continue }
            for warning in warnings { if let id = warning["identifier"] as? String { identifiers.insert(id) } }
        }
        return identifiers.count
    }

    private func expectValid(_ day: Day) throws {
        for (_, message, alert) in day.messages {
            let result = try XMLLint.validateCAP(alert)
            #expect(result.status == 0, "xmllint rejected the \(message.kind.rawValue):\n\(result.output)")
            #expect(try XMLLint.xpath("string(/*[local-name()='alert']/*[local-name()='msgType'])", in: alert) == message.kind.rawValue)
        }
    }

    @Test("a heat-wave afternoon: strong heat stress, extreme, back to strong, ended; on the portal, in CAP and on MQTT")
    func heatWave() async throws {
        // 2026-07-15, 06:00 to 22:00 UTC.
        let day = try await self.simulate(.heatWave, from: Date(timeIntervalSince1970: 1_784_095_200), hours: 16)
        #expect(day.messages.map(\.hazard) == [.heat, .heat, .heat, .heat])
        #expect(day.messages.map(\.message.kind) == [.alert, .update, .update, .cancel])
        #expect(day.messages.map(\.message.level) == [1, 2, 1, 1])
        try self.expectValid(day)
        for language in PortalLanguage.allCases {
            let text = PortalStrings.forLanguage(language).boxWarning(.heat, 1)
            #expect(day.pages[language]?.contains(text.markupEscaped) == true, "\(language)")
        }
        #expect(day.published.suffix(4) == ["Alert", "Update", "Update", "Cancel"])
    }

    @Test("a cloudburst: heavy, severe, extreme, lowered while the 6 h sum stays high, ended; in CAP and on MQTT")
    func cloudburst() async throws {
        // 2026-07-15, 13:00 to 22:00 UTC.
        let day = try await self.simulate(.cloudburst, from: Date(timeIntervalSince1970: 1_784_120_400), hours: 9)
        #expect(day.messages.map(\.hazard).allSatisfy { $0 == .heavyRain })
        #expect(day.messages.map(\.message.kind) == [.alert, .update, .update, .update, .cancel])
        #expect(day.messages.map(\.message.level) == [1, 2, 3, 2, 2])
        try self.expectValid(day)
        for language in PortalLanguage.allCases {
            let text = PortalStrings.forLanguage(language).boxWarning(.heavyRain, 1)
            #expect(day.pages[language]?.contains(text.markupEscaped) == true, "\(language)")
        }
        #expect(day.published.suffix(5) == ["Alert", "Update", "Update", "Update", "Cancel"])
    }

    @Test("a restart continues the stored warnings under the same identifiers")
    func restartContinues() async throws {
        let directory = try temporaryDirectory("kiezbox-warnings-restart")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = try KiezboxConfiguration.parse(Self.configurationText, file: "k.toml")
        let start = Date(timeIntervalSince1970: 1_784_095_200)
        let clock = ManualClock(startDate: start)
        let store = try ReadingStore(directory: directory, configuration: configuration.store)
        defer { try? store.close() }
        func service() -> WarningService<ManualClock> {
            WarningService(
                store: store, configuration: configuration.warnings, identity: configuration.identity, uplink: nil, clock: clock,
                logger: Logger(label: "test"))
        }
        func climate(_ celsius: Double) async throws {
            try await store.record([
                Reading(sensorID: "climate", quantity: .temperature, value: celsius, measuredAt: clock.currentDate()),
                Reading(sensorID: "climate", quantity: .relativeHumidity, value: 40, measuredAt: clock.currentDate()),
            ])
            _ = try await store.flush()
        }
        try await climate(34)
        var first = try store.warningBook()
        let started = await service().evaluate(&first)
        #expect(started)
        let alert = try #require(first.active.first)
        clock.advance(by: .seconds(600))
        try await climate(38)
        var restarted = try store.warningBook()
        #expect(restarted == first)
        let rose = await service().evaluate(&restarted)
        #expect(rose)
        let warning = try #require(restarted.active.first)
        #expect(warning.startedAt == alert.startedAt)
        #expect(warning.messages.map(\.kind) == [.alert, .update])
        #expect(
            WarningFeed.identifier(warning, warning.messages[0], identity: configuration.identity)
                == WarningFeed.identifier(alert, alert.messages[0], identity: configuration.identity))
    }

    @Test("kiezbox status shows the active warnings with level, since when and the measured values, also in --json")
    func statusShowsWarnings() async throws {
        let directory = try temporaryDirectory("kiezbox-warnings-status")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let data = directory + "/data"
        let start = Date(timeIntervalSince1970: 1_784_095_200)
        var book = WarningBook()
        book.evaluate(WarningObservation(perceivedCelsius: 39.24, rainOneHour: 26, rainSixHours: 30), thresholds: WarningThresholds(), at: start)
        do {
            let store = try ReadingStore(directory: data)
            try await store.setWarningBook(book)
            try store.close()
        }
        let text = try await runProgram([kiezboxBinary, "status", "--data-dir", data], in: directory)
        #expect(text.status == 0, "\(text.all)")
        let section = try #require(text.output.components(separatedBy: "\nWarnings\n").dropFirst().first, "\(text.output)")
        let heat = try #require(section.split(separator: "\n").first { $0.contains("heat") }, "\(section)")
        #expect(heat.contains("level 2 Extreme Wärmebelastung (Severe)"), "\(heat)")
        #expect(heat.contains("since 2026-07-15T06:00:00"), "\(heat)")
        #expect(heat.contains("perceived 39.2 °C"), "\(heat)")
        let rain = try #require(section.split(separator: "\n").first { $0.contains("heavy_rain") }, "\(section)")
        #expect(rain.contains("level 2 Heftiger Starkregen (Severe)") && rain.contains("26 mm in 1 h, 30 mm in 6 h"), "\(rain)")

        let json = try await runProgram([kiezboxBinary, "status", "--json", "--data-dir", data], in: directory)
        #expect(json.status == 0, "\(json.all)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any])
        let warnings = try #require(object["warnings"] as? [[String: Any]], "\(json.output)")
        let heatWarning = try #require(warnings.first { $0["hazard"] as? String == "heat" })
        #expect(heatWarning["level"] as? Int == 2)
        #expect(heatWarning["active"] as? Bool == true)
        #expect(heatWarning["event"] as? String == "Extreme Wärmebelastung")
        #expect(heatWarning["startedAt"] as? String == "2026-07-15T06:00:00Z")
        #expect(heatWarning["perceivedCelsius"] as? Double == 39.24)
        #expect(heatWarning["msgType"] as? String == "Alert")
        #expect((heatWarning["identifier"] as? String)?.hasPrefix("kiezbox-") == true)
        let rainWarning = try #require(warnings.first { $0["hazard"] as? String == "heavy_rain" })
        #expect(rainWarning["rainOneHourMillimetres"] as? Double == 26)

        // Nothing to warn of: the section says so.
        do {
            let store = try ReadingStore(directory: data)
            try await store.setWarningBook(WarningBook())
            try store.close()
        }
        let calm = try await runProgram([kiezboxBinary, "status", "--data-dir", data], in: directory)
        #expect(calm.output.contains("Warnings\n  none active"), "\(calm.output)")
    }
}

/// The CAP date-time of `date`, for the printed timeline.
private func timelineTime(_ date: Date) -> String {
    date.formatted(Date.ISO8601FormatStyle(timeZone: .gmt))
}
