import Foundation
import KiezboxCore
import Logging
import ReadingStore
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

@testable import MeshRelay

@Suite("Relay under load shedding")
struct RelaySheddingTests {
    /// A reading every 10 s for two minutes; the relay polls every 10 s, or every 60 s at a shed factor of 6.
    func deliveries(relayIntervalFactor: Int) async throws -> (deliveries: Int, received: Int) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-relay-shed-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try ReadingStore(directory: directory)
        let clock = ManualClock()
        let uplink = ScriptedUplink()
        let relay = RelayService(
            uplinks: [uplink], store: store, clock: clock, configuration: .init(idlePoll: .seconds(10), maximumBackfillRate: 0),
            logger: Logger(label: "relay-shed-test"),
            shedLevel: ShedLevel(.init(step: 2, settings: ShedSettings(relayIntervalFactor: relayIntervalFactor)))
        )
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await relay.run() }
                for second in stride(from: 0, to: 120, by: 10) {
                    await clock.waitForSleepers(1)
                    try await store.record([
                        Reading(sensorID: "climate", quantity: .temperature, value: Double(second), measuredAt: clock.currentDate())
                    ])
                    _ = try await store.flush()
                    clock.advance(by: .seconds(10))
                }
                await clock.waitForSleepers(1)
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        try store.close()
        return (uplink.deliveries, uplink.received.count)
    }

    @Test("a shed step makes the relay look for readings less often; nothing is lost")
    func longerIdlePoll() async throws {
        let normal = try await self.deliveries(relayIntervalFactor: 1)
        let shed = try await self.deliveries(relayIntervalFactor: 6)
        #expect(normal == (12, 12))
        #expect(shed == (2, 12))
    }
}
