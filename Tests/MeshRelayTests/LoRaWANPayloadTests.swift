import Foundation
import KiezboxCore
import KiezboxTestSupport
import ReadingStore
import Testing

@testable import MeshRelay

/// The compact payload (encoder, decoder, the TTN formatter run by node) and the CayenneLPP encoder.
@Suite("LoRaWAN payloads")
struct LoRaWANPayloadTests {
    static let fullReport = BoxReport(
        values: [
            .temperature: 21.55, .relativeHumidity: 55.5, .pressure: 1013.2, .pm2_5: 12.3, .pm10: 20.1, .co2: 415,
            .voltage: 12.6, .batteryLevel: 87,
        ],
        status: BoxStatus(mode: .crisis, onBattery: true, helpRequestsOpen: true))

    static let summary = CrisisSummary(
        status: BoxStatus(mode: .crisis, onBattery: true, helpRequestsOpen: true), batteryLevel: 64, batteryVoltage: 12.31,
        phonesConnected: 37, openHelpRequests: [.medical: 2, .water: 5, .other: 1])

    /// Reports at the edges of every range and with values missing.
    static let reports: [BoxReport] = [
        fullReport,
        BoxReport(),
        BoxReport(values: [.temperature: -327.68, .relativeHumidity: 0, .pressure: 300, .pm2_5: 0, .pm10: 0, .co2: 0, .voltage: 0, .batteryLevel: 0]),
        BoxReport(
            values: [.temperature: 327.67, .relativeHumidity: 100, .pressure: 1610.7, .pm2_5: 6553.5, .pm10: 6553.5, .co2: 65535, .voltage: 655.35, .batteryLevel: 100],
            status: BoxStatus(mainsPresent: true)),
        BoxReport(values: [.temperature: -4.1, .co2: 2150], status: BoxStatus(mode: .normal, mainsPresent: true, onBattery: true)),
        BoxReport(values: [.batteryLevel: 3, .voltage: 11.02], status: BoxStatus(onBattery: true, valueClamped: true)),
    ]

    /// The largest error the format allows for `quantity` (half a step).
    static func tolerance(_ quantity: Quantity) -> Double {
        let index = BoxReport.carriedQuantities.firstIndex(of: quantity)!
        return 0.5 / Double(BoxReport.compactFields[index].scale) + 1e-9
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02X", $0) }.joined(separator: " ") }

    // MARK: compact report

    @Test("a full report of eight values is 16 bytes, laid out as docs/lorawan.md says")
    func fullReportBytes() {
        let bytes = Self.fullReport.encode()
        #expect(bytes.count == 16)
        // 0x2D: version 1, help requests open, on battery, crisis. 0xFF: all eight present. 21.55 °C = 2155;
        // 55.5 % = 111; 1013.2 hPa = (1013.2 − 300) × 50 = 35660; 12.3 and 20.1 µg/m³ = 123, 201; 415 ppm;
        // 12.6 V = 1260; 87 %.
        #expect(Self.hex(bytes) == "2D FF 08 6B 6F 8B 4C 00 7B 00 C9 01 9F 04 EC 57")
        #expect(Self.hex(BoxReport().encode()) == "20 00")
        #expect(Self.hex(BoxReport(values: [.co2: 415, .rainfall: 3]).encode()) == "20 20 01 9F")
    }

    @Test("encode and decode round trip within the resolution", arguments: reports)
    func roundTrip(_ report: BoxReport) throws {
        let decoded = try BoxReport(compactPayload: report.encode())
        #expect(decoded.status == report.status)
        #expect(Set(decoded.values.keys) == Set(report.values.keys))
        for (quantity, value) in report.values {
            #expect(abs(decoded.values[quantity]! - value) <= Self.tolerance(quantity), "\(quantity)")
        }
    }

    @Test("values out of range are sent as the nearest limit with the clamped flag, never wrapped; NaN is left out")
    func clamping() throws {
        let report = BoxReport(values: [
            .temperature: 400, .relativeHumidity: 104, .pressure: 250, .pm2_5: -3, .pm10: 1e300, .co2: 70_000, .voltage: .nan,
            .batteryLevel: -1,
        ])
        let bytes = report.encode()
        #expect(bytes[0] & 0x10 != 0)
        let decoded = try BoxReport(compactPayload: bytes)
        #expect(decoded.status.valueClamped)
        #expect(decoded.values == [
            .temperature: 327.67, .relativeHumidity: 100, .pressure: 300, .pm2_5: 0, .pm10: 6553.5, .co2: 65535, .batteryLevel: 0,
        ])
        #expect(try BoxReport(compactPayload: Self.fullReport.encode()).status.valueClamped == false)
    }

    @Test("maintenance travels as normal (one mode bit)")
    func maintenance() throws {
        let decoded = try BoxReport(compactPayload: BoxReport(status: BoxStatus(mode: .maintenance)).encode())
        #expect(decoded.status.mode == .normal)
    }

    @Test("truncated, padded, foreign and garbage bytes give a typed error")
    func decodeErrors() {
        let full = Self.fullReport.encode()
        let cases: [([UInt8], LoRaWANPayloadError)] = [
            ([], .wrongLength(expected: 2, actual: 0)),
            ([0x20], .wrongLength(expected: 2, actual: 1)),
            ([0x40, 0x00], .unsupportedVersion(2)),
            ([0x00, 0x00], .unsupportedVersion(0)),
            (Array(full.prefix(15)), .wrongLength(expected: 16, actual: 15)),
            ([0x20, 0x01, 0x08], .wrongLength(expected: 4, actual: 3)),
            (full + [0], .wrongLength(expected: 16, actual: 17)),
            ([0x20, 0x02, 201], .valueOutOfRange(field: "relative_humidity", raw: 201)),
            ([0x20, 0x80, 101], .valueOutOfRange(field: "battery_level", raw: 101)),
        ]
        for (bytes, error) in cases {
            #expect(throws: error, "\(Self.hex(bytes))") { try BoxReport(compactPayload: bytes) }
        }
    }

    @Test("random bytes never trap; whatever decodes re-encodes to the same bytes")
    func garbage() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let bytes = Self.randomPayload(using: &generator)
            if let report = try? BoxReport(compactPayload: bytes) { #expect(report.encode() == bytes, "\(Self.hex(bytes))") }
            if let summary = try? CrisisSummary(compactPayload: bytes) { #expect(summary.encode() == bytes, "\(Self.hex(bytes))") }
        }
    }

    /// Mostly version-1 headers, so decoding gets past the first byte often.
    static func randomPayload(using generator: inout some RandomNumberGenerator) -> [UInt8] {
        var bytes = (0..<Int.random(in: 0...20, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        if !bytes.isEmpty && Bool.random(using: &generator) { bytes[0] = 0x20 | bytes[0] & 0x1F }
        if bytes.count > 1 && Bool.random(using: &generator) { bytes[1] &= 0x07 }
        return bytes
    }

    // MARK: crisis summary

    @Test("crisis summary: layout, round trip, clamped counts, every bulletin category")
    func crisisSummary() throws {
        let bytes = Self.summary.encode()
        // header, presence (charge, voltage, phones), 64 %, 12.31 V = 1231, 37 phones, then medical fire food water power other.
        #expect(Self.hex(bytes) == "2D 07 40 04 CF 00 25 02 00 00 05 00 01")
        #expect(try CrisisSummary(compactPayload: bytes) == Self.summary)
        let sparse = CrisisSummary(status: BoxStatus(mode: .crisis))
        #expect(Self.hex(sparse.encode()) == "21 00 00 00 00 00 00 00")
        #expect(try CrisisSummary(compactPayload: sparse.encode()) == sparse)
        let crowded = CrisisSummary(status: BoxStatus(mode: .crisis), openHelpRequests: [.food: 300])
        let decoded = try CrisisSummary(compactPayload: crowded.encode())
        #expect(decoded.openHelpRequests == [.food: 255] && decoded.status.valueClamped)
        #expect(Set(CrisisSummary.categories) == Set(BulletinCategory.allCases))
        #expect(throws: LoRaWANPayloadError.reservedBitsSet(offset: 1)) { try CrisisSummary(compactPayload: [0x21, 0x08] + [UInt8](repeating: 0, count: 6)) }
        #expect(throws: LoRaWANPayloadError.wrongLength(expected: 8, actual: 7)) { try CrisisSummary(compactPayload: [0x21, 0x00] + [UInt8](repeating: 0, count: 5)) }
    }

    // MARK: CayenneLPP

    /// protocols.md §4 vectors 1, 2, 5, 6, 7, 8 (3, 4 and 9 use types Kiezbox does not send).
    @Test("CayenneLPP writer against the reference vectors, rounding to nearest")
    func cayenneVectors() {
        func frame(_ build: (inout CayenneLPPWriter) -> Void) -> String {
            var writer = CayenneLPPWriter()
            build(&writer)
            return Self.hex(writer.bytes)
        }
        #expect(frame { $0.add(channel: 3, .temperature, 27.2); $0.add(channel: 5, .temperature, 25.5) } == "03 67 01 10 05 67 00 FF")
        #expect(frame { $0.add(channel: 1, .temperature, -4.1) } == "01 67 FF D7")
        #expect(frame {
            $0.add(channel: 1, .temperature, 21.5); $0.add(channel: 2, .relativeHumidity, 55.5)
            $0.add(channel: 3, .barometricPressure, 1013.2); $0.add(channel: 4, .analogInput, 12.34)
        } == "01 67 00 D7 02 68 6F 03 73 27 94 04 02 04 D2")
        #expect(frame {
            $0.add(channel: 1, .temperature, -0.1); $0.add(channel: 2, .relativeHumidity, 100); $0.add(channel: 3, .barometricPressure, 0)
        } == "01 67 FF FF 02 68 C8 03 73 00 00")
        #expect(frame { $0.add(channel: 2, .analogInput, -50.51) } == "02 02 EC 45")
        #expect(frame { $0.add(channel: 1, .temperature, 21.55) } == "01 67 00 D8")
        var writer = CayenneLPPWriter()
        writer.add(channel: 4, .analogInput, 500)
        #expect(Self.hex(writer.bytes) == "04 02 7F FF" && writer.clamped)
    }

    @Test("the box report in CayenneLPP: channels 1…9, PM in tens and CO₂ in hundreds on analog inputs")
    func cayenneReport() {
        let bytes = Self.fullReport.encode(.cayenneLPP)
        #expect(bytes.count == 34)
        #expect(Self.hex(bytes) == "01 67 00 D8 02 68 6F 03 73 27 94 04 02 00 7B 05 02 00 C9 06 02 01 9F 07 02 04 EC 08 02 21 FC 09 00 0D")
        let smoke = BoxReport(values: [.pm10: 1200, .co2: 40_000]).encode(.cayenneLPP)
        // 1200 µg/m³ fits (analog 120.00); 40000 ppm does not (at most 32767): clamped, flagged in the status.
        #expect(Self.hex(smoke) == "05 02 2E E0 06 02 7F FF 09 00 10")
        let summary = Self.summary.encode(.cayenneLPP)
        #expect(Self.hex(summary) == "08 02 19 00 07 02 04 CF 0A 02 00 25 0B 00 02 0C 00 00 0D 00 00 0E 00 05 0F 00 00 10 00 01 09 00 0D")
    }

    // MARK: the TTN formatter

    static let nodePath = "/usr/bin/node"
    /// Runs where node is installed, and always on CI, where its absence must fail the test rather than hide it.
    static let nodeRunnable = FileManager.default.isExecutableFile(atPath: nodePath) || ProcessInfo.processInfo.environment["CI"] != nil
    static let decoderPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("ttn/kiezbox-decoder.js").path

    /// Runs `decodeUplink` in node on each (port, bytes) and returns what it returned, as JSON objects.
    static func decodeWithNode(_ uplinks: [(port: UInt8, bytes: [UInt8])]) throws -> [[String: Any]] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-decoder-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = uplinks.map { ["fPort": Int($0.port), "bytes": $0.bytes.map(Int.init)] as [String: Any] }
        try JSONSerialization.data(withJSONObject: input).write(to: directory.appendingPathComponent("input.json"))
        let driver = """
            var fs = require("fs");
            var decoder = require(process.argv[2]);
            var uplinks = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
            fs.writeFileSync(process.argv[4], JSON.stringify(uplinks.map(decoder.decodeUplink)));
            """
        try driver.write(to: directory.appendingPathComponent("driver.js"), atomically: true, encoding: .utf8)
        let output = directory.appendingPathComponent("output.json")
        try runTool(nodePath, ["driver.js", decoderPath, "input.json", output.path], in: directory)
        return try #require(JSONSerialization.jsonObject(with: Data(contentsOf: output)) as? [[String: Any]])
    }

    @Test(
        "the TTN formatter decodes what the Swift encoder sends, and refuses what the Swift decoder refuses",
        .enabled(if: nodeRunnable, "skipped: \(nodePath) is missing: install nodejs (scripts/install-deps.sh tests)")
    )
    func ttnFormatter() throws {
        try #require(
            FileManager.default.isExecutableFile(atPath: Self.nodePath), "\(Self.nodePath) is missing: install nodejs (scripts/install-deps.sh tests)")
        let summaries = [
            Self.summary, CrisisSummary(status: BoxStatus()),
            CrisisSummary(status: BoxStatus(mode: .crisis, mainsPresent: true), batteryVoltage: 655.35, openHelpRequests: [.fire: 255, .power: 9]),
        ]
        var generator = SystemRandomNumberGenerator()
        let garbage = (0..<2000).map { index in (port: UInt8(10 + index % 2), bytes: Self.randomPayload(using: &generator)) }
        let uplinks: [(port: UInt8, bytes: [UInt8])] = Self.reports.map { (port: BoxReport.compactPort, bytes: $0.encode()) }
            + summaries.map { (port: CrisisSummary.compactPort, bytes: $0.encode()) } + garbage + [(port: 12, bytes: [0x20, 0x00])]
        let results = try Self.decodeWithNode(uplinks)
        try #require(results.count == uplinks.count)

        let summaryKeys = ["battery_level": \CrisisSummary.batteryLevel, "battery_voltage": \CrisisSummary.batteryVoltage]
        let reportKeys = ["relative_humidity": Quantity.relativeHumidity, "battery_voltage": .voltage, "battery_level": .batteryLevel]
        var decodedCount = 0
        for (uplink, result) in zip(uplinks, results) {
            let label = "port \(uplink.port): \(Self.hex(uplink.bytes))"
            let errors = result["errors"] as? [String] ?? []
            let data = result["data"] as? [String: Any]
            if uplink.port == BoxReport.compactPort, let report = try? BoxReport(compactPayload: uplink.bytes) {
                try #require(errors.isEmpty && data != nil, "\(label): \(errors)")
                Self.expectStatus(report.status, data!, label)
                #expect(data!["message"] as? String == "report", "\(label)")
                let quantities = Dictionary(uniqueKeysWithValues: data!.compactMap { key, value -> (Quantity, Double)? in
                    guard let quantity = reportKeys[key] ?? Quantity(rawValue: key), BoxReport.carriedQuantities.contains(quantity),
                        let number = value as? Double
                    else { return nil }
                    return (quantity, number)
                })
                #expect(quantities.count == report.values.count, "\(label): \(data!)")
                for (quantity, value) in report.values {
                    #expect(abs((quantities[quantity] ?? .infinity) - value) <= Self.tolerance(quantity), "\(label): \(quantity)")
                }
            } else if uplink.port == CrisisSummary.compactPort, let summary = try? CrisisSummary(compactPayload: uplink.bytes) {
                try #require(errors.isEmpty && data != nil, "\(label): \(errors)")
                Self.expectStatus(summary.status, data!, label)
                #expect(data!["message"] as? String == "crisis_summary", "\(label)")
                for (key, path) in summaryKeys { #expect(data![key] as? Double == summary[keyPath: path], "\(label): \(key)") }
                #expect((data!["phones_connected"] as? Double).map { Int($0) } == summary.phonesConnected, "\(label)")
                let counts = data!["open_help_requests"] as? [String: Double] ?? [:]
                for category in CrisisSummary.categories {
                    #expect(counts[category.rawValue].map { Int($0) } == (summary.openHelpRequests[category] ?? 0), "\(label): \(category)")
                }
            } else {
                #expect(!errors.isEmpty && data == nil, "\(label): node decoded what Swift refuses: \(result)")
                continue
            }
            decodedCount += 1
        }
        // Both decoders agreed on every random payload; some of them were valid ones.
        print("TTN formatter: \(uplinks.count) payloads through node, \(decodedCount) decoded, the rest refused by both")
    }

    static func expectStatus(_ status: BoxStatus, _ data: [String: Any], _ label: String) {
        #expect(data["mode"] as? String == (status.mode == .crisis ? "crisis" : "normal"), "\(label)")
        #expect(data["mains_present"] as? Bool == status.mainsPresent, "\(label)")
        #expect(data["on_battery"] as? Bool == status.onBattery, "\(label)")
        #expect(data["help_requests_open"] as? Bool == status.helpRequestsOpen, "\(label)")
        #expect(data["value_clamped"] as? Bool == status.valueClamped, "\(label)")
    }
}
