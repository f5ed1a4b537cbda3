import KiezboxCore

/// The AT-command dialects of the STM32WL LoRaWAN modems residents buy (lora-and-appliance.md §1).
public enum LoRaWANModemKind: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Seeed Wio-E5 / LoRa-E5, factory AT firmware: every reply is a `+CMD: …` line, 9600 baud.
    case wioE5 = "wio-e5"
    /// RAKwireless RAK3172, RUI3 AT firmware: `AT+X=…` get replies, `OK`/`AT_…` statuses, `+EVT:` events, 115200 baud.
    case rak3172 = "rak3172"

    public var description: String {
        switch self {
        case .wioE5: "Seeed Wio-E5"
        case .rak3172: "RAK3172"
        }
    }
}

/// The OTAA identity of a device registered in The Things Network. ``description`` never shows the AppKey.
public struct LoRaWANKeys: Sendable, Hashable, CustomStringConvertible {
    /// 8 bytes, most significant first, as TTN's console shows it.
    public var devEUI: [UInt8]
    /// 8 bytes (called AppEUI by older firmware).
    public var joinEUI: [UInt8]
    /// 16 bytes; a secret: never logged.
    public var appKey: [UInt8]

    public init(devEUI: [UInt8], joinEUI: [UInt8], appKey: [UInt8]) {
        precondition(devEUI.count == 8 && joinEUI.count == 8 && appKey.count == 16, "DevEUI/JoinEUI 8 bytes, AppKey 16 bytes")
        self.devEUI = devEUI
        self.joinEUI = joinEUI
        self.appKey = appKey
    }

    public var description: String {
        "DevEUI \(Hex.encode(self.devEUI)), JoinEUI \(Hex.encode(self.joinEUI)), AppKey (hidden)"
    }
}

/// What a modem says it is.
public struct LoRaWANModemIdentity: Sendable, Hashable {
    public var kind: LoRaWANModemKind
    /// "4.0.11" (Wio-E5), "RUI_4.0.6_RAK3172-E" (RAK3172).
    public var firmwareVersion: String

    public init(kind: LoRaWANModemKind, firmwareVersion: String) {
        self.kind = kind
        self.firmwareVersion = firmwareVersion
    }
}

/// An application downlink received in a receive window after an uplink.
public struct LoRaWANDownlink: Sendable, Hashable {
    /// FPort 1…223.
    public var port: UInt8
    public var payload: [UInt8]
    public var rssi: Int?
    public var snr: Double?

    public init(port: UInt8, payload: [UInt8], rssi: Int? = nil, snr: Double? = nil) {
        self.port = port
        self.payload = payload
        self.rssi = rssi
        self.snr = snr
    }
}

/// What one unconfirmed uplink did on air.
public struct LoRaWANTransmission: Sendable, Hashable {
    /// The data rate it went out at (EU868 DR0…DR5), as the modem reported it before the send.
    public var dataRate: Int
    /// Application payload bytes.
    public var payloadLength: Int
    /// Downlinks received in the receive windows (usually none).
    public var downlinks: [LoRaWANDownlink]
    /// Frames the modem sent that were not ours and that cost airtime too (the RAK3172's empty frame after an
    /// oversized payload or a confirmed downlink), so the airtime ledger can count them.
    public var extraEmptyFrames: Int

    public init(dataRate: Int, payloadLength: Int, downlinks: [LoRaWANDownlink] = [], extraEmptyFrames: Int = 0) {
        self.dataRate = dataRate
        self.payloadLength = payloadLength
        self.downlinks = downlinks
        self.extraEmptyFrames = extraEmptyFrames
    }
}

/// A refusal or failure of a LoRaWAN modem, each with what to do about it.
public enum LoRaWANModemError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Nothing (or nothing recognisable) came back to `command` in time.
    case noAnswer(command: String, port: String)
    /// The modem answered, but not as either dialect does: wrong device or wrong baud rate.
    case unrecognisedModem(port: String, answer: String)
    /// The join failed (no join accept); `reason` is the modem's words.
    case joinFailed(reason: String)
    /// An uplink before the join completed (`Please join network first`, `AT_NO_NETWORK_JOINED`).
    case notJoined
    /// The MAC is busy with a join or an earlier send (`LoRaWAN modem is busy`, `AT_BUSY_ERROR`).
    case busy
    /// The duty cycle forbids sending now; `wait` is how long the modem says, when it says.
    case dutyCycle(wait: Duration?)
    /// The payload is too long for the current data rate; `maximum` is the modem's current limit, when known.
    /// `extraEmptyFrames` counts the frames the modem sent anyway (the RAK3172 sends an empty frame to flush its
    /// MAC commands), which cost airtime like any uplink.
    case lengthError(maximum: Int?, extraEmptyFrames: Int = 0)
    /// No channel free (duty cycle on every enabled channel, or a regional restriction).
    case noFreeChannel
    /// The modem refused a command (`+CMD: ERROR(n)`, `AT_PARAM_ERROR` …): `reply` is its words.
    case refused(command: String, reply: String)

    public var description: String {
        switch self {
        case .noAnswer(let command, let port):
            "no answer from the LoRaWAN modem on \(port) to \(command): check TX/RX wiring, its 3.3 V supply, and the "
                + "baud rate (Wio-E5 9600, RAK3172 115200)"
        case .unrecognisedModem(let port, let answer):
            "the device on \(port) answered \"\(answer)\", which is neither a Wio-E5 nor a RAK3172: check the port and baud rate"
        case .joinFailed(let reason):
            "the LoRaWAN join failed (\(reason)): check DevEUI, JoinEUI and AppKey against the device in the TTN console, "
                + "that it is registered for EU868, and that a gateway is in reach; Kiezbox retries with backoff"
        case .notJoined:
            "the modem has not joined the network yet; Kiezbox joins first and sends afterwards"
        case .busy:
            "the modem is busy (a join or an earlier send is still running); Kiezbox retries shortly"
        case .dutyCycle(let wait):
            "the EU868 duty cycle forbids sending now"
                + (wait.map { " (the modem asks to wait \($0.components.seconds) s)" } ?? "") + "; Kiezbox waits and sends then"
        case .lengthError(let maximum, let extraEmptyFrames):
            "the report is too long for the current data rate" + (maximum.map { " (at most \($0) bytes now)" } ?? "")
                + (extraEmptyFrames > 0 ? " and the modem sent \(extraEmptyFrames) empty frame(s) instead" : "")
                + "; the box is far from the gateway (slow data rate): Kiezbox sends a shorter report"
        case .noFreeChannel:
            "no free channel (duty cycle on every channel); Kiezbox waits and sends later"
        case .refused(let command, let reply):
            "the modem refused \(command): \(reply)"
        }
    }
}

/// A LoRaWAN modem on a serial port, whatever its dialect. One call at a time (the modem is a half-duplex
/// conversation); implementations serialise calls themselves. Every line the modem sends is read; lines a
/// dialect does not know are logged and skipped.
public protocol LoRaWANModem: Sendable {
    var kind: LoRaWANModemKind { get }
    /// The serial port's name, for messages.
    var portName: String { get }

    /// Asks the modem who it is (`AT+VER` / `AT+VER=?`).
    func identify() async throws -> LoRaWANModemIdentity
    /// Configures OTAA on EU868, class A, unconfirmed uplinks, with these keys; `dataRate` nil leaves ADR on.
    func configure(keys: LoRaWANKeys, dataRate: Int?) async throws
    /// One join attempt (joins cost airtime: the caller backs off between attempts). Throws
    /// ``LoRaWANModemError/joinFailed(reason:)`` when no join accept came.
    func join() async throws
    /// Whether the modem has a session (after a restart of the daemon the modem may still be joined).
    func isJoined() async throws -> Bool
    /// The data rate the next uplink goes out at (EU868 DR0…DR5).
    func dataRate() async throws -> Int
    /// Sends `payload` unconfirmed on `port` (1…223) and waits for the receive windows to close.
    func send(port: UInt8, payload: [UInt8]) async throws -> LoRaWANTransmission
}
