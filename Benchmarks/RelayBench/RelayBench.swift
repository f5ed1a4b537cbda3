// `make bench`, relay part: 100,000 readings buffered in a real store are drained by the relay through the
// MQTT uplink into a private mosquitto on loopback, QoS 1, every PUBACK awaited; beside it, in the same run,
// the libmosquitto C reference publishes the same number of readings one per message at QoS 1.
//
//   RelayBench --port PORT --reference PATH [--readings 100000]
//
// Prints readings/s for both, the ratio, and the relay's CPU seconds (user + system) per 10,000 readings.

import Foundation
import KiezboxCore
import Logging
import MeshRelay
import ReadingStore
import ServiceLifecycle

@main
struct RelayBench {
    static func main() async throws {
        var port = 1883
        var readings = 100_000
        var reference: String?
        var arguments = Array(CommandLine.arguments.dropFirst()).makeIterator()
        while let flag = arguments.next(), let value = arguments.next() {
            switch flag {
            case "--port": port = Int(value) ?? port
            case "--readings": readings = Int(value) ?? readings
            case "--reference": reference = value
            default: fatalError("usage: RelayBench --port PORT --reference PATH [--readings N]")
            }
        }

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-relay-bench-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try ReadingStore(directory: directory, configuration: .init(maximumBatch: 10_000))
        let start = Date(timeIntervalSince1970: 1_790_000_000)
        let sensors = ["roof", "balcony", "yard", "street"]
        try await store.record((0..<readings).map { index in
            Reading(
                sensorID: sensors[index % 4], quantity: .temperature, value: 20 + Double(index % 100) / 10,
                measuredAt: start.addingTimeInterval(Double(index / 4))
            )
        })
        try await store.flush()

        let sender = SenderIdentity(box: BoxIdentity(district: "bench", boxID: "box-01", name: "Benchmark box"), storeInstance: store.instanceID)
        let uplink = try MQTTUplink(configuration: .init(host: "127.0.0.1", port: port, clientID: "kiezbox-bench-\(getpid())"), sender: sender)
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        let relay = RelayService(
            uplinks: [uplink], store: store, clock: LiveClock(),
            configuration: RelayConfiguration(batchSize: uplink.maximumBatch, idlePoll: .milliseconds(5), maximumBackfillRate: 0),
            logger: logger
        )

        let cpuBefore = processCPUSeconds()
        let clock = ContinuousClock()
        let began = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await relay.run() }
            while try store.statistics().uplinks.first?.undelivered != 0 {
                try await Task.sleep(for: .milliseconds(5))
            }
            group.cancelAll()
        }
        let elapsed = clock.now - began
        let cpu = processCPUSeconds() - cpuBefore
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let rate = Double(readings) / seconds

        print("Relay benchmark: \(readings) readings buffered in the store, drained over MQTT QoS 1 to mosquitto on loopback")
        print(String(format: "  kiezbox relay (store -> MQTTUplink, %d readings per message): %.0f readings/s (%.2f s)", 100, rate, seconds))
        print(String(format: "  CPU (user + system) per 10,000 readings: %.3f s", cpu / Double(readings) * 10_000))
        guard let reference else { return }
        let output = try run(reference, ["127.0.0.1", String(port), String(readings)])
        print("  " + output.trimmingCharacters(in: .whitespacesAndNewlines))
        // "... : 71320 readings/s, ..." from the C reference.
        if let match = output.firstMatch(of: #/: (\d+) readings\/s/#), let referenceRate = Double(match.1) {
            print(String(format: "  ratio kiezbox / C reference: %.2fx (target: at least 1.0x) -> %@", rate / referenceRate, rate >= referenceRate ? "met" : "NOT met"))
        }
    }

    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
