import KiezboxCore
import SensorDrivers
import Synchronization

/// A Seeed Wio-E5 (LoRa-E5) with its factory AT firmware (lora-and-appliance.md §1.1).
///
/// Every reply is a `+CMD: text` line; a set command answers with its new value (or, for `AT+KEY`, sometimes
/// with nothing), and a join or an uplink is a `Start … Done` transaction whose refusals (`Please join network
/// first`, `LoRaWAN modem is busy`, `No band in <N>ms`, `Length error <max>`, `No free channel`) may come without
/// a `Done`. Lines of other commands and unknown lines are logged and skipped.
///
/// The firmware has no query for the join state, so ``isJoined()`` reports what the last join or uplink showed.
/// After a restart of the daemon that is "not joined"; a join then costs no airtime when the modem still has its
/// session, because it answers `+JOIN: Joined already`.
///
/// ```swift
/// let port = try LinuxSerialPort(path: "/dev/ttyUSB0", baudRate: WioE5Modem.baudRate)
/// let modem = WioE5Modem(port: port, log: { logger.debug("\($0)") })
/// try await modem.configure(keys: keys, dataRate: nil)
/// try await modem.join()
/// let transmission = try await modem.send(port: 8, payload: report)
/// ```
public final class WioE5Modem: LoRaWANModem {
    /// The AT application's line speed (with the BOOT pin high at reset; the bootloader uses 115200).
    public static let baudRate: SerialBaudRate = .b9600

    public let kind: LoRaWANModemKind = .wioE5
    public var portName: String { self.link.port.name }
    private let link: ATModemLink
    private let joined = Mutex(false)

    /// - Parameters:
    ///   - port: opened at ``baudRate``.
    ///   - timeouts: hang guards for replies, joins and uplinks.
    ///   - log: every command and reply (AppKey hidden), and the lines skipped.
    public init(port: any SerialPort, timeouts: LoRaWANModemTimeouts = LoRaWANModemTimeouts(), log: @escaping LoRaWANModemLog = { _ in }) {
        self.link = ATModemLink(port: port, timeouts: timeouts, log: log)
    }

    public func identify() async throws -> LoRaWANModemIdentity {
        try await self.link.converse { conversation in try await self.identify(&conversation) }
    }

    private func identify(_ conversation: inout ATModemConversation) async throws -> LoRaWANModemIdentity {
        let command = "AT+VER"
        try await conversation.write(command)
        var strangeAnswer: String?
        let portName = self.portName
        let version: String? = try await conversation.answer(timeout: conversation.timeouts.reply) { line in
            if let reply = WioE5Line(line), reply.name == "VER" {
                if let refusal = reply.refusal(command: command) { throw refusal }
                return .answer(reply.text)
            }
            if RAK3172Line(line).isDialectSpecific { throw LoRaWANModemError.unrecognisedModem(port: portName, answer: line) }
            strangeAnswer = strangeAnswer ?? line
            return .unknown
        }
        guard let version else {
            throw strangeAnswer.map { LoRaWANModemError.unrecognisedModem(port: portName, answer: $0) } ?? conversation.noAnswer(command)
        }
        return LoRaWANModemIdentity(kind: .wioE5, firmwareVersion: version)
    }

    public func configure(keys: LoRaWANKeys, dataRate: Int?) async throws {
        self.link.hide(keys.appKey)
        try await self.link.converse { conversation in try await self.configure(keys: keys, dataRate: dataRate, &conversation) }
    }

    private func configure(keys: LoRaWANKeys, dataRate: Int?, _ conversation: inout ATModemConversation) async throws {
        try await self.setIdentifier("DevEui", keys.devEUI, &conversation)
        try await self.setIdentifier("AppEui", keys.joinEUI, &conversation)
        // Firmware 4.0.11 was seen answering a valid key with nothing, so the echo is optional; it would show the key,
        // which the conversation hides in its log.
        _ = try await self.exchange("AT+KEY=APPKEY,\"\(Hex.encode(keys.appKey))\"", name: "KEY", replyIsOptional: true, &conversation)
        try await self.set("AT+DR=EU868", name: "DR", expecting: "EU868", &conversation)
        try await self.set("AT+MODE=LWOTAA", name: "MODE", expecting: "LWOTAA", &conversation)
        try await self.set("AT+CLASS=A", name: "CLASS", expecting: "A", &conversation)
        try await self.set("AT+ADR=\(dataRate == nil ? "ON" : "OFF")", name: "ADR", expecting: dataRate == nil ? "ON" : "OFF", &conversation)
        if let dataRate {
            try await self.set("AT+DR=DR\(dataRate)", name: "DR", expecting: "DR\(dataRate)", &conversation)
        }
    }

    public func join() async throws {
        try await self.link.converse { conversation in try await self.join(&conversation) }
    }

    private func join(_ conversation: inout ATModemConversation) async throws {
        let command = "AT+JOIN"
        try await conversation.write(command)
        var accepted = false
        var failure: String?
        let joined: Bool? = try await conversation.answer(timeout: conversation.timeouts.join) { line in
            guard let reply = WioE5Line(line), reply.name == "JOIN" else { return .unknown }
            if let refusal = reply.refusal(command: command) { throw refusal }
            switch reply.text {
            case "Joined already": return .answer(true)
            case "Network joined":
                accepted = true
                return .known
            case "Join failed":
                failure = reply.text
                return .known
            case "Done": return .answer(accepted)
            case "Start", "NORMAL", "FORCE": return .known
            case let text where text.hasPrefix("NetID"): return .known
            default: return .unknown
            }
        }
        guard let joined else {
            // The accept came but `Done` did not: the session exists.
            if accepted {
                self.joined.withLock { $0 = true }
                return
            }
            throw conversation.noAnswer(command)
        }
        self.joined.withLock { $0 = joined }
        if !joined { throw LoRaWANModemError.joinFailed(reason: failure ?? "no join accept before Done") }
    }

    public func isJoined() async throws -> Bool {
        self.joined.withLock { $0 }
    }

    public func dataRate() async throws -> Int {
        try await self.link.converse { conversation in try await self.dataRate(&conversation) }
    }

    private func dataRate(_ conversation: inout ATModemConversation) async throws -> Int {
        let command = "AT+DR"
        try await conversation.write(command)
        let dataRate: Int? = try await conversation.answer(timeout: conversation.timeouts.reply) { line in
            guard let reply = WioE5Line(line), reply.name == "DR" else { return .unknown }
            if let refusal = reply.refusal(command: command) { throw refusal }
            // `+DR: DR5`; the `+DR: EU868 DR5  SF7 BW125K` line that follows is the region's description.
            guard reply.text.hasPrefix("DR"), let value = Int(reply.text.dropFirst(2)) else { return .known }
            return .answer(value)
        }
        guard let dataRate else { throw conversation.noAnswer(command) }
        // Read the description line now, so it is not left over for the next command.
        _ = try await conversation.answer(timeout: min(conversation.timeouts.reply, .milliseconds(500))) { line in
            WioE5Line(line)?.name == "DR" ? .answer(()) : .unknown
        }
        return dataRate
    }

    public func send(port: UInt8, payload: [UInt8]) async throws -> LoRaWANTransmission {
        guard lorawanApplicationPorts.contains(port) else {
            throw LoRaWANModemError.refused(command: "AT+PORT=\(port)", reply: "an application port is 1…223")
        }
        return try await self.link.converse { conversation in try await self.send(port: port, payload: payload, &conversation) }
    }

    private func send(port: UInt8, payload: [UInt8], _ conversation: inout ATModemConversation) async throws -> LoRaWANTransmission {
        let dataRate = try await self.dataRate(&conversation)
        try await self.set("AT+PORT=\(port)", name: "PORT", expecting: "\(port)", &conversation)
        let command = payload.isEmpty ? "AT+MSGHEX" : "AT+MSGHEX=\"\(Hex.encode(payload))\""
        try await conversation.write(command)
        var downlinks: [LoRaWANDownlink] = []
        var started = false
        let done: Bool?
        do {
            done = try await conversation.answer(timeout: conversation.timeouts.transmission) { line in
                guard let reply = WioE5Line(line), reply.name == "MSGHEX" else { return .unknown }
                if let refusal = reply.refusal(command: command) { throw refusal }
                switch reply.text {
                case "Done": return .answer(true)
                case "Start":
                    started = true
                    return .known
                case "FPENDING", "ACK Received", "MULTICAST", "Wait ACK": return .known
                case let text where text.hasPrefix("Link") || text.hasPrefix("TX"): return .known
                case let text where text.hasPrefix("PORT:"):
                    guard let downlink = WioE5Line.downlink(text) else { return .unknown }
                    downlinks.append(downlink)
                    return .known
                case let text where text.hasPrefix("RXWIN"):
                    if !downlinks.isEmpty { WioE5Line.addSignal(text, to: &downlinks[downlinks.count - 1]) }
                    return .known
                default: return .unknown
                }
            }
        } catch LoRaWANModemError.notJoined {
            self.joined.withLock { $0 = false }
            throw LoRaWANModemError.notJoined
        }
        guard done != nil else {
            throw started ? LoRaWANModemError.noAnswer(command: command + " (started, no Done)", port: self.portName) : conversation.noAnswer(command)
        }
        self.joined.withLock { $0 = true }
        return LoRaWANTransmission(dataRate: dataRate, payloadLength: payload.count, downlinks: downlinks)
    }

    // MARK: - Commands

    /// Writes `command` and returns the text of its `+NAME:` reply; nil when the reply is optional and none came.
    private func exchange(
        _ command: String,
        name: String,
        replyIsOptional: Bool = false,
        _ conversation: inout ATModemConversation
    ) async throws -> String? {
        try await conversation.write(command)
        let text: String? = try await conversation.answer(timeout: conversation.timeouts.reply) { line in
            guard let reply = WioE5Line(line), reply.name == name else { return .unknown }
            if let refusal = reply.refusal(command: command) { throw refusal }
            return .answer(reply.text)
        }
        if text == nil, !replyIsOptional { throw conversation.noAnswer(command) }
        return text
    }

    /// A set command whose reply must be `+NAME: expected` (letter case aside).
    private func set(_ command: String, name: String, expecting expected: String, _ conversation: inout ATModemConversation) async throws {
        let text = try await self.exchange(command, name: name, &conversation)
        guard let text, text.lowercased() == expected.lowercased() else {
            throw conversation.refused(command, "+\(name): \(text ?? "")")
        }
    }

    /// `AT+ID=DevEui,"…"`, answered by `+ID: DevEui, 01:23:…` with the identifier as the modem now has it.
    private func setIdentifier(_ name: String, _ value: [UInt8], _ conversation: inout ATModemConversation) async throws {
        let command = "AT+ID=\(name),\"\(Hex.encode(value))\""
        let text = try await self.exchange(command, name: "ID", &conversation) ?? ""
        let echoed = text.split(separator: ",", maxSplits: 1).last.map { $0.filter { $0 != ":" && $0 != " " } }
        guard text.lowercased().hasPrefix(name.lowercased()), let echoed, Hex.decode(echoed) == value else {
            throw conversation.refused(command, "+ID: \(text)")
        }
    }
}

/// A Wio-E5 reply line, `+NAME: text`.
struct WioE5Line {
    /// The command name, upper case (`MSGHEX`).
    var name: String
    var text: String

    init?(_ line: String) {
        guard line.hasPrefix("+"), !line.hasPrefix("+EVT:"), let colon = line.firstIndex(of: ":") else { return nil }
        let name = line[line.index(after: line.startIndex)..<colon]
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else { return nil }
        self.name = name.uppercased()
        self.text = String(line[line.index(after: colon)...].drop { $0 == " " })
    }

    /// The typed error for a refusal line; nil for any other line.
    func refusal(command: String) -> LoRaWANModemError? {
        switch self.text {
        case "Please join network first": return .notJoined
        case "LoRaWAN modem is busy": return .busy
        case "No free channel": return .noFreeChannel
        case let text where text.hasPrefix("No band in"):
            return .dutyCycle(wait: leadingInteger(text.dropFirst("No band in".count)).map { Duration.milliseconds($0) })
        case let text where text.hasPrefix("Length error"):
            return .lengthError(maximum: leadingInteger(text.dropFirst("Length error".count)))
        case let text where text == "DR error" || text == "Not in OTAA mode" || text.hasPrefix("ERROR("):
            return .refused(command: command, reply: "+\(self.name): \(text)")
        default: return nil
        }
    }

    /// `PORT: 8; RX: "12345678"` (upper-case hex in quotes).
    static func downlink(_ text: String) -> LoRaWANDownlink? {
        let parts = text.split(separator: ";", maxSplits: 1)
        guard parts.count == 2, let port = leadingInteger(parts[0].dropFirst("PORT:".count)), let fport = UInt8(exactly: port),
            let open = parts[1].firstIndex(of: "\""), let close = parts[1].lastIndex(of: "\""), open < close,
            let payload = Hex.decode(parts[1][parts[1].index(after: open)..<close])
        else { return nil }
        return LoRaWANDownlink(port: fport, payload: payload)
    }

    /// `RXWIN2, RSSI -106, SNR 4`: the signal of the downlink just received.
    static func addSignal(_ text: String, to downlink: inout LoRaWANDownlink) {
        for field in text.split(separator: ",") {
            let words = field.split(separator: " ")
            guard words.count == 2 else { continue }
            switch words[0] {
            case "RSSI": downlink.rssi = Int(words[1])
            case "SNR": downlink.snr = Double(words[1])
            default: break
            }
        }
    }
}
