public import Foundation
import Crypto

/// What a signed crisis command tells the boxes to do.
public enum CrisisAction: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Crisis mode for the addressed district until the command's validity ends (or an end command).
    case declareCrisis = 1
    /// Ends the crisis this authority declared by downlink.
    case endCrisis = 2

    public var description: String {
        switch self {
        case .declareCrisis: "declare crisis"
        case .endCrisis: "end crisis"
        }
    }
}

/// A crisis command as an authority signs it for a LoRaWAN downlink: the compact header, 17 bytes.
///
/// | offset | bytes | field |
/// |---|---|---|
/// | 0 | 1 | format version, 1 |
/// | 1 | 4 | key tag: the first 4 bytes of SHA-256 of the raw 32-byte Ed25519 public key |
/// | 5 | 1 | action: 1 declare crisis, 2 end crisis |
/// | 6 | 4 | district tag: the first 4 bytes of SHA-256 of the district id in UTF-8 ("*" for every district) |
/// | 10 | 4 | issued at, unix seconds, big-endian |
/// | 14 | 2 | valid for, minutes, big-endian, 1…20160 (14 days) |
/// | 16 | 1 | sequence, to order two commands issued in the same second |
///
/// The signature covers ``domain`` followed by these 17 bytes, so a signature over a command can never pass as
/// one over an announcement (whose signed bytes are JSON, starting with `{`) or the other way round.
public struct CrisisCommand: Sendable, Hashable {
    /// The only format version there is.
    public static let formatVersion: UInt8 = 1
    /// The header's length in bytes.
    public static let headerBytes = 17
    /// What the signature covers before the header.
    public static let domain = Array("kiezbox-lorawan-command-v1".utf8)
    /// The longest a command may be valid: the same as an announcement.
    public static let maximumValidityMinutes: UInt16 = UInt16(AnnouncementPayload.maximumLifetime / 60)

    public var keyTag: UInt32
    public var action: CrisisAction
    public var districtTag: UInt32
    /// Unix seconds.
    public var issuedAtSeconds: UInt32
    public var validMinutes: UInt16
    public var sequence: UInt8

    public init(keyTag: UInt32, action: CrisisAction, districtTag: UInt32, issuedAtSeconds: UInt32, validMinutes: UInt16, sequence: UInt8) {
        self.keyTag = keyTag
        self.action = action
        self.districtTag = districtTag
        self.issuedAtSeconds = issuedAtSeconds
        self.validMinutes = validMinutes
        self.sequence = sequence
    }

    /// A command for `district` (an id, or ``AnnouncementPayload/allDistricts``), issued at `issuedAt` (whole
    /// seconds are kept) and valid for `validFor` (whole minutes, 1 minute to 14 days).
    public init(
        action: CrisisAction, district: String, issuedAt: Date, validFor: TimeInterval, sequence: UInt8 = 0, keyTag: UInt32
    ) throws(CrisisCommandError) {
        guard district == AnnouncementPayload.allDistricts || AnnouncementIdentifier.isValid(district) else {
            throw .invalid("the district must be a district id or \"*\"")
        }
        let seconds = issuedAt.timeIntervalSince1970.rounded(.down)
        guard seconds >= 0, seconds <= TimeInterval(UInt32.max) else { throw .invalid("the issue time must lie between 1970 and 2106") }
        let minutes = (validFor / 60).rounded(.down)
        guard minutes >= 1, minutes <= TimeInterval(Self.maximumValidityMinutes) else {
            throw .invalid("the command must be valid for 1 minute to 14 days")
        }
        self.init(
            keyTag: keyTag, action: action, districtTag: Self.districtTag(district), issuedAtSeconds: UInt32(seconds),
            validMinutes: UInt16(minutes), sequence: sequence)
    }

    /// Decodes a header. Checks every field, so a header that decodes can be acted on once its signature verifies.
    public init(header bytes: some Collection<UInt8>) throws(CrisisCommandError) {
        let header = Array(bytes)
        guard header.count == Self.headerBytes else {
            throw .malformed("a command header has \(Self.headerBytes) bytes, not \(header.count)")
        }
        guard header[0] == Self.formatVersion else { throw .malformed("command format version \(header[0]) is not supported (this box knows 1)") }
        guard let action = CrisisAction(rawValue: header[5]) else { throw .malformed("unknown action \(header[5])") }
        let minutes = UInt16(bigEndian: header[14...15])
        guard (1...Self.maximumValidityMinutes).contains(minutes) else {
            throw .malformed("valid for \(minutes) minutes; a command is valid for 1 minute to 14 days")
        }
        self.init(
            keyTag: UInt32(bigEndian: header[1...4]), action: action, districtTag: UInt32(bigEndian: header[6...9]),
            issuedAtSeconds: UInt32(bigEndian: header[10...13]), validMinutes: minutes, sequence: header[16])
    }

    /// The 17 header bytes.
    public var header: [UInt8] {
        [Self.formatVersion] + self.keyTag.bigEndianBytes + [self.action.rawValue] + self.districtTag.bigEndianBytes
            + self.issuedAtSeconds.bigEndianBytes + [UInt8(self.validMinutes >> 8), UInt8(self.validMinutes & 0xFF), self.sequence]
    }

    /// What the Ed25519 signature covers: ``domain`` and the header.
    public var signedMessage: [UInt8] { Self.domain + self.header }

    public var issuedAt: Date { Date(timeIntervalSince1970: TimeInterval(self.issuedAtSeconds)) }
    /// When the command stops being valid; for a declaration, also when the declared crisis ends.
    public var validUntil: Date { self.issuedAt.addingTimeInterval(TimeInterval(self.validMinutes) * 60) }

    /// The tag that stands for `district` in a command: the first 4 bytes of SHA-256 of its UTF-8.
    public static func districtTag(_ district: String) -> UInt32 {
        UInt32(bigEndian: Array(SHA256.hash(data: Array(district.utf8))).prefix(4))
    }

    /// The tag that names an authority key in a command: the first 4 bytes of SHA-256 of the raw public key.
    public static func keyTag(publicKeyRaw: Data) -> UInt32 {
        UInt32(bigEndian: Array(SHA256.hash(data: publicKeyRaw)).prefix(4))
    }
}

/// A crisis command with its signature: the 81 bytes a downlink carries whole (FPort 20) or in fragments
/// (FPort 21, see ``CrisisCommandFragment``).
public struct SignedCrisisCommand: Sendable, Hashable {
    /// An Ed25519 signature's length.
    public static let signatureBytes = 64
    /// Header and signature.
    public static let totalBytes = CrisisCommand.headerBytes + signatureBytes

    public var command: CrisisCommand
    public var signature: [UInt8]

    public init(command: CrisisCommand, signature: [UInt8]) {
        self.command = command
        self.signature = signature
    }

    /// Header and signature, as sent.
    public var bytes: [UInt8] { self.command.header + self.signature }

    /// Splits the command into fragments of at most `maximumFrameBytes` each (51: what EU868 carries at DR0–DR2).
    public func fragments(maximumFrameBytes: Int = CrisisCommandFragment.maximumFrameBytes) -> [[UInt8]] {
        CrisisCommandFragment.split(self.bytes, maximumFrameBytes: maximumFrameBytes)
    }
}

/// One piece of a signed crisis command that does not fit one downlink (FPort 21).
///
/// | offset | bytes | field |
/// |---|---|---|
/// | 0 | 1 | command tag: the first byte of SHA-256 of the whole signed command |
/// | 1 | 1 | index (high 4 bits, from 0) and count (low 4 bits, 2…15) |
/// | 2 | … | the piece: the signed command's bytes, split into `count` near-equal consecutive parts |
///
/// A box joins the pieces of one tag in any order; the tag is checked against the joined bytes, so halves of two
/// different commands are never taken for one.
public enum CrisisCommandFragment {
    /// The largest application payload EU868 carries at DR0–DR2 without MAC commands.
    public static let maximumFrameBytes = 51
    /// Fragment header bytes.
    public static let headerBytes = 2
    /// The most fragments a command may be split into (the count's 4 bits).
    public static let maximumCount = 15

    /// The tag for a whole signed command's bytes.
    public static func tag(of command: [UInt8]) -> UInt8 {
        Array(SHA256.hash(data: command))[0]
    }

    /// `bytes` in as few fragments of at most `maximumFrameBytes` as possible, of near-equal size.
    static func split(_ bytes: [UInt8], maximumFrameBytes: Int) -> [[UInt8]] {
        let room = max(1, maximumFrameBytes - Self.headerBytes)
        let count = min(Self.maximumCount, max(2, (bytes.count + room - 1) / room))
        let tag = Self.tag(of: bytes)
        return (0..<count).map { index in
            let start = bytes.count * index / count
            let end = bytes.count * (index + 1) / count
            return [tag, UInt8(index << 4 | count)] + bytes[start..<end]
        }
    }
}

/// Why a crisis command cannot be built or decoded.
public enum CrisisCommandError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Received bytes that are not a command.
    case malformed(String)
    /// A command that cannot be signed as asked.
    case invalid(String)

    public var description: String {
        switch self {
        case .malformed(let detail), .invalid(let detail): detail
        }
    }
}

extension AnnouncementSigner {
    /// This signer's key tag, for ``CrisisCommand/keyTag``.
    public var crisisCommandKeyTag: UInt32 { CrisisCommand.keyTag(publicKeyRaw: self.privateKey.publicKey.rawRepresentation) }

    /// Signs a crisis command for a LoRaWAN downlink.
    public func sign(_ command: CrisisCommand) throws -> SignedCrisisCommand {
        SignedCrisisCommand(command: command, signature: Array(try self.privateKey.signature(for: command.signedMessage)))
    }
}

extension UInt32 {
    init(bigEndian bytes: some Collection<UInt8>) {
        self = bytes.reduce(0) { $0 << 8 | UInt32($1) }
    }

    var bigEndianBytes: [UInt8] { [UInt8(self >> 24), UInt8(self >> 16 & 0xFF), UInt8(self >> 8 & 0xFF), UInt8(self & 0xFF)] }
}

extension UInt16 {
    init(bigEndian bytes: some Collection<UInt8>) {
        self = bytes.reduce(0) { $0 << 8 | UInt16($1) }
    }
}
