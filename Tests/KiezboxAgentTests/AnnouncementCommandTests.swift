import EmergencyPortal
import Foundation
import Logging
import ReadingStore
import Testing

/// `kiezbox keys generate` and `kiezbox announce sign`, run as the built binary, as an authority would.
@Suite("kiezbox keys / announce")
struct AnnouncementCommandTests {
    @Test("a generated key signs an announcement that a box configured with the printed table accepts")
    func generateSignAccept() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-keys-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        let generated = try runKiezbox(["keys", "generate", "--out", "bezirksamt.key", "--name", "Bezirksamt Friedrichshain-Kreuzberg"], in: directory)
        #expect(generated.status == 0, "\(generated.stderr)")
        let keyPath = directory + "/bezirksamt.key"
        let permissions = try FileManager.default.attributesOfItem(atPath: keyPath)[.posixPermissions] as? Int
        #expect(permissions == 0o600)
        let table = Self.fields(generated.stdout)
        #expect(table["name"] == "Bezirksamt Friedrichshain-Kreuzberg")
        let keyID = try #require(table["key_id"])
        let publicKey = try #require(table["public_key"])
        #expect(keyID.count == 16)

        // Never overwritten.
        let original = try Data(contentsOf: URL(fileURLWithPath: keyPath))
        let again = try runKiezbox(["keys", "generate", "--out", "bezirksamt.key"], in: directory)
        #expect(again.status != 0)
        #expect(again.stderr.contains("already exists"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: keyPath)) == original)

        // `keys public` prints the same table again.
        let reprinted = try runKiezbox(["keys", "public", "--key", "bezirksamt.key"], in: directory)
        #expect(Self.fields(reprinted.stdout)["public_key"] == publicKey)

        let signed = try runKiezbox(
            [
                "announce", "sign", "--key", "bezirksamt.key", "--id", "stromausfall-1", "--severity", "severe",
                "--headline", "de=Stromausfall im Kiez", "--headline", "en=Power cut", "--body", "de=Trinkwasser am Leuchtturm.",
                "--expires", "6h", "--district", "xhain",
            ], in: directory)
        #expect(signed.status == 0, "\(signed.stderr)")
        #expect(signed.stderr.contains("signed \"stromausfall-1\" (severe)"))

        let store = try ReadingStore(directory: directory + "/data")
        let desk = AnnouncementDesk(
            keys: [try AnnouncementKey(keyID: keyID, issuer: "Bezirksamt Friedrichshain-Kreuzberg", publicKeyBase64: publicKey)],
            district: "xhain", store: store, logger: Logger(label: "test"))
        let outcome = try await desk.accept(Data(signed.stdout.utf8), via: .api, now: Date())
        guard case .accepted(let accepted) = outcome else {
            Issue.record("expected the signed announcement to be accepted, got \(outcome)")
            return
        }
        #expect(accepted.announcement.headline == ["de": "Stromausfall im Kiez", "en": "Power cut"])
        #expect(accepted.announcement.expiresAt.timeIntervalSince(accepted.announcement.issuedAt) == 6 * 3600)
    }

    @Test("mistakes are explained: unknown severity, text without a language, a lifetime over 14 days")
    func mistakes() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-keys-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(try runKiezbox(["keys", "generate", "--out", "k.key"], in: directory).status == 0)
        let base = ["announce", "sign", "--key", "k.key", "--id", "a", "--headline", "de=Test"]
        let cases: [([String], String)] = [
            (["--severity", "apocalyptic", "--expires", "1h"], "--severity"),
            (["--severity", "minor", "--expires", "1h", "--body", "Text"], "language=text"),
            (["--severity", "minor", "--expires", "15d"], "14 days"),
            (["--severity", "minor", "--expires", "soon"], "--expires"),
        ]
        for (arguments, hint) in cases {
            let result = try runKiezbox(base + arguments, in: directory)
            #expect(result.status != 0)
            #expect(result.stderr.contains(hint), "\(arguments): \(result.stderr)")
            #expect(result.stdout.isEmpty)
        }
    }

    /// `key = "value"` lines of the printed [[authority]] table.
    static func fields(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, parts[1].hasPrefix("\""), parts[1].hasSuffix("\"") else { continue }
            fields[parts[0]] = String(parts[1].dropFirst().dropLast())
        }
        return fields
    }
}
