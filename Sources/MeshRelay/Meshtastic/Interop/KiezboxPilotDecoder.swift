public import Foundation
public import KiezboxCore
public import ReadingStore
import SwiftProtobuf

/// Why a Kiezbox 2.0 message (port 258) was not understood. Nothing of such a message is used.
public enum KiezboxPilotDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The payload is not a `KiezboxMessage` protobuf (truncated, bad wire type, invalid UTF-8 in a string).
    case malformed(String)
    /// None of `update`, `control`, `distress` is set.
    case noContent
    /// More than one of them is set (the pilot sends exactly one); the names of those present.
    case severalContents([String])
    /// An enum field holds a value the pilot's schema does not define.
    case unknownEnumValue(field: String, value: Int)
    /// A `control` whose `set` oneof is empty: it sets nothing.
    case controlWithoutSetting

    public var description: String {
        switch self {
        case .malformed(let detail): "not a Kiezbox 2.0 message: \(detail)"
        case .noContent: "a Kiezbox 2.0 message with none of update, control, distress"
        case .severalContents(let names): "a Kiezbox 2.0 message with several of update, control, distress: \(names.joined(separator: ", "))"
        case .unknownEnumValue(let field, let value): "\(field) = \(value) is not a value of the Kiezbox 2.0 schema"
        case .controlWithoutSetting: "a Kiezbox 2.0 control message that sets nothing"
        }
    }
}

/// A Kiezbox 2.0 message, decoded: one of the three things a pilot box or its admin tools send.
public enum KiezboxPilotMessage: Sendable, Hashable {
    case update(PilotUpdate)
    case emergency(PilotEmergency)
    case control(PilotControl)
}

/// Where a decoded message's time came from.
public enum PilotTimeSource: String, Sendable, Hashable, CaseIterable {
    /// The message's own `unix_time` (the pilot box's clock).
    case message
    /// The radio's `MeshPacket.rx_time` (when our radio received the packet, by its clock).
    case packetReceived = "packet"
    /// Our clock when decoding: neither of the others was sane.
    case decoded
}

/// Which times a message may carry: a pilot box without network time starts its clock at 1970, and a radio
/// without GPS reports `rx_time` 0 or its own uptime, so neither is trusted blindly.
///
/// A time is sane when it is not before ``earliest`` (2020-01-01), not more than ``maximumAhead`` (5 minutes)
/// after our clock, and not more than ``maximumAge`` (24 hours) before it. The message's time is preferred, then
/// the packet's receive time, then our clock.
public struct PilotTimeWindow: Sendable, Hashable {
    public var earliest: Date
    public var maximumAhead: TimeInterval
    public var maximumAge: TimeInterval

    public init(
        earliest: Date = Date(timeIntervalSince1970: 1_577_836_800), maximumAhead: TimeInterval = 5 * 60,
        maximumAge: TimeInterval = 24 * 3600
    ) {
        self.earliest = earliest
        self.maximumAhead = maximumAhead
        self.maximumAge = maximumAge
    }

    public func isSane(_ time: Date, now: Date) -> Bool {
        time >= self.earliest && time <= now.addingTimeInterval(self.maximumAhead)
            && time >= now.addingTimeInterval(-self.maximumAge)
    }

    /// The first sane one of the message's Unix time (seconds; 0 = absent) and the packet's receive time, else `now`.
    public func choose(messageTime: Int64?, packetReceivedAt: UInt32?, now: Date) -> (time: Date, source: PilotTimeSource) {
        if let seconds = messageTime, seconds != 0 {
            let time = Date(timeIntervalSince1970: TimeInterval(seconds))
            if self.isSane(time, now: now) { return (time, .message) }
        }
        if let seconds = packetReceivedAt, seconds != 0 {
            let time = Date(timeIntervalSince1970: TimeInterval(seconds))
            if self.isSane(time, now: now) { return (time, .packetReceived) }
        }
        return (now, .decoded)
    }
}

/// A pilot box's router, as its core update reports it.
public struct PilotRouterStatus: Sendable, Hashable {
    public var powered: Bool
    public var model: String?
    public var softwareVersion: String?

    public init(powered: Bool, model: String? = nil, softwareVersion: String? = nil) {
        self.powered = powered
        self.model = model
        self.softwareVersion = softwareVersion
    }
}

/// A value dropped because no working sensor reports it.
public struct PilotImplausibleValue: Sendable, Hashable {
    public var field: PilotValueField
    /// In the quantity's unit (already divided by 1000).
    public var value: Double

    public init(field: PilotValueField, value: Double) {
        self.field = field
        self.value = value
    }
}

/// A pilot box's status update (`KiezboxMessage.update`) as Kiezbox readings.
public struct PilotUpdate: Sendable, Hashable {
    public var box: PilotBoxAddress
    /// The box's mode, when the update has a core part.
    public var mode: Mode?
    public var router: PilotRouterStatus?
    /// One reading per present value that has a Kiezbox quantity and is plausible, each with its sensor id
    /// (``PilotBoxAddress/sensorID(_:)``), all measured at ``measuredAt``.
    public var readings: [Reading]
    public var measuredAt: Date
    public var timeSource: PilotTimeSource
    /// Present values without a Kiezbox quantity (solar energy, gas resistance, clock temperature, noise).
    public var skipped: [PilotValueField]
    /// Present values outside their field's ``PilotValueField/plausibleRange``.
    public var implausible: [PilotImplausibleValue]
}

/// What an emergency button on a pilot box reports.
public enum PilotEmergencyType: String, Sendable, Hashable, CaseIterable {
    case medical, fire, crime, sick, help

    init(_ wire: Meshtastic_KiezboxMessage.EmergencyType) throws(KiezboxPilotDecodingError) {
        switch wire {
        case .medical: self = .medical
        case .fire: self = .fire
        case .crime: self = .crime
        case .sick: self = .sick
        case .help: self = .help
        case .UNRECOGNIZED(let value): throw .unknownEnumValue(field: "distress.type", value: value)
        }
    }

    /// The bulletin category a help request for it gets.
    public var category: BulletinCategory {
        switch self {
        case .medical, .sick: .medical
        case .fire: .fire
        case .crime, .help: .other
        }
    }

    /// What the button means, German and English, for the bulletin.
    var label: (german: String, english: String) {
        switch self {
        case .medical: ("Medizinischer Notfall", "medical emergency")
        case .fire: ("Feuer", "fire")
        case .crime: ("Straftat", "crime")
        case .sick: ("Erkrankung", "illness")
        case .help: ("Hilfe benötigt", "help needed")
        }
    }
}

/// A help request for the bulletin, made from a pilot's emergency message. Its expiry is the bulletin's post
/// lifetime, which the caller applies.
public struct PilotHelpRequest: Sendable, Hashable {
    public var kind: BulletinKind
    public var category: BulletinCategory
    /// German and English, then the pilot's own text, within ``PilotEmergency/maximumHelpTextCharacters``.
    public var text: String
    /// Which box and button.
    public var place: String
    public var createdAt: Date
}

/// An emergency button press on a pilot box (`KiezboxMessage.distress`).
public struct PilotEmergency: Sendable, Hashable {
    /// The bulletin's limit for a post's text (the portal's form allows 280 characters).
    public static let maximumHelpTextCharacters = 280

    public var box: PilotBoxAddress
    /// Medical when the field is absent: the pilot's implicit default (0 is never on the wire).
    public var type: PilotEmergencyType
    /// 0 when absent.
    public var buttonID: Int32
    public var pressedAt: Date
    public var timeSource: PilotTimeSource
    public var message: String?

    /// The help request the bulletin shows for it.
    public func helpRequest() -> PilotHelpRequest {
        let label = self.type.label
        var text = "Notruf-Taste (\(label.german)) / Emergency button (\(label.english))"
        if let message = self.message?.trimmingCharacters(in: .whitespacesAndNewlines), !message.isEmpty {
            text += ": " + message
        }
        if text.count > Self.maximumHelpTextCharacters {
            text = String(text.prefix(Self.maximumHelpTextCharacters - 1)) + "…"
        }
        return PilotHelpRequest(
            kind: .request, category: self.type.category, text: text,
            place: "Kiezbox 2.0 \(self.box.name), Taste/button \(self.buttonID)", createdAt: self.pressedAt)
    }
}

/// What a pilot control message sets (the `set` oneof).
public enum PilotControlSetting: Sendable, Hashable {
    case mode(Mode)
    case unixTime(Int64)
    case routerPower(Bool)
    case boxID(UInt32)
    case districtID(UInt32)
    case sensorModuleID(UInt32)
    /// Most likely milliseconds.
    case statusInterval(Int32)
    case particulateWarmUp(Int32)
    case enabled(Bool)
    case deviceType(PilotDeviceType)
    case buttonID(Int32)

    init(_ wire: Meshtastic_KiezboxMessage.Control.OneOf_Set) throws(KiezboxPilotDecodingError) {
        switch wire {
        case .mode(let mode): self = .mode(try Mode(pilot: mode, field: "control.mode"))
        case .unixTime(let seconds): self = .unixTime(seconds)
        case .routerPower(let on): self = .routerPower(on)
        case .boxID(let id): self = .boxID(id)
        case .distID(let id): self = .districtID(id)
        case .sensID(let id): self = .sensorModuleID(id)
        case .statusInterval(let interval): self = .statusInterval(interval)
        case .sdsWarmupTime(let time): self = .particulateWarmUp(time)
        case .enabled(let enabled): self = .enabled(enabled)
        case .devType(let type): self = .deviceType(try PilotDeviceType(type))
        case .buttonID(let id): self = .buttonID(id)
        }
    }

    /// "mode = crisis (pilot: emergency)", "router_power = off".
    public var description: String {
        switch self {
        case .mode(let mode): "mode = \(mode.pilotName)"
        case .unixTime(let seconds): "unix_time = \(seconds) (\(Date(timeIntervalSince1970: TimeInterval(seconds)).formatted(.iso8601)))"
        case .routerPower(let on): "router_power = \(on ? "on" : "off")"
        case .boxID(let id): "box_id = \(id)"
        case .districtID(let id): "dist_id = \(id)"
        case .sensorModuleID(let id): "sens_id = \(id)"
        case .statusInterval(let interval): "status_interval = \(interval)"
        case .particulateWarmUp(let time): "sds_warmup_time = \(time)"
        case .enabled(let enabled): "enabled = \(enabled)"
        case .deviceType(let type): "dev_type = \(type.rawValue)"
        case .buttonID(let id): "button_id = \(id)"
        }
    }
}

extension Mode {
    /// The mode's pilot name, with Kiezbox's when they differ: "emergency (crisis)".
    var pilotName: String {
        switch self {
        case .maintenance, .normal: self.rawValue
        case .crisis: "emergency (crisis)"
        }
    }
}

/// What a Kiezbox could do about a pilot control message, if its configuration allowed obeying them.
public enum PilotControlEffect: Sendable, Hashable {
    case declareCrisis
    case endCrisis
    /// Nothing a Kiezbox has; the reason, for the log.
    case notApplicable(String)
}

/// A command from the pilot's admin tools (`KiezboxMessage.control`). Unauthenticated: anyone with a radio on
/// the channel can send one, so it is logged and shown, never obeyed unless the configuration says so.
public struct PilotControl: Sendable, Hashable {
    /// The device the command is meant for, as its `meta` says (fields left out address any); the node number is
    /// the sender's.
    public var target: PilotBoxAddress
    public var setting: PilotControlSetting
    public var receivedAt: Date

    /// Whether the command is meant for a box with these pilot ids (a field the command leaves out matches any).
    public func isAddressed(toDistrictID districtID: UInt32, boxID: UInt32) -> Bool {
        (self.target.districtID ?? districtID) == districtID && (self.target.boxID ?? boxID) == boxID
    }

    /// One line for the log and the status: "control from !a1b2c3d4 for kb2-d3-b17 (core): mode = emergency (crisis)".
    public var description: String {
        var addressee = self.target.districtID != nil && self.target.boxID != nil ? self.target.name : "any box"
        if let type = self.target.deviceType { addressee += " (\(type.rawValue))" }
        if let module = self.target.sensorModuleID { addressee += " sensor \(module)" }
        return "control from \(self.target.nodeName) for \(addressee): \(self.setting.description)"
    }

    /// What obeying it would mean: only a mode change has a Kiezbox meaning (emergency declares crisis mode,
    /// normal ends it); the rest concerns the pilot's own hardware.
    public var effect: PilotControlEffect {
        switch self.setting {
        case .mode(.crisis): .declareCrisis
        case .mode(.normal): .endCrisis
        case .mode(.maintenance): .notApplicable("maintenance mode is set by a resident at the box, not over the radio")
        default: .notApplicable("\(self.setting.description) concerns the Kiezbox 2.0 hardware")
        }
    }
}

/// Turns received Kiezbox 2.0 messages (Meshtastic port 258) into Kiezbox values. Pure: no I/O, no clock of
/// its own (the caller passes `now`).
public struct KiezboxPilotDecoder: Sendable {
    public var timeWindow: PilotTimeWindow

    public init(timeWindow: PilotTimeWindow = PilotTimeWindow()) {
        self.timeWindow = timeWindow
    }

    /// Decodes a port-258 payload sent by node `sender`, received at `packetReceivedAt` (`MeshPacket.rx_time`,
    /// nil or 0 when the radio did not say).
    public func decode(payload: [UInt8], from sender: UInt32, packetReceivedAt: UInt32? = nil, now: Date) throws(KiezboxPilotDecodingError)
        -> KiezboxPilotMessage
    {
        let message: Meshtastic_KiezboxMessage
        do {
            message = try Meshtastic_KiezboxMessage(serializedBytes: payload)
        } catch {
            throw .malformed("\(error)")
        }
        return try self.decode(message, from: sender, packetReceivedAt: packetReceivedAt, now: now)
    }

    /// Decodes a `KiezboxMessage` sent by node `sender`.
    public func decode(_ message: Meshtastic_KiezboxMessage, from sender: UInt32, packetReceivedAt: UInt32? = nil, now: Date)
        throws(KiezboxPilotDecodingError) -> KiezboxPilotMessage
    {
        let present = [("update", message.hasUpdate), ("control", message.hasControl), ("distress", message.hasDistress)]
            .filter(\.1).map(\.0)
        guard present.count <= 1 else { throw .severalContents(present) }
        if message.hasUpdate {
            return .update(try self.update(message.update, from: sender, packetReceivedAt: packetReceivedAt, now: now))
        }
        if message.hasControl {
            let control = message.control
            guard let set = control.set else { throw .controlWithoutSetting }
            return .control(
                PilotControl(
                    target: try PilotBoxAddress(meta: control.hasMeta ? control.meta : nil, nodeNumber: sender),
                    setting: try PilotControlSetting(set), receivedAt: now))
        }
        if message.hasDistress {
            let distress = message.distress
            let (time, source) = self.timeWindow.choose(
                messageTime: distress.unixTime, packetReceivedAt: packetReceivedAt, now: now)
            return .emergency(
                PilotEmergency(
                    box: PilotBoxAddress(nodeNumber: sender), type: try PilotEmergencyType(distress.type),
                    buttonID: distress.buttonID, pressedAt: time, timeSource: source,
                    message: distress.hasMessage ? distress.message : nil))
        }
        throw .noContent
    }

    private func update(_ update: Meshtastic_KiezboxMessage.Update, from sender: UInt32, packetReceivedAt: UInt32?, now: Date)
        throws(KiezboxPilotDecodingError) -> PilotUpdate
    {
        let box = try PilotBoxAddress(meta: update.hasMeta ? update.meta : nil, nodeNumber: sender)
        let (time, source) = self.timeWindow.choose(messageTime: update.unixTime, packetReceivedAt: packetReceivedAt, now: now)
        var result = PilotUpdate(
            box: box, mode: nil, router: nil, readings: [], measuredAt: time, timeSource: source, skipped: [], implausible: [])
        var present: [(PilotValueField, Int32)] = []
        if update.hasCore {
            let core = update.core
            result.mode = try Mode(pilot: core.mode, field: "core.mode")
            if core.hasRouter {
                let router = core.router
                result.router = PilotRouterStatus(
                    powered: router.powered, model: router.hasModel ? router.model : nil,
                    softwareVersion: router.hasSwVersion ? router.swVersion : nil)
            }
            present += PilotValueField.coreFields.compactMap { field in field.raw(in: core.values).map { (field, $0) } }
        }
        if update.hasSensor {
            let values = update.sensor.values
            present += PilotValueField.sensorFields.compactMap { field in field.raw(in: values).map { (field, $0) } }
        }
        let sensorModuleID = box.sensorModuleID ?? 0
        for (field, raw) in present {
            guard let quantity = field.quantity, let range = field.plausibleRange else {
                result.skipped.append(field)
                continue
            }
            let value = Double(raw) / PilotValueField.scale
            guard range.contains(value) else {
                result.implausible.append(PilotImplausibleValue(field: field, value: value))
                continue
            }
            result.readings.append(
                Reading(
                    sensorID: box.sensorID(field.part(sensorModuleID: sensorModuleID)), quantity: quantity, value: value,
                    measuredAt: time))
        }
        return result
    }
}
