public import Foundation
public import Logging
public import ReadingStore
import Crypto
import Synchronization

/// Why a crisis downlink was not acted on. Each is counted (``CrisisDownlinkReceiver/counts()``).
public enum CrisisDownlinkRefusal: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// Not a command or fragment: wrong length, unknown version or action, a validity out of range, halves of
    /// different commands.
    case malformed
    /// Its key tag names no key this box trusts (also: an unsigned command, whose tag is whatever it is).
    case unknownKey = "unknown_key"
    /// The signature does not verify with the named key: changed after signing, or signed by another key.
    case badSignature = "bad_signature"
    /// Not newer (issue time, then sequence) than the last command accepted from that key.
    case replayed
    /// Its validity has ended.
    case expired
    /// Issued further in the future than ``AnnouncementDesk/allowedClockSkew``.
    case notYetValid = "not_yet_valid"
    /// Addressed to another district.
    case notThisDistrict = "not_this_district"
    /// A fragment whose other pieces did not arrive in time, or that was pushed out by newer ones: never acted on.
    case incompleteFragment = "incomplete_fragment"
    /// The store could not record the command, so it was not acted on (acting without the record would let it be
    /// replayed).
    case storeFailed = "store_failed"

    public var description: String { self.rawValue }
}

/// A crisis command that verified and was recorded.
public struct AcceptedCrisisCommand: Sendable, Hashable {
    public var action: CrisisAction
    /// The configured name of the authority whose key signed it.
    public var issuer: String
    /// The configured key id of that key.
    public var keyID: String
    public var issuedAt: Date
    /// When a declaration's crisis ends (and when an end command would have stopped being valid).
    public var validUntil: Date

    public init(action: CrisisAction, issuer: String, keyID: String, issuedAt: Date, validUntil: Date) {
        self.action = action
        self.issuer = issuer
        self.keyID = keyID
        self.issuedAt = issuedAt
        self.validUntil = validUntil
    }
}

/// What ``CrisisDownlinkReceiver/receive(port:payload:at:)`` did with one downlink.
public enum CrisisDownlinkOutcome: Sendable, Hashable {
    /// Verified and recorded: the box follows it from now on.
    case accepted(AcceptedCrisisCommand)
    /// A fragment kept until the command's other pieces arrive; nothing acted on yet.
    case awaitingFragments(tag: UInt8, received: Int, of: Int)
    /// Refused, with a sentence saying why (for the log).
    case refused(CrisisDownlinkRefusal, detail: String)
    /// Not on a crisis command port: not for this receiver, not counted.
    case otherPort
}

extension CrisisDownlinkOutcome {
    /// The accepted command, if it was accepted.
    public var accepted: AcceptedCrisisCommand? {
        if case .accepted(let command) = self { return command }
        return nil
    }

    /// Why it was refused, if it was.
    public var refusal: CrisisDownlinkRefusal? {
        if case .refused(let reason, _) = self { return reason }
        return nil
    }

    /// Whether it was a fragment kept to wait for the rest of its command.
    public var isAwaitingFragments: Bool {
        if case .awaitingFragments = self { return true }
        return false
    }
}

/// Crisis downlinks since the daemon started: for `/metrics` and `kiezbox status`.
public struct CrisisDownlinkCounts: Sendable, Hashable {
    /// Accepted declarations.
    public var declared: Int
    /// Accepted ends.
    public var ended: Int
    /// Fragments received (each also counted in the outcome of the command they make up, once whole).
    public var fragments: Int
    /// Refused downlinks per reason, every reason present.
    public var refused: [CrisisDownlinkRefusal: Int]

    public init(declared: Int = 0, ended: Int = 0, fragments: Int = 0, refused: [CrisisDownlinkRefusal: Int] = [:]) {
        self.declared = declared
        self.ended = ended
        self.fragments = fragments
        self.refused = Dictionary(uniqueKeysWithValues: CrisisDownlinkRefusal.allCases.map { ($0, refused[$0] ?? 0) })
    }
}

/// Checks the signed crisis commands an authority sends by LoRaWAN downlink, records the accepted ones and
/// counts the refused ones: the same trusted keys, district and replay rule as the ``AnnouncementDesk``, for a
/// compact binary command (``CrisisCommand``) instead of JSON.
///
/// A command arrives whole on ``commandPort`` (81 bytes, DR3 and faster) or in fragments on ``fragmentPort``
/// (two of 42 and 43 bytes, for DR0–DR2). It is accepted only when, in this order: it has the length of a signed
/// command and format version 1; its key tag names a configured key; the Ed25519 signature over
/// ``CrisisCommand/domain`` and the header verifies with that key; the header's fields are valid; it is not issued
/// more than ``AnnouncementDesk/allowedClockSkew`` in the future and its validity has not ended; it is addressed
/// to this box's district or to all; and it is newer than the last command accepted from that key, which the store
/// keeps across restarts.
///
/// Fragments wait in memory, at most ``fragmentLifetime`` and at most ``maximumPendingCommands`` commands' worth;
/// a piece that expires or is pushed out is counted as ``CrisisDownlinkRefusal/incompleteFragment``. A lone
/// fragment never acts.
public final class CrisisDownlinkReceiver: Sendable {
    /// The FPort of a whole signed command.
    public static let commandPort: UInt8 = 20
    /// The FPort of a fragment of one.
    public static let fragmentPort: UInt8 = 21
    /// How long a fragment waits for the rest of its command: downlinks come only after uplinks, and at DR0 a box
    /// may send one report an hour.
    public static let fragmentLifetime: TimeInterval = 12 * 3600
    /// How many incomplete commands wait at once; the oldest goes first.
    public static let maximumPendingCommands = 4

    /// This box's district: commands for others are refused.
    public let district: String
    private let keys: [TrustedKey]
    private let store: ReadingStore
    private let logger: Logger
    private let state = Mutex(State())

    private struct TrustedKey: Sendable {
        var key: AnnouncementKey
        var tag: UInt32
        var fingerprint: String
    }

    private struct PendingCommand: Sendable {
        var firstReceivedAt: Date
        var count: Int
        var pieces: [Int: [UInt8]]
    }

    private struct State: Sendable {
        var counts = CrisisDownlinkCounts()
        var pending: [UInt8: PendingCommand] = [:]
    }

    /// - Parameter keys: the configured authority keys, as the announcement desk gets them.
    public init(keys: [AnnouncementKey], district: String, store: ReadingStore, logger: Logger) {
        self.keys = keys.map { key in
            TrustedKey(key: key, tag: CrisisCommand.keyTag(publicKeyRaw: key.publicKeyRaw), fingerprint: key.fingerprint)
        }
        self.district = district
        self.store = store
        self.logger = logger
    }

    /// A receiver that trusts exactly the desk's keys and serves the desk's district, on the desk's store.
    public convenience init(trusting desk: AnnouncementDesk, logger: Logger) {
        self.init(keys: Array(desk.keys.values), district: desk.district, store: desk.store, logger: logger)
    }

    /// Handles one downlink as the LoRaWAN modem delivered it. Never throws and never traps, whatever the bytes.
    public func receive(port: UInt8, payload: [UInt8], at now: Date) async -> CrisisDownlinkOutcome {
        let whole: [UInt8]
        switch port {
        case Self.commandPort:
            whole = payload
        case Self.fragmentPort:
            switch self.collect(fragment: payload, at: now) {
            case .complete(let bytes): whole = bytes
            case .outcome(let outcome): return outcome
            }
        default:
            return .otherPort
        }
        let checked: (TrustedKey, CrisisCommand)
        switch self.verify(whole, now: now) {
        case .success(let result): checked = result
        case .failure(let refusal): return self.refuse(refusal.reason, refusal.detail)
        }
        let (trusted, command) = checked
        let record = StoredCrisisCommand(
            keyFingerprint: trusted.fingerprint, keyID: trusted.key.keyID, issuer: trusted.key.issuer,
            declaresCrisis: command.action == .declareCrisis, districtTag: command.districtTag, issuedAt: command.issuedAt,
            sequence: Int(command.sequence), validUntil: command.validUntil, receivedAt: now)
        let stored: CrisisCommandStoreOutcome
        do {
            stored = try await self.store.storeCrisisCommand(record)
        } catch {
            return self.refuse(.storeFailed, "\(error)")
        }
        if case .stale(let keptIssuedAt, let keptSequence) = stored {
            return self.refuse(
                .replayed,
                "\(trusted.key.issuer) already had a command issued \(keptIssuedAt.formatted(.iso8601)) (sequence \(keptSequence)); this one is not newer")
        }
        let accepted = AcceptedCrisisCommand(
            action: command.action, issuer: trusted.key.issuer, keyID: trusted.key.keyID, issuedAt: command.issuedAt,
            validUntil: command.validUntil)
        self.state.withLock { state in
            switch command.action {
            case .declareCrisis: state.counts.declared += 1
            case .endCrisis: state.counts.ended += 1
            }
        }
        self.logger.notice(
            "crisis command accepted by LoRaWAN downlink",
            metadata: [
                "action": "\(command.action)", "issuer": "\(trusted.key.issuer)",
                "valid_until": "\(command.validUntil.formatted(.iso8601))",
            ])
        return .accepted(accepted)
    }

    /// The crisis declared by downlink that holds at `now`, if any: the newest unended, unexpired declaration of
    /// a key this box still trusts. What the mode controller treats like an announcement that declares a crisis.
    public func declaredCrisis(at now: Date) throws -> AcceptedCrisisCommand? {
        let trusted = Dictionary(self.keys.map { ($0.fingerprint, $0.key) }, uniquingKeysWith: { first, _ in first })
        return try self.store.crisisCommands().lazy.compactMap { stored -> AcceptedCrisisCommand? in
            guard stored.declaresCrisis, stored.validUntil > now, let key = trusted[stored.keyFingerprint] else { return nil }
            return AcceptedCrisisCommand(
                action: .declareCrisis, issuer: key.issuer, keyID: key.keyID, issuedAt: stored.issuedAt, validUntil: stored.validUntil)
        }.first
    }

    /// Downlinks since start: accepted, fragments, and refused per reason.
    public func counts() -> CrisisDownlinkCounts {
        self.state.withLock { $0.counts }
    }

    private enum Collected {
        case complete([UInt8])
        case outcome(CrisisDownlinkOutcome)
    }

    /// Keeps a fragment; returns the whole command once all its pieces are there.
    private func collect(fragment: [UInt8], at now: Date) -> Collected {
        guard fragment.count > CrisisCommandFragment.headerBytes else {
            return .outcome(self.refuse(.malformed, "a fragment has \(fragment.count) bytes; it needs a 2-byte header and a piece"))
        }
        let tag = fragment[0]
        let index = Int(fragment[1] >> 4)
        let count = Int(fragment[1] & 0x0F)
        guard count >= 2, index < count else {
            return .outcome(self.refuse(.malformed, "fragment \(index) of \(count) is not a piece of a split command"))
        }
        let (complete, dropped, received) = self.state.withLock { state -> ([UInt8]?, Int, Int) in
            state.counts.fragments += 1
            var dropped = 0
            for (pendingTag, pending) in state.pending where now.timeIntervalSince(pending.firstReceivedAt) >= Self.fragmentLifetime {
                dropped += pending.pieces.count
                state.pending[pendingTag] = nil
            }
            var pending = state.pending[tag] ?? PendingCommand(firstReceivedAt: now, count: count, pieces: [:])
            if pending.count != count {
                // Another command under the same tag: the newer fragment wins.
                dropped += pending.pieces.count
                pending = PendingCommand(firstReceivedAt: now, count: count, pieces: [:])
            }
            pending.pieces[index] = Array(fragment.dropFirst(CrisisCommandFragment.headerBytes))
            if pending.pieces.count == count {
                state.pending[tag] = nil
                state.counts.refused[.incompleteFragment, default: 0] += dropped
                return ((0..<count).flatMap { pending.pieces[$0] ?? [] }, dropped, count)
            }
            state.pending[tag] = pending
            while state.pending.count > Self.maximumPendingCommands,
                let oldest = state.pending.min(by: { $0.value.firstReceivedAt < $1.value.firstReceivedAt })
            {
                dropped += oldest.value.pieces.count
                state.pending[oldest.key] = nil
            }
            state.counts.refused[.incompleteFragment, default: 0] += dropped
            return (nil, dropped, pending.pieces.count)
        }
        if dropped > 0 {
            self.logger.notice("crisis command fragments dropped incomplete", metadata: ["fragments": "\(dropped)"])
        }
        guard let complete else { return .outcome(.awaitingFragments(tag: tag, received: received, of: count)) }
        guard CrisisCommandFragment.tag(of: complete) == tag else {
            return .outcome(self.refuse(.malformed, "the fragments tagged \(tag) do not make up one command"))
        }
        return .complete(complete)
    }

    /// Everything but the replay check, which needs the store. Nothing but the version and the key tag is read
    /// before the signature has verified.
    private func verify(_ bytes: [UInt8], now: Date) -> Result<(TrustedKey, CrisisCommand), Refusal<CrisisDownlinkRefusal>> {
        guard bytes.count == SignedCrisisCommand.totalBytes else {
            return .failure(Refusal(.malformed, "a signed command has \(SignedCrisisCommand.totalBytes) bytes, not \(bytes.count)"))
        }
        guard bytes[0] == CrisisCommand.formatVersion else {
            return .failure(Refusal(.malformed, "command format version \(bytes[0]) is not supported (this box knows 1)"))
        }
        let header = Array(bytes.prefix(CrisisCommand.headerBytes))
        let signature = Data(bytes.suffix(SignedCrisisCommand.signatureBytes))
        let keyTag = UInt32(bigEndian: header[1...4])
        let candidates = self.keys.filter { $0.tag == keyTag }
        guard !candidates.isEmpty else {
            return .failure(Refusal(.unknownKey, "key tag \(String(keyTag, radix: 16)) names no key this box trusts"))
        }
        let message = Data(CrisisCommand.domain + header)
        // Two configured keys may share a 4-byte tag (1 in 4 billion): try each.
        guard let trusted = candidates.first(where: { $0.key.isValidSignature(signature, for: message) }) else {
            return .failure(Refusal(.badSignature, "the signature does not verify with the key of \(candidates[0].key.issuer) (\(candidates[0].key.keyID))"))
        }
        let command: CrisisCommand
        do throws(CrisisCommandError) {
            command = try CrisisCommand(header: header)
        } catch {
            return .failure(Refusal(.malformed, error.description))
        }
        if command.issuedAt.timeIntervalSince(now) > AnnouncementDesk.allowedClockSkew {
            return .failure(Refusal(.notYetValid, "issued \(command.issuedAt.formatted(.iso8601)), in the future"))
        }
        if command.validUntil <= now {
            return .failure(Refusal(.expired, "valid until \(command.validUntil.formatted(.iso8601))"))
        }
        let accepted = [CrisisCommand.districtTag(self.district), CrisisCommand.districtTag(AnnouncementPayload.allDistricts)]
        guard accepted.contains(command.districtTag) else {
            return .failure(Refusal(.notThisDistrict, "addressed to another district; this box is in \"\(self.district)\""))
        }
        return .success((trusted, command))
    }

    private func refuse(_ reason: CrisisDownlinkRefusal, _ detail: String) -> CrisisDownlinkOutcome {
        self.state.withLock { $0.counts.refused[reason, default: 0] += 1 }
        self.logger.notice("crisis downlink refused", metadata: ["reason": "\(reason.rawValue)", "detail": "\(detail)"])
        return .refused(reason, detail: detail)
    }
}

extension AnnouncementKey {
    /// ``AnnouncementKey/fingerprint(of:)`` of this key: what a box keeps its replay state by.
    var fingerprint: String {
        guard let publicKey = try? Curve25519.Signing.PublicKey(rawRepresentation: self.publicKeyRaw) else { return "" }
        return Self.fingerprint(of: publicKey)
    }
}
