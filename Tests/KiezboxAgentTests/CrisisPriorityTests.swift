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

/// Crisis traffic before the readings backlog, on a real broker with a real subscriber: 50 000 readings queued
/// while the broker was down, the production relay, MQTT uplink and neighbourhood service (the box's status).
@Suite("Crisis traffic before the backlog over MQTT", .serialized, .timeLimit(.minutes(5)))
struct CrisisPriorityTests {
    static let box = BoxIdentity(district: "test-kiez", boxID: "prio-box", name: "Priority box")
    static let backlog = 50_000

    @Test("the crisis status and an announcement published during the backfill arrive before the backlog's last readings")
    func crisisBeforeBacklog() async throws {
        try await MosquittoBroker.with { broker in
            try await withWorkspace { directory in
                let store = try ReadingStore(directory: directory)
                try await store.setIdentity(Self.box)
                let start = Date(timeIntervalSince1970: 1_790_000_000)
                for chunk in stride(from: 0, to: Self.backlog, by: 5000) {
                    try await store.record((chunk..<chunk + 5000).map { index in
                        Reading(sensorID: "roof", quantity: .temperature, value: 20, measuredAt: start.addingTimeInterval(Double(index)))
                    })
                    _ = try await store.flush()
                }
                await broker.stop()
                let logger = Logger(label: "test")
                let uplink = try MQTTUplink(
                    configuration: .init(host: "127.0.0.1", port: broker.port, reconnectDelay: .init(initial: .milliseconds(500), maximum: .seconds(1))),
                    sender: SenderIdentity(box: Self.box, storeInstance: store.instanceID), clock: LiveClock(), logger: logger)
                // The default pace of a backfill (500 readings a second) would take 100 s; ten times that still
                // leaves the backlog draining for about ten seconds.
                let relay = RelayService(
                    uplinks: [uplink], store: store, clock: LiveClock(), configuration: .init(maximumBackfillRate: 5000), logger: logger)
                let neighbourhood = NeighbourhoodService(
                    uplink: uplink, store: store, clock: LiveClock(), district: Self.box.district, path: "mqtt://test", logger: logger)
                let root = "kiezbox/v1/test-kiez/prio-box"
                let subscriber: TestSubscriber = try await testGracefulShutdown { trigger in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for service in [relay, neighbourhood] as [any Service] { group.addTask { try await service.run() } }
                        try await broker.start()
                        let subscriber = try await TestSubscriber.connected(
                            port: broker.port, filter: "kiezbox/v1/test-kiez/#", clientID: "priority-subscriber")
                        // The backfill is under way: the box goes into crisis, and an announcement goes out.
                        _ = try await subscriber.waitForMessages(where: { $0.topic == root + "/readings" })
                        try await store.setMode(.crisis)
                        try await uplink.publishAnnouncement(Array("{\"test\":\"announcement\"}".utf8), named: "priority-test")
                        try await waitUntil("the backlog delivered", timeout: .seconds(240)) {
                            try store.statistics().uplinks.first { $0.name == uplink.name }?.undelivered == 0
                        }
                        try await waitUntil("the crisis status", timeout: .seconds(120)) {
                            subscriber.messages.contains { $0.topic == root + "/status" && String(decoding: $0.payload, as: UTF8.self).contains("\"crisis\"") }
                        }
                        trigger.triggerGracefulShutdown()
                        try await group.waitForAll()
                        return subscriber
                    }
                }
                await subscriber.stop()
                let messages = subscriber.messages
                let lastReadings = try #require(messages.lastIndex { $0.topic == root + "/readings" })
                let crisisStatus = try #require(
                    messages.firstIndex { $0.topic == root + "/status" && String(decoding: $0.payload, as: UTF8.self).contains("\"crisis\"") })
                let announcement = try #require(messages.firstIndex { $0.topic.hasSuffix("/announcements/priority-test") })
                let isReadings = { (message: MQTTMessage) in message.topic == root + "/readings" }
                let readingsMessages = messages.filter(isReadings).count
                let readingsBeforeStatus = messages[..<crisisStatus].filter(isReadings).count
                let readingsBeforeAnnouncement = messages[..<announcement].filter(isReadings).count
                print(
                    "crisis traffic over MQTT: of \(readingsMessages) readings messages (100 readings each), \(readingsBeforeStatus) "
                        + "arrived before the crisis status and \(readingsBeforeAnnouncement) before the announcement")
                #expect(crisisStatus < lastReadings, "the crisis status came after the backlog's last readings")
                #expect(announcement < lastReadings, "the announcement came after the backlog's last readings")
            }
        }
    }
}
