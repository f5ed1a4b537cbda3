import KiezboxCore
import SensorDrivers
import Synchronization

/// A RAKwireless RAK3172 with RUI3 AT firmware (lora-and-appliance.md §1.2 and §10).
///
/// Arguments are separated by `:`; a get (`AT+X=?`) answers `AT+X=<value>` and then a status line, `OK` or one of
/// the `AT_…` errors. A join and an uplink answer `OK` at once and their result later as events: `+EVT:JOINED` /
/// `+EVT:JOIN_FAILED_…`, and `+EVT:TX_DONE` followed by any downlink `+EVT:RX_<slot>:<rssi>:<snr>:UNICAST:<port>:<hex>`.
///
/// What costs airtime without being asked for is counted: a payload too long for the data rate makes the firmware
/// send an empty frame anyway (`AT_PARAM_ERROR`, reported as ``LoRaWANModemError/lengthError(maximum:extraEmptyFrames:)``
/// with one extra frame), and a confirmed downlink or frame-pending bit makes it send an empty uplink of its own,
/// whose `+EVT:TX_DONE` is counted in the next ``LoRaWANTransmission/extraEmptyFrames``. A downlink that arrives
/// after an uplink's wait ended is handed out with the next transmission.
public final class RAK3172Modem: LoRaWANModem {
    /// UART2 (LPUART1) of the module; the RAK3172 evaluation board's USB port defaults to 9600 instead.
    public static let baudRate: SerialBaudRate = .b115200

    public let kind: LoRaWANModemKind = .rak3172
    public var portName: String { self.link.port.name }
    private let link: ATModemLink

    private struct Unreported {
        /// Empty frames the firmware sent on its own since the last transmission was reported.
        var emptyFrames = 0
        /// Downlinks that arrived after their uplink's wait ended.
        var downlinks: [LoRaWANDownlink] = []
    }

    private let unreported = Mutex(Unreported())

    /// - Parameters:
    ///   - port: opened at ``baudRate`` (9600 for the evaluation board's USB port).
    ///   - timeouts: hang guards for replies, joins and uplinks.
    ///   - log: every command and reply (AppKey hidden), and the lines skipped.
    public init(port: any SerialPort, timeouts: LoRaWANModemTimeouts = LoRaWANModemTimeouts(), log: @escaping LoRaWANModemLog = { _ in }) {
        self.link = ATModemLink(port: port, timeouts: timeouts, log: log)
    }

    public func identify() async throws -> LoRaWANModemIdentity {
        try await self.link.converse { conversation in try await self.identify(&conversation) }
    }

    private func identify(_ conversation: inout ATModemConversation) async throws -> LoRaWANModemIdentity {
        let command = "AT+VER=?"
        try await self.write(command, &conversation)
        var version: String?
        var strangeAnswer: String?
        var events: [String] = []
        let portName = self.portName
        let status: String? = try await conversation.answer(timeout: conversation.timeouts.reply) { line in
            switch RAK3172Line(line) {
            case .value(name: "VER", let value):
                version = value
                return .known
            case .status(let status): return .answer(status)
            case .event(let event):
                events.append(event)
                return .known
            case .value, .restrictedWait: return .unknown
            case .other:
                // A Wio-E5 answers `+VER: 4.0.11` (or `+VER: ERROR(…)`); other `+…:` lines may be noise.
                if WioE5Line(line)?.name == "VER" { throw LoRaWANModemError.unrecognisedModem(port: portName, answer: line) }
                strangeAnswer = strangeAnswer ?? line
                return .unknown
            }
        }
        self.absorb(events)
        guard let status else {
            throw strangeAnswer.map { LoRaWANModemError.unrecognisedModem(port: portName, answer: $0) } ?? conversation.noAnswer(command)
        }
        guard status == "OK", let version else { throw conversation.refused(command, status) }
        return LoRaWANModemIdentity(kind: .rak3172, firmwareVersion: version)
    }

    public func configure(keys: LoRaWANKeys, dataRate: Int?) async throws {
        self.link.hide(keys.appKey)
        var commands = [
            "AT+NWM=1",  // LoRaWAN, not P2P
            "AT+NJM=1",  // OTAA
            "AT+BAND=4",  // EU868
            "AT+DEVEUI=\(Hex.encode(keys.devEUI))",
            "AT+APPEUI=\(Hex.encode(keys.joinEUI))",
            "AT+APPKEY=\(Hex.encode(keys.appKey))",
            "AT+CLASS=A",
            "AT+CFM=0",  // unconfirmed: TTN counts the ACK of a confirmed uplink as one of the 10 downlinks a day
            "AT+ADR=\(dataRate == nil ? 1 : 0)",
        ]
        if let dataRate { commands.append("AT+DR=\(dataRate)") }
        try await self.link.converse { conversation in
            for command in commands {
                try await self.expectOK(command, &conversation)
            }
        }
    }

    public func join() async throws {
        try await self.link.converse { conversation in try await self.join(&conversation) }
    }

    private func join(_ conversation: inout ATModemConversation) async throws {
        try await self.expectOK("AT+JOIN", &conversation)
        let (outcome, others) = try await self.events(until: { $0 == "JOINED" || $0.hasPrefix("JOIN_FAILED") }, timeout: conversation.timeouts.join, &conversation)
        self.absorb(others)
        guard let outcome else { throw conversation.noAnswer("AT+JOIN") }
        if outcome != "JOINED" { throw LoRaWANModemError.joinFailed(reason: outcome) }
    }

    public func isJoined() async throws -> Bool {
        try await self.link.converse { conversation in try await self.get("NJS", &conversation) == "1" }
    }

    public func dataRate() async throws -> Int {
        try await self.link.converse { conversation in try await self.dataRate(&conversation) }
    }

    private func dataRate(_ conversation: inout ATModemConversation) async throws -> Int {
        let value = try await self.get("DR", &conversation)
        guard let dataRate = Int(value) else { throw conversation.refused("AT+DR=?", "AT+DR=\(value)") }
        return dataRate
    }

    public func send(port: UInt8, payload: [UInt8]) async throws -> LoRaWANTransmission {
        guard lorawanApplicationPorts.contains(port) else {
            throw LoRaWANModemError.refused(command: "AT+SEND=\(port):…", reply: "an application port is 1…223")
        }
        // The firmware's parser takes 2…500 hex digits.
        guard (1...250).contains(payload.count) else {
            throw payload.isEmpty
                ? LoRaWANModemError.refused(command: "AT+SEND=\(port):", reply: "the RAK3172 sends no empty payload")
                : LoRaWANModemError.lengthError(maximum: 250)
        }
        return try await self.link.converse { conversation in try await self.send(port: port, payload: payload, &conversation) }
    }

    private func send(port: UInt8, payload: [UInt8], _ conversation: inout ATModemConversation) async throws -> LoRaWANTransmission {
        let dataRate = try await self.dataRate(&conversation)
        let command = "AT+SEND=\(port):\(Hex.encode(payload))"
        let (_, status, restrictedWait) = try await self.exchange(command, &conversation)
        switch status {
        case "OK":
            break
        case "AT_PARAM_ERROR":
            // Too long for the data rate: the firmware has sent an empty frame anyway (to flush MAC commands);
            // wait for it, so its TX_DONE is not left for the next command.
            let frames = 1 + self.takeUnreported().emptyFrames
            let downlinks = try await self.waitForTransmission(&conversation) ?? []
            self.unreported.withLock { $0.downlinks += downlinks }
            throw LoRaWANModemError.lengthError(maximum: nil, extraEmptyFrames: frames)
        default:
            throw self.error(status: status, command: command, restrictedWait: restrictedWait, conversation)
        }
        guard let downlinks = try await self.waitForTransmission(&conversation) else {
            throw LoRaWANModemError.noAnswer(command: command + " (OK, no TX_DONE)", port: self.portName)
        }
        let earlier = self.takeUnreported()
        return LoRaWANTransmission(
            dataRate: dataRate, payloadLength: payload.count, downlinks: earlier.downlinks + downlinks, extraEmptyFrames: earlier.emptyFrames
        )
    }

    // MARK: - Commands

    /// Writes `command`, absorbing events that arrived before it.
    private func write(_ command: String, _ conversation: inout ATModemConversation) async throws {
        let earlier = try await conversation.write(command) { RAK3172Line($0).isEvent }
        self.absorb(
            earlier.compactMap { line -> String? in
                guard case .event(let event) = RAK3172Line(line) else { return nil }
                return event
            }
        )
    }

    /// Writes `command` and reads to its status line: the get value (`AT+X=<value>`) and a duty-cycle wait
    /// (`Restricted_Wait_<ms>_ms`) on the way.
    private func exchange(
        _ command: String,
        _ conversation: inout ATModemConversation
    ) async throws -> (value: String?, status: String, restrictedWait: Duration?) {
        try await self.write(command, &conversation)
        let name = command.dropFirst(3).prefix { $0 != "=" }.uppercased()
        var value: String?
        var restrictedWait: Duration?
        var events: [String] = []
        let status: String? = try await conversation.answer(timeout: conversation.timeouts.reply) { line in
            switch RAK3172Line(line) {
            case .status(let status): return .answer(status)
            case .value(let valueName, let text) where valueName == name:
                value = text
                return .known
            case .restrictedWait(let wait):
                restrictedWait = wait
                return .known
            case .event(let event):
                events.append(event)
                return .known
            case .value, .other: return .unknown
            }
        }
        self.absorb(events)
        guard let status else { throw conversation.noAnswer(command) }
        return (value, status, restrictedWait)
    }

    private func expectOK(_ command: String, _ conversation: inout ATModemConversation) async throws {
        let (_, status, restrictedWait) = try await self.exchange(command, &conversation)
        guard status == "OK" else { throw self.error(status: status, command: command, restrictedWait: restrictedWait, conversation) }
    }

    /// `AT+NAME=?` → the value of `AT+NAME=<value>`.
    private func get(_ name: String, _ conversation: inout ATModemConversation) async throws -> String {
        let command = "AT+\(name)=?"
        let (value, status, restrictedWait) = try await self.exchange(command, &conversation)
        guard status == "OK" else { throw self.error(status: status, command: command, restrictedWait: restrictedWait, conversation) }
        guard let value else { throw conversation.refused(command, "OK without AT+\(name)=…") }
        return value
    }

    private func error(status: String, command: String, restrictedWait: Duration?, _ conversation: ATModemConversation) -> LoRaWANModemError {
        switch status {
        case "AT_NO_NETWORK_JOINED": .notJoined
        case "AT_BUSY_ERROR": restrictedWait.map { .dutyCycle(wait: $0) } ?? .busy
        default: conversation.refused(command, status)
        }
    }

    /// Waits for the end of an uplink the modem accepted (`+EVT:TX_DONE`), then for the downlinks that follow it;
    /// nil when no TX_DONE came.
    private func waitForTransmission(_ conversation: inout ATModemConversation) async throws -> [LoRaWANDownlink]? {
        // A confirmed send (never ours) reports SEND_CONFIRMED_… instead of TX_DONE.
        let (done, before) = try await self.events(
            until: { $0 == "TX_DONE" || $0.hasPrefix("SEND_CONFIRMED") }, timeout: conversation.timeouts.transmission, &conversation
        )
        guard done != nil else {
            self.absorb(before)
            return nil
        }
        // The RX events follow TX_DONE at once; a further TX_DONE is an empty uplink the firmware sent by itself.
        let (_, after) = try await self.events(until: { _ in false }, timeout: conversation.timeouts.downlinkGrace, &conversation)
        var downlinks: [LoRaWANDownlink] = []
        for event in before + after {
            if let downlink = RAK3172Line.downlink(event) {
                downlinks.append(downlink)
            } else {
                self.absorb([event])
            }
        }
        return downlinks
    }

    /// Reads events until `isEnd` accepts one (nil after `timeout` of silence); returns it and the other events
    /// that came before it.
    private func events(
        until isEnd: (String) -> Bool,
        timeout: Duration,
        _ conversation: inout ATModemConversation
    ) async throws -> (end: String?, others: [String]) {
        var others: [String] = []
        let end: String? = try await conversation.answer(timeout: timeout) { line in
            guard case .event(let event) = RAK3172Line(line) else { return .unknown }
            if isEnd(event) { return .answer(event) }
            others.append(event)
            return .known
        }
        return (end, others)
    }

    /// Events outside the wait they belong to: an empty frame the firmware sent, a downlink after the wait ended.
    private func absorb(_ events: [String]) {
        self.unreported.withLock { unreported in
            for event in events {
                if event == "TX_DONE" {
                    unreported.emptyFrames += 1
                } else if let downlink = RAK3172Line.downlink(event) {
                    unreported.downlinks.append(downlink)
                }
            }
        }
    }

    private func takeUnreported() -> Unreported {
        self.unreported.withLock { unreported in
            defer { unreported = Unreported() }
            return unreported
        }
    }
}

/// A RAK3172 (RUI3) line.
enum RAK3172Line: Equatable {
    /// `OK`, or one of the `AT_…` errors.
    case status(String)
    /// A get reply `AT+NAME=value` (NAME upper case).
    case value(name: String, value: String)
    /// An event, without its `+EVT:` prefix.
    case event(String)
    /// `Restricted_Wait_<ms>_ms`, printed before `AT_BUSY_ERROR` when the duty cycle forbids sending.
    case restrictedWait(Duration)
    case other

    init(_ line: String) {
        if line == "OK" || (line.hasPrefix("AT_") && line.allSatisfy { $0.isUppercase || $0 == "_" }) {
            self = .status(line)
        } else if line.hasPrefix("+EVT:") {
            self = .event(String(line.dropFirst(5)))
        } else if line.uppercased().hasPrefix("AT+"), let equals = line.firstIndex(of: "=") {
            self = .value(name: line[line.index(line.startIndex, offsetBy: 3)..<equals].uppercased(), value: String(line[line.index(after: equals)...]))
        } else if line.hasPrefix("Restricted_Wait_"), line.hasSuffix("_ms"), let milliseconds = leadingInteger(line.dropFirst(16)) {
            self = .restrictedWait(.milliseconds(milliseconds))
        } else {
            self = .other
        }
    }

    var isEvent: Bool {
        if case .event = self { true } else { false }
    }

    /// A line only RUI3 sends (a status or a get reply): what tells a RAK3172 from a Wio-E5.
    var isDialectSpecific: Bool {
        switch self {
        case .status, .value: true
        case .event, .restrictedWait, .other: false
        }
    }

    /// `RX_1:-70:8:UNICAST:2:48656c6c6f` (slot, RSSI, SNR, cast, port, lower-case hex).
    static func downlink(_ event: String) -> LoRaWANDownlink? {
        let fields = event.split(separator: ":", omittingEmptySubsequences: false)
        guard fields.count == 6, fields[0].hasPrefix("RX_"), let port = UInt8(fields[4]), let payload = Hex.decode(fields[5]) else {
            return nil
        }
        return LoRaWANDownlink(port: port, payload: payload, rssi: Int(fields[1]), snr: Double(fields[2]))
    }
}
