import Crypto
import EmergencyPortal
import Foundation
import ReadingStore
import Testing

/// The announcement desk against a real store: what it accepts, and everything it must refuse.
@Suite("Signed announcements")
struct AnnouncementDeskTests {
    let now = AnnouncementWorld.now

    @Test("a signed announcement is accepted, shown as official under the configured name, and announced once")
    func roundTrip() async throws {
        try await withWorld { world in
            let envelope = try world.bezirksamt.sign(AnnouncementWorld.payload()).json()
            // Two consumers (the MQTT relay and the LoRa bridge) each see every arrival.
            let mqttRelay = world.desk.arrivals()
            let loRaBridge = world.desk.arrivals()
            let outcome = try await world.desk.accept(envelope, via: .api, now: self.now)
            guard case .accepted(let accepted) = outcome else {
                Issue.record("expected accepted, got \(outcome)")
                return
            }
            #expect(accepted.announcement.issuer == "Bezirksamt Friedrichshain-Kreuzberg")
            #expect(accepted.announcement.headline == ["de": "Stromausfall", "en": "Power cut"])
            #expect(accepted.announcement.severity == .severe)
            #expect(accepted.envelope == envelope)
            #expect(accepted.source == .api)
            #expect(accepted.topicName == "ba-xhain:stromausfall-1")

            let current = try world.desk.current(at: self.now.addingTimeInterval(60))
            #expect(current == [accepted.announcement])
            #expect(try world.desk.currentAccepted(at: self.now).map(\.envelope) == [envelope])

            // The same bytes again (a mesh copy): known, not an attack, not announced again.
            let again = try await world.desk.accept(envelope, via: .mesh, now: self.now.addingTimeInterval(5))
            #expect(again == .alreadyKnown(accepted.announcement))
            #expect(world.desk.rejectionCounts().values.allSatisfy { $0 == 0 })
            #expect(world.desk.acceptedCount() == 1)

            for stream in [mqttRelay, loRaBridge] {
                var arrived: [AcceptedAnnouncement] = []
                for await first in stream {
                    arrived.append(first)
                    break
                }
                #expect(arrived == [accepted])
            }

            // Gone from "current" once expired.
            #expect(try world.desk.current(at: self.now.addingTimeInterval(6 * 3600)).isEmpty)
        }
    }

    @Test("a newer version replaces the older one; the older one replayed is refused, also after the newer expired")
    func replay() async throws {
        try await withWorld { world in
            let original = try world.bezirksamt.sign(AnnouncementWorld.payload(lifetime: 6 * 3600)).json()
            #expect(try await world.desk.accept(original, via: .api, now: self.now).isAccepted)

            // The authority ends it early: same id, issued later, expiring in a minute.
            let ended = try world.bezirksamt.sign(
                AnnouncementWorld.payload(issuedAt: self.now.addingTimeInterval(600), lifetime: 60,
                    headline: ["de": "Entwarnung", "en": "All clear"])
            ).json()
            #expect(try await world.desk.accept(ended, via: .api, now: self.now.addingTimeInterval(600)).isAccepted)
            #expect(try world.desk.current(at: self.now.addingTimeInterval(601)).map(\.headline) == [["de": "Entwarnung", "en": "All clear"]])

            // An attacker replays the original, which by its own dates is still valid.
            let later = self.now.addingTimeInterval(3600)
            #expect(try world.desk.current(at: later).isEmpty)
            #expect(try await world.desk.accept(original, via: .mesh, now: later).rejection == .replayed)
            #expect(try world.desk.current(at: later).isEmpty)

            // A different version with the same issue time is a replay too (no silent overwrite).
            let sameTime = try world.bezirksamt.sign(
                AnnouncementWorld.payload(issuedAt: self.now.addingTimeInterval(600), lifetime: 7200, headline: ["de": "Gefälscht"])
            ).json()
            #expect(try await world.desk.accept(sameTime, via: .mesh, now: later).rejection == .replayed)

            // Another issuer may use the same id: ids are unique per issuer only.
            let fire = try world.feuerwehr.sign(AnnouncementWorld.payload(issuedAt: self.now)).json()
            #expect(try await world.desk.accept(fire, via: .api, now: later).isAccepted)

            #expect(world.desk.rejectionCounts()[.replayed] == 2)
            #expect(try world.store.rememberedAnnouncements().count == 2)
        }
    }

    @Test("an expired announcement is refused, also long after the box forgot it")
    func expired() async throws {
        try await withWorld { world in
            let envelope = try world.bezirksamt.sign(AnnouncementWorld.payload(lifetime: 3600)).json()
            #expect(try await world.desk.accept(envelope, via: .api, now: self.now.addingTimeInterval(3600)).rejection == .expired)
            #expect(try await world.desk.accept(envelope, via: .mesh, now: self.now.addingTimeInterval(40 * 86_400)).rejection == .expired)
            #expect(world.desk.rejectionCounts()[.expired] == 2)
            #expect(try world.store.rememberedAnnouncements().isEmpty)
        }
    }

    @Test("issued in the future: refused beyond the clock skew, accepted within it")
    func notYetValid() async throws {
        try await withWorld { world in
            let future = try world.bezirksamt.sign(AnnouncementWorld.payload(issuedAt: self.now.addingTimeInterval(3600))).json()
            #expect(try await world.desk.accept(future, via: .api, now: self.now).rejection == .notYetValid)
            let skewed = try world.bezirksamt.sign(
                AnnouncementWorld.payload(id: "skewed", issuedAt: self.now.addingTimeInterval(120))).json()
            #expect(try await world.desk.accept(skewed, via: .api, now: self.now).isAccepted)
            #expect(world.desk.rejectionCounts()[.notYetValid] == 1)
        }
    }

    @Test("forged: the payload changed after signing, or a signature bit flipped")
    func forged() async throws {
        try await withWorld { world in
            let genuine = try world.bezirksamt.sign(AnnouncementWorld.payload())
            let altered = Data(
                String(decoding: genuine.payload, as: UTF8.self).replacingOccurrences(of: "Stromausfall", with: "Evakuierung").utf8)
            #expect(altered != genuine.payload)
            let changed = AnnouncementEnvelope(keyID: genuine.keyID, payload: altered, signature: genuine.signature).json()
            #expect(try await world.desk.accept(changed, via: .mesh, now: self.now).rejection == .forged)

            for bit in [0, 255, 511] {
                var signature = genuine.signature
                signature[bit / 8] ^= UInt8(1 << (bit % 8))
                let flipped = AnnouncementEnvelope(keyID: genuine.keyID, payload: genuine.payload, signature: signature).json()
                let outcome = try await world.desk.accept(flipped, via: .mesh, now: self.now)
                #expect(outcome.rejection == .forged)
            }
            #expect(world.desk.rejectionCounts()[.forged] == 4)
            #expect(try world.store.rememberedAnnouncements().isEmpty)
        }
    }

    @Test("wrong key: an unconfigured key, a stranger's key under a trusted id, another authority's key under the id")
    func wrongKey() async throws {
        try await withWorld { world in
            let payload = AnnouncementWorld.payload()
            let strangers = try world.stranger.sign(payload).json()
            #expect(try await world.desk.accept(strangers, via: .mesh, now: self.now).rejection == .unknownKey)

            let impostor = AnnouncementSigner(keyID: "ba-xhain", privateKey: world.stranger.privateKey)
            #expect(try await world.desk.accept(try impostor.sign(payload).json(), via: .mesh, now: self.now).rejection == .forged)

            let confused = AnnouncementSigner(keyID: "ba-xhain", privateKey: world.feuerwehr.privateKey)
            #expect(try await world.desk.accept(try confused.sign(payload).json(), via: .api, now: self.now).rejection == .forged)

            let counts = world.desk.rejectionCounts()
            #expect(counts[.unknownKey] == 1)
            #expect(counts[.forged] == 2)
            #expect(try world.store.rememberedAnnouncements().isEmpty)
        }
    }

    @Test("unsigned: no signature field, or an empty one")
    func unsigned() async throws {
        try await withWorld { world in
            let payload = AnnouncementWorld.payload().json()
            for signature in [nil, ""] as [String?] {
                let envelope = envelopeJSON(keyID: "ba-xhain", payload: payload, signature: signature)
                let outcome = try await world.desk.accept(envelope, via: .api, now: self.now)
                #expect(outcome.rejection == .unsigned)
            }
            #expect(world.desk.rejectionCounts()[.unsigned] == 2)
        }
    }

    @Test("addressed to another district: refused; to this one or to all: accepted")
    func district() async throws {
        try await withWorld { world in
            let wedding = try world.bezirksamt.sign(AnnouncementWorld.payload(id: "a", district: "wedding")).json()
            #expect(try await world.desk.accept(wedding, via: .mesh, now: self.now).rejection == .wrongDistrict)
            let xhain = try world.bezirksamt.sign(AnnouncementWorld.payload(id: "b", district: "xhain")).json()
            #expect(try await world.desk.accept(xhain, via: .mesh, now: self.now).isAccepted)
            let all = try world.bezirksamt.sign(AnnouncementWorld.payload(id: "c", district: "*")).json()
            #expect(try await world.desk.accept(all, via: .mesh, now: self.now).isAccepted)
            #expect(world.desk.rejectionCounts()[.wrongDistrict] == 1)
            #expect(try world.desk.current(at: self.now).map(\.id).sorted() == ["b", "c"])
        }
    }

    @Test("malformed and oversized envelopes and payloads are refused, even validly signed ones")
    func malformed() async throws {
        try await withWorld { world in
            let signer = world.bezirksamt
            func payloadJSON(_ change: (inout [String: Any]) -> Void) -> Data {
                var object: [String: Any] = [
                    "v": 1, "id": "x", "district": "*", "issued_at": "2026-09-21T14:13:20Z", "expires_at": "2026-09-21T20:13:20Z",
                    "severity": "severe", "headline": ["de": "Stromausfall"], "body": ["de": "Text"],
                ]
                change(&object)
                return try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            }
            // The baseline is valid, so each case below fails for its own reason.
            #expect(try await world.desk.accept(try signer.sign(bytes: payloadJSON { _ in }).json(), via: .api, now: self.now).isAccepted)

            let signedButBroken: [Data] = [
                Data("not json".utf8),
                payloadJSON { $0["v"] = 2 },
                Data(String(decoding: payloadJSON { _ in }, as: UTF8.self).replacingOccurrences(of: #""id":"x""#, with: #""id":"a b""#).utf8),
                payloadJSON { $0["id"] = nil },
                payloadJSON { $0["severity"] = "apocalyptic" },
                payloadJSON { $0["issued_at"] = "yesterday" },
                payloadJSON { $0["expires_at"] = "2026-09-21T14:13:20Z" },  // not after issued_at
                payloadJSON { $0["expires_at"] = "2026-10-21T14:13:20Z" },  // longer than 14 days
                payloadJSON { $0["headline"] = [String: String]() },
                payloadJSON { $0["headline"] = ["German": "Stromausfall"] },
                payloadJSON { $0["headline"] = ["de": String(repeating: "A", count: 201)] },
                payloadJSON { $0["district"] = "" },
            ]
            for payload in signedButBroken {
                let outcome = try await world.desk.accept(try signer.sign(bytes: payload).json(), via: .api, now: self.now)
                #expect(outcome.rejection == .malformed, "\(String(decoding: payload, as: UTF8.self)) → \(outcome)")
            }
            let brokenEnvelopes: [Data] = [
                Data(),
                Data("{".utf8),
                Data(#"{"key_id":"ba-xhain","signature":"AAAA"}"#.utf8),
                Data(#"{"key_id":"ba-xhain","payload":"%%%","signature":"AAAA"}"#.utf8),
                Data(#"{"key_id":"../etc","payload":"e30=","signature":"AAAA"}"#.utf8),
            ]
            for envelope in brokenEnvelopes {
                let outcome = try await world.desk.accept(envelope, via: .mesh, now: self.now)
                #expect(outcome.rejection == .malformed)
            }
            let huge = try signer.sign(bytes: payloadJSON { $0["body"] = ["de": String(repeating: "B", count: 20_000)] }).json()
            #expect(try await world.desk.accept(huge, via: .mesh, now: self.now).rejection == .tooLarge)

            let counts = world.desk.rejectionCounts()
            #expect(counts[.malformed] == signedButBroken.count + brokenEnvelopes.count)
            #expect(counts[.tooLarge] == 1)
            #expect(try world.store.rememberedAnnouncements().map(\.id) == ["x"])
        }
    }

    @Test("every reason is counted separately, and the counts list every reason")
    func countsListEveryReason() async throws {
        try await withWorld { world in
            #expect(Set(world.desk.rejectionCounts().keys) == Set(AnnouncementRejection.allCases))
        }
    }

    @Test("configuration keys: a bad public key string or key id is refused with a clear error")
    func keyParsing() throws {
        let good = Curve25519.Signing.PrivateKey().publicKey
        let key = try AnnouncementKey(keyID: "ba-xhain", issuer: " Bezirksamt ", publicKeyBase64: good.rawRepresentation.base64EncodedString())
        #expect(key.issuer == "Bezirksamt")
        #expect(key.publicKeyRaw == good.rawRepresentation)
        #expect(AnnouncementKey.fingerprint(of: good).count == 16)

        #expect(throws: AnnouncementKeyError.notBase64) { try AnnouncementKey.parsePublicKey("not base64!") }
        #expect(throws: AnnouncementKeyError.wrongLength(16)) { try AnnouncementKey.parsePublicKey(Data(count: 16).base64EncodedString()) }
        #expect(throws: AnnouncementKeyError.invalidKeyID("a b")) {
            try AnnouncementKey(keyID: "a b", issuer: "X", publicKeyBase64: good.rawRepresentation.base64EncodedString())
        }
        #expect(throws: AnnouncementKeyError.invalidIssuer) {
            try AnnouncementKey(keyID: "ok", issuer: "  ", publicKeyBase64: good.rawRepresentation.base64EncodedString())
        }
        #expect(AnnouncementKeyError.wrongLength(16).description.contains("32"))
    }
}
