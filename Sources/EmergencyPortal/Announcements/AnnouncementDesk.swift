public import Foundation
public import Logging
public import ReadingStore
import Synchronization

/// Checks every announcement that reaches the box, keeps the valid ones and counts the refused ones.
///
/// An envelope is accepted only when, in this order: it is at most ``AnnouncementEnvelope/maximumBytes``; it
/// parses; it has a signature; its key id is configured; the Ed25519 signature verifies over the payload bytes
/// with that key; the payload is a valid ``AnnouncementPayload``; it is not issued more than
/// ``allowedClockSkew`` in the future and has not expired; it is addressed to this box's district or to all;
/// and it is not a replay. Nothing of the payload is parsed before the signature has been verified.
///
/// ## Replays
///
/// The box keeps one version per (issuer, id): the newest it accepted. A different version with an
/// `issued_at` not newer than the kept one is ``AnnouncementRejection/replayed`` (an attacker re-sending a
/// superseded version, for example the original of an announcement the authority ended early). Byte-identical
/// payloads are ``AnnouncementOutcome/alreadyKnown(_:)``, not an attack: the mesh delivers copies. The kept
/// version is remembered until ``AnnouncementPayload/maximumLifetime`` after it was issued (or its expiry, if
/// later), so no older version can still be valid when it is forgotten; an expired version replayed later is
/// ``AnnouncementRejection/expired``, whatever the box remembers.
public final class AnnouncementDesk: Sendable {
    /// How far a box's clock may be behind the authority's: an announcement issued up to this far in the future
    /// is accepted.
    public static let allowedClockSkew: TimeInterval = 5 * 60

    /// This box's district: announcements for others are refused.
    public let district: String
    let keys: [String: AnnouncementKey]
    let store: ReadingStore
    private let logger: Logger
    private let counts = Mutex<[AnnouncementRejection: Int]>([:])
    private let acceptedTotal = Atomic<Int>(0)
    private let subscribers = Mutex<[Int: AsyncStream<AcceptedAnnouncement>.Continuation]>([:])
    private let nextSubscriber = Atomic<Int>(0)

    /// - Parameter keys: the configured authority keys. Key ids should be unique (the configuration refuses
    ///   duplicates); if not, the first wins.
    public init(keys: [AnnouncementKey], district: String, store: ReadingStore, logger: Logger) {
        self.keys = Dictionary(keys.map { ($0.keyID, $0) }, uniquingKeysWith: { first, _ in first })
        self.district = district
        self.store = store
        self.logger = logger
    }

    deinit {
        for continuation in self.subscribers.withLock({ Array($0.values) }) { continuation.finish() }
    }

    /// Every announcement accepted after this call (not copies already known), with its source and envelope: the
    /// MQTT relay publishes those that came from the API, the LoRa bridge sends them on. Each subscriber gets its
    /// own stream; the newest 64 wait for a slow one. The stream ends when the consumer stops iterating.
    public func arrivals() -> AsyncStream<AcceptedAnnouncement> {
        let (stream, continuation) = AsyncStream.makeStream(of: AcceptedAnnouncement.self, bufferingPolicy: .bufferingNewest(64))
        let id = self.nextSubscriber.add(1, ordering: .relaxed).newValue
        self.subscribers.withLock { $0[id] = continuation }
        continuation.onTermination = { [weak self] _ in
            _ = self?.subscribers.withLock { $0.removeValue(forKey: id) }
        }
        return stream
    }

    /// The configured keys, by key id.
    public var configuredKeyIDs: [String] { self.keys.keys.sorted() }

    /// Verifies `envelope` and, if valid and new, stores it. Throws only when the store fails (the announcement
    /// may be valid: the caller should answer "try again", not "refused").
    public func accept(_ envelope: Data, via source: AnnouncementSource, now: Date) async throws -> AnnouncementOutcome {
        let checked: (AnnouncementKey, AnnouncementPayload, AnnouncementEnvelope)
        switch self.verify(envelope, now: now) {
        case .success(let result): checked = result
        case .failure(let refusal): return self.refuse(refusal.reason, refusal.detail, source: source)
        }
        let (key, payload, parsed) = checked
        let announcement = OfficialAnnouncement(
            id: payload.id, issuer: key.issuer, severity: payload.severity, headline: payload.headline, body: payload.body,
            issuedAt: payload.issuedAt, expiresAt: payload.expiresAt, declaresCrisis: payload.crisis ?? false)
        let record = StoredAnnouncement(
            issuer: key.issuer, id: payload.id, keyID: key.keyID, issuedAt: payload.issuedAt, expiresAt: payload.expiresAt,
            rememberUntil: max(payload.expiresAt, payload.issuedAt.addingTimeInterval(AnnouncementPayload.maximumLifetime))
                .addingTimeInterval(Self.allowedClockSkew),
            payload: parsed.payload, envelope: envelope, receivedAt: now, receivedVia: source.rawValue)
        switch try await self.store.storeAnnouncement(record, now: now) {
        case .identical:
            return .alreadyKnown(announcement)
        case .stale(let keptIssuedAt):
            return self.refuse(
                .replayed,
                "\(key.issuer) already has a version of \"\(payload.id)\" issued \(keptIssuedAt.formatted(.iso8601)); this one is not newer",
                source: source)
        case .stored:
            let accepted = AcceptedAnnouncement(
                announcement: announcement, keyID: key.keyID, district: payload.district, envelope: envelope, source: source)
            _ = self.acceptedTotal.add(1, ordering: .relaxed)
            self.logger.notice(
                "official announcement accepted",
                metadata: ["id": "\(payload.id)", "issuer": "\(key.issuer)", "via": "\(source.rawValue)"])
            for continuation in self.subscribers.withLock({ Array($0.values) }) { continuation.yield(accepted) }
            return .accepted(accepted)
        }
    }

    /// Everything but the replay check, which needs the store.
    private func verify(_ bytes: Data, now: Date) -> Result<(AnnouncementKey, AnnouncementPayload, AnnouncementEnvelope), Refusal<AnnouncementRejection>> {
        let envelope: AnnouncementEnvelope
        do throws(AnnouncementFormatError) {
            envelope = try AnnouncementEnvelope(json: bytes)
        } catch .tooLarge(let count, let limit) {
            return .failure(Refusal(.tooLarge, "the announcement has \(count) bytes; at most \(limit) are accepted"))
        } catch {
            return .failure(Refusal(.malformed, error.description))
        }
        guard !envelope.signature.isEmpty else { return .failure(Refusal(.unsigned, "the announcement has no signature")) }
        guard let key = self.keys[envelope.keyID] else {
            return .failure(Refusal(.unknownKey, "key \"\(envelope.keyID)\" is not one this box trusts"))
        }
        guard key.isValidSignature(envelope.signature, for: envelope.payload) else {
            return .failure(Refusal(.forged, "the signature does not verify with the key of \(key.issuer) (\(key.keyID))"))
        }
        let payload: AnnouncementPayload
        do throws(AnnouncementFormatError) {
            payload = try AnnouncementPayload(json: envelope.payload)
        } catch {
            return .failure(Refusal(.malformed, error.description))
        }
        if payload.issuedAt.timeIntervalSince(now) > Self.allowedClockSkew {
            return .failure(Refusal(.notYetValid, "issued \(payload.issuedAt.formatted(.iso8601)), in the future"))
        }
        if payload.expiresAt <= now {
            return .failure(Refusal(.expired, "expired \(payload.expiresAt.formatted(.iso8601))"))
        }
        if payload.district != AnnouncementPayload.allDistricts, payload.district != self.district {
            return .failure(Refusal(.wrongDistrict, "addressed to district \"\(payload.district)\"; this box is in \"\(self.district)\""))
        }
        return .success((key, payload, envelope))
    }

    private func refuse(_ reason: AnnouncementRejection, _ detail: String, source: AnnouncementSource) -> AnnouncementOutcome {
        self.counts.withLock { $0[reason, default: 0] += 1 }
        self.logger.notice(
            "announcement refused", metadata: ["reason": "\(reason.rawValue)", "via": "\(source.rawValue)", "detail": "\(detail)"])
        return .rejected(reason, detail: detail)
    }

    /// Refused announcements since start, per reason (every reason present, zero if none): for `/metrics`
    /// and the status page.
    public func rejectionCounts() -> [AnnouncementRejection: Int] {
        let counts = self.counts.withLock { $0 }
        return Dictionary(uniqueKeysWithValues: AnnouncementRejection.allCases.map { ($0, counts[$0] ?? 0) })
    }

    /// Announcements accepted since start (copies already known not counted).
    public func acceptedCount() -> Int { self.acceptedTotal.load(ordering: .relaxed) }

    /// The valid, unexpired announcements at `now`, newest first: what the portal shows as official.
    public func current(at now: Date) throws -> [OfficialAnnouncement] {
        try self.currentAccepted(at: now).map(\.announcement)
    }

    /// The current announcements with their envelopes as received, newest first: to relay them unchanged.
    public func currentAccepted(at now: Date) throws -> [AcceptedAnnouncement] {
        try self.store.currentAnnouncements(at: now).compactMap { stored in
            // Verified before it was stored; only decoded again here.
            guard let payload = try? AnnouncementPayload(json: stored.payload) else { return nil }
            let announcement = OfficialAnnouncement(
                id: stored.id, issuer: stored.issuer, severity: payload.severity, headline: payload.headline,
                body: payload.body, issuedAt: stored.issuedAt, expiresAt: stored.expiresAt, declaresCrisis: payload.crisis ?? false)
            return AcceptedAnnouncement(
                announcement: announcement, keyID: stored.keyID, district: payload.district, envelope: stored.envelope,
                source: AnnouncementSource(rawValue: stored.receivedVia) ?? .mesh)
        }
    }
}

/// Why a verification refused what it checked, with a sentence for the log: the desk's and the crisis downlink
/// receiver's checks return it before they count the refusal.
struct Refusal<Reason: Sendable>: Error {
    var reason: Reason
    var detail: String

    init(_ reason: Reason, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }
}
