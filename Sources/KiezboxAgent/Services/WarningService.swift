import EmergencyPortal
import Foundation
import KiezboxCore
import Logging
import MeshRelay
import ReadingStore
import ServiceLifecycle

/// The box's own heat and heavy-rain warnings (docs/warnings.md): every ``WarningsConfiguration/interval`` it
/// takes the perceived temperature and the rain gauge's 1 h and 6 h sums from the store's readings, moves the
/// warnings along (``KiezboxCore/WarningBook``), keeps them in the store's meta (the portal shows them from there,
/// and a restart continues them under the same identifiers) and publishes them retained on MQTT.
struct WarningService<C: KiezboxClock>: Service {
    let store: ReadingStore
    let configuration: WarningsConfiguration
    let identity: BoxIdentity
    /// Where the warnings are published (retained, `<prefix>/<district>/<box>/warnings`), when MQTT is configured.
    let uplink: MQTTUplink?
    let clock: C
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var book = self.restoredBook()
            // Published once at the start too: a retained document from before a restart may be stale.
            var unpublished = true
            while !Task.isCancelled {
                if await self.evaluate(&book) { unpublished = true }
                if unpublished { unpublished = !(await self.publish(book)) }
                do { try await self.clock.sleep(for: self.configuration.interval) } catch { break }
            }
        }
    }

    /// One evaluation at the clock's now; returns whether there is something new to publish.
    func evaluate(_ book: inout WarningBook) async -> Bool {
        let now = self.clock.currentDate()
        do {
            let observation = try self.observation(at: now)
            let before = book
            let changed = book.evaluate(observation, thresholds: self.configuration.thresholds, at: now)
            if book != before { try await self.store.setWarningBook(book) }
            if changed { self.log(book, at: now) }
            return changed
        } catch {
            self.logger.error("warnings: readings could not be evaluated", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// The perceived temperature from the latest readings and the rain gauges' sums.
    func observation(at now: Date) throws -> WarningObservation {
        let latest = try self.store.latest()
        let perceived = WeatherWarnings(latest: latest, now: now).perceivedCelsius
        let gauges = Set(latest.map(\.reading).filter { $0.quantity == .rainfall }.map(\.sensorID)).sorted()
        var rain: [Reading] = []
        for gauge in gauges {
            rain += try self.store.readings(since: now.addingTimeInterval(-6 * 3600), sensor: gauge).map(\.reading)
        }
        // Two gauges on one box: the wetter one counts, not their sum.
        func wettest(_ window: TimeInterval) -> Double? {
            gauges.compactMap { gauge in
                WarningObservation.rainfall(in: rain.filter { $0.sensorID == gauge }, window: window, endingAt: now)
            }.max()
        }
        return WarningObservation(perceivedCelsius: perceived, rainOneHour: wettest(3600), rainSixHours: wettest(6 * 3600))
    }

    private func log(_ book: WarningBook, at now: Date) {
        for warning in book.warnings {
            guard let message = warning.messages.last, message.sent == now else { continue }
            self.logger.notice(
                "warning \(message.kind.rawValue.lowercased())",
                metadata: [
                    "hazard": "\(warning.hazard.rawValue)", "level": "\(message.level)",
                    "identifier": "\(WarningFeed.identifier(warning, message, identity: self.identity))",
                ])
        }
    }

    /// Publishes the JSON index retained; false when it could not be (no broker yet): tried again next round.
    private func publish(_ book: WarningBook) async -> Bool {
        guard let uplink = self.uplink else { return true }
        do {
            try await uplink.publishRetained(
                Array(WarningFeed.json(book, identity: self.identity, now: self.clock.currentDate())), topic: uplink.topics.warnings)
            return true
        } catch {
            self.logger.debug("warnings not published yet", metadata: ["error": "\(error)"])
            return false
        }
    }

    func restoredBook() -> WarningBook {
        do {
            return try self.store.warningBook()
        } catch {
            self.logger.warning("warnings: stored warnings unreadable; starting afresh", metadata: ["error": "\(error)"])
            return WarningBook()
        }
    }
}
