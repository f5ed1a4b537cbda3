import Crypto
import EmergencyPortal
import Foundation
import Logging
import Prometheus
import ReadingStore
import Testing

/// Signed crisis commands by LoRaWAN downlink: the compact format, fragments, and the receiver's checks, on a real
/// store in a temporary directory.
@Suite("Crisis downlinks")
struct CrisisDownlinkTests {
    static let now = AnnouncementWorld.now

    static func receiver(_ world: AnnouncementWorld) -> CrisisDownlinkReceiver {
        CrisisDownlinkReceiver(trusting: world.desk, logger: Logger(label: "test"))
    }

    static func command(
        _ action: CrisisAction = .declareCrisis, by signer: AnnouncementSigner, district: String = "xhain", issuedAt: Date = now,
        validFor: TimeInterval = 6 * 3600, sequence: UInt8 = 0
    ) throws -> SignedCrisisCommand {
        try signer.sign(
            CrisisCommand(
                action: action, district: district, issuedAt: issuedAt, validFor: validFor, sequence: sequence,
                keyTag: signer.crisisCommandKeyTag))
    }

    @Test("a whole command (FPort 20) declares a crisis under the configured name; a later end command ends it")
    func declareAndEnd() async throws {
        try await withWorld { world in
            let receiver = Self.receiver(world)
            let declare = try Self.command(by: world.bezirksamt)
            #expect(declare.bytes.count == 81)
            let outcome = await receiver.receive(port: 20, payload: declare.bytes, at: Self.now)
            guard case .accepted(let accepted) = outcome else {
                Issue.record("expected the declaration to be accepted, got \(outcome)")
                return
            }
            #expect(accepted.action == .declareCrisis)
            #expect(accepted.issuer == "Bezirksamt Friedrichshain-Kreuzberg")
            #expect(accepted.validUntil == Self.now.addingTimeInterval(6 * 3600))
            #expect(try receiver.declaredCrisis(at: Self.now.addingTimeInterval(60))?.issuer == "Bezirksamt Friedrichshain-Kreuzberg")
            // The declaration ends by itself when its validity does.
            #expect(try receiver.declaredCrisis(at: Self.now.addingTimeInterval(6 * 3600)) == nil)

            let end = try Self.command(.endCrisis, by: world.bezirksamt, issuedAt: Self.now.addingTimeInterval(600), validFor: 3600)
            let ended = await receiver.receive(port: 20, payload: end.bytes, at: Self.now.addingTimeInterval(660))
            #expect(ended.accepted?.action == .endCrisis)
            #expect(try receiver.declaredCrisis(at: Self.now.addingTimeInterval(700)) == nil)
            #expect(receiver.counts().declared == 1)
            #expect(receiver.counts().ended == 1)
            #expect(receiver.counts().refused.values.allSatisfy { $0 == 0 })

            // Another port is not a command: not refused, not counted.
            #expect(await receiver.receive(port: 1, payload: declare.bytes, at: Self.now) == .otherPort)
        }
    }

    @Test("fragments of at most 51 bytes (FPort 21) join in either order; the first alone does nothing")
    func fragmentsInEitherOrder() async throws {
        try await withWorld { world in
            let receiver = Self.receiver(world)
            for (round, order) in [[0, 1], [1, 0]].enumerated() {
                let signed = try Self.command(by: world.feuerwehr, issuedAt: Self.now.addingTimeInterval(TimeInterval(round)))
                let fragments = signed.fragments()
                #expect(fragments.count == 2)
                #expect(fragments.allSatisfy { $0.count <= 51 })
                #expect(fragments.map(\.count) == [42, 43])
                let first = await receiver.receive(port: 21, payload: fragments[order[0]], at: Self.now.addingTimeInterval(10))
                #expect(first == .awaitingFragments(tag: fragments[0][0], received: 1, of: 2))
                #expect(try receiver.declaredCrisis(at: Self.now.addingTimeInterval(10))?.issuedAt != signed.command.issuedAt)
                let second = await receiver.receive(port: 21, payload: fragments[order[1]], at: Self.now.addingTimeInterval(20))
                #expect(second.accepted?.action == .declareCrisis, "order \(order): \(second)")
                #expect(try receiver.declaredCrisis(at: Self.now.addingTimeInterval(20))?.issuer == "Berliner Feuerwehr")
            }
            #expect(receiver.counts().fragments == 4)
            #expect(receiver.counts().declared == 2)
        }
    }

    @Test("a lone fragment never acts; after 12 hours it is dropped and counted, and its late partner waits alone")
    func loneFragment() async throws {
        try await withWorld { world in
            let receiver = Self.receiver(world)
            let fragments = try Self.command(by: world.bezirksamt, validFor: 14 * 86_400).fragments()
            #expect(await receiver.receive(port: 21, payload: fragments[0], at: Self.now).isAwaitingFragments)
            #expect(await receiver.receive(port: 21, payload: fragments[0], at: Self.now.addingTimeInterval(60)).isAwaitingFragments)
            #expect(try receiver.declaredCrisis(at: Self.now.addingTimeInterval(60)) == nil)
            let late = Self.now.addingTimeInterval(CrisisDownlinkReceiver.fragmentLifetime + 1)
            #expect(await receiver.receive(port: 21, payload: fragments[1], at: late).isAwaitingFragments)
            #expect(try receiver.declaredCrisis(at: late) == nil)
            #expect(receiver.counts().refused[.incompleteFragment] == 1)
            #expect(receiver.counts().declared == 0)
        }
    }

    @Test("halves of two different commands are not taken for one")
    func mixedHalves() async throws {
        try await withWorld { world in
            let receiver = Self.receiver(world)
            let first = try Self.command(by: world.bezirksamt).fragments()
            var second = try Self.command(by: world.bezirksamt, sequence: 1).fragments()
            second[1][0] = first[0][0]
            #expect(await receiver.receive(port: 21, payload: first[0], at: Self.now).isAwaitingFragments)
            #expect(await receiver.receive(port: 21, payload: second[1], at: Self.now).refusal == .malformed)
            #expect(try receiver.declaredCrisis(at: Self.now) == nil)
        }
    }

    @Test("wrong key: a stranger's key, or a stranger signing under a trusted key's tag")
    func wrongKey() async throws {
        try await withWorld { world in
            let receiver = Self.receiver(world)
            let stranger = try Self.command(by: world.stranger)
            #expect(await receiver.receive(port: 20, payload: stranger.bytes, at: Self.now).refusal == .unknownKey)
            let impostor = try world.stranger.sign(
                CrisisCommand(
                    action: .declareCrisis, district: "xhain", issuedAt: Self.now, validFor: 3600,
                    keyTag: world.bezirksamt.crisisCommandKeyTag))
            #expect(await receiver.receive(port: 20, payload: impostor.bytes, at: Self.now).refusal == .badSignature)
            // Unsigned: the signature's place is zeros.
            let unsigned = Array(try Self.command(by: world.bezirksamt).bytes.prefix(17)) + [UInt8](repeating: 0, count: 64)
            #expect(await receiver.receive(port: 20, payload: unsigned, at: Self.now).refusal == .badSignature)
            #expect(receiver.counts().refused[.unknownKey] == 1)
            #expect(receiver.counts().refused[.badSignature] == 2)
            #expect(try receiver.declaredCrisis(at: Self.now) == nil)

            let metrics = PortalMetrics()
            metrics.setCrisisDownlinkCounts(receiver.counts())
            let scrape = String(decoding: metrics.registry.emitToBuffer(), as: UTF8.self)
            #expect(scrape.contains(#"kiezbox_crisis_downlinks_refused_total{reason="bad_signature"} 2"#), "\(scrape)")
            #expect(scrape.contains(#"kiezbox_crisis_downlinks_refused_total{reason="replayed"} 0"#))
            #expect(scrape.contains(#"kiezbox_crisis_downlinks_accepted_total{action="declare"} 0"#))
        }
    }

    @Test("every single bit flipped anywhere in a signed command is refused")
    func flippedBits() async throws {
        try await withWorld { world in
            let receiver = Self.receiver(world)
            let bytes = try Self.command(by: world.bezirksamt).bytes
            var reasons: [CrisisDownlinkRefusal: Int] = [:]
            for bit in 0..<(bytes.count * 8) {
                var flipped = bytes
                flipped[bit / 8] ^= 1 << (bit % 8)
                let outcome = await receiver.receive(port: 20, payload: flipped, at: Self.now)
                guard let reason = outcome.refusal else {
                    Issue.record("bit \(bit) flipped: \(outcome)")
                    continue
                }
                reasons[reason, default: 0] += 1
            }
            // Version byte: malformed; key tag: unknown key; every other header bit and every signature bit: bad signature.
            #expect(reasons == [.malformed: 8, .unknownKey: 32, .badSignature: 81 * 8 - 40])
            #expect(await receiver.receive(port: 20, payload: bytes, at: Self.now).accepted?.action == .declareCrisis)
        }
    }

    @Test("replayed: the same command again, an older one, one of the same second and sequence; a higher sequence is newer")
    func replays() async throws {
        try await withWorld { world in
            let receiver = Self.receiver(world)
            let original = try Self.command(by: world.bezirksamt)
            #expect(await receiver.receive(port: 20, payload: original.bytes, at: Self.now).accepted?.action == .declareCrisis)
            #expect(await receiver.receive(port: 20, payload: original.bytes, at: Self.now.addingTimeInterval(1)).refusal == .replayed)
            let older = try Self.command(.endCrisis, by: world.bezirksamt, issuedAt: Self.now.addingTimeInterval(-60))
            #expect(await receiver.receive(port: 20, payload: older.bytes, at: Self.now).refusal == .replayed)
            let sameSecond = try Self.command(.endCrisis, by: world.bezirksamt)
            #expect(await receiver.receive(port: 20, payload: sameSecond.bytes, at: Self.now).refusal == .replayed)
            // The declaration replayed as fragments is a replay too.
            for fragment in original.fragments() {
                _ = await receiver.receive(port: 21, payload: fragment, at: Self.now)
            }
            #expect(receiver.counts().refused[.replayed] == 4)
            #expect(try receiver.declaredCrisis(at: Self.now)?.issuer == "Bezirksamt Friedrichshain-Kreuzberg")

            let nextSequence = try Self.command(.endCrisis, by: world.bezirksamt, sequence: 1)
            #expect(await receiver.receive(port: 20, payload: nextSequence.bytes, at: Self.now).accepted?.action == .endCrisis)
            #expect(try receiver.declaredCrisis(at: Self.now) == nil)
            // Replay state is per key: another authority's older command is not a replay of this one's.
            let feuerwehr = try Self.command(by: world.feuerwehr, issuedAt: Self.now.addingTimeInterval(-120))
            #expect(await receiver.receive(port: 20, payload: feuerwehr.bytes, at: Self.now).accepted?.action == .declareCrisis)
        }
    }

    @Test("the last accepted command survives reopening the store: replays stay refused, the declaration holds")
    func survivesRestart() async throws {
        try await withWorld { world in
            let directory = world.directory + "/restart"
            let publicKey = world.bezirksamt.privateKey.publicKey.rawRepresentation.base64EncodedString()
            let signed = try Self.command(by: world.bezirksamt)
            do {
                let store = try ReadingStore(directory: directory)
                let key = try AnnouncementKey(keyID: "ba-xhain", issuer: "Bezirksamt Friedrichshain-Kreuzberg", publicKeyBase64: publicKey)
                let receiver = CrisisDownlinkReceiver(keys: [key], district: "xhain", store: store, logger: Logger(label: "test"))
                #expect(await receiver.receive(port: 20, payload: signed.bytes, at: Self.now).accepted?.action == .declareCrisis)
            }
            // A new store on the same files, the key renamed in the configuration: kept by the key, not its name.
            let reopened = try ReadingStore(directory: directory)
            let renamed = try AnnouncementKey(keyID: "renamed", issuer: "Bezirksamt Friedrichshain-Kreuzberg", publicKeyBase64: publicKey)
            let receiver = CrisisDownlinkReceiver(keys: [renamed], district: "xhain", store: reopened, logger: Logger(label: "test"))
            #expect(try receiver.declaredCrisis(at: Self.now.addingTimeInterval(60))?.keyID == "renamed")
            #expect(await receiver.receive(port: 20, payload: signed.bytes, at: Self.now.addingTimeInterval(60)).refusal == .replayed)

            // A key no longer configured declares nothing.
            let withoutKey = CrisisDownlinkReceiver(keys: [], district: "xhain", store: reopened, logger: Logger(label: "test"))
            #expect(try withoutKey.declaredCrisis(at: Self.now.addingTimeInterval(60)) == nil)
        }
    }

    @Test("expired, issued in the future, addressed to another district: refused; to every district: accepted")
    func timeAndDistrict() async throws {
        try await withWorld { world in
            let receiver = Self.receiver(world)
            let expired = try Self.command(by: world.bezirksamt, issuedAt: Self.now.addingTimeInterval(-3600), validFor: 3600)
            #expect(await receiver.receive(port: 20, payload: expired.bytes, at: Self.now).refusal == .expired)
            let future = try Self.command(by: world.bezirksamt, issuedAt: Self.now.addingTimeInterval(AnnouncementDesk.allowedClockSkew + 1))
            #expect(await receiver.receive(port: 20, payload: future.bytes, at: Self.now).refusal == .notYetValid)
            let elsewhere = try Self.command(by: world.bezirksamt, district: "mitte")
            #expect(await receiver.receive(port: 20, payload: elsewhere.bytes, at: Self.now).refusal == .notThisDistrict)
            let everywhere = try Self.command(by: world.bezirksamt, district: "*")
            #expect(await receiver.receive(port: 20, payload: everywhere.bytes, at: Self.now).accepted?.action == .declareCrisis)
            let counts = receiver.counts()
            #expect([counts.refused[.expired], counts.refused[.notYetValid], counts.refused[.notThisDistrict]] == [1, 1, 1])
        }
    }

    @Test("validly signed but malformed headers are refused: unknown version, unknown action, validity out of range")
    func signedButMalformed() async throws {
        try await withWorld { world in
            let receiver = Self.receiver(world)
            var header = try Self.command(by: world.bezirksamt).command.header
            let variants: [(Int, [UInt8])] = [(5, [9]), (14, [0, 0]), (14, [0xFF, 0xFF])]
            for (offset, replacement) in variants {
                var changed = header
                changed.replaceSubrange(offset..<(offset + replacement.count), with: replacement)
                let signature = try world.bezirksamt.privateKey.signature(for: CrisisCommand.domain + changed)
                let outcome = await receiver.receive(port: 20, payload: changed + Array(signature), at: Self.now)
                #expect(outcome.refusal == .malformed, "\(offset): \(outcome)")
            }
            header[0] = 2
            #expect(await receiver.receive(port: 20, payload: header + [UInt8](repeating: 0, count: 64), at: Self.now).refusal == .malformed)
        }
    }

    @Test("a signature never crosses between announcements and crisis commands")
    func domainSeparation() async throws {
        try await withWorld { world in
            let receiver = Self.receiver(world)
            let header = try Self.command(by: world.bezirksamt).command.header
            // The authority's signature over the bare header bytes, as an announcement signer would make it.
            let announcementSignature = try world.bezirksamt.sign(bytes: Data(header)).signature
            let outcome = await receiver.receive(port: 20, payload: header + Array(announcementSignature), at: Self.now)
            #expect(outcome.refusal == .badSignature)
            // A command's signed message posted as an announcement is no announcement.
            let signed = try Self.command(by: world.bezirksamt)
            let envelope = envelopeJSON(
                keyID: "ba-xhain", payload: Data(signed.command.signedMessage), signature: Data(signed.signature).base64EncodedString())
            #expect(try await world.desk.accept(envelope, via: .api, now: Self.now).rejection == .malformed)
        }
    }

    @Test("thousands of random downlinks: every one a typed refusal or a waiting fragment, never accepted, never a trap")
    func fuzz() async throws {
        try await withWorld { world in
            let receiver = Self.receiver(world)
            var random = HostileInputTests.Generator(state: 0x6b69_657a_626f_78)
            let genuine = try Self.command(by: world.bezirksamt).bytes
            var refused = 0
            var waiting = 0
            for round in 0..<4000 {
                let port: UInt8 = round % 2 == 0 ? 20 : 21
                var payload: [UInt8]
                switch round % 4 {
                case 0, 1:
                    payload = (0..<Int(random.next() % 120)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                default:
                    // Near misses: the genuine command truncated, extended or with random bytes changed.
                    payload = Array(genuine.prefix(Int(random.next() % 90)))
                    if random.next() % 2 == 0 { payload += (0..<Int(random.next() % 8)).map { _ in UInt8(truncatingIfNeeded: random.next()) } }
                    for _ in 0..<(1 + random.next() % 3) where !payload.isEmpty {
                        payload[Int(random.next() % UInt64(payload.count))] ^= UInt8(truncatingIfNeeded: random.next() | 1)
                    }
                    if payload == genuine { payload.removeLast() }
                    if port == 21, payload.count >= 2 { payload[1] = UInt8(random.next() % 4) << 4 | 2 }
                }
                switch await receiver.receive(port: port, payload: payload, at: Self.now) {
                case .refused: refused += 1
                case .awaitingFragments: waiting += 1
                case let other: Issue.record("round \(round): \(other) for \(payload)")
                }
            }
            let counts = receiver.counts()
            print("crisis downlink fuzz: 4000 inputs, \(refused) refused, \(waiting) fragments waiting; refusals \(counts.refused)")
            #expect(counts.declared + counts.ended == 0)
            #expect(try receiver.declaredCrisis(at: Self.now) == nil)
            #expect(refused + waiting == 4000)
        }
    }

    @Test("the signing side refuses what no box would accept")
    func signingLimits() throws {
        let signer = AnnouncementSigner(keyID: "k", privateKey: Curve25519.Signing.PrivateKey())
        let tag = signer.crisisCommandKeyTag
        #expect(throws: CrisisCommandError.self) {
            try CrisisCommand(action: .declareCrisis, district: "xhain", issuedAt: Self.now, validFor: 15 * 86_400, keyTag: tag)
        }
        #expect(throws: CrisisCommandError.self) {
            try CrisisCommand(action: .declareCrisis, district: "xhain", issuedAt: Self.now, validFor: 30, keyTag: tag)
        }
        #expect(throws: CrisisCommandError.self) {
            try CrisisCommand(action: .declareCrisis, district: "x hain", issuedAt: Self.now, validFor: 3600, keyTag: tag)
        }
        let command = try CrisisCommand(action: .endCrisis, district: "*", issuedAt: Self.now, validFor: 14 * 86_400, sequence: 7, keyTag: tag)
        #expect(try CrisisCommand(header: command.header) == command)
    }
}
