import Foundation
import KiezboxCore
import KiezboxTestSupport
import MeshRelay
import ReadingStore
import SwiftProtobuf
import Testing

@Suite("Kiezbox box-to-box messages on PRIVATE_APP: announcement fragments and relayed help requests")
struct KiezboxMeshMessageTests {
    typealias Instant = ManualClock.Instant
    static let start = Instant(offset: .zero)

    static func announcement(payloadBytes: Int, seed: UInt64 = 1) throws -> CompactAnnouncement {
        var generator = SerialFuzzRandom(seed: seed)
        let payload = Data((0..<payloadBytes).map { _ in UInt8.random(in: 0...255, using: &generator) })
        let signature = Data((0..<64).map { _ in UInt8.random(in: 0...255, using: &generator) })
        return try CompactAnnouncement(keyID: "bezirk-2026", payload: payload, signature: signature)
    }

    static func fragments(of announcement: CompactAnnouncement) throws -> [Kiezbox_AnnouncementFragment] {
        try AnnouncementFragmenter.payloads(for: announcement).map { payload in
            guard case .announcementFragment(let fragment) = try KiezboxMeshCodec.decode(payload: payload) else {
                throw KiezboxMeshError.noContent
            }
            return fragment
        }
    }

    @Test("announcements from 1 byte to 16 KiB: every payload within 233 bytes, reassembled out of order and duplicated")
    func roundTrip() throws {
        var generator = SerialFuzzRandom(seed: 7)
        let envelopeOverhead = 2 + "bezirk-2026".utf8.count + 2 + 3 + 64
        let sizes = [1, 2, 100, 199 - envelopeOverhead, 200 - envelopeOverhead, 201 - envelopeOverhead, 1_000, 4_096]
            + [AnnouncementFragmenter.maximumEnvelopeBytes - envelopeOverhead]
        for size in sizes {
            let announcement = try Self.announcement(payloadBytes: size, seed: UInt64(size))
            let payloads = try AnnouncementFragmenter.payloads(for: announcement)
            #expect(payloads.allSatisfy { $0.count <= MeshtasticPayload.maximumLength }, "size \(size)")
            #expect(payloads.count == (announcement.serialized().count + 199) / 200, "size \(size)")
            var fragments = try Self.fragments(of: announcement)
            fragments += fragments.prefix(fragments.count / 2)  // the mesh repeats packets
            fragments.shuffle(using: &generator)
            var reassembler = AnnouncementReassembler<Instant>()
            var assembled: [CompactAnnouncement] = []
            var duplicates = 0
            for fragment in fragments {
                switch try reassembler.receive(fragment, at: Self.start) {
                case .assembled(let result): assembled.append(result)
                case .duplicate, .alreadyAssembled: duplicates += 1
                case .incomplete: break
                }
            }
            #expect(assembled == [announcement], "size \(size)")
            #expect(duplicates == fragments.count - payloads.count, "size \(size)")
            #expect(reassembler.partialCount == 0 && reassembler.bufferedBytes == 0)
        }
        // Too large for fragments.
        let tooLarge = try Self.announcement(payloadBytes: AnnouncementFragmenter.maximumEnvelopeBytes)
        #expect(throws: KiezboxMeshError.envelopeTooLarge(bytes: tooLarge.serialized().count, limit: 16_384)) {
            try AnnouncementFragmenter.payloads(for: tooLarge)
        }
    }

    @Test("the largest fragment message, with index and count at the limit, fits the payload")
    func worstCaseFragmentSize() throws {
        let fragment = Kiezbox_AnnouncementFragment.with {
            $0.announcementID = .max
            $0.index = UInt32(AnnouncementFragmenter.maximumFragmentCount - 2)
            $0.count = UInt32(AnnouncementFragmenter.maximumFragmentCount)
            $0.chunk = Data(repeating: 0xFF, count: AnnouncementFragmenter.chunkLength)
        }
        let payload = KiezboxMeshCodec.payload(.announcementFragment(fragment))
        #expect(payload.count <= MeshtasticPayload.maximumLength)
        #expect(AnnouncementFragmenter.maximumFragmentCount * AnnouncementFragmenter.chunkLength >= AnnouncementFragmenter.maximumEnvelopeBytes)
    }

    @Test("one fragment missing: no output; the partial expires after its lifetime without progress")
    func missingAndExpiry() throws {
        let announcement = try Self.announcement(payloadBytes: 900)
        let fragments = try Self.fragments(of: announcement)
        var reassembler = AnnouncementReassembler<Instant>(maximumPartials: 4, partialLifetime: .seconds(600))
        var now = Self.start
        for fragment in fragments.dropLast() {
            now = now.advanced(by: .seconds(500))  // slow, but each fragment is progress
            let outcome = try reassembler.receive(fragment, at: now)
            guard case .incomplete = outcome else {
                Issue.record("\(outcome)")
                return
            }
        }
        #expect(reassembler.partialCount == 1 && reassembler.bufferedBytes == (fragments.count - 1) * 200)
        reassembler.expire(at: now.advanced(by: .seconds(599)))
        #expect(reassembler.partialCount == 1)
        reassembler.expire(at: now.advanced(by: .seconds(600)))
        #expect(reassembler.partialCount == 0 && reassembler.expired == 1)
        // The last fragment now starts a new partial instead of completing anything.
        let late = try reassembler.receive(try #require(fragments.last), at: now.advanced(by: .seconds(601)))
        #expect(late == .incomplete(received: 1, count: fragments.count))
    }

    @Test("memory bounds: at most N partial announcements; a new one pushes out the one without progress longest")
    func memoryBounds() throws {
        var reassembler = AnnouncementReassembler<Instant>(maximumPartials: 3)
        var all: [[Kiezbox_AnnouncementFragment]] = []
        for seed in 1...5 {
            let fragments = try Self.fragments(of: try Self.announcement(payloadBytes: 16_000, seed: UInt64(seed)))
            all.append(fragments)
            for fragment in fragments.dropLast() {
                _ = try reassembler.receive(fragment, at: Self.start.advanced(by: .seconds(seed)))
            }
            #expect(reassembler.partialCount <= 3)
            #expect(reassembler.bufferedBytes <= 3 * AnnouncementFragmenter.maximumFragmentCount * AnnouncementFragmenter.chunkLength)
        }
        #expect(reassembler.evicted == 2)
        // The newest three survive; the first two were pushed out and their last fragment starts over.
        let completed = try reassembler.receive(try #require(all[4].last), at: Self.start.advanced(by: .seconds(6)))
        guard case .assembled = completed else {
            Issue.record("\(completed)")
            return
        }
        let evicted = try reassembler.receive(try #require(all[0].last), at: Self.start.advanced(by: .seconds(7)))
        #expect(evicted == .incomplete(received: 1, count: all[0].count))
    }

    @Test("conflicts and bad digests are typed errors; the first fragment received is kept")
    func conflicts() throws {
        let fragments = try Self.fragments(of: try Self.announcement(payloadBytes: 500))
        var reassembler = AnnouncementReassembler<Instant>()
        _ = try reassembler.receive(fragments[0], at: Self.start)
        var altered = fragments[0]
        altered.chunk[0] ^= 0xFF
        #expect(throws: KiezboxMeshError.conflictingFragment(announcementID: fragments[0].announcementID, index: 0)) {
            try reassembler.receive(altered, at: Self.start)
        }
        // The same id with another count conflicts with the kept count.
        var recount = fragments[1]
        recount.count += 1
        #expect(throws: KiezboxMeshError.conflictingFragment(announcementID: fragments[0].announcementID, index: 1)) {
            try reassembler.receive(recount, at: Self.start)
        }
        // Forged bytes with the right length everywhere: assembled, but not what the id names.
        var forged = fragments
        forged[1].chunk[5] ^= 0x01
        var fresh = AnnouncementReassembler<Instant>()
        for fragment in forged.dropLast() { _ = try fresh.receive(fragment, at: Self.start) }
        #expect(throws: KiezboxMeshError.digestMismatch(announcementID: fragments[0].announcementID)) {
            try fresh.receive(forged[forged.count - 1], at: Self.start)
        }
        #expect(fresh.partialCount == 0)
    }

    @Test("a fragment's own rules: count, index, chunk length; foreign traffic and other versions are told apart")
    func fragmentRulesAndForeignTraffic() {
        func payload(index: UInt32, count: UInt32, chunk: Int) -> [UInt8] {
            KiezboxMeshCodec.payload(
                .announcementFragment(.with {
                    $0.announcementID = 1
                    $0.index = index
                    $0.count = count
                    $0.chunk = Data(repeating: 1, count: chunk)
                }))
        }
        let cases: [([UInt8], KiezboxMeshError)] = [
            (payload(index: 0, count: 0, chunk: 10), .fragmentCountOutOfRange(count: 0, limit: 82)),
            (payload(index: 0, count: 83, chunk: 200), .fragmentCountOutOfRange(count: 83, limit: 82)),
            (payload(index: 3, count: 3, chunk: 10), .fragmentIndexOutOfRange(index: 3, count: 3)),
            (payload(index: 0, count: 2, chunk: 199), .fragmentChunkLength(index: 0, length: 199)),
            (payload(index: 1, count: 2, chunk: 0), .fragmentChunkLength(index: 1, length: 0)),
            (payload(index: 1, count: 2, chunk: 201), .fragmentChunkLength(index: 1, length: 201)),
            (Array("hello from another app".utf8), .foreignPayload),
            ([], .foreignPayload),
            ([0x0D, 0x4B, 0x42, 0x4F, 0x58, 0x10, 0x02], .unsupportedVersion(2)),
            ([0x0D, 0x4B, 0x42, 0x4F, 0x58, 0x10, 0x01], .noContent),
        ]
        for (bytes, error) in cases {
            #expect(throws: error, "\(bytes.prefix(12))") { try KiezboxMeshCodec.decode(payload: bytes) }
        }
        #expect(throws: KiezboxMeshError.self) { try KiezboxMeshCodec.decode(payload: [0x0D, 0x4B, 0x42, 0x4F, 0x58, 0x1A, 0x09]) }
    }

    @Test("envelope JSON to compact and back; a missing signature or a bad key id is refused")
    func envelopeJSON() throws {
        let announcement = try Self.announcement(payloadBytes: 300)
        let json = announcement.envelopeJSON()
        #expect(try CompactAnnouncement(envelopeJSON: json) == announcement)
        let text = try #require(String(data: json, encoding: .utf8))
        #expect(text.hasPrefix("{\"key_id\":\"bezirk-2026\",\"payload\":\""))
        #expect(throws: KiezboxMeshError.invalidEnvelope("signature", "64 bytes, not 0")) {
            try CompactAnnouncement(envelopeJSON: Data(#"{"key_id":"k","payload":"AA=="}"#.utf8))
        }
        #expect(throws: KiezboxMeshError.invalidEnvelope("key_id", "1 to 64 bytes")) {
            try CompactAnnouncement(keyID: "", payload: Data([1]), signature: Data(count: 64))
        }
        #expect(throws: KiezboxMeshError.invalidEnvelope("JSON", "{\"key_id\", \"payload\", \"signature\"}")) {
            try CompactAnnouncement(envelopeJSON: Data("[]".utf8))
        }
    }

    static let relayed = MeshHelpRequest(
        originDistrict: "friedrichshain-kreuzberg", originBox: "wrangelkiez-01",
        post: BulletinPost(
            id: 4711, kind: .request, category: .medical, text: "Insulin needed for my neighbour, 3rd floor",
            place: "Wrangelstraße 12", createdAt: Date(timeIntervalSince1970: 1_790_000_000),
            expiresAt: Date(timeIntervalSince1970: 1_790_086_400)))

    @Test("a relayed help request round-trips in one packet")
    func helpRequestRoundTrip() throws {
        for (kind, category) in [(BulletinKind.request, BulletinCategory?.some(.medical)), (.offer, .water), (.safe, nil)] {
            var relayed = Self.relayed
            relayed.post.kind = kind
            relayed.post.category = category
            let (bytes, truncated) = try relayed.payload()
            #expect(!truncated && bytes.count <= MeshtasticPayload.maximumLength)
            #expect(try KiezboxMeshCodec.decode(payload: bytes) == .helpRequest(relayed))
        }
    }

    @Test("long texts are cut at a character boundary to fit one packet, with an ellipsis")
    func helpRequestTruncation() throws {
        var relayed = Self.relayed
        relayed.post.text = "Wir brauchen dringend Wasser für die Kita 🚰👩‍👩‍👧‍👦 — Grüße aus der Straße! ".repeated(12)
        relayed.post.place = "Hinterhaus, Seitenflügel links, 4. OG, bei Müller-Lüdenscheidt (klingeln!)"
        let (bytes, truncated) = try relayed.payload()
        #expect(truncated)
        // Full up to the last whole character (the family emoji alone is 25 bytes).
        #expect(bytes.count <= MeshtasticPayload.maximumLength && bytes.count > MeshtasticPayload.maximumLength - 25)
        guard case .helpRequest(let decoded) = try KiezboxMeshCodec.decode(payload: bytes) else {
            Issue.record("not a help request")
            return
        }
        #expect(decoded.post.place.utf8.count <= MeshHelpRequest.maximumPlaceBytes)
        #expect(decoded.post.text.hasSuffix("…") && decoded.post.place.hasSuffix("…"))
        #expect(relayed.post.text.hasPrefix(String(decoded.post.text.dropLast())))
        #expect(relayed.post.place.hasPrefix(String(decoded.post.place.dropLast())))
        // Every cut at every length stays valid UTF-8 of whole characters and within the packet.
        for length in stride(from: 0, through: 400, by: 7) {
            relayed.post.text = String(String("ä😀👩‍👩‍👧‍👦x".repeated(40)).prefix(length))
            let (bytes, _) = try relayed.payload()
            #expect(bytes.count <= MeshtasticPayload.maximumLength)
            guard case .helpRequest(let decoded) = try KiezboxMeshCodec.decode(payload: bytes) else {
                Issue.record("not a help request")
                return
            }
            let text = decoded.post.text
            #expect(relayed.post.text.hasPrefix(text.hasSuffix("…") ? String(text.dropLast()) : text))
        }
    }

    @Test("relayed help requests with bad fields are refused with typed errors")
    func helpRequestErrors() {
        func payload(_ change: (inout Kiezbox_RelayedHelpRequest) -> Void) -> [UInt8] {
            var wire = Kiezbox_RelayedHelpRequest.with {
                $0.originDistrict = "xhain"
                $0.originBox = "box-1"
                $0.kind = .request
                $0.createdAt = 100
                $0.expiresAt = 200
            }
            change(&wire)
            return KiezboxMeshCodec.payload(.helpRequest(wire))
        }
        let cases: [([UInt8], KiezboxMeshError)] = [
            (payload { $0.kind = .unspecified }, .invalidHelpRequest("kind", "request, offer or safe")),
            (payload { $0.kind = .UNRECOGNIZED(9) }, .invalidHelpRequest("kind", "request, offer or safe, not 9")),
            (payload { $0.category = .UNRECOGNIZED(7) }, .invalidHelpRequest("category", "a bulletin category, not 7")),
            (payload { $0.expiresAt = 100 }, .invalidHelpRequest("expires_at", "a time after created_at")),
            (payload { $0.originBox = "Box 1" }, .invalidHelpRequest("origin_box", "1 to 64 lowercase letters, digits and '-'")),
            (payload { $0.originDistrict = "" }, .invalidHelpRequest("origin_district", "1 to 64 lowercase letters, digits and '-'")),
        ]
        for (bytes, error) in cases {
            #expect(throws: error) { try KiezboxMeshCodec.decode(payload: bytes) }
        }
    }

    @Test("fuzz: random and mutated fragment sequences never crash, never assemble anything but the original")
    func fuzz() throws {
        var generator = SerialFuzzRandom(seed: 2026)
        let originals = try (1...4).map { try Self.announcement(payloadBytes: 150 * $0 * $0, seed: UInt64($0)) }
        let valid = try originals.map { try AnnouncementFragmenter.payloads(for: $0) }
        var reassembler = AnnouncementReassembler<Instant>(maximumPartials: 3, partialLifetime: .seconds(60))
        var counts: [String: Int] = [:]
        var now = Self.start
        for _ in 0..<200_000 {
            now = now.advanced(by: .milliseconds(Int64.random(in: 0...500, using: &generator)))
            let announcement = Int.random(in: 0..<valid.count, using: &generator)
            var bytes = valid[announcement].randomElement(using: &generator) ?? []
            switch Int.random(in: 0..<10, using: &generator) {
            case 0: bytes = (0..<Int.random(in: 0...240, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            case 1: bytes[Int.random(in: 0..<bytes.count, using: &generator)] ^= 1 << UInt8.random(in: 0...7, using: &generator)
            case 2: bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &generator)))
            case 3: bytes[Int.random(in: 5..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            default: break
            }
            do {
                guard case .announcementFragment(let fragment) = try KiezboxMeshCodec.decode(payload: bytes) else {
                    counts["help request", default: 0] += 1
                    continue
                }
                switch try reassembler.receive(fragment, at: now) {
                case .assembled(let result):
                    #expect(originals.contains(result), "only an original may be assembled")
                    counts["assembled", default: 0] += 1
                case .incomplete: counts["incomplete", default: 0] += 1
                case .duplicate: counts["duplicate", default: 0] += 1
                case .alreadyAssembled: counts["already assembled", default: 0] += 1
                }
            } catch {
                // Typed throws: every rejection is a KiezboxMeshError by construction; count them by kind.
                counts[Mirror(reflecting: error).children.first?.label ?? "\(error)", default: 0] += 1
            }
            #expect(reassembler.partialCount <= 3)
        }
        print("Kiezbox mesh fuzz, 200 000 inputs:", counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        #expect((counts["assembled"] ?? 0) > 0)
    }
}
