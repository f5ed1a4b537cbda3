import Foundation
import KiezboxCore
import KiezboxTestSupport
import Logging
import MeshRelay
import ReadingStore
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

@testable import KiezboxAgent

/// Ten minutes of sampling with the broker away, on the manual clock: the production sampler, flush service
/// and relay, the real MQTT uplink and a real mosquitto.
@Suite("A broker outage over minutes of simulated sampling", .serialized, .timeLimit(.minutes(3)))
struct SimulatedOutageTests {
    @Test("every reading sampled during ten minutes without a broker arrives after it returns, once, in order per sensor")
    func tenMinutesWithoutBroker() async throws {
        try await MosquittoBroker.with { broker in
            try await withWorkspace { directory in
                let configuration = try KiezboxConfiguration.parse(
                    """
                    [box]
                    id = "outage-box"
                    district = "test-kiez"
                    [store]
                    flush_interval = "10s"
                    [[sensor]]
                    id = "roof"
                    chip = "bme280"
                    interval = "10s"
                    [[sensor]]
                    id = "battery"
                    chip = "ina219"
                    interval = "30s"
                    """,
                    file: "k.toml"
                )
                let clock = ManualClock(startDate: Date(timeIntervalSince1970: 1_790_000_000))
                let store = try ReadingStore(directory: directory, configuration: configuration.store)
                let kit = SimulatedKit(following: configuration.sensors, position: nil)
                kit.updateWorld(at: clock.currentDate())
                let logger = Logger(label: "test")
                let sampler = Sampler(
                    sensors: SensorFactory(buses: kit).scheduledSensors(configuration.sensors), clock: clock, logger: logger
                ) { try await store.record($0) }
                let flush = StoreFlushService(store: store, clock: clock, logger: logger)
                let uplink = try MQTTUplink(
                    configuration: .init(host: "127.0.0.1", port: broker.port),
                    sender: SenderIdentity(box: configuration.identity, storeInstance: store.instanceID)
                )
                let relay = RelayService(
                    uplinks: [uplink], store: store, clock: clock,
                    configuration: .init(idlePoll: .seconds(10), maximumBackoff: .seconds(60)), logger: logger
                )
                await broker.stop()

                let (subscriber, committed): (TestSubscriber, Set<String>) = try await testGracefulShutdown { trigger in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for service in [flush, sampler, relay] as [any Service] { group.addTask { try await service.run() } }
                        // Sampler tasks (2), the flush service and the relay pump: four sleepers between steps.
                        for _ in 0..<600 {
                            await clock.waitForSleepers(4)
                            clock.advance(by: .seconds(1))
                        }
                        await clock.waitForSleepers(4)
                        let buffered = try store.statistics()
                        #expect(buffered.readingsStored >= 60 * 3 + 20 * 3, "ten minutes of readings in the store")
                        #expect(buffered.uplinks.first?.undelivered == buffered.readingsStored)

                        try await broker.start()
                        let subscriber = try await TestSubscriber.connected(port: broker.port, filter: "kiezbox/v1/test-kiez/outage-box/readings")
                        try await uplink.waitUntilConnected(timeout: .seconds(30))
                        // Let the relay's backoff run out and the backlog drain, a simulated second at a time.
                        var steps = 0
                        while try store.statistics().uplinks.first?.undelivered != 0 {
                            await clock.waitForSleepers(4)
                            clock.advance(by: .seconds(1))
                            steps += 1
                            try #require(steps < 600, "the backlog did not drain")
                        }
                        // What the relay reports delivered; readings still buffered are committed by the shutdown flush
                        // after the relay has stopped, and go out on the next start.
                        let delivered = Set(try store.readings().map { $0.globalID(storeInstance: store.instanceID) })
                        await clock.waitForSleepers(4)
                        trigger.triggerGracefulShutdown()
                        try await group.waitForAll()
                        return (subscriber, delivered)
                    }
                }
                defer { Task { await subscriber.stop() } }
                try await eventually("every committed reading at the subscriber", timeout: .seconds(30)) {
                    Set(self.observations(subscriber).map(\.id)).isSuperset(of: committed) ? true : nil
                }
                let received = self.observations(subscriber)
                #expect(Set(received.map(\.id)) == committed)
                #expect(committed.count >= 240)
                for sensor in ["roof", "battery"] {
                    for quantity in Set(received.filter { $0.sensor == sensor }.map(\.quantity)) {
                        let times = received.filter { $0.sensor == sensor && $0.quantity == quantity }.map(\.phenomenonTime)
                        #expect(times == times.sorted(), "\(sensor) \(quantity) out of order")
                    }
                }
            }
        }
    }

    /// First arrivals of every observation, de-duplicated by stable id.
    func observations(_ subscriber: TestSubscriber) -> [ReadingsMessage.Observation] {
        var seen: Set<String> = []
        return subscriber.messages
            .compactMap { try? JSONDecoder().decode(ReadingsMessage.self, from: Data($0.payload)) }
            .flatMap(\.observations)
            .filter { seen.insert($0.id).inserted }
    }
}
