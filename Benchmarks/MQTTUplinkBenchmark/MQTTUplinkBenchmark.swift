// Delivers N readings through MQTTUplink to a broker and reports readings per second.
//
//   MQTTUplinkBenchmark --port 18883 [--host 127.0.0.1] [--readings 100000] [--per-message 100] [--in-flight 20]
//
// The relay's loop, without the store: deliver batches of `maximumBatch` readings, oldest first, and offer
// again whatever was not acknowledged. The time includes building and JSON-encoding the messages.
// Benchmarks/run-mqtt-bench.sh starts a private mosquitto and runs this next to the C reference.

import Foundation
import KiezboxCore
import MeshRelay

struct Options {
    var host = "127.0.0.1"
    var port = 1883
    var readings = 100_000
    var perMessage = 100
    var inFlight = 20

    init(_ arguments: [String]) {
        var iterator = arguments.makeIterator()
        while let flag = iterator.next() {
            guard let value = iterator.next() else { Self.usage("missing value for \(flag)") }
            switch flag {
            case "--host": self.host = value
            case "--port": self.port = Self.number(value)
            case "--readings": self.readings = Self.number(value)
            case "--per-message": self.perMessage = Self.number(value)
            case "--in-flight": self.inFlight = Self.number(value)
            default: Self.usage("unknown option \(flag)")
            }
        }
    }

    static func number(_ text: String) -> Int {
        guard let number = Int(text), number > 0 else { usage("not a positive number: \(text)") }
        return number
    }

    static func usage(_ problem: String) -> Never {
        FileHandle.standardError.write(Data("""
            \(problem)
            usage: MQTTUplinkBenchmark --port PORT [--host HOST] [--readings N] [--per-message N] [--in-flight N]

            """.utf8))
        exit(2)
    }
}

@main
struct MQTTUplinkBenchmark {
    static func main() async throws {
        let options = Options(Array(CommandLine.arguments.dropFirst()))
        let box = BoxIdentity(district: "bench", boxID: "box-01", name: "Benchmark box")
        let sender = SenderIdentity(box: box, storeInstance: "bench-store")
        let start = Date(timeIntervalSince1970: 1_790_000_000)
        let readings = (1...Int64(options.readings)).map { id in
            StoredReading(
                id: id,
                reading: Reading(
                    sensorID: "climate", quantity: .temperature, value: 20 + Double(id % 100) / 10,
                    measuredAt: start.addingTimeInterval(Double(id))))
        }
        let uplink = try MQTTUplink(
            configuration: MQTTUplink.Configuration(
                host: options.host, port: options.port, clientID: "kiezbox-bench-\(getpid())",
                readingsPerMessage: options.perMessage, maximumInFlight: options.inFlight),
            sender: sender)
        try await uplink.start()
        try await uplink.waitUntilConnected(timeout: .seconds(10))

        let clock = ContinuousClock()
        var remaining = readings[...]
        var rounds = 0
        let elapsed = try await clock.measure {
            while !remaining.isEmpty {
                let batch = Array(remaining.prefix(uplink.maximumBatch))
                let acknowledged = try await uplink.deliver(batch)
                rounds += 1
                // The relay's cursor: drop what was acknowledged from the front; offer the rest again.
                let delivered = batch.prefix { acknowledged.contains($0.id) }.count
                remaining = remaining.dropFirst(delivered)
            }
        }
        await uplink.stop()

        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let messages = (options.readings + options.perMessage - 1) / options.perMessage
        print(
            String(
                format: "MQTTUplink: %d readings in %d messages of %d (%d in flight, %d deliver calls) in %.3f s: %.0f readings/s, %.0f messages/s",
                options.readings, messages, options.perMessage, options.inFlight, rounds, seconds,
                Double(options.readings) / seconds, Double(messages) / seconds))
    }
}
