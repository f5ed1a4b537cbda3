#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Where a ``MeshtasticRadioLink`` is.
public enum MeshtasticLinkState: Sendable, Hashable, CustomStringConvertible {
    /// Opening the serial port or the TCP connection.
    case connecting
    /// Connected; the `want_config` answer is arriving.
    case handshaking
    /// The handshake is complete: live packets flow and ``MeshtasticRadioLink/send(portnum:payload:to:channel:wantAck:hopLimit:priority:)`` works.
    case ready(MeshtasticRadioInfo)
    /// Not connected (yet, or any more); the link retries after a backoff.
    case disconnected(reason: String)

    public var isReady: Bool { if case .ready = self { true } else { false } }

    public var description: String {
        switch self {
        case .connecting: "connecting"
        case .handshaking: "handshaking"
        case .ready(let info): "ready (\(info.userID))"
        case .disconnected(let reason): "disconnected: \(reason)"
        }
    }
}

/// One slot of the radio's channel table.
public struct MeshtasticChannel: Sendable, Hashable, CustomStringConvertible {
    public var index: UInt32
    /// As configured; empty for the primary channel means the preset's name ("LongFast").
    public var name: String
    public var role: Meshtastic_Channel.Role

    public init(index: UInt32, name: String, role: Meshtastic_Channel.Role) {
        self.index = index
        self.name = name
        self.role = role
    }

    /// "1:kiezbox", "0:(default)".
    public var description: String { "\(self.index):\(self.name.isEmpty ? "(default)" : self.name)" }
}

/// Who the radio is, from the `want_config` answer.
public struct MeshtasticRadioInfo: Sendable, Hashable {
    /// `my_info.my_node_num`: the `from` of everything this radio sends.
    public var myNodeNumber: UInt32
    public var firmwareVersion: String?
    /// Nil when the radio sent no metadata (old firmware).
    public var hardwareModel: Meshtastic_HardwareModel?
    /// The enabled channels (primary and secondaries), by index.
    public var channels: [MeshtasticChannel]
    public var longName: String?
    public var shortName: String?
    public var rebootCount: UInt32
    /// From the LoRa config, when the radio sent it.
    public var region: Meshtastic_Config.LoRaConfig.RegionCode?
    /// The radio's configured hop limit: what a send uses unless told otherwise.
    public var hopLimit: UInt32?

    public init(
        myNodeNumber: UInt32, firmwareVersion: String? = nil, hardwareModel: Meshtastic_HardwareModel? = nil,
        channels: [MeshtasticChannel] = [], longName: String? = nil, shortName: String? = nil, rebootCount: UInt32 = 0,
        region: Meshtastic_Config.LoRaConfig.RegionCode? = nil, hopLimit: UInt32? = nil
    ) {
        self.myNodeNumber = myNodeNumber
        self.firmwareVersion = firmwareVersion
        self.hardwareModel = hardwareModel
        self.channels = channels
        self.longName = longName
        self.shortName = shortName
        self.rebootCount = rebootCount
        self.region = region
        self.hopLimit = hopLimit
    }

    /// "!1a2b3c4d": how Meshtastic apps name the node.
    public var userID: String { MeshtasticNode.userID(self.myNodeNumber) }

    /// The channel at `index`, if enabled.
    public func channel(at index: UInt32) -> MeshtasticChannel? { self.channels.first { $0.index == index } }

    /// The hardware model as the protobuf names it ("HELTEC_V3"), or its number.
    public var hardwareModelName: String? { self.hardwareModel.map(MeshtasticNode.modelName) }
}

/// A node the radio knows: from the handshake's node infos and live NODEINFO and POSITION packets.
public struct MeshtasticNode: Sendable, Hashable {
    public var number: UInt32
    public var longName: String?
    public var shortName: String?
    public var hardwareModel: Meshtastic_HardwareModel?
    /// Degrees.
    public var latitude: Double?
    public var longitude: Double?
    /// Metres above sea level.
    public var altitude: Int32?
    public var lastHeard: Date?
    public var snr: Float?
    public var rssi: Int32?

    public init(number: UInt32) {
        self.number = number
    }

    /// "!1a2b3c4d".
    public var userID: String { Self.userID(self.number) }

    static func userID(_ number: UInt32) -> String {
        let hex = String(number, radix: 16)
        return "!" + String(repeating: "0", count: max(0, 8 - hex.count)) + hex
    }

    static func modelName(_ model: Meshtastic_HardwareModel) -> String {
        if case .UNRECOGNIZED(let number) = model { return "hardware model \(number)" }
        return "\(model)".uppercased()
    }
}

/// A packet the radio received from the mesh and decoded (its channel key matched).
public struct MeshtasticReceivedPacket: Sendable, Hashable {
    public var from: UInt32
    /// 0xFFFFFFFF for a broadcast.
    public var to: UInt32
    /// The channel index it arrived on.
    public var channel: UInt32
    public var id: UInt32
    public var portnum: Meshtastic_PortNum
    public var payload: [UInt8]
    /// When the radio received it (its clock, which may be unset on a radio without GPS or network time).
    public var rxTime: Date?
    public var rxRSSI: Int32?
    public var rxSNR: Float
    public var hopStart: UInt32
    public var hopLimit: UInt32
    public var wantAck: Bool
    public var viaMQTT: Bool
    /// `Data.request_id`: set on answers (routing, replies).
    public var requestID: UInt32

    public var isBroadcast: Bool { self.to == MeshtasticRadioLink.broadcast }

    /// How many relays it passed, when the sender's firmware tells (hop_start is set by firmware 2.3 and later).
    public var hopsAway: UInt32? { self.hopStart > 0 && self.hopStart >= self.hopLimit ? self.hopStart - self.hopLimit : nil }

    init(_ packet: Meshtastic_MeshPacket, data: Meshtastic_Data) {
        self.from = packet.from
        self.to = packet.to
        self.channel = packet.channel
        self.id = packet.id
        self.portnum = data.portnum
        self.payload = Array(data.payload)
        self.rxTime = packet.hasRxTime && packet.rxTime > 0 ? Date(timeIntervalSince1970: TimeInterval(packet.rxTime)) : nil
        self.rxRSSI = packet.hasRxRssi ? packet.rxRssi : nil
        self.rxSNR = packet.rxSnr
        self.hopStart = packet.hopStart
        self.hopLimit = packet.hopLimit
        self.wantAck = packet.wantAck
        self.viaMQTT = packet.viaMqtt
        self.requestID = data.requestID
    }
}

/// How a sent packet ended.
public enum MeshtasticSendOutcome: Sendable, Hashable {
    /// Sent without asking for an acknowledgement (`wantAck: false`): handed to the radio.
    case sent
    /// Another node acknowledged it (routing error NONE from the destination).
    case acknowledged
    /// Only our own radio answered with NONE: it heard a rebroadcast, or it was a broadcast, for which nothing better
    /// comes.
    case implicitlyAcknowledged
    /// The radio or the mesh refused it: `DUTY_CYCLE_LIMIT`, `TOO_LARGE`, `MAX_RETRANSMIT`, `NO_CHANNEL`, …
    case refused(Meshtastic_Routing.Error)
}

/// Why a packet could not be sent or its outcome is unknown.
public enum MeshtasticSendError: Error, Sendable, Hashable, CustomStringConvertible {
    /// More than ``MeshtasticPayload/maximumLength`` (233) bytes: nothing was sent.
    case payloadTooLarge(Int)
    /// The link is not ready (connecting, handshaking or disconnected): nothing was sent.
    case notConnected
    /// No answer from the radio within the link's answer timeout (a hang guard; the radio may still send it).
    case timedOut
    /// The connection broke, or the radio rebooted, before the answer came.
    case linkLost
    /// The sending task was cancelled.
    case cancelled

    public var description: String {
        switch self {
        case .payloadTooLarge(let count): "payload of \(count) bytes is larger than Meshtastic's 233"
        case .notConnected: "the Meshtastic radio is not connected"
        case .timedOut: "the Meshtastic radio did not answer in time"
        case .linkLost: "the connection to the Meshtastic radio was lost before it answered"
        case .cancelled: "cancelled"
        }
    }
}

/// How a ``MeshtasticRadioLink`` paces itself. Durations are on the link's clock, except ``readPollInterval`` and
/// ``connectTimeout``, which are real time (how long a read or a TCP connect may block).
public struct MeshtasticLinkOptions: Sendable, Hashable {
    /// Between heartbeats (the python client's 300 s; the firmware drops a client silent for 15 minutes).
    public var heartbeatInterval: Duration = .seconds(300)
    /// From `want_config_id` to `config_complete_id` (a full node database at 115200 baud takes seconds).
    public var handshakeTimeout: Duration = .seconds(60)
    /// How long a send waits for its routing answer or for room in the radio's queue: a hang guard (a direct message
    /// with three retransmissions is answered within about a minute).
    public var answerTimeout: Duration = .seconds(180)
    /// The first wait before reconnecting; it doubles up to ``maximumReconnectDelay``.
    public var initialReconnectDelay: Duration = .seconds(1)
    public var maximumReconnectDelay: Duration = .seconds(30)
    /// Real time: how long one read waits before the loop looks again.
    public var readPollInterval: Duration = .milliseconds(500)
    /// Real time: a TCP connect's limit.
    public var connectTimeout: Duration = .seconds(10)
    /// Received packets kept for a slow consumer of ``MeshtasticRadioLink/packets``; older ones are dropped (counted).
    public var packetBufferSize: Int = 512
    /// The hop limit of a send when neither the caller nor the radio's LoRa config gives one (Meshtastic's default).
    public var defaultHopLimit: UInt32 = 3

    public init() {}
}

/// What a ``MeshtasticRadioLink`` has seen, for `kiezbox status` and `/metrics`.
public struct MeshtasticLinkStatistics: Sendable, Hashable {
    /// Valid frames from the radio.
    public var framesIn = 0
    /// Frames written to the radio (want_config, heartbeats, packets).
    public var framesOut = 0
    /// Bytes outside frames: the radio's debug log, and the bytes of rejected frames.
    public var skippedBytes = 0
    /// Frames the decoder refused (a damaged frame, a frame cut by log text).
    public var rejectedFrames = 0
    /// The most recent refusal, for logs.
    public var lastRejection: String?
    /// Successful connections after the first.
    public var reconnects = 0
    /// Failed connection attempts (port missing, connection refused, …).
    public var connectFailures = 0
    /// Completed handshakes (`config_complete_id` with our nonce).
    public var handshakes = 0
    /// Handshakes that did not complete in time.
    public var handshakeTimeouts = 0
    /// `rebooted` messages from the radio.
    public var radioReboots = 0
    public var heartbeatsSent = 0
    public var queueStatusReceived = 0
    /// The radio's free send-queue slots at its last QueueStatus.
    public var queueFree: UInt32?
    /// Live packets from the radio (decoded and encrypted).
    public var packetsReceived = 0
    /// Packets the radio could not decrypt (another channel key): counted, not delivered.
    public var encryptedPackets = 0
    /// Packets a slow consumer of ``MeshtasticRadioLink/packets`` lost.
    public var packetsDropped = 0
    public var packetsSent = 0
    public var acknowledged = 0
    public var implicitlyAcknowledged = 0
    /// Refusals by routing error.
    public var refused: [Meshtastic_Routing.Error: Int] = [:]
    /// Sends that got no answer within the answer timeout.
    public var answerTimeouts = 0
    /// ClientNotifications from the radio, and the last one's text.
    public var notifications = 0
    public var lastNotification: String?

    public init() {}
}
