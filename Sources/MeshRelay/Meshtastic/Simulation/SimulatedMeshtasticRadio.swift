#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SensorDrivers
import SwiftProtobuf
import Synchronization

/// A Meshtastic radio as its client API shows it, for tests and two-box simulations: it answers `want_config` in
/// the firmware's order, answers heartbeats with a QueueStatus, transmits the client's packets on a
/// ``SimulatedMeshChannel`` and answers them with a routing packet (an implicit acknowledgement from itself for a
/// broadcast, the destination's acknowledgement for a direct message, or a NAK: `DUTY_CYCLE_LIMIT` with the
/// firmware's client notification, `TOO_LARGE`, `NO_CHANNEL`, `MAX_RETRANSMIT`), and hands the client what it hears.
///
/// It serves one client at a time on a byte stream: as a ``SimulatedSerialDevice`` behind a pseudo-terminal (with
/// the firmware's debug log text between frames) or through ``SimulatedMeshtasticTCPServer`` (frames only, like
/// `meshtasticd`). A radio without a client (a simulated phone or pilot box, see ``SimulatedMeshPhone``) transmits
/// with ``transmit(portnum:payload:to:channel:wantAck:)``.
public final class SimulatedMeshtasticRadio: SimulatedSerialDevice, Sendable {
    /// Who the radio is and how it hears.
    public struct Configuration: Sendable, Hashable {
        public var nodeNumber: UInt32
        public var longName: String
        public var shortName: String
        public var firmwareVersion = "2.5.20.4c97351"
        public var hardwareModel: Meshtastic_HardwareModel = .heltecV3
        /// Enabled channel slots; by default 0 "LongFast" (primary) and 1 "kiezbox" (secondary), as on the pilot's boxes.
        public var channels: [MeshtasticChannel] = [
            MeshtasticChannel(index: 0, name: "LongFast", role: .primary), MeshtasticChannel(index: 1, name: "kiezbox", role: .secondary),
        ]
        public var hopLimit: UInt32 = 3
        public var region: Meshtastic_Config.LoRaConfig.RegionCode = .eu868
        public var rebootCount: UInt32 = 0
        /// Serial only: debug log lines between frames, as the firmware's console prints them.
        public var logsText = true
        /// How strongly it hears the others.
        public var rxRSSI: Int32 = -97
        public var rxSNR: Float = 6.25
        /// The send queue's size, reported in QueueStatus.
        public var queueLength: UInt32 = 16

        public init(nodeNumber: UInt32, longName: String, shortName: String) {
            self.nodeNumber = nodeNumber
            self.longName = longName
            self.shortName = shortName
        }
    }

    public let configuration: Configuration
    public let channel: SimulatedMeshChannel
    private let state: Mutex<State>

    private enum Output {
        case frame([UInt8])
        case log(String)
    }

    private struct State {
        var decoder = MeshtasticToRadioDecoder()
        var output: [Output] = []
        /// A client asked for the configuration and got config_complete_id: live packets go to it.
        var clientReady = false
        var rebootCount: UInt32
        /// Bumped when the radio reboots: a TCP server drops its client then.
        var connectionGeneration = 0
        var heartbeats = 0
        var wantConfigs = 0
        var packetsFromClient: [Meshtastic_MeshPacket] = []
        var packetsToClient = 0
        var undeliveredPackets = 0
        var nodes: [UInt32: Meshtastic_NodeInfo] = [:]
        var logLine = 0

        init(rebootCount: UInt32) {
            self.rebootCount = rebootCount
        }
    }

    public init(_ configuration: Configuration, channel: SimulatedMeshChannel) {
        self.configuration = configuration
        self.channel = channel
        self.state = Mutex(State(rebootCount: configuration.rebootCount))
        channel.join(self)
    }

    /// A radio with default settings.
    public convenience init(nodeNumber: UInt32, longName: String, shortName: String, channel: SimulatedMeshChannel) {
        self.init(Configuration(nodeNumber: nodeNumber, longName: longName, shortName: shortName), channel: channel)
    }

    public var nodeNumber: UInt32 { self.configuration.nodeNumber }

    func hasChannel(_ index: UInt32) -> Bool {
        self.configuration.channels.contains { $0.index == index && $0.role != .disabled }
    }

    // MARK: What tests look at

    /// Heartbeats from clients so far.
    public var heartbeatCount: Int { self.state.withLock { $0.heartbeats } }
    /// `want_config_id` requests so far.
    public var wantConfigCount: Int { self.state.withLock { $0.wantConfigs } }
    /// Every packet a client handed the radio, as received.
    public var packetsFromClient: [Meshtastic_MeshPacket] { self.state.withLock { $0.packetsFromClient } }
    /// Live packets handed to a client.
    public var packetsToClient: Int { self.state.withLock { $0.packetsToClient } }
    /// Whether a client has completed the handshake (and live packets go to it).
    public var hasReadyClient: Bool { self.state.withLock { $0.clientReady } }
    var connectionGeneration: Int { self.state.withLock { $0.connectionGeneration } }

    // MARK: The byte stream

    public func received(_ bytes: [UInt8], at time: Duration) -> [UInt8] {
        self.receive(bytes)
        return self.takeOutput(withLogText: self.configuration.logsText)
    }

    public func transmissions(upTo time: Duration) -> [UInt8] {
        self.takeOutput(withLogText: self.configuration.logsText)
    }

    /// Bytes from the client, in any split.
    public func receive(_ bytes: [UInt8]) {
        let messages = self.state.withLock { state -> [Meshtastic_ToRadio] in
            state.decoder.append(bytes)
            var messages: [Meshtastic_ToRadio] = []
            while let frame = state.decoder.next() { messages.append(frame.message) }
            return messages
        }
        // Handled outside the lock: a transmission reaches other radios, whose answers may come back here.
        for message in messages { self.handle(message) }
    }

    /// What the radio has for its client: frames, with log lines before them when `withLogText`.
    public func takeOutput(withLogText: Bool) -> [UInt8] {
        let output = self.state.withLock { state -> [Output] in
            defer { state.output.removeAll() }
            return state.output
        }
        var bytes: [UInt8] = []
        for item in output {
            switch item {
            case .frame(let frame): bytes += frame
            case .log(let line): if withLogText { bytes += Array((line + "\r\n").utf8) }
            }
        }
        return bytes
    }

    /// A new client on the stream (a TCP accept, a cable plugged in): nothing of the last one's session is left.
    public func clientConnected() {
        self.state.withLock { state in
            state.decoder = MeshtasticToRadioDecoder()
            state.output.removeAll()
            state.clientReady = false
        }
    }

    /// The client went away: stop queueing packets for it.
    public func clientDisconnected() { self.clientConnected() }

    /// Restarts: the client gets `rebooted` (and boot log text on serial) and must ask for the configuration again;
    /// a TCP server closes the connection after sending it.
    public func reboot() {
        self.state.withLock { state in
            state.rebootCount += 1
            state.clientReady = false
            state.decoder = MeshtasticToRadioDecoder()
            state.output.removeAll()
            Self.log(&state, "INFO", "Booting Meshtastic \(self.configuration.firmwareVersion)")
            Self.send(&state, .with { $0.rebooted = true })
            state.connectionGeneration += 1
        }
    }

    // MARK: The client API

    private func handle(_ message: Meshtastic_ToRadio) {
        switch message.payloadVariant {
        case .wantConfigID(let nonce):
            self.answerWantConfig(nonce: nonce)
        case .heartbeat(let heartbeat):
            self.state.withLock { state in
                state.heartbeats += 1
                Self.log(&state, "DEBUG", "heartbeat nonce \(heartbeat.nonce)")
                if heartbeat.nonce != 1 { Self.send(&state, .with { $0.queueStatus = self.queueStatus(packetID: 0) }) }
            }
        case .packet(let packet):
            self.sendFromClient(packet)
        case .disconnect:
            self.state.withLock { $0.clientReady = false }
        default:
            break
        }
    }

    private func queueStatus(packetID: UInt32) -> Meshtastic_QueueStatus {
        .with {
            $0.res = 0
            $0.free = self.configuration.queueLength
            $0.maxlen = self.configuration.queueLength
            $0.meshPacketID = packetID
        }
    }

    /// The firmware's order: my_info, own node_info, metadata, channels, configs, module config, the other nodes
    /// (not for the "only config" nonce 69420), config_complete_id.
    private func answerWantConfig(nonce: UInt32) {
        let configuration = self.configuration
        self.state.withLock { state in
            state.wantConfigs += 1
            state.clientReady = false
            Self.log(&state, "INFO", "Client wants config, nonce=\(nonce)")
            Self.send(&state, .with {
                $0.myInfo = .with {
                    $0.myNodeNum = configuration.nodeNumber
                    $0.rebootCount = state.rebootCount
                    $0.minAppVersion = 30200
                }
            })
            Self.send(&state, .with { $0.nodeInfo = self.ownNodeInfo() })
            Self.send(&state, .with {
                $0.metadata = .with {
                    $0.firmwareVersion = configuration.firmwareVersion
                    $0.deviceStateVersion = 23
                    $0.hwModel = configuration.hardwareModel
                }
            })
            for index in 0..<8 {
                let slot = configuration.channels.first { $0.index == UInt32(index) }
                Self.send(&state, .with {
                    $0.channel = .with {
                        $0.index = Int32(index)
                        $0.role = slot?.role ?? .disabled
                        if let slot {
                            $0.settings = .with {
                                $0.name = slot.name
                                $0.psk = Data([1])
                            }
                        }
                    }
                })
                Self.log(&state, "DEBUG", "Sent channel \(index)")
            }
            // The device part as the opaque bytes of a real radio's DeviceConfig (role CLIENT, serial enabled).
            Self.send(&state, .with { $0.config = .with { $0.device = Data([0x10, 0x01]) } })
            Self.send(&state, .with {
                $0.config = .with {
                    $0.lora = .with {
                        $0.usePreset = true
                        $0.modemPreset = .longFast
                        $0.region = configuration.region
                        $0.hopLimit = configuration.hopLimit
                        $0.txEnabled = true
                    }
                }
            })
            Self.send(&state, .with { $0.moduleConfig = Data([0x0A, 0x00]) })
            if nonce != 69420 {
                for node in state.nodes.values.sorted(by: { $0.num < $1.num }) where node.num != configuration.nodeNumber {
                    Self.send(&state, .with { $0.nodeInfo = node })
                }
            }
            Self.send(&state, .with { $0.configCompleteID = nonce })
            Self.log(&state, "INFO", "Config sent, client ready for packets")
            state.clientReady = true
        }
    }

    private func ownNodeInfo() -> Meshtastic_NodeInfo {
        .with {
            $0.num = self.configuration.nodeNumber
            $0.user = self.ownUser()
        }
    }

    func ownUser() -> Meshtastic_User {
        .with {
            $0.id = MeshtasticNode.userID(self.configuration.nodeNumber)
            $0.longName = self.configuration.longName
            $0.shortName = self.configuration.shortName
            $0.hwModel = self.configuration.hardwareModel
        }
    }

    /// A packet from the client: checked as the firmware's router does, put on air, answered.
    private func sendFromClient(_ received: Meshtastic_MeshPacket) {
        var packet = received
        if packet.from == 0 { packet.from = self.nodeNumber }
        if packet.id == 0 { packet.id = UInt32.random(in: 1...UInt32.max) }
        self.state.withLock { state in
            state.packetsFromClient.append(received)
            Self.send(&state, .with { $0.queueStatus = self.queueStatus(packetID: packet.id) })
        }
        guard case .decoded(let data) = packet.payloadVariant else { return }
        if data.payload.count > MeshtasticPayload.maximumLength {
            return self.answer(packet, .tooLarge)
        }
        guard self.hasChannel(packet.channel) else { return self.answer(packet, .noChannel) }
        switch self.channel.transmit(packet, by: self) {
        case .dutyCycleLimited(let minutes):
            self.state.withLock { state in
                Self.log(&state, "WARN", "Duty cycle limit exceeded. Aborting send for now")
                Self.send(&state, .with {
                    $0.clientNotification = .with {
                        $0.replyID = packet.id
                        $0.time = UInt32(clamping: Int(self.channel.date.timeIntervalSince1970))
                        $0.level = .warning
                        $0.message = "Duty cycle limit exceeded. You can send again in \(minutes) mins"
                    }
                })
            }
            self.answer(packet, .dutyCycleLimit)
        case .transmitted(let receivers):
            guard packet.wantAck else { return }
            if packet.to == MeshtasticRadioLink.broadcast {
                // Nothing better than our own word comes for a broadcast.
                self.answer(packet, .none)
            } else if !receivers.contains(packet.to) {
                self.answer(packet, .maxRetransmit)
            }
        // A reached destination acknowledges over the air itself (see hear(_:)).
        }
    }

    /// A routing answer from this radio to its own client.
    private func answer(_ packet: Meshtastic_MeshPacket, _ error: Meshtastic_Routing.Error) {
        let routing = Self.routing(error, to: packet, from: self.nodeNumber)
        self.state.withLock { state in
            Self.send(&state, .with { $0.packet = routing })
        }
    }

    static func routing(_ error: Meshtastic_Routing.Error, to packet: Meshtastic_MeshPacket, from sender: UInt32) -> Meshtastic_MeshPacket {
        .with {
            $0.from = sender
            $0.to = packet.from
            $0.channel = packet.channel
            $0.id = UInt32.random(in: 1...UInt32.max)
            $0.priority = .ack
            $0.decoded = .with {
                $0.portnum = .routingApp
                $0.requestID = packet.id
                $0.payload = (try? Meshtastic_Routing.with { $0.errorReason = error }.serializedBytes()) ?? Data()
            }
        }
    }

    // MARK: The air

    /// A packet heard on the channel: learned, acknowledged when it is a direct message asking for it, handed to the
    /// client when addressed to us or to everyone.
    func hear(_ packet: Meshtastic_MeshPacket) {
        guard packet.to == MeshtasticRadioLink.broadcast || packet.to == self.nodeNumber else { return }
        self.deliver(packet)
        if packet.to == self.nodeNumber, packet.wantAck, case .decoded(let data) = packet.payloadVariant, data.portnum != .routingApp {
            var ack = Self.routing(.none, to: packet, from: self.nodeNumber)
            ack.hopLimit = self.configuration.hopLimit
            _ = self.channel.transmit(ack, by: self)
        }
    }

    /// Delivers a packet from a simulated node (a pilot box, a phone) straight to the client, as if heard: receive
    /// fields are filled where unset.
    public func inject(_ packet: Meshtastic_MeshPacket) {
        var packet = packet
        if !packet.hasRxTime { packet.rxTime = UInt32(clamping: Int(self.channel.date.timeIntervalSince1970)) }
        if !packet.hasRxRssi { packet.rxRssi = self.configuration.rxRSSI }
        if packet.rxSnr == 0 { packet.rxSnr = self.configuration.rxSNR }
        if packet.hopStart == 0 { packet.hopStart = packet.hopLimit }
        self.deliver(packet)
    }

    private func deliver(_ packet: Meshtastic_MeshPacket) {
        self.state.withLock { state in
            Self.learn(packet, into: &state.nodes)
            guard state.clientReady else {
                state.undeliveredPackets += 1
                return
            }
            state.packetsToClient += 1
            Self.log(&state, "DEBUG", "Received packet from 0x\(String(packet.from, radix: 16)) id=0x\(String(packet.id, radix: 16))")
            Self.send(&state, .with { $0.packet = packet })
        }
    }

    /// The radio's node database learns names and positions from what it hears.
    private static func learn(_ packet: Meshtastic_MeshPacket, into nodes: inout [UInt32: Meshtastic_NodeInfo]) {
        var node = nodes[packet.from] ?? .with { $0.num = packet.from }
        node.lastHeard = packet.rxTime
        node.snr = packet.rxSnr
        if case .decoded(let data) = packet.payloadVariant {
            switch data.portnum {
            case .nodeinfoApp: if let user = try? Meshtastic_User(serializedBytes: data.payload) { node.user = user }
            case .positionApp: if let position = try? Meshtastic_Position(serializedBytes: data.payload) { node.position = position }
            default: break
            }
        }
        nodes[packet.from] = node
    }

    /// Transmits from this radio's own firmware (a simulated phone or pilot box: no client involved).
    @discardableResult
    public func transmit(
        portnum: Meshtastic_PortNum, payload: [UInt8], to destination: UInt32 = MeshtasticRadioLink.broadcast, channel: UInt32,
        wantAck: Bool = false
    ) -> UInt32 {
        let packet = Meshtastic_MeshPacket.with {
            $0.from = self.nodeNumber
            $0.to = destination
            $0.channel = channel
            $0.id = UInt32.random(in: 1...UInt32.max)
            $0.hopLimit = self.configuration.hopLimit
            $0.wantAck = wantAck
            $0.decoded = .with {
                $0.portnum = portnum
                $0.payload = Data(payload)
            }
        }
        _ = self.channel.transmit(packet, by: self)
        return packet.id
    }

    // MARK: Output

    private static func send(_ state: inout State, _ message: Meshtastic_FromRadio) {
        guard let frame = try? MeshtasticFraming.frame(message) else { return }
        state.output.append(.frame(frame))
    }

    /// A console line as the firmware prints it: "DEBUG | 12:00:07 12 [Router] …".
    private static func log(_ state: inout State, _ level: String, _ text: String) {
        state.logLine += 1
        let seconds = state.logLine
        func twoDigits(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let stamp = "12:\(twoDigits((seconds / 60) % 60)):\(twoDigits(seconds % 60))"
        state.output.append(.log("\(level + String(repeating: " ", count: max(0, 5 - level.count))) | \(stamp) \(seconds) [Router] \(text)"))
    }
}
