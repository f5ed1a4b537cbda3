import Foundation
import KiezboxCore
import Logging
import MeshRelay
import ReadingStore
import ServiceLifecycle

/// Home Assistant over MQTT (docs/mqtt.md, "Home Assistant").
///
/// Switched on (``discovery`` set), it publishes, retained with QoS 1, a discovery config for the box's mode, its
/// weather warnings (read from the warning service's retained document) and every sensor quantity the box has
/// measured, and the newest value of each quantity on its state topic,
/// checking the store every ``interval``. Every topic is remembered in the store before it is published.
/// Switched off (``discovery`` nil), it deletes every remembered topic with an empty retained payload, so Home
/// Assistant removes the entities, and then forgets them.
struct HomeAssistantService<C: KiezboxClock>: Service {
    let uplink: MQTTUplink
    let store: ReadingStore
    let discovery: HomeAssistantDiscovery?
    let clock: C
    let logger: Logger
    var interval: Duration = .seconds(10)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            if let discovery = self.discovery {
                await self.publishEntities(discovery)
            } else {
                await self.deletePublishedTopics()
                // Done; a service that returns would end the daemon, so it waits for the shutdown.
                while (try? await self.clock.sleep(for: .seconds(3600))) != nil {}
            }
        }
    }

    /// One round every ``interval``: new configs, then states newer than the ones already published.
    private func publishEntities(_ discovery: HomeAssistantDiscovery) async {
        var publishedConfigs = Set<String>()
        /// State topic → the id of the stored reading last published there.
        var publishedStates: [String: Int64] = [:]
        while !Task.isCancelled {
            do {
                let latest = try self.store.latest()
                let configs = ([discovery.modeConfig(), discovery.warningConfig()] + discovery.hazardConfigs() + latest.compactMap {
                    discovery.readingConfig(sensor: $0.reading.sensorID, quantity: $0.reading.quantity)
                }).filter { !publishedConfigs.contains($0.topic) }
                var states: [(message: HomeAssistantMessage, readingID: Int64)] = []
                for stored in latest {
                    guard let state = discovery.stateMessage(for: stored.reading), publishedStates[state.topic] != stored.id else { continue }
                    states.append((state, stored.id))
                }
                try await self.remember(configs.map(\.topic) + states.map(\.message.topic))
                for config in configs {
                    try await self.uplink.publishRetained(config.payload, topic: config.topic)
                    publishedConfigs.insert(config.topic)
                }
                for (state, readingID) in states {
                    try await self.uplink.publishRetained(state.payload, topic: state.topic)
                    publishedStates[state.topic] = readingID
                }
                if !configs.isEmpty {
                    self.logger.info("published Home Assistant discovery", metadata: ["entities": "\(publishedConfigs.count)"])
                }
            } catch {
                self.logger.debug("Home Assistant messages not published yet", metadata: ["error": "\(error)"])
                do { try await self.pause(after: error) } catch { return }
                continue
            }
            do { try await self.clock.sleep(for: self.interval) } catch { return }
        }
    }

    /// After a failed round: the daemon's first rounds come before the relay has started the uplink and before
    /// the CONNACK, so a round follows within a second of the start and at once after the connection; a broker
    /// that is away or refused is tried again after ``interval``.
    private func pause(after error: any Error) async throws {
        switch error as? MQTTUplinkError {
        case .notStarted?:
            try await self.clock.sleep(for: min(self.interval, .seconds(1)))
        case .notConnected?:
            if (try? await self.uplink.waitUntilConnected(timeout: self.interval)) != nil { return }
            try await self.clock.sleep(for: self.interval)
        default:
            try await self.clock.sleep(for: self.interval)
        }
    }

    /// Adds `topics` to the remembered ones (before they are published: a topic on the broker is never unknown).
    private func remember(_ topics: [String]) async throws {
        let remembered = try self.store.homeAssistantTopics()
        let new = topics.filter { !remembered.contains($0) }
        if !new.isEmpty { try await self.store.setHomeAssistantTopics(remembered + new) }
    }

    /// Deletes every remembered topic, forgetting each as soon as the broker has acknowledged its deletion.
    private func deletePublishedTopics() async {
        var remaining = (try? self.store.homeAssistantTopics()) ?? []
        guard !remaining.isEmpty else { return }
        let total = remaining.count
        while !remaining.isEmpty, !Task.isCancelled {
            var failure: (any Error)?
            do {
                while let topic = remaining.first {
                    try await self.uplink.publishRetained(HomeAssistantDiscovery.removal, topic: topic)
                    remaining.removeFirst()
                }
            } catch {
                failure = error
                self.logger.debug("Home Assistant topics not deleted yet", metadata: ["left": "\(remaining.count)", "error": "\(error)"])
            }
            try? await self.store.setHomeAssistantTopics(remaining)
            if let failure {
                do { try await self.pause(after: failure) } catch { return }
            }
        }
        if remaining.isEmpty {
            self.logger.notice("Home Assistant switched off: deleted its entities from the broker", metadata: ["topics": "\(total)"])
        }
    }
}
