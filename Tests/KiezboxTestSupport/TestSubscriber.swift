public import MeshRelay
import Synchronization

/// A second MQTT client that records everything it receives on one topic filter.
public final class TestSubscriber: Sendable {
    public let client: MosquittoClient
    private let recorder = Recorder()
    private let consumer: Task<Void, Never>

    private final class Recorder: Sendable {
        let received = Mutex<[MQTTMessage]>([])
        let subscribed = Mutex(false)
    }

    /// Connects, subscribes to `filter` and returns once the broker has confirmed the subscription.
    public static func connected(
        host: String = "127.0.0.1", port: Int, filter: String, protocolVersion: MQTTProtocolPreference = .v5,
        clientID: String = "test-subscriber-\(UInt32.random(in: 0...UInt32.max))",
        tls: MosquittoClient.TLS? = nil, credentials: MosquittoClient.Credentials? = nil
    ) async throws -> TestSubscriber {
        let client = try MosquittoClient(
            MosquittoClient.Configuration(
                host: host, port: port, clientID: clientID, credentials: credentials, tls: tls,
                protocolVersion: protocolVersion,
                reconnectDelay: .init(initial: .milliseconds(100), maximum: .milliseconds(500))))
        let subscriber = TestSubscriber(client: client)
        try client.subscribe(filter, qos: .atLeastOnce)
        client.start()
        try await eventually("SUBACK for \(filter)") { subscriber.recorder.subscribed.withLock { $0 } ? true : nil }
        return subscriber
    }

    private init(client: MosquittoClient) {
        self.client = client
        let recorder = self.recorder
        // Not capturing self: the consumer ends when the client stops and finishes its events.
        self.consumer = Task {
            for await event in client.events {
                switch event {
                case .subscribed: recorder.subscribed.withLock { $0 = true }
                case .message(let message): recorder.received.withLock { $0.append(message) }
                default: break
                }
            }
        }
    }

    public var messages: [MQTTMessage] { self.recorder.received.withLock { $0 } }

    /// Waits until at least `count` messages satisfying `predicate` have arrived; returns them.
    @discardableResult
    public func waitForMessages(
        _ count: Int = 1, timeout: Duration = .seconds(60), where predicate: @escaping (MQTTMessage) -> Bool = { _ in true }
    ) async throws -> [MQTTMessage] {
        try await eventually("\(count) message(s)", timeout: timeout) {
            let matching = self.messages.filter(predicate)
            return matching.count >= count ? matching : nil
        }
    }

    public func stop() async {
        await self.client.stop()
        await self.consumer.value
    }
}
