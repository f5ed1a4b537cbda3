import EmergencyPortal
import Foundation
import Logging
import ReadingStore
import Testing

/// `kiezbox announce downlink`, run as the built binary: the TTN downlink body it prints verifies on a box.
@Suite("kiezbox announce downlink")
struct CrisisDownlinkCommandTests {
    struct Body: Decodable {
        struct Frame: Decodable {
            var f_port: UInt8
            var frm_payload: String
            var priority: String
        }
        var downlinks: [Frame]
    }

    @Test("the printed TTN body (two fragments, or one frame with --single) declares and ends a crisis on a box")
    func declareAndEnd() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-downlink-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let generated = try runKiezbox(["keys", "generate", "--out", "ba.key", "--name", "Bezirksamt"], in: directory)
        #expect(generated.status == 0, "\(generated.stderr)")
        let publicKey = try #require(
            generated.stdout.split(separator: "\n").first { $0.hasPrefix("public_key") }?.split(separator: "\"").dropFirst().first)

        let store = try ReadingStore(directory: directory + "/data")
        let key = try AnnouncementKey(keyID: "ba", issuer: "Bezirksamt", publicKeyBase64: String(publicKey))
        let receiver = CrisisDownlinkReceiver(keys: [key], district: "xhain", store: store, logger: Logger(label: "test"))

        let declare = try runKiezbox(["announce", "downlink", "declare", "--key", "ba.key", "--district", "xhain", "--valid-for", "2h"], in: directory)
        #expect(declare.status == 0, "\(declare.stderr)")
        let declared = try JSONDecoder().decode(Body.self, from: Data(declare.stdout.utf8))
        #expect(declared.downlinks.map(\.f_port) == [21, 21])
        #expect(declared.downlinks.allSatisfy { $0.priority == "NORMAL" })
        let fragments = try declared.downlinks.map { try #require(Data(base64Encoded: $0.frm_payload)) }
        #expect(fragments.allSatisfy { $0.count <= 51 })
        // The hex on standard error is the same bytes.
        #expect(declare.stderr.contains(fragments[0].map { String(format: "%02X", $0) }.joined()))
        #expect(await receiver.receive(port: 21, payload: Array(fragments[1]), at: Date()).isAwaitingFragments)
        let outcome = await receiver.receive(port: 21, payload: Array(fragments[0]), at: Date())
        #expect(outcome.accepted?.action == .declareCrisis, "\(outcome)")
        #expect(try receiver.declaredCrisis(at: Date())?.issuer == "Bezirksamt")

        let end = try runKiezbox(
            ["announce", "downlink", "end", "--key", "ba.key", "--district", "xhain", "--valid-for", "30m", "--sequence", "1", "--single"],
            in: directory)
        #expect(end.status == 0, "\(end.stderr)")
        let ended = try JSONDecoder().decode(Body.self, from: Data(end.stdout.utf8))
        #expect(ended.downlinks.map(\.f_port) == [20])
        let frame = try #require(Data(base64Encoded: ended.downlinks[0].frm_payload))
        #expect(frame.count == 81)
        #expect(await receiver.receive(port: 20, payload: Array(frame), at: Date()).accepted?.action == .endCrisis)
        #expect(try receiver.declaredCrisis(at: Date()) == nil)
    }

    @Test("mistakes are explained and print no downlink")
    func mistakes() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-downlink-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(try runKiezbox(["keys", "generate", "--out", "k.key"], in: directory).status == 0)
        let cases: [([String], String)] = [
            (["declare", "--key", "k.key", "--valid-for", "15d"], "14 days"),
            (["declare", "--key", "k.key", "--valid-for", "soon"], "--valid-for"),
            (["suspend", "--key", "k.key", "--valid-for", "1h"], "declare"),
            (["declare", "--key", "missing.key", "--valid-for", "1h"], "missing.key"),
        ]
        for (arguments, hint) in cases {
            let result = try runKiezbox(["announce", "downlink"] + arguments, in: directory)
            #expect(result.status != 0)
            #expect(result.stderr.contains(hint), "\(arguments): \(result.stderr)")
            #expect(result.stdout.isEmpty)
        }
    }
}
