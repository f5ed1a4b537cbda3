import Crypto
import EmergencyPortal
import Foundation
import KiezboxCore
import Logging
import MeshRelay
import ReadingStore
import Testing

/// A signed announcement cut into Meshtastic fragments (MeshRelay) and put back together is verified by the
/// announcement desk (EmergencyPortal) with the same key rules as one from the API or MQTT; a forged one is refused.
@Suite("Signed announcements over Meshtastic fragments, verified by the desk")
struct MeshAnnouncementDeskTests {
    static let now = Date(timeIntervalSince1970: 1_790_000_000)

    static func payload(id: String) -> AnnouncementPayload {
        AnnouncementPayload(
            id: id, district: "xhain", issuedAt: now, expiresAt: now.addingTimeInterval(6 * 3600), severity: .severe,
            headline: ["de": "Stromausfall im Wrangelkiez", "en": "Power cut in Wrangelkiez", "tr": "Elektrik kesintisi"],
            body: ["de": String(repeating: "Trinkwasser an der Emmaus-Kirche. ", count: 12), "en": "Water at Emmaus church.", "tr": "Su."])
    }

    /// Fragments `envelope`, delivers the fragments shuffled with copies, and returns the reassembled envelope JSON.
    static func overTheMesh(_ envelope: CompactAnnouncement) throws -> Data? {
        var generator = SystemRandomNumberGenerator()
        var payloads = try AnnouncementFragmenter.payloads(for: envelope)
        payloads += payloads
        payloads.shuffle(using: &generator)
        var reassembler = AnnouncementReassembler<ContinuousClock.Instant>()
        var assembled: Data?
        for payload in payloads {
            guard case .announcementFragment(let fragment) = try KiezboxMeshCodec.decode(payload: payload) else { continue }
            if case .assembled(let result) = try reassembler.receive(fragment, at: .now) { assembled = result.envelopeJSON() }
        }
        return assembled
    }

    @Test("the desk accepts a reassembled announcement and refuses a forged one; the JSON is the envelope's own")
    func verifiedOnReceipt() async throws {
        try await withWorkspace { directory in
            let store = try ReadingStore(directory: directory)
            let privateKey = Curve25519.Signing.PrivateKey()
            let signer = AnnouncementSigner(keyID: "bezirk-2026", privateKey: privateKey)
            let desk = AnnouncementDesk(
                keys: [AnnouncementKey(keyID: "bezirk-2026", issuer: "Bezirksamt", publicKey: privateKey.publicKey)], district: "xhain",
                store: store, logger: Logger(label: "test"))
            #expect(AnnouncementFragmenter.maximumEnvelopeBytes == AnnouncementEnvelope.maximumBytes)

            let envelope = try signer.sign(Self.payload(id: "stromausfall-1"))
            let compact = try CompactAnnouncement(envelopeJSON: envelope.json())
            #expect(try AnnouncementFragmenter.payloads(for: compact).count > 1)
            let received = try #require(try Self.overTheMesh(compact))
            #expect(received == envelope.json(), "byte for byte what AnnouncementEnvelope.json() makes")
            guard case .accepted = try await desk.accept(received, via: .lora, now: Self.now) else {
                Issue.record("the reassembled announcement was not accepted")
                return
            }

            // Forged: the payload changed after signing (a new id), the old signature kept.
            var forged = try CompactAnnouncement(envelopeJSON: try signer.sign(Self.payload(id: "stromausfall-2")).json())
            forged.payload = Self.payload(id: "stromausfall-3").json()
            let forgedJSON = try #require(try Self.overTheMesh(forged))
            let outcome = try await desk.accept(forgedJSON, via: .lora, now: Self.now)
            guard case .rejected(.forged, _) = outcome else {
                Issue.record("a forged announcement was not refused as forged: \(outcome)")
                return
            }
            // Signed by a key the box does not know.
            let stranger = AnnouncementSigner(keyID: "someone-else", privateKey: Curve25519.Signing.PrivateKey())
            let unknown = try #require(
                try Self.overTheMesh(try CompactAnnouncement(envelopeJSON: try stranger.sign(Self.payload(id: "stromausfall-4")).json())))
            guard case .rejected(.unknownKey, _) = try await desk.accept(unknown, via: .lora, now: Self.now) else {
                Issue.record("an announcement under an unknown key was not refused")
                return
            }
        }
    }
}
