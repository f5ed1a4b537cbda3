import Crypto
public import Foundation
import SwiftProtobuf

/// A signed announcement as it travels over LoRa: the three parts of the JSON envelope (key id, the signed
/// payload bytes, the 64-byte Ed25519 signature) as a `CompactAnnouncementEnvelope` protobuf, without base64.
///
/// The signature is not checked here: the receiving box turns the announcement back into the envelope JSON
/// (``envelopeJSON()``) and hands it to its announcement desk, which verifies it with its configured keys like any
/// other. What the desk rejects (unknown key, forged signature) is rejected there, and counted there.
public struct CompactAnnouncement: Sendable, Hashable {
    public static let signatureLength = 64
    /// The announcement key-id rule's length limit.
    public static let maximumKeyIDLength = 64

    public var keyID: String
    public var payload: Data
    public var signature: Data

    public init(keyID: String, payload: Data, signature: Data) throws(KiezboxMeshError) {
        guard (1...Self.maximumKeyIDLength).contains(keyID.utf8.count) else {
            throw .invalidEnvelope("key_id", "1 to \(Self.maximumKeyIDLength) bytes")
        }
        guard !payload.isEmpty else { throw .invalidEnvelope("payload", "at least one byte") }
        guard signature.count == Self.signatureLength else {
            throw .invalidEnvelope("signature", "\(Self.signatureLength) bytes, not \(signature.count)")
        }
        self.keyID = keyID
        self.payload = payload
        self.signature = signature
    }

    /// From an announcement envelope's JSON (`{"key_id", "payload", "signature"}`, base64 byte strings), as the
    /// desk keeps it and the API accepts it. Nothing is verified.
    public init(envelopeJSON: Data) throws(KiezboxMeshError) {
        guard envelopeJSON.count <= AnnouncementFragmenter.maximumEnvelopeBytes else {
            throw .envelopeTooLarge(bytes: envelopeJSON.count, limit: AnnouncementFragmenter.maximumEnvelopeBytes)
        }
        guard let wire = try? JSONDecoder().decode(EnvelopeJSON.self, from: envelopeJSON) else {
            throw .invalidEnvelope("JSON", "{\"key_id\", \"payload\", \"signature\"}")
        }
        guard let payload = Data(base64Encoded: wire.payload) else { throw .invalidEnvelope("payload", "base64") }
        guard let signature = Data(base64Encoded: wire.signature ?? "") else { throw .invalidEnvelope("signature", "base64") }
        try self.init(keyID: wire.key_id, payload: payload, signature: signature)
    }

    /// The envelope's JSON, keys sorted: byte for byte what `AnnouncementEnvelope.json()` makes of the same parts
    /// (a test pins it), ready for `AnnouncementDesk.accept`.
    public func envelopeJSON() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let wire = EnvelopeJSON(
            key_id: self.keyID, payload: self.payload.base64EncodedString(), signature: self.signature.base64EncodedString())
        // Three strings: encoding cannot fail.
        return (try? encoder.encode(wire)) ?? Data()
    }

    /// The `CompactAnnouncementEnvelope` bytes: what the fragments carry.
    public func serialized() -> [UInt8] {
        let message = Kiezbox_CompactAnnouncementEnvelope.with {
            $0.keyID = self.keyID
            $0.payload = self.payload
            $0.signature = self.signature
        }
        // Bytes and a string: serialising cannot fail.
        return (try? message.serializedBytes()) ?? []
    }

    init(serialized bytes: [UInt8]) throws(KiezboxMeshError) {
        let message: Kiezbox_CompactAnnouncementEnvelope
        do {
            message = try Kiezbox_CompactAnnouncementEnvelope(serializedBytes: bytes)
        } catch {
            throw .malformed("\(error)")
        }
        try self.init(keyID: message.keyID, payload: message.payload, signature: message.signature)
    }

    private struct EnvelopeJSON: Codable {
        var key_id: String
        var payload: String
        var signature: String?
    }
}

/// Cuts a ``CompactAnnouncement`` into PRIVATE_APP payloads of at most 233 bytes.
///
/// Every fragment carries the announcement id (the first 8 bytes of the SHA-256 of the whole serialised envelope),
/// its index and the count; every fragment but the last carries exactly ``chunkLength`` bytes, so a receiver can
/// bound what it buffers (``maximumFragmentCount`` × ``chunkLength`` bytes per announcement) and check every
/// fragment on its own. The envelope is not compressed (see docs/meshtastic.md).
public enum AnnouncementFragmenter {
    /// Envelope bytes per fragment. The largest fragment message (index and count near the limit, 2-byte
    /// lengths) is 28 bytes of framing plus the chunk: 228 bytes, within the 233-byte payload.
    public static let chunkLength = 200
    /// The largest envelope fragments carry: the announcement desk's limit (`AnnouncementEnvelope.maximumBytes`,
    /// 16 KiB; the compact form of any envelope the desk accepts is smaller than its JSON).
    public static let maximumEnvelopeBytes = 16 * 1024
    /// The most fragments an announcement may have: `maximumEnvelopeBytes / chunkLength`, rounded up (82).
    public static let maximumFragmentCount = (maximumEnvelopeBytes + chunkLength - 1) / chunkLength

    /// The PRIVATE_APP payloads that carry `announcement`, in order.
    public static func payloads(for announcement: CompactAnnouncement) throws(KiezboxMeshError) -> [[UInt8]] {
        try self.fragments(for: announcement).map { KiezboxMeshCodec.payload(.announcementFragment($0)) }
    }

    /// The fragments that carry `announcement`, in order.
    public static func fragments(for announcement: CompactAnnouncement) throws(KiezboxMeshError) -> [Kiezbox_AnnouncementFragment] {
        let bytes = announcement.serialized()
        guard bytes.count <= Self.maximumEnvelopeBytes else {
            throw .envelopeTooLarge(bytes: bytes.count, limit: Self.maximumEnvelopeBytes)
        }
        let id = Self.announcementID(of: bytes)
        let count = (bytes.count + Self.chunkLength - 1) / Self.chunkLength
        return (0..<count).map { index in
            let start = index * Self.chunkLength
            return Kiezbox_AnnouncementFragment.with {
                $0.announcementID = id
                $0.index = UInt32(index)
                $0.count = UInt32(count)
                $0.chunk = Data(bytes[start..<min(bytes.count, start + Self.chunkLength)])
            }
        }
    }

    /// The first 8 bytes of the SHA-256 of `bytes`, big-endian.
    public static func announcementID(of bytes: some DataProtocol) -> UInt64 {
        SHA256.hash(data: bytes).prefix(8).reduce(0) { ($0 << 8) | UInt64($1) }
    }

    /// Checks what a fragment says about itself: the count, the index, its chunk's length.
    static func check(_ fragment: Kiezbox_AnnouncementFragment) throws(KiezboxMeshError) {
        guard (1...UInt32(Self.maximumFragmentCount)).contains(fragment.count) else {
            throw .fragmentCountOutOfRange(count: fragment.count, limit: Self.maximumFragmentCount)
        }
        guard fragment.index < fragment.count else {
            throw .fragmentIndexOutOfRange(index: fragment.index, count: fragment.count)
        }
        let isLast = fragment.index == fragment.count - 1
        guard isLast ? (1...Self.chunkLength).contains(fragment.chunk.count) : fragment.chunk.count == Self.chunkLength else {
            throw .fragmentChunkLength(index: fragment.index, length: fragment.chunk.count)
        }
    }
}

/// Puts announcement fragments back together, with bounded memory: at most ``maximumPartials`` announcements in
/// progress (a new one pushes out the one that made progress longest ago), each at most
/// ``AnnouncementFragmenter/maximumFragmentCount`` × ``AnnouncementFragmenter/chunkLength`` bytes; an announcement
/// that receives no new fragment for ``partialLifetime`` is dropped. Duplicates (the mesh repeats packets) are
/// ignored, also for ``partialLifetime`` after an announcement was assembled. Pure value type: the caller passes
/// the instants (any clock's).
public struct AnnouncementReassembler<Instant: InstantProtocol<Duration>>: Sendable {
    public enum Outcome: Sendable, Hashable {
        /// Kept; `received` of `count` fragments are here.
        case incomplete(received: Int, count: Int)
        /// This fragment was already here.
        case duplicate
        /// The announcement was assembled a short while ago; this is a late copy.
        case alreadyAssembled
        /// The last missing fragment: the whole announcement, checked against its id.
        case assembled(CompactAnnouncement)
    }

    struct Partial: Sendable {
        var count: UInt32
        var chunks: [UInt32: Data]
        var lastProgress: Instant
        var bytes: Int { self.chunks.values.reduce(0) { $0 + $1.count } }
    }

    public let maximumPartials: Int
    public let partialLifetime: Duration
    /// How many recently assembled ids are remembered to recognise late copies.
    static var maximumRemembered: Int { 64 }

    private var partials: [UInt64: Partial] = [:]
    private var assembledAt: [UInt64: Instant] = [:]
    /// Partial announcements dropped for lack of room or time (for the log and metrics).
    public private(set) var evicted = 0
    public private(set) var expired = 0

    public init(maximumPartials: Int = 4, partialLifetime: Duration = .seconds(600)) {
        self.maximumPartials = max(1, maximumPartials)
        self.partialLifetime = partialLifetime
    }

    /// Announcements in progress.
    public var partialCount: Int { self.partials.count }
    /// Bytes buffered for them.
    public var bufferedBytes: Int { self.partials.values.reduce(0) { $0 + $1.bytes } }

    /// Takes one fragment (already decoded by ``KiezboxMeshCodec/decode(payload:)``, which checked it on its own).
    public mutating func receive(_ fragment: Kiezbox_AnnouncementFragment, at now: Instant) throws(KiezboxMeshError) -> Outcome {
        try AnnouncementFragmenter.check(fragment)
        self.expire(at: now)
        let id = fragment.announcementID
        if self.assembledAt[id] != nil { return .alreadyAssembled }
        var partial: Partial
        if let existing = self.partials[id] {
            partial = existing
            guard partial.count == fragment.count else { throw .conflictingFragment(announcementID: id, index: fragment.index) }
            if let kept = partial.chunks[fragment.index] {
                guard kept == fragment.chunk else { throw .conflictingFragment(announcementID: id, index: fragment.index) }
                return .duplicate
            }
        } else {
            if self.partials.count >= self.maximumPartials,
                let oldest = self.partials.min(by: { $0.value.lastProgress < $1.value.lastProgress })?.key
            {
                self.partials[oldest] = nil
                self.evicted += 1
            }
            partial = Partial(count: fragment.count, chunks: [:], lastProgress: now)
        }
        partial.chunks[fragment.index] = fragment.chunk
        partial.lastProgress = now
        guard partial.chunks.count == Int(partial.count) else {
            self.partials[id] = partial
            return .incomplete(received: partial.chunks.count, count: Int(partial.count))
        }
        self.partials[id] = nil
        var bytes: [UInt8] = []
        bytes.reserveCapacity(partial.bytes)
        for index in 0..<partial.count { bytes += partial.chunks[index] ?? Data() }
        guard AnnouncementFragmenter.announcementID(of: bytes) == id else { throw .digestMismatch(announcementID: id) }
        let announcement = try CompactAnnouncement(serialized: bytes)
        if self.assembledAt.count >= Self.maximumRemembered,
            let oldest = self.assembledAt.min(by: { $0.value < $1.value })?.key
        {
            self.assembledAt[oldest] = nil
        }
        self.assembledAt[id] = now
        return .assembled(announcement)
    }

    /// Drops announcements without progress for ``partialLifetime`` and forgets old assembled ids.
    public mutating func expire(at now: Instant) {
        for (id, partial) in self.partials where partial.lastProgress.advanced(by: self.partialLifetime) <= now {
            self.partials[id] = nil
            self.expired += 1
        }
        for (id, time) in self.assembledAt where time.advanced(by: self.partialLifetime) <= now {
            self.assembledAt[id] = nil
        }
    }
}
