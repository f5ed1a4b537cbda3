import Foundation
import KiezboxCore
import KiezboxTestSupport
import MeshRelay
import ReadingStore
import Testing

/// Three boxes on a mesh, each in a network namespace of its own, joined by a bridge. Box A runs the
/// district's broker; B and C reach it over the mesh (the design: every box talks MQTT to the district broker
/// directly, with its own store as the outbox, so an acknowledgement always means the broker has it).
@Suite("Three boxes on a mesh", .serialized, .timeLimit(.minutes(4)))
struct MeshTests {
    static let district = "mesh-kiez"

    func configuration(box: String, broker: String) -> String {
        """
        [box]
        id = "box-\(box)"
        district = "\(Self.district)"
        name = "Box \(box.uppercased())"
        latitude = 52.50\(box == "a" ? 1 : box == "b" ? 2 : 3)
        longitude = 13.43

        [store]
        flush_interval = "200ms"

        [simulation]
        enabled = true

        [mqtt]
        host = "\(broker)"
        port = 1883
        keepalive = "5s"

        [relay]
        max_backoff = "2s"

        [[sensor]]
        id = "climate"
        chip = "bme280"
        interval = "1s"

        [[sensor]]
        id = "battery"
        chip = "ina219"
        interval = "1s"
        """
    }

    func observations(_ subscriber: TestSubscriber, box: String) -> Set<String> {
        Set(subscriber.messages
            .compactMap { try? JSONDecoder().decode(ReadingsMessage.self, from: Data($0.payload)) }
            .filter { $0.box == "box-\(box)" }
            .flatMap(\.observations)
            .map(\.id))
    }

    func committedIDs(_ data: String) throws -> Set<String> {
        do {
            let store = try ReadingStore(directory: data, readOnly: true)
            return Set(try store.readings().map { $0.globalID(storeInstance: store.instanceID) })
        } catch let error as ReadingStoreError where error.code == .noDatabase {
            return []
        }
    }

    @Test("every reading of every box arrives, also across a cut link, and each box sees the other two")
    func threeBoxes() async throws {
        try #require(MeshNamespaces.available, "the mesh test needs root to create network namespaces (CI runs as root)")
        let mesh = try MeshNamespaces(boxes: ["a", "b", "c"])
        defer { mesh.tearDown() }
        try await withWorkspace { directory in
            // The district broker on box A, listening on its mesh address.
            let brokerConfig = directory + "/mosquitto.conf"
            try "listener 1883 \(mesh.address("a"))\nallow_anonymous true\npersistence false\n"
                .write(toFile: brokerConfig, atomically: true, encoding: .utf8)
            let broker = Process()
            broker.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            broker.arguments = Array(mesh.inNamespace("a", [MosquittoBroker.executable, "-c", brokerConfig]).dropFirst())
            broker.standardOutput = FileHandle.nullDevice
            broker.standardError = FileHandle.nullDevice
            try broker.run()
            defer { kill(broker.processIdentifier, SIGKILL) }

            let subscriber = try await TestSubscriber.connected(
                host: mesh.address("a"), port: 1883, filter: "kiezbox/v1/\(Self.district)/+/readings"
            )
            defer { Task { await subscriber.stop() } }

            var daemons: [String: KiezboxProcess] = [:]
            for box in mesh.boxes {
                try self.configuration(box: box, broker: mesh.address("a"))
                    .write(toFile: "\(directory)/\(box).toml", atomically: true, encoding: .utf8)
                daemons[box] = try KiezboxProcess(
                    Array(mesh.inNamespace(box, [kiezboxBinary, "run", "--config", "\(directory)/\(box).toml", "--data-dir", "\(directory)/\(box)"]).dropFirst()),
                    in: directory, executable: "/usr/sbin/ip"
                )
            }
            defer { for daemon in daemons.values where daemon.process.isRunning { daemon.signal(SIGKILL) } }

            try await waitUntil("readings from all three boxes", timeout: .seconds(60)) {
                mesh.boxes.allSatisfy { !self.observations(subscriber, box: $0).isEmpty }
            }

            // C loses its link to the mesh; it goes on sampling into its store.
            try mesh.cut("c")
            let beforeCut = try self.committedIDs("\(directory)/c")
            try await waitUntil("C to buffer while cut off") {
                try self.committedIDs("\(directory)/c").count >= beforeCut.count + 30
            }
            let buffered = try self.committedIDs("\(directory)/c")
            // The link really was down: what C measured meanwhile has not reached the broker.
            let measuredWhileCut = buffered.subtracting(beforeCut)
            #expect(self.observations(subscriber, box: "c").isDisjoint(with: measuredWhileCut))
            try mesh.restore("c")
            try await waitUntil("everything C buffered, at the broker", timeout: .seconds(90)) {
                self.observations(subscriber, box: "c").isSuperset(of: buffered)
            }
            for box in ["a", "b"] {
                let committed = try self.committedIDs("\(directory)/\(box)")
                try await waitUntil("box \(box)'s readings at the broker", timeout: .seconds(60)) {
                    self.observations(subscriber, box: box).isSuperset(of: committed)
                }
            }

            // Each box's neighbourhood view lists the other two, online.
            for box in mesh.boxes {
                try await waitUntil("box \(box) to see its neighbours", timeout: .seconds(60)) {
                    let neighbours = (try? ReadingStore(directory: "\(directory)/\(box)", readOnly: true).neighbours()) ?? []
                    let online = Set(neighbours.filter(\.online).map(\.identity.boxID))
                    return online == Set(mesh.boxes.filter { $0 != box }.map { "box-\($0)" })
                }
            }
            let status = try runKiezbox(["status", "--data-dir", "\(directory)/b"], in: directory)
            #expect(status.stdout.contains("\(Self.district)/box-a"))
            #expect(status.stdout.contains("\(Self.district)/box-c"))

            for daemon in daemons.values { daemon.signal(SIGTERM) }
            for (box, daemon) in daemons {
                // A hang guard at systemd's TimeoutStopSec plus slack for a busy machine; the log says what held it.
                let status: Int32
                do { status = try await daemon.waitForExit(timeout: .seconds(60)) } catch {
                    Issue.record("box \(box) did not stop within 60 s of SIGTERM: \(daemon.stderr.suffix(6000))")
                    continue
                }
                #expect(status == 0, "box \(box): \(daemon.stderr)")
            }
        }
    }
}
