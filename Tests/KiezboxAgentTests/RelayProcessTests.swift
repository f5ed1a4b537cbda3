import Foundation
import KiezboxCore
import KiezboxTestSupport
import MeshRelay
import ReadingStore
import Testing

/// The real `kiezbox` daemon relaying to a real mosquitto on loopback.
@Suite("Relay over a real broker", .serialized, .timeLimit(.minutes(3)))
struct RelayProcessTests {
    func configuration(port: Int, backfillRate: Int) -> String {
        """
        [box]
        id = "relay-box"
        district = "test-kiez"

        [store]
        flush_interval = "200ms"

        [simulation]
        enabled = true

        [mqtt]
        host = "127.0.0.1"
        port = \(port)

        [relay]
        batch_size = 20
        max_backfill_rate = \(backfillRate)
        max_backoff = "2s"

        [[sensor]]
        id = "roof"
        chip = "bme280"
        address = 0x76
        interval = "1s"

        [[sensor]]
        id = "balcony"
        chip = "bme280"
        address = 0x77
        interval = "1s"
        """
    }

    /// Every observation of every readings message the subscriber received, in arrival order, repeats included:
    /// what really arrived, so duplicates can be counted.
    func observations(_ subscriber: TestSubscriber) -> [ReadingsMessage.Observation] {
        subscriber.messages
            .compactMap { try? JSONDecoder().decode(ReadingsMessage.self, from: Data($0.payload)) }
            .flatMap(\.observations)
    }

    /// How many observations arrived more than once (every repeat counts), printed with the totals.
    func duplicates(_ received: [ReadingsMessage.Observation], messages: Int, test: String) -> Int {
        let distinct = Set(received.map(\.id)).count
        print("\(test): received \(messages) messages, \(received.count) observations, \(distinct) distinct, \(received.count - distinct) duplicates")
        return received.count - distinct
    }

    /// The stable ids of everything the daemon committed.
    func committedIDs(_ data: String) throws -> Set<String> {
        let store = try ReadingStore(directory: data, readOnly: true)
        return Set(try store.readings().map { $0.globalID(storeInstance: store.instanceID) })
    }

    @Test("the broker is away while the box samples; when it is back every reading arrives, once, in order per sensor")
    func brokerOutage() async throws {
        try await MosquittoBroker.with { broker in
            try await withWorkspace { directory in
                let data = directory + "/data"
                try self.configuration(port: broker.port, backfillRate: 0).write(toFile: directory + "/k.toml", atomically: true, encoding: .utf8)
                await broker.stop()
                let daemon = try KiezboxProcess(["run", "--config", directory + "/k.toml", "--data-dir", data], in: directory)
                defer { if daemon.process.isRunning { daemon.signal(SIGKILL) } }
                // Sampling goes on without the broker: readings pile up in the store.
                try await waitUntil("readings buffered while the broker is away") { try committedReadings(in: data).count >= 24 }

                let backlog = try self.committedIDs(data)
                try await broker.start()
                let subscriber = try await TestSubscriber.connected(port: broker.port, filter: "kiezbox/v1/test-kiez/relay-box/readings")
                defer { Task { await subscriber.stop() } }
                try await waitUntil("the whole backlog at the subscriber", timeout: .seconds(60)) {
                    Set(self.observations(subscriber).map(\.id)).isSuperset(of: backlog)
                }
                daemon.signal(SIGTERM)
                #expect(try await daemon.waitForExit() == 0, "\(daemon.stderr)")

                let committed = try self.committedIDs(data)
                let received = self.observations(subscriber)
                // Nothing arrived that was not committed, and nothing arrived twice: the connection never broke
                // with messages in flight, so there was nothing to send again.
                #expect(Set(received.map(\.id)).isSubset(of: committed))
                #expect(self.duplicates(received, messages: subscriber.messages.count, test: "broker outage") == 0)
                for sensor in ["roof", "balcony"] {
                    for quantity in ["temperature", "pressure"] {
                        let times = received.filter { $0.sensor == sensor && $0.quantity == quantity }.map(\.phenomenonTime)
                        #expect(times == times.sorted(), "\(sensor) \(quantity) out of order")
                    }
                }
            }
        }
    }

    @Test("the daemon is killed in the middle of a backfill and restarted: nothing is missing")
    func killDuringBackfill() async throws {
        try await MosquittoBroker.with { broker in
            try await withWorkspace { directory in
                let data = directory + "/data"
                // A slow backfill (20 readings/s) so the kill lands in the middle of it.
                try self.configuration(port: broker.port, backfillRate: 20).write(toFile: directory + "/k.toml", atomically: true, encoding: .utf8)
                await broker.stop()
                let arguments = ["run", "--config", directory + "/k.toml", "--data-dir", data]
                let first = try KiezboxProcess(arguments, in: directory)
                defer { if first.process.isRunning { first.signal(SIGKILL) } }
                try await waitUntil("a backlog of 60 readings") { try committedReadings(in: data).count >= 60 }

                try await broker.start()
                let subscriber = try await TestSubscriber.connected(port: broker.port, filter: "kiezbox/v1/test-kiez/relay-box/readings")
                defer { Task { await subscriber.stop() } }
                try await waitUntil("the backfill to be under way") { self.observations(subscriber).count >= 20 }
                first.signal(SIGKILL)
                _ = try await first.waitForExit()
                let backlog = try self.committedIDs(data)
                #expect(Set(self.observations(subscriber).map(\.id)).count < backlog.count, "the kill came after the backfill had finished")

                let second = try KiezboxProcess(arguments, in: directory)
                defer { if second.process.isRunning { second.signal(SIGKILL) } }
                try await waitUntil("everything committed before the kill at the subscriber", timeout: .seconds(90)) {
                    Set(self.observations(subscriber).map(\.id)).isSuperset(of: backlog)
                }
                second.signal(SIGTERM)
                #expect(try await second.waitForExit() == 0)
                // Sent twice can only be what the first daemon had published but not yet recorded as acknowledged
                // when it was killed: at most the one batch (batch_size = 20) it was delivering.
                let duplicates = self.duplicates(
                    self.observations(subscriber), messages: subscriber.messages.count, test: "kill during backfill")
                #expect(duplicates <= 20, "more duplicates than one batch in flight")
                #expect(try ReadingStore(directory: data, readOnly: true).integrityCheck() == ["ok"])
            }
        }
    }
}

/// A temporary directory for one test, removed afterwards.
func withWorkspace(_ body: (String) async throws -> Void) async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try await body(directory)
}
