import Foundation
import SwiftProtobuf

/// Why a PRIVATE_APP payload is not Kiezbox box-to-box traffic we can use. Every rejection of
/// ``KiezboxMeshCodec``, ``AnnouncementReassembler`` and ``MeshHelpRequest`` is one of these.
public enum KiezboxMeshError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Not Kiezbox traffic: another application on port 256 (its first bytes are not our magic).
    case foreignPayload
    case unsupportedVersion(UInt32)
    /// Not a protobuf of our schema (truncated, bad wire type, invalid UTF-8).
    case malformed(String)
    /// The message has neither an announcement fragment nor a help request.
    case noContent
    /// A fragment's count is 0 or above the limit a reassembler accepts.
    case fragmentCountOutOfRange(count: UInt32, limit: Int)
    case fragmentIndexOutOfRange(index: UInt32, count: UInt32)
    /// A chunk whose length breaks the rule: every fragment but the last exactly the chunk length, the last 1 to it.
    case fragmentChunkLength(index: UInt32, length: Int)
    /// A fragment that disagrees with one already received for the same announcement id (another count, other
    /// bytes at the same index). The first one received is kept.
    case conflictingFragment(announcementID: UInt64, index: UInt32)
    /// All fragments arrived, but their bytes do not hash to the announcement id: the announcement is dropped.
    case digestMismatch(announcementID: UInt64)
    /// A compact envelope whose parts break a rule: (part, rule).
    case invalidEnvelope(String, String)
    /// An announcement envelope larger than fragments may carry.
    case envelopeTooLarge(bytes: Int, limit: Int)
    /// A relayed help request whose field breaks a rule: (field, rule).
    case invalidHelpRequest(String, String)

    public var description: String {
        switch self {
        case .foreignPayload: "not Kiezbox traffic (another application on PRIVATE_APP)"
        case .unsupportedVersion(let version): "Kiezbox mesh message version \(version) is not supported (this box knows 1)"
        case .malformed(let detail): "not a Kiezbox mesh message: \(detail)"
        case .noContent: "a Kiezbox mesh message without content"
        case .fragmentCountOutOfRange(let count, let limit): "an announcement in \(count) fragments (1 to \(limit) are accepted)"
        case .fragmentIndexOutOfRange(let index, let count): "fragment \(index) of \(count)"
        case .fragmentChunkLength(let index, let length): "fragment \(index) carries \(length) bytes, against the chunk rule"
        case .conflictingFragment(let id, let index): "fragment \(index) of announcement \(hex(id)) conflicts with the one received before"
        case .digestMismatch(let id): "the fragments of announcement \(hex(id)) do not hash to its id"
        case .invalidEnvelope(let part, let rule): "announcement \(part): expected \(rule)"
        case .envelopeTooLarge(let bytes, let limit): "an announcement of \(bytes) bytes; fragments carry at most \(limit)"
        case .invalidHelpRequest(let field, let rule): "relayed help request \(field): expected \(rule)"
        }
    }
}

private func hex(_ id: UInt64) -> String {
    let digits = String(id, radix: 16)
    return String(repeating: "0", count: 16 - digits.count) + digits
}

/// What a Kiezbox sends another Kiezbox on PRIVATE_APP (port 256): `KiezboxMeshMessage` of
/// proto/meshtastic/kiezbox_mesh.proto, with a magic number and a version first so the port's other users are
/// told apart.
public enum KiezboxMeshCodec {
    /// The `magic` field: the bytes "KBOX" on the wire.
    public static let magic: UInt32 = 0x584F_424B
    public static let version: UInt32 = 1

    /// What a box-to-box message carries.
    public enum Content: Sendable, Hashable {
        case announcementFragment(Kiezbox_AnnouncementFragment)
        case helpRequest(MeshHelpRequest)
    }

    /// `content` as a PRIVATE_APP payload.
    public static func payload(_ content: Kiezbox_KiezboxMeshMessage.OneOf_Content) -> [UInt8] {
        let message = Kiezbox_KiezboxMeshMessage.with {
            $0.magic = Self.magic
            $0.version = Self.version
            $0.content = content
        }
        // Our own message with bytes and strings only: serialising cannot fail.
        return (try? message.serializedBytes()) ?? []
    }

    /// Decodes a PRIVATE_APP payload. A fragment is checked on its own (count, index, chunk length); whether it
    /// fits the others of its announcement is the ``AnnouncementReassembler``'s concern.
    public static func decode(payload: [UInt8]) throws(KiezboxMeshError) -> Content {
        // The magic is the first field (tag 0x0D, then 4 bytes): anything else is not ours, whatever it decodes as.
        let magicBytes = withUnsafeBytes(of: Self.magic.littleEndian) { Array($0) }
        guard payload.count >= 5, payload[0] == 0x0D, Array(payload[1..<5]) == magicBytes else { throw .foreignPayload }
        let message: Kiezbox_KiezboxMeshMessage
        do {
            message = try Kiezbox_KiezboxMeshMessage(serializedBytes: payload)
        } catch {
            throw .malformed("\(error)")
        }
        guard message.magic == Self.magic else { throw .foreignPayload }
        guard message.version == Self.version else { throw .unsupportedVersion(message.version) }
        switch message.content {
        case .announcementFragment(let fragment)?:
            try AnnouncementFragmenter.check(fragment)
            return .announcementFragment(fragment)
        case .helpRequest(let request)?:
            return .helpRequest(try MeshHelpRequest(request))
        case nil:
            throw .noContent
        }
    }
}
