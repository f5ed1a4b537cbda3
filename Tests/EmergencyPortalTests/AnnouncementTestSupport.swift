import Crypto
import EmergencyPortal
import Foundation
import Logging
import ReadingStore

/// Two configured authorities, one stranger, a store in a temporary directory and a desk for district "xhain".
struct AnnouncementWorld {
    static let now = Date(timeIntervalSince1970: 1_790_000_000)  // 2026-09-21T…Z

    let directory: String
    let store: ReadingStore
    let desk: AnnouncementDesk
    let bezirksamt: AnnouncementSigner
    let feuerwehr: AnnouncementSigner
    let stranger: AnnouncementSigner

    init() throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-announce-\(UUID().uuidString)").path
        self.store = try ReadingStore(directory: self.directory)
        self.bezirksamt = AnnouncementSigner(keyID: "ba-xhain", privateKey: Curve25519.Signing.PrivateKey())
        self.feuerwehr = AnnouncementSigner(keyID: "feuerwehr", privateKey: Curve25519.Signing.PrivateKey())
        self.stranger = AnnouncementSigner(keyID: "stranger", privateKey: Curve25519.Signing.PrivateKey())
        let keys = try [
            AnnouncementKey(
                keyID: "ba-xhain", issuer: "Bezirksamt Friedrichshain-Kreuzberg",
                publicKeyBase64: self.bezirksamt.privateKey.publicKey.rawRepresentation.base64EncodedString()),
            AnnouncementKey(
                keyID: "feuerwehr", issuer: "Berliner Feuerwehr",
                publicKeyBase64: self.feuerwehr.privateKey.publicKey.rawRepresentation.base64EncodedString()),
        ]
        self.desk = AnnouncementDesk(keys: keys, district: "xhain", store: self.store, logger: Logger(label: "test"))
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: self.directory)
    }

    static func payload(
        id: String = "stromausfall-1", district: String = "*", issuedAt: Date = now, lifetime: TimeInterval = 6 * 3600,
        severity: AnnouncementSeverity = .severe, headline: [String: String] = ["de": "Stromausfall", "en": "Power cut"],
        body: [String: String] = ["de": "Trinkwasser am Leuchtturm Wrangelstraße.", "en": "Drinking water at the Wrangelstraße lighthouse."]
    ) -> AnnouncementPayload {
        AnnouncementPayload(
            id: id, district: district, issuedAt: issuedAt, expiresAt: issuedAt.addingTimeInterval(lifetime), severity: severity,
            headline: headline, body: body)
    }
}

/// Runs `body` with a fresh world and removes its directory afterwards.
func withWorld(_ body: (AnnouncementWorld) async throws -> Void) async throws {
    let world = try AnnouncementWorld()
    defer { world.remove() }
    try await body(world)
}

extension AnnouncementOutcome {
    var rejection: AnnouncementRejection? {
        if case .rejected(let reason, _) = self { return reason }
        return nil
    }

    var isAccepted: Bool {
        if case .accepted = self { return true }
        return false
    }
}

/// Envelope JSON with arbitrary fields, to build what a signer never would.
func envelopeJSON(keyID: String, payload: Data, signature: String?) -> Data {
    var object: [String: String] = ["key_id": keyID, "payload": payload.base64EncodedString()]
    if let signature { object["signature"] = signature }
    return try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
}
