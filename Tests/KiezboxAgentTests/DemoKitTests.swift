import Foundation
import KiezboxCore
import ReadingStore
import SensorDrivers
import Testing

@testable import KiezboxAgent

/// The repository's root, found from this file.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

@Suite("The demo kit")
struct DemoKitTests {
    static let fixturePath = repositoryRoot + "/fixtures/demo-kit.toml"

    @Test("the embedded default configuration and fixtures/demo-kit.toml describe the same kit, chip for chip")
    func defaultConfigurationMatchesFixture() throws {
        let configuration = try KiezboxConfiguration.parse(KiezboxConfiguration.embeddedDefault, file: "default")
        let fixture = try SimulationFixture.load(path: Self.fixturePath)
        let configured = Set(configuration.sensors.map { "\($0.chip.rawValue)@\($0.connection)" })
        let simulated = Set(fixture.chips.map { "\($0.chip.rawValue)@\($0.place)" })
        #expect(configured == simulated)
        // A full kit: climate, PM, CO₂, power, GPS, rain, mains.
        let quantities = Set(configuration.sensors.map(\.chip))
        #expect(quantities.isSuperset(of: [.bme280, .scd4x, .sds011, .ina219, .gps, .rainGauge, .mainsFail]))
    }

    @Test("fixture mistakes are named with their line")
    func fixtureErrors() throws {
        let source = """
            [[chip]]
            chip = "bme280"
            bus = "/dev/i2c-1"
            address = 0x76
            faults = ["loose-wire"]
            """
        do {
            _ = try SimulationFixture.parse(source, file: "kit.toml")
            Issue.record("accepted an unknown fault")
        } catch {
            #expect(error.line == 5)
            #expect(error.key == "chip[1].faults")
            #expect(error.message.contains("unknown fault 'loose-wire'"))
        }
    }

    @Test(
        "kiezbox run --simulate fixtures/demo-kit.toml gives plausible readings for every chip",
        .timeLimit(.minutes(2))
    )
    func everyChipReads() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-demo-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The default kit, read every second or two so the test sees every chip quickly.
        let fast = KiezboxConfiguration.embeddedDefault
            .replacingOccurrences(of: #"interval = "(10s|30s|1m|10m)""#, with: "interval = \"2s\"", options: .regularExpression)
            .replacingOccurrences(of: #"flush_interval = "10s""#, with: #"flush_interval = "200ms""#)
        try fast.write(toFile: directory + "/kit.toml", atomically: true, encoding: .utf8)
        let configuration = try KiezboxConfiguration.parse(fast, file: "kit.toml")
        #expect(configuration.sensors.allSatisfy { $0.interval == .seconds(2) })

        let data = directory + "/data"
        let daemon = try KiezboxProcess(
            ["run", "--config", directory + "/kit.toml", "--data-dir", data, "--simulate", Self.fixturePath], in: directory
        )
        defer { if daemon.process.isRunning { daemon.signal(SIGKILL) } }
        let expected: [String: Set<Quantity>] = [
            "climate": [.temperature, .relativeHumidity, .pressure],
            "co2": [.co2, .temperature, .relativeHumidity],
            "particulates": [.pm2_5, .pm10],
            "battery": [.voltage, .current, .power],
            "position": [.latitude, .longitude, .altitude],
            "rain": [.rainfall, .rainIntensity],
            "mains": [.mainsPresent],
        ]
        try await waitUntil("readings of every quantity of every chip", timeout: .seconds(90)) {
            let seen = Dictionary(grouping: try committedReadings(in: data), by: \.reading.sensorID)
                .mapValues { Set($0.map(\.reading.quantity)) }
            return expected.allSatisfy { seen[$0.key, default: []].isSuperset(of: $0.value) }
        }
        daemon.signal(SIGTERM)
        #expect(try await daemon.waitForExit() == 0, "\(daemon.stderr)")

        for stored in try committedReadings(in: data) {
            let reading = stored.reading
            let plausible: ClosedRange<Double> =
                switch reading.quantity {
                case .temperature: -30...45
                case .relativeHumidity: 0...100
                case .pressure: 950...1060
                case .co2: 380...2000
                case .pm1, .pm2_5, .pm4, .pm10: 0...200
                case .voltage: 10...15
                case .current: -3.2...3.2
                case .power: 0...45
                case .latitude: 52.49...52.51
                case .longitude: 13.42...13.44
                case .altitude: 0...100
                case .rainfall: 0...10
                case .rainIntensity: 0...50
                case .mainsPresent: 1...1
                default: -Double.infinity...Double.infinity
                }
            #expect(plausible.contains(reading.value), "\(reading.sensorID) \(reading.quantity) = \(reading.value)")
            // Only the rain gauge may be degraded: it has not watched a full intensity window yet.
            #expect(reading.quality == .good || reading.sensorID == "rain", "\(reading.sensorID) \(reading.quantity) \(reading.quality)")
        }
    }
}
