import Foundation
import KiezboxCore
import KiezboxTestSupport
import MeshRelay
import ReadingStore
import Testing

/// The relay over MQTT to a broker that never acknowledges some messages (``MQTTBrokerStub``: a broker or
/// bridge that silently drops a publish, a PUBACK lost for good). Their readings must be offered again and
/// published in new messages, and the in-flight window must not stay full of them.
@Suite("MQTT with acknowledgements that never come", .serialized, .timeLimit(.minutes(5)))
struct MQTTLostAcknowledgementTests {
    static let readingsPerMessage = 5
    static let maximumInFlight = 4
    static let backlog = 400

    @Test(
        "swallowed publishes: their readings arrive in later messages, the cursor reaches the end, duplicates bounded",
        arguments: [0, 6]
    )
    func swallowedPublishes(swallowFirst: Int) async throws {
        try await MQTTBrokerStub.with(swallowFirst: swallowFirst) { stub in
            try await MQTTLinkCutTests.withStore { store in
                try await self.relay(to: stub, store: store)
            }
        }
    }

    func relay(to stub: MQTTBrokerStub, store: ReadingStore) async throws {
        try await store.record((0..<Self.backlog).map { index in
            Reading(
                sensorID: "climate", quantity: .temperature, value: Double(index),
                measuredAt: Date(timeIntervalSince1970: 1_790_000_000 + Double(index)))
        })
        try await store.flush()
        let uplink = try MQTTUplink(
            configuration: MQTTUplink.Configuration(
                host: "127.0.0.1", port: stub.port, keepAlive: .seconds(5),
                readingsPerMessage: Self.readingsPerMessage, maximumInFlight: Self.maximumInFlight,
                acknowledgementTimeout: .seconds(3), acknowledgementDeadline: .seconds(6),
                reconnectDelay: .init(initial: .milliseconds(100), maximum: .milliseconds(500))),
            sender: SenderIdentity(box: Fixtures.wrangelkiez, storeInstance: store.instanceID))
        let relay = Fixtures.unpacedRelay(uplink, store: store, batchSize: 50, label: "lost-acknowledgement-test")
        let started = ContinuousClock.now
        let relayRun = Task { try await relay.run() }
        defer { relayRun.cancel() }

        // Hang guards only: with the swallowed messages held for ever, neither ever happens.
        let complete = try? await eventually("every reading acknowledged by the broker", timeout: .seconds(300)) {
            Set(Self.readingIDs(stub, acknowledgedOnly: true)).count >= Self.backlog ? true : nil
        }
        let settled = try? await eventually("the relay's cursor at the end, no message waiting for its PUBACK", timeout: .seconds(120)) {
            try await store.undelivered(for: uplink.name, limit: 1).isEmpty && uplink.unacknowledgedMessageCount == 0 ? true : nil
        }
        let elapsed = ContinuousClock.now - started
        relayRun.cancel()
        _ = try? await relayRun.value

        let acknowledged = Self.readingIDs(stub, acknowledgedOnly: true)
        let distinct = Set(acknowledged)
        let duplicates = acknowledged.count - distinct.count
        // Had the broker forwarded the swallowed messages and only their PUBACKs been lost, these would repeat too.
        let received = Self.readingIDs(stub, acknowledgedOnly: false)
        let receivedDuplicates = received.count - Set(received).count
        let tally = stub.tally
        let readingsPublishes = tally.publishes.filter { $0.topic.hasSuffix("/readings") }
        let undelivered = try await store.undelivered(for: uplink.name, limit: Self.backlog).count
        print(
            """
            lost acknowledgements (first \(stub.swallowFirst) readings messages swallowed): \(Self.backlog) readings; \
            \(readingsPublishes.count) readings PUBLISH packets (\(readingsPublishes.filter(\.duplicate).count) with DUP), \
            \(tally.swallowed) swallowed, \(tally.swallowedResends) re-sends swallowed; \(distinct.count) distinct readings \
            acknowledged, \(duplicates) duplicates (\(receivedDuplicates) counting every PUBLISH received); \(tally.connections) connections, \(uplink.overdueReconnectCount) \
            reconnects for overdue messages, \(uplink.givenUpMessageCount) messages given up; \(undelivered) left undelivered; \
            \(elapsed) until settled
            """)
        #expect(complete == true, "\(Self.backlog - distinct.count) readings never acknowledged: their messages hold them")
        #expect(distinct.count == Self.backlog)
        #expect(settled == true, "the relay's cursor did not reach the end (\(undelivered) undelivered), or messages still wait")
        // Only a message the broker acknowledged and whose PUBACK the box did not see can arrive twice; the stub
        // acknowledges a message or swallows it for good, so with it nothing is acknowledged twice.
        #expect(duplicates <= Self.maximumInFlight * Self.readingsPerMessage)
        if stub.swallowFirst == 0 {
            // Acknowledgements that come are never second-guessed: nothing is sent again.
            #expect(uplink.overdueReconnectCount == 0 && uplink.givenUpMessageCount == 0)
            #expect(readingsPublishes.count == Self.backlog / Self.readingsPerMessage)
        } else {
            #expect(uplink.givenUpMessageCount >= stub.swallowFirst)
            // A given-up message was sent at most twice (once more after the reconnect) before its readings went
            // out again in new messages.
            #expect(receivedDuplicates <= 2 * uplink.givenUpMessageCount * Self.readingsPerMessage)
        }
    }

    /// The ids of the readings in every readings message the stub received (or acknowledged), repeats included.
    static func readingIDs(_ stub: MQTTBrokerStub, acknowledgedOnly: Bool) -> [String] {
        stub.tally.publishes.filter { ($0.acknowledged || !acknowledgedOnly) && $0.topic.hasSuffix("/readings") }.flatMap { publish in
            (try? JSONDecoder().decode(ReadingsMessage.self, from: Data(publish.payload)))?.observations.map(\.id) ?? []
        }
    }
}
