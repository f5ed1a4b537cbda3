import Foundation
import KiezboxCore
import KiezboxTestSupport
import MeshRelay
import ReadingStore
import Synchronization
import Testing

/// The relay backfilling over MQTT when the TCP path breaks with messages in flight: the broker runs in a
/// network namespace of the test's own and the uplink reaches it over a veth link that the test takes down
/// (packets in flight are lost, neither end is told) and brings back. The subscriber counting what arrives
/// reaches the broker over a second link that stays up.
@Suite("MQTT across a cut link", .serialized, .timeLimit(.minutes(5)))
struct MQTTLinkCutTests {
    static let readingsPerMessage = 5
    static let maximumInFlight = 20
    static let backlog = 60_000

    /// Runs where namespaces work, and always on CI, where their absence must fail the test rather than hide it.
    static let runnable = NetworkNamespace.unavailableReason == nil || ProcessInfo.processInfo.environment["CI"] != nil

    @Test(
        "link cut mid-flight and restored: every reading arrives, duplicates at most what was in flight",
        .enabled(if: runnable, "skipped: \(NetworkNamespace.unavailableReason ?? "")"),
        arguments: [false, true]
    )
    func linkCutMidFlight(persistentSession: Bool) async throws {
        if let reason = NetworkNamespace.unavailableReason { Issue.record("cannot run: \(reason)"); return }
        try await NetworkNamespace.with(links: 2) { namespace in
            let (uplinkLink, subscriberLink) = (namespace.links[0], namespace.links[1])
            let options = MosquittoBroker.Options(
                // The subscriber must not lose anything itself: no cap on its queue at the broker.
                listener: ["max_queued_messages 0"],
                addresses: [uplinkLink.insideAddress, subscriberLink.insideAddress], networkNamespace: namespace)
            try await MosquittoBroker.with(options) { broker in
                try await Self.withStore { store in
                    try await self.cutAndRestore(
                        namespace: namespace, uplinkLink: uplinkLink, subscriberLink: subscriberLink, broker: broker, store: store,
                        persistentSession: persistentSession)
                }
            }
        }
    }

    func cutAndRestore(
        namespace: NetworkNamespace, uplinkLink: NetworkNamespace.Link, subscriberLink: NetworkNamespace.Link,
        broker: MosquittoBroker, store: ReadingStore, persistentSession: Bool
    ) async throws {
        let topic = "kiezbox/v1/xhain/wrangelkiez-01/readings"
        let subscriber = try await TestSubscriber.connected(host: subscriberLink.insideAddress, port: broker.port, filter: topic)
        defer { Task { await subscriber.stop() } }
        let arrivals = Arrivals(subscriber)

        for start in stride(from: 0, to: Self.backlog, by: 1000) {
            try await store.record((start..<min(start + 1000, Self.backlog)).map { index in
                Reading(
                    sensorID: "climate", quantity: .temperature, value: Double(index),
                    measuredAt: Date(timeIntervalSince1970: 1_790_000_000 + Double(index)))
            })
        }
        try await store.flush()
        #expect(try store.readings().count == Self.backlog)

        let uplink = try MQTTUplink(
            configuration: MQTTUplink.Configuration(
                host: uplinkLink.insideAddress, port: broker.port, keepAlive: .seconds(5),
                readingsPerMessage: Self.readingsPerMessage, maximumInFlight: Self.maximumInFlight,
                acknowledgementTimeout: .seconds(3), persistentSession: persistentSession,
                reconnectDelay: .init(initial: .milliseconds(100), maximum: .milliseconds(500))),
            sender: SenderIdentity(box: Fixtures.wrangelkiez, storeInstance: store.instanceID))
        let relay = Fixtures.unpacedRelay(uplink, store: store, batchSize: 500, label: "link-cut-test")
        let relayRun = Task { try await relay.run() }
        defer { relayRun.cancel() }

        // Cut while the backfill runs with a nearly full in-flight window.
        let inFlightAtCut = try await eventually("a busy in-flight window in the middle of the backfill", timeout: .seconds(60)) {
            () -> Int? in
            guard subscriber.messages.count > Self.backlog / Self.readingsPerMessage / 10 else { return nil }
            let inFlight = uplink.unacknowledgedMessageCount
            guard inFlight >= Self.maximumInFlight / 2 else { return nil }
            try namespace.cut(uplinkLink)
            return inFlight
        }
        let arrivedAtCut = arrivals.ids.count
        try await eventually("the uplink to notice the broken link (keep-alive)", timeout: .seconds(60)) {
            uplink.connectionState.isConnected ? nil : true
        }
        // No PUBACK gets through after the cut, so what is unacknowledged now is everything that was in flight when
        // the link broke (and whatever filled the window before the uplink noticed): all that can come twice.
        let inFlightAtBreak = uplink.unacknowledgedMessageCount
        try namespace.restore(uplinkLink)

        let complete = try? await eventually("every reading at the subscriber after the link is back", timeout: .seconds(120)) {
            // Ids are unique per reading (whatever their format): as many distinct ids as readings is all of them.
            Set(arrivals.ids).count >= Self.backlog ? true : nil
        }
        // Nothing stalls: the cursor reaches the end and no message is left waiting for a PUBACK.
        let settled = try? await eventually("the relay's cursor at the end, no message waiting for its PUBACK", timeout: .seconds(60)) {
            try await store.undelivered(for: uplink.name, limit: 1).isEmpty && uplink.unacknowledgedMessageCount == 0 ? true : nil
        }
        relayRun.cancel()
        _ = try? await relayRun.value

        // What really arrived: every observation of every message, repeats included.
        let received = arrivals.ids
        let distinct = Set(received)
        let duplicates = received.count - distinct.count
        let bound = Self.maximumInFlight * Self.readingsPerMessage
        print(
            """
            link cut (\(persistentSession ? "persistent" : "clean") session): sent \(Self.backlog) readings; received \(received.count) observations in \(subscriber.messages.count) \
            messages, \(distinct.count) distinct, \(duplicates) duplicates; in flight: \(inFlightAtCut) messages just before the \
            cut, \(inFlightAtBreak) when the uplink noticed (≤ \(inFlightAtBreak * Self.readingsPerMessage) readings; \
            configured bound \(bound)); \(arrivedAtCut) observations had arrived at the cut
            """)
        #expect(complete == true, "missing \(Self.backlog - distinct.count) readings after the link came back")
        #expect(distinct.count == Self.backlog)
        #expect(settled == true, "the relay's cursor did not reach the end, or messages still wait for a PUBACK")
        #expect(duplicates <= inFlightAtBreak * Self.readingsPerMessage, "more duplicates than readings were in flight")
        #expect(duplicates <= bound, "more duplicates than readings can be in flight")
    }

    /// The id of every observation in every readings message received, in arrival order, repeats included
    /// (decoding each message once: the waits below ask often).
    final class Arrivals: Sendable {
        let subscriber: TestSubscriber
        private let decoded = Mutex<(messages: Int, ids: [String])>((0, []))

        init(_ subscriber: TestSubscriber) { self.subscriber = subscriber }

        var ids: [String] {
            let messages = self.subscriber.messages
            return self.decoded.withLock { decoded in
                for message in messages.dropFirst(decoded.messages) {
                    let observations = (try? JSONDecoder().decode(ReadingsMessage.self, from: Data(message.payload)))?.observations ?? []
                    decoded.ids += observations.map(\.id)
                }
                decoded.messages = messages.count
                return decoded.ids
            }
        }
    }

    static func withStore(_ body: (ReadingStore) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-linkcut-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await body(try ReadingStore(directory: directory))
    }
}
