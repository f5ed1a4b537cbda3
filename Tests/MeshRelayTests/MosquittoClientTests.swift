import Foundation
import KiezboxTestSupport
import MeshRelay
import Synchronization
import Testing

/// The libmosquitto wrapper on its own.
@Suite("MosquittoClient", .timeLimit(.minutes(1)))
struct MosquittoClientTests {
    @Test("every QoS 1 publish gets exactly one outcome, also when PUBACKs race the publish call")
    func everyPublishAcknowledgedOnce() async throws {
        try await MosquittoBroker.with { broker in
            let client = try MosquittoClient(.init(host: "127.0.0.1", port: broker.port, clientID: "race-check"))
            let outcomes = Mutex<[Int: Int]>([:])
            client.start()
            try await eventually("connected") { client.connectionState.isConnected ? true : nil }
            let count = 3000
            for index in 0..<count {
                try client.publish(topic: "kiezbox/test/race", payload: Array("message \(index)".utf8)) { outcome in
                    if outcome == .acknowledged { outcomes.withLock { $0[index, default: 0] += 1 } }
                }
            }
            try await eventually("all PUBACKs") { outcomes.withLock { $0.count } == count ? true : nil }
            await client.stop()
            #expect(outcomes.withLock { $0.values.allSatisfy { $0 == 1 } })
        }
    }

    @Test("a process with more than 1024 descriptors open still connects and publishes (no select() limit)")
    func manyDescriptorsOpen() async throws {
        // The daemon's portal may hold a thousand connections on the Wi-Fi while MQTT reconnects: its socket then
        // gets a number above select()'s FD_SETSIZE, which mosquitto_loop refuses with MOSQ_ERR_INVAL.
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        if limit.rlim_cur < 2048, limit.rlim_max >= 2048 {
            limit.rlim_cur = 2048
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        let occupied = (0..<1100).map { _ in open("/dev/null", O_RDONLY | O_CLOEXEC) }
        defer { for descriptor in occupied where descriptor >= 0 { close(descriptor) } }
        try #require(occupied.allSatisfy { $0 >= 0 }, "could not open 1,100 descriptors (limit \(limit.rlim_cur))")
        try await MosquittoBroker.with { broker in
            let client = try MosquittoClient(.init(host: "127.0.0.1", port: broker.port, clientID: "many-descriptors"))
            let acknowledged = Mutex(0)
            client.start()
            try await eventually("connected") { client.connectionState.isConnected ? true : nil }
            for index in 0..<10 {
                try client.publish(topic: "kiezbox/test/descriptors", payload: [UInt8(index)]) { outcome in
                    if outcome == .acknowledged { acknowledged.withLock { $0 += 1 } }
                }
            }
            try await eventually("ten PUBACKs") { acknowledged.withLock { $0 } == 10 ? true : nil }
            await client.stop()
        }
    }

    @Test("on_publish becomes a .published event with the message id publish returned")
    func publishedEvents() async throws {
        try await MosquittoBroker.with { broker in
            let client = try MosquittoClient(.init(host: "127.0.0.1", port: broker.port, clientID: "events-check"))
            let published = Mutex<[Int32]>([])
            let consumer = Task {
                for await event in client.events {
                    if case .published(let messageID, .acknowledged) = event { published.withLock { $0.append(messageID) } }
                }
            }
            client.start()
            try await eventually("connected") { client.connectionState.isConnected ? true : nil }
            var messageIDs: [Int32] = []
            for index in 0..<3 {
                messageIDs.append(try client.publish(topic: "kiezbox/test/events", payload: [UInt8(index)]))
            }
            try await eventually("three PUBACK events") { published.withLock { $0.count } == 3 ? true : nil }
            await client.stop()
            await consumer.value
            #expect(published.withLock { $0 } == messageIDs)
        }
    }

    @Test("unacknowledged publishes are reported abandoned when the client stops")
    func abandonedOnStop() async throws {
        try await MosquittoBroker.with { broker in
            let client = try MosquittoClient(.init(host: "127.0.0.1", port: broker.port, clientID: "abandon-check"))
            let outcome = Mutex<MQTTPublishOutcome?>(nil)
            client.start()
            try await eventually("connected") { client.connectionState.isConnected ? true : nil }
            broker.pause()
            try client.publish(topic: "kiezbox/test/abandon", payload: [1]) { result in outcome.withLock { $0 = result } }
            await client.stop()  // DISCONNECT goes into the socket buffer; the paused broker never answers the PUBLISH
            broker.resume()
            #expect(outcome.withLock { $0 } == .abandoned)
            #expect(throws: MosquittoError.self) { try client.publish(topic: "kiezbox/test/abandon", payload: [2]) }
        }
    }

    @Test("MQTT 5 falls back to 3.1.1 when a 3.1.1-only broker refuses protocol level 5")
    func fallbackToV311() async throws {
        let broker = try FakeV311Broker()
        defer { broker.stop() }
        let client = try MosquittoClient(
            .init(host: "127.0.0.1", port: broker.port, clientID: "fallback-check", protocolVersion: .v5FallingBackToV311))
        let events = Mutex<[String]>([])
        let consumer = Task {
            for await event in client.events {
                switch event {
                case .connectionFailed(.refused(let refusal)): events.withLock { $0.append("refused \(refusal.reasonCode)") }
                case .connected(let info): events.withLock { $0.append("connected \(info.protocolVersion)") }
                default: break
                }
            }
        }
        client.start()
        try await eventually("connected") { client.connectionState.isConnected ? true : nil }
        #expect(client.connectionState == .connected(.init(protocolVersion: .v311, sessionPresent: false)))
        await client.stop()
        await consumer.value
        #expect(events.withLock { $0 } == ["refused 132", "connected MQTT 3.1.1"])
        #expect(broker.protocolLevels == [5, 4])
    }

    @Test("MQTT 5 only: no fallback, and the refusal does not stop the reconnect attempts")
    func noFallbackWhenV5Required() async throws {
        let broker = try FakeV311Broker()
        defer { broker.stop() }
        let client = try MosquittoClient(
            .init(
                host: "127.0.0.1", port: broker.port, clientID: "v5-only", protocolVersion: .v5,
                reconnectDelay: .init(initial: .milliseconds(50), maximum: .milliseconds(100))))
        client.start()
        try await eventually("three attempts") { broker.protocolLevels.count >= 3 ? true : nil }
        #expect(client.connectionState != .connected(.init(protocolVersion: .v311, sessionPresent: false)))
        await client.stop()
        #expect(Set(broker.protocolLevels) == [5])
    }

    @Test("MQTT 5 persistent session: the broker queues QoS 1 messages while the box is away")
    func persistentSession() async throws {
        try await MosquittoBroker.with { broker in
            let configuration = MosquittoClient.Configuration(
                host: "127.0.0.1", port: broker.port, clientID: "kiezbox-persistent", cleanSession: false,
                sessionExpiry: .seconds(600), protocolVersion: .v5)
            let first = try await TestSubscriber.connected(port: broker.port, filter: "kiezbox/test/queued", clientID: "unused")
            await first.stop()

            // Subscribe with a persistent session, then go away.
            let away = try MosquittoClient(configuration)
            try away.subscribe("kiezbox/test/queued")
            let subscribed = Mutex(false)
            let consumer = Task {
                for await event in away.events {
                    if case .subscribed = event { subscribed.withLock { $0 = true } }
                }
            }
            away.start()
            try await eventually("SUBACK") { subscribed.withLock { $0 } ? true : nil }
            await away.stop()
            await consumer.value

            let publisher = try MosquittoClient(.init(host: "127.0.0.1", port: broker.port, clientID: "publisher"))
            let acknowledged = Mutex(false)
            publisher.start()
            try publisher.publish(topic: "kiezbox/test/queued", payload: Array("while you were away".utf8)) { _ in
                acknowledged.withLock { $0 = true }
            }
            try await eventually("PUBACK") { acknowledged.withLock { $0 } ? true : nil }
            await publisher.stop()

            let back = try MosquittoClient(configuration)
            let received = Mutex<[MQTTMessage]>([])
            let session = Mutex<Bool?>(nil)
            let backConsumer = Task {
                for await event in back.events {
                    switch event {
                    case .connected(let info): session.withLock { $0 = info.sessionPresent }
                    case .message(let message): received.withLock { $0.append(message) }
                    default: break
                    }
                }
            }
            back.start()
            try await eventually("the queued message") { received.withLock { $0.isEmpty } ? nil : true }
            await back.stop()
            await backConsumer.value
            #expect(session.withLock { $0 } == true)
            #expect(received.withLock { $0.map { String(decoding: $0.payload, as: UTF8.self) } } == ["while you were away"])
        }
    }

    @Test("reconnect delay doubles up to its maximum")
    func reconnectDelay() {
        let delay = MosquittoClient.ReconnectDelay(initial: .seconds(1), maximum: .seconds(60))
        #expect((0..<8).map { delay.delay(afterFailures: $0) } == [1, 2, 4, 8, 16, 32, 60, 60].map { Duration.seconds($0) })
        #expect(delay.delay(afterFailures: 10_000) == .seconds(60))
    }

    @Test("configuration errors are thrown by init")
    func configurationErrors() {
        #expect(throws: MosquittoError.self) { _ = try MosquittoClient(.init(host: "127.0.0.1", clientID: "")) }
        #expect(throws: MosquittoError.self) {
            _ = try MosquittoClient(.init(host: "127.0.0.1", clientID: "x", will: .init(topic: "bad/#", payload: [])))
        }
        #expect(MosquittoClient.libraryVersion.hasPrefix("2."))
    }
}
