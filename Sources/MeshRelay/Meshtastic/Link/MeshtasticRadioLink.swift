#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import KiezboxCore
import Logging
import SensorDrivers
import SwiftProtobuf
import Synchronization

/// The host side of the Meshtastic client API, over serial or TCP (lora-and-appliance.md §3, protocols.md §8).
///
/// ``run()`` keeps a connection: it opens the endpoint (on serial, the wake sequence first), sends `want_config_id`
/// with a random nonce, collects `my_info`, the node infos, `metadata`, the channels and configs until
/// `config_complete_id` echoes the nonce, and then is ``MeshtasticLinkState/ready(_:)``: live packets arrive on
/// ``packets`` and ``send(portnum:payload:to:channel:wantAck:hopLimit:priority:)`` works. A heartbeat goes out every
/// 300 s (the firmware drops a silent client after 15 minutes). `rebooted` from the radio starts a new handshake; end
/// of stream, an I/O error or a handshake that does not complete ends the connection, and the link reconnects after a
/// backoff (1 s doubling to 30 s): a pulled cable, a rebooted radio and a restarted `meshtasticd` all heal.
///
/// Timers (heartbeat, handshake and answer timeouts, backoff) run on the injected ``KiezboxClock``, so tests move
/// time with a `ManualClock`; only reads and TCP connects wait in real time, briefly.
///
/// ```swift
/// let link = MeshtasticRadioLink(endpoint: .tcp(host: "127.0.0.1", port: 4403), clock: LiveClock(), logger: logger)
/// async let running: Void = link.run()
/// let radio = try await link.waitUntilReady()
/// let outcome = try await link.send(portnum: .textMessageApp, payload: Array("hello".utf8), channel: 0)
/// ```
public final class MeshtasticRadioLink: Sendable {
    /// The broadcast address.
    public static let broadcast: UInt32 = 0xFFFF_FFFF
    /// The firmware's special want_config nonces (`SPECIAL_NONCE_ONLY_CONFIG`, `SPECIAL_NONCE_ONLY_NODES`): a
    /// client asking for everything must not use them.
    static let reservedNonces: Set<UInt32> = [0, 69420, 69421]

    public let endpoint: MeshtasticEndpoint
    public let options: MeshtasticLinkOptions
    /// Every live packet the radio decoded, except the routing answers to our own sends (``send`` consumes those).
    /// One consumer; a slow one loses the oldest packets (``MeshtasticLinkStatistics/packetsDropped``).
    public let packets: AsyncStream<MeshtasticReceivedPacket>

    private let packetSink: AsyncStream<MeshtasticReceivedPacket>.Continuation
    private let connectTransport: @Sendable () async throws(MeshtasticTransportError) -> any MeshtasticTransport
    private let timeline: LinkTimeline
    private let logger: Logger
    private let shared: Mutex<Shared>

    #if canImport(Glibc)
    /// A link to `endpoint`: the serial port at 115200 8N1, or TCP.
    public convenience init(endpoint: MeshtasticEndpoint, clock: some KiezboxClock, logger: Logger, options: MeshtasticLinkOptions = .init()) {
        self.init(endpoint: endpoint, clock: clock, logger: logger, options: options) { () async throws(MeshtasticTransportError) in
            try await endpoint.open(connectTimeout: options.connectTimeout)
        }
    }
    #endif

    /// A link whose connections come from `connect` (a test's transport, the doctor's simulated port).
    public init(
        endpoint: MeshtasticEndpoint, clock: some KiezboxClock, logger: Logger, options: MeshtasticLinkOptions = .init(),
        connect: @escaping @Sendable () async throws(MeshtasticTransportError) -> any MeshtasticTransport
    ) {
        self.endpoint = endpoint
        self.options = options
        self.connectTransport = connect
        self.timeline = LinkTimeline(clock)
        self.logger = logger
        (self.packets, self.packetSink) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(max(1, options.packetBufferSize)))
        self.shared = Mutex(Shared())
    }

    // MARK: - State

    private struct Shared {
        var state: MeshtasticLinkState = .disconnected(reason: "not started")
        var stopped = false
        var statistics = MeshtasticLinkStatistics()
        var nodes: [UInt32: MeshtasticNode] = [:]
        var session: Session?
        var nextSessionID = 0
        var nextToken = 0
        var lastPacketID = UInt32.random(in: 0...UInt32.max)
        /// Sends waiting for their routing answer, by packet id, and the session each went out on.
        var acknowledgements = AnswerSlots<UInt32, Result<MeshtasticSendOutcome, MeshtasticSendError>>()
        var acknowledgementSessions: [UInt32: Int] = [:]
        /// Ids of recent sends: a late or second answer to one of them is consumed, not delivered.
        var recentSendIDs: [UInt32] = []
        var readyWaiters = AnswerSlots<Int, Result<MeshtasticRadioInfo, CancellationError>>()
        var queueWaiters = AnswerSlots<Int, Void>()

        mutating func token() -> Int {
            self.nextToken += 1
            return self.nextToken
        }

        /// Python's rule: a counter in the low 10 bits, random above; never 0 (0 asks the radio to pick).
        mutating func nextPacketID() -> UInt32 {
            repeat {
                self.lastPacketID = ((self.lastPacketID &+ 1) & 0x3FF) | (UInt32.random(in: 0...0x3F_FFFF) << 10)
            } while self.lastPacketID == 0
            return self.lastPacketID
        }
    }

    /// One connection.
    private struct Session {
        let id: Int
        let writer: MeshtasticFrameWriter
        let handshakeStarts: AsyncStream<(generation: Int, startedAt: Duration)>.Continuation
        var nonce: UInt32 = 0
        var generation = 0
        var progress = HandshakeProgress()
        var info: MeshtasticRadioInfo?
        var queueFree: UInt32?
    }

    /// What the `want_config` answer has brought so far.
    private struct HandshakeProgress {
        var myInfo: Meshtastic_MyNodeInfo?
        var ownUser: Meshtastic_User?
        var metadata: Meshtastic_DeviceMetadata?
        var channels: [Int32: Meshtastic_Channel] = [:]
        var lora: Meshtastic_Config.LoRaConfig?
    }

    /// Where the link is.
    public var state: MeshtasticLinkState { self.shared.withLock { $0.state } }

    /// The radio, once a handshake has completed (kept while reconnecting).
    public var radioInfo: MeshtasticRadioInfo? {
        self.shared.withLock { if case .ready(let info) = $0.state { info } else { $0.session?.info } }
    }

    /// Counters for status and metrics.
    public var statistics: MeshtasticLinkStatistics { self.shared.withLock { $0.statistics } }

    /// The node database, by node number (the radio's own node included), from the handshake and live packets.
    public func nodes() -> [MeshtasticNode] {
        self.shared.withLock { $0.nodes.values.sorted { $0.number < $1.number } }
    }

    /// Waits until a handshake completes (at once when ready); throws `CancellationError` when the waiting task is
    /// cancelled or ``run()`` has ended.
    public func waitUntilReady() async throws -> MeshtasticRadioInfo {
        let token = self.shared.withLock { shared -> Int in
            let token = shared.token()
            shared.readyWaiters.register(token)
            if case .ready(let info) = shared.state {
                _ = shared.readyWaiters.answer(token, .success(info))
            } else if shared.stopped {
                _ = shared.readyWaiters.answer(token, .failure(CancellationError()))
            }
            return token
        }
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if let value = self.shared.withLock({ $0.readyWaiters.attach(token, continuation) }) { continuation.resume(returning: value) }
            }
        } onCancel: {
            self.shared.withLock { $0.readyWaiters.answer(token, .failure(CancellationError())) }?.resume(returning: .failure(CancellationError()))
        }
        return try result.get()
    }

    // MARK: - Running

    /// Connects, keeps the connection and reconnects, until the task is cancelled; closes the transport at the end.
    public func run() async {
        self.shared.withLock { $0.stopped = false }
        var delay = self.options.initialReconnectDelay
        var connectedBefore = false
        while !Task.isCancelled {
            self.setState(.connecting)
            let transport: any MeshtasticTransport
            do {
                transport = try await self.connectTransport()
            } catch {
                self.shared.withLock {
                    $0.statistics.connectFailures += 1
                    $0.state = .disconnected(reason: error.description)
                }
                self.logger.warning("Meshtastic radio at \(self.endpoint) not reachable: \(error); next try in \(delay)")
                guard await self.pause(delay) else { break }
                delay = min(delay * 2, self.options.maximumReconnectDelay)
                continue
            }
            if connectedBefore { self.shared.withLock { $0.statistics.reconnects += 1 } }
            connectedBefore = true
            let (reason, reachedReady) = await self.runSession(transport)
            transport.close()
            self.endSession(reason: reason)
            guard !Task.isCancelled else { break }
            self.logger.warning("Meshtastic radio at \(self.endpoint) disconnected: \(reason)")
            if reachedReady { delay = self.options.initialReconnectDelay }
            guard await self.pause(delay) else { break }
            delay = min(delay * 2, self.options.maximumReconnectDelay)
        }
        let waiters = self.shared.withLock { shared -> [CheckedContinuation<Result<MeshtasticRadioInfo, CancellationError>, Never>] in
            shared.stopped = true
            shared.state = .disconnected(reason: "stopped")
            return shared.readyWaiters.registeredKeys.compactMap { shared.readyWaiters.answer($0, .failure(CancellationError())) }
        }
        for waiter in waiters { waiter.resume(returning: .failure(CancellationError())) }
    }

    /// Sleeps on the link's clock; false when cancelled.
    private func pause(_ duration: Duration) async -> Bool {
        do {
            try await self.timeline.sleepUntil(self.timeline.now() + duration)
            return !Task.isCancelled
        } catch {
            return false
        }
    }

    private func setState(_ state: MeshtasticLinkState) {
        self.shared.withLock { $0.state = state }
    }

    /// Runs one connection until it ends; returns why, and whether it got ready.
    private func runSession(_ transport: any MeshtasticTransport) async -> (reason: String, reachedReady: Bool) {
        let (handshakeStarts, handshakeSink) = AsyncStream<(generation: Int, startedAt: Duration)>.makeStream()
        let sessionID = self.shared.withLock { shared -> Int in
            shared.nextSessionID += 1
            shared.session = Session(id: shared.nextSessionID, writer: MeshtasticFrameWriter(transport), handshakeStarts: handshakeSink)
            shared.state = .handshaking
            return shared.nextSessionID
        }
        let (ends, endSink) = AsyncStream<String>.makeStream()
        let start = self.timeline.now()
        let reason = await withTaskGroup(of: Void.self) { group -> String in
            group.addTask { endSink.yield(await self.readLoop(transport, sessionID: sessionID)) }
            group.addTask { if let reason = await self.heartbeatLoop(sessionID: sessionID, start: start) { endSink.yield(reason) } }
            group.addTask { if let reason = await self.handshakeWatchdog(handshakeStarts, sessionID: sessionID) { endSink.yield(reason) } }
            if let failure = await self.startHandshake(sessionID: sessionID) { endSink.yield(failure) }
            var reason = "stopped"
            for await first in ends {
                reason = first
                break
            }
            group.cancelAll()
            return reason
        }
        handshakeSink.finish()
        let reachedReady = self.shared.withLock { $0.session?.info != nil }
        return (reason, reachedReady)
    }

    /// Forgets the connection: pending sends learn the link was lost, queue waiters wake to see it.
    private func endSession(reason: String) {
        let (acknowledgements, queueWaiters) = self.shared.withLock { shared in
            shared.session = nil
            shared.state = .disconnected(reason: reason)
            return (Self.failAcknowledgements(&shared, session: nil), Self.wakeQueueWaiters(&shared))
        }
        for waiter in acknowledgements { waiter.resume(returning: .failure(.linkLost)) }
        for waiter in queueWaiters { waiter.resume() }
    }

    /// Answers every pending send (of `session`, or all) with `.linkLost`; returns the waiters to resume.
    private static func failAcknowledgements(_ shared: inout Shared, session: Int?)
        -> [CheckedContinuation<Result<MeshtasticSendOutcome, MeshtasticSendError>, Never>]
    {
        var waiters: [CheckedContinuation<Result<MeshtasticSendOutcome, MeshtasticSendError>, Never>] = []
        for (id, owner) in shared.acknowledgementSessions where session == nil || owner == session {
            if let waiter = shared.acknowledgements.answer(id, .failure(.linkLost)) { waiters.append(waiter) }
        }
        return waiters
    }

    private static func wakeQueueWaiters(_ shared: inout Shared) -> [CheckedContinuation<Void, Never>] {
        shared.queueWaiters.registeredKeys.compactMap { shared.queueWaiters.answer($0, ()) }
    }

    /// Writes one ToRadio on the session's transport.
    private func write(_ message: Meshtastic_ToRadio, sessionID: Int) async throws(MeshtasticTransportError) {
        guard let writer = self.shared.withLock({ $0.session?.id == sessionID ? $0.session?.writer : nil }) else {
            throw MeshtasticTransportError(.closed, endpoint: self.endpoint.description)
        }
        let frame: [UInt8]
        do {
            frame = try MeshtasticFraming.frame(message)
        } catch {
            // Only a packet above 512 bytes could fail; send() refuses payloads above 233 first.
            throw MeshtasticTransportError(.io(errno: 90), endpoint: self.endpoint.description)
        }
        try await writer.write(frame)
        self.shared.withLock { $0.statistics.framesOut += 1 }
    }

    /// Sends `want_config_id` with a fresh nonce; nil on success, else why the connection is over.
    private func startHandshake(sessionID: Int) async -> String? {
        var nonce: UInt32
        repeat { nonce = UInt32.random(in: 1...UInt32.max) } while Self.reservedNonces.contains(nonce)
        let chosen = nonce
        let accepted = self.shared.withLock { shared -> Bool in
            guard shared.session?.id == sessionID else { return false }
            shared.session?.nonce = chosen
            shared.session?.generation += 1
            shared.session?.progress = HandshakeProgress()
            shared.state = .handshaking
            if let session = shared.session { session.handshakeStarts.yield((session.generation, self.timeline.now())) }
            return true
        }
        guard accepted else { return nil }
        do {
            try await self.write(.with { $0.wantConfigID = chosen }, sessionID: sessionID)
            return nil
        } catch {
            return "want_config failed: \(error)"
        }
    }

    /// Ends the connection when a handshake does not complete within the handshake timeout.
    private func handshakeWatchdog(_ starts: AsyncStream<(generation: Int, startedAt: Duration)>, sessionID: Int) async -> String? {
        for await start in starts {
            do {
                try await self.timeline.sleepUntil(start.startedAt + self.options.handshakeTimeout)
            } catch {
                return nil
            }
            let timedOut = self.shared.withLock { shared -> Bool in
                guard let session = shared.session, session.id == sessionID, session.generation == start.generation,
                    !shared.state.isReady
                else { return false }
                shared.statistics.handshakeTimeouts += 1
                return true
            }
            if timedOut {
                return "no config_complete_id within \(self.options.handshakeTimeout) (firmware too old, or not a Meshtastic API)"
            }
        }
        return nil
    }

    /// A heartbeat every ``MeshtasticLinkOptions/heartbeatInterval`` from the connection's start; nil when stopped,
    /// else why the connection is over.
    private func heartbeatLoop(sessionID: Int, start: Duration) async -> String? {
        var beat = 1
        while true {
            do {
                try await self.timeline.sleepUntil(start + self.options.heartbeatInterval * beat)
            } catch {
                return nil
            }
            if Task.isCancelled { return nil }
            beat += 1
            do {
                try await self.write(Self.heartbeat(), sessionID: sessionID)
            } catch {
                return "heartbeat failed: \(error)"
            }
            self.shared.withLock { $0.statistics.heartbeatsSent += 1 }
        }
    }

    /// A heartbeat the radio answers with a QueueStatus (a nonce of 1 would make it broadcast its NodeInfo instead).
    private static func heartbeat() -> Meshtastic_ToRadio {
        .with { $0.heartbeat = .with { $0.nonce = UInt32.random(in: 2...UInt32.max) } }
    }

    // MARK: - Reading

    private func readLoop(_ transport: any MeshtasticTransport, sessionID: Int) async -> String {
        var decoder = MeshtasticFromRadioDecoder()
        var counted = SerialStreamStatistics()
        while !Task.isCancelled {
            let bytes: [UInt8]
            do {
                bytes = try await transport.read(maxCount: 4096, timeout: self.options.readPollInterval)
            } catch {
                return error.code == .closed ? "\(transport.name) closed the connection" : error.description
            }
            guard !bytes.isEmpty else { continue }
            decoder.append(bytes)
            var messages: [Meshtastic_FromRadio] = []
            while let frame = decoder.next() { messages.append(frame.message) }
            let now = decoder.statistics
            let rejection = decoder.lastRejection
            self.shared.withLock { shared in
                shared.statistics.framesIn += now.frames - counted.frames
                shared.statistics.skippedBytes += now.skippedBytes - counted.skippedBytes
                let rejected = now.malformedFrames - counted.malformedFrames
                shared.statistics.rejectedFrames += rejected
                if rejected > 0, let rejection { shared.statistics.lastRejection = rejection.description }
            }
            counted = now
            for message in messages {
                if let reason = await self.handle(message, sessionID: sessionID) { return reason }
            }
        }
        return "stopped"
    }

    /// Acts on one message from the radio; a reason when the connection must end.
    private func handle(_ message: Meshtastic_FromRadio, sessionID: Int) async -> String? {
        switch message.payloadVariant {
        case .myInfo(let info):
            self.updateProgress(sessionID) { $0.myInfo = info }
        case .nodeInfo(let node):
            self.shared.withLock { shared in
                if shared.session?.progress.myInfo?.myNodeNum == node.num { shared.session?.progress.ownUser = node.user }
                Self.learn(node, into: &shared.nodes)
            }
        case .metadata(let metadata):
            self.updateProgress(sessionID) { $0.metadata = metadata }
        case .channel(let channel):
            self.updateProgress(sessionID) { $0.channels[channel.index] = channel }
        case .config(let config):
            if case .lora(let lora) = config.payloadVariant { self.updateProgress(sessionID) { $0.lora = lora } }
        case .configCompleteID(let nonce):
            self.completeHandshake(nonce: nonce, sessionID: sessionID)
        case .rebooted:
            let waiters = self.shared.withLock { shared in
                shared.statistics.radioReboots += 1
                return Self.failAcknowledgements(&shared, session: sessionID)
            }
            for waiter in waiters { waiter.resume(returning: .failure(.linkLost)) }
            self.logger.notice("Meshtastic radio at \(self.endpoint) rebooted; asking for its configuration again")
            return await self.startHandshake(sessionID: sessionID)
        case .queueStatus(let status):
            let waiters = self.shared.withLock { shared in
                shared.statistics.queueStatusReceived += 1
                shared.statistics.queueFree = status.free
                shared.session?.queueFree = status.free
                return Self.wakeQueueWaiters(&shared)
            }
            for waiter in waiters { waiter.resume() }
        case .clientNotification(let notification):
            self.shared.withLock {
                $0.statistics.notifications += 1
                $0.statistics.lastNotification = notification.message
            }
            self.logger.warning("Meshtastic radio says: \(notification.message)")
        case .packet(let packet):
            self.receive(packet)
        default:
            break
        }
        return nil
    }

    private func updateProgress(_ sessionID: Int, _ update: (inout HandshakeProgress) -> Void) {
        self.shared.withLock { shared in
            guard shared.session?.id == sessionID, var progress = shared.session?.progress else { return }
            update(&progress)
            shared.session?.progress = progress
        }
    }

    private func completeHandshake(nonce: UInt32, sessionID: Int) {
        let (info, waiters) = self.shared.withLock { shared -> (MeshtasticRadioInfo?, [CheckedContinuation<Result<MeshtasticRadioInfo, CancellationError>, Never>]) in
            // A config_complete_id for another nonce ends an older request: ignore it.
            guard let session = shared.session, session.id == sessionID, session.nonce == nonce else { return (nil, []) }
            let progress = session.progress
            let metadata = progress.metadata
            let info = MeshtasticRadioInfo(
                myNodeNumber: progress.myInfo?.myNodeNum ?? 0,
                firmwareVersion: metadata.map(\.firmwareVersion).flatMap { $0.isEmpty ? nil : $0 },
                hardwareModel: metadata.map(\.hwModel) ?? progress.ownUser.map(\.hwModel),
                channels: progress.channels.values.filter { $0.role != .disabled }.sorted { $0.index < $1.index }.map {
                    MeshtasticChannel(index: UInt32(clamping: $0.index), name: $0.settings.name, role: $0.role)
                },
                longName: progress.ownUser.map(\.longName), shortName: progress.ownUser.map(\.shortName),
                rebootCount: progress.myInfo?.rebootCount ?? 0,
                region: progress.lora?.region, hopLimit: progress.lora.flatMap { $0.hopLimit > 0 ? $0.hopLimit : nil }
            )
            shared.session?.info = info
            shared.state = .ready(info)
            shared.statistics.handshakes += 1
            let waiters = shared.readyWaiters.registeredKeys.compactMap { shared.readyWaiters.answer($0, .success(info)) }
            return (info, waiters)
        }
        guard let info else { return }
        for waiter in waiters { waiter.resume(returning: .success(info)) }
        let channels = info.channels.map(\.description).joined(separator: ", ")
        self.logger.info(
            "Meshtastic radio \(info.userID) ready at \(self.endpoint): firmware \(info.firmwareVersion ?? "unknown"), channels \(channels)")
    }

    /// A node info from the handshake.
    private static func learn(_ info: Meshtastic_NodeInfo, into nodes: inout [UInt32: MeshtasticNode]) {
        var node = nodes[info.num] ?? MeshtasticNode(number: info.num)
        if info.hasUser { Self.apply(info.user, to: &node) }
        if info.hasPosition { Self.apply(info.position, to: &node) }
        if info.lastHeard > 0 { node.lastHeard = Date(timeIntervalSince1970: TimeInterval(info.lastHeard)) }
        if info.snr != 0 { node.snr = info.snr }
        nodes[info.num] = node
    }

    private static func apply(_ user: Meshtastic_User, to node: inout MeshtasticNode) {
        if !user.longName.isEmpty { node.longName = user.longName }
        if !user.shortName.isEmpty { node.shortName = user.shortName }
        if user.hwModel != .unset { node.hardwareModel = user.hwModel }
    }

    private static func apply(_ position: Meshtastic_Position, to node: inout MeshtasticNode) {
        // 0/0 is how the firmware says "no fix".
        guard position.hasLatitudeI, position.hasLongitudeI, position.latitudeI != 0 || position.longitudeI != 0 else { return }
        node.latitude = Double(position.latitudeI) / 1e7
        node.longitude = Double(position.longitudeI) / 1e7
        if position.hasAltitude { node.altitude = position.altitude }
    }

    /// A live packet: answers to our sends go to their waiters, NODEINFO and POSITION feed the node database, and
    /// every decoded packet goes out on ``packets``.
    private func receive(_ packet: Meshtastic_MeshPacket) {
        let heard = packet.hasRxTime && packet.rxTime > 0 ? Date(timeIntervalSince1970: TimeInterval(packet.rxTime)) : self.timeline.date()
        let decoded: Meshtastic_Data? = if case .decoded(let data) = packet.payloadVariant { data } else { nil }
        enum Disposition {
            case deliver
            case consumed(CheckedContinuation<Result<MeshtasticSendOutcome, MeshtasticSendError>, Never>?, MeshtasticSendOutcome)
            case encrypted
        }
        let disposition = self.shared.withLock { shared -> Disposition in
            shared.statistics.packetsReceived += 1
            var node = shared.nodes[packet.from] ?? MeshtasticNode(number: packet.from)
            node.lastHeard = heard
            if packet.rxSnr != 0 { node.snr = packet.rxSnr }
            if packet.hasRxRssi { node.rssi = packet.rxRssi }
            defer { shared.nodes[packet.from] = node }
            guard let data = decoded else {
                shared.statistics.encryptedPackets += 1
                return .encrypted
            }
            if data.portnum == .routingApp, data.requestID != 0,
                shared.acknowledgements.contains(data.requestID) || shared.recentSendIDs.contains(data.requestID)
            {
                let reason = (try? Meshtastic_Routing(serializedBytes: data.payload))?.errorReason ?? .none
                let myNumber = shared.session?.info?.myNodeNumber
                let outcome: MeshtasticSendOutcome =
                    reason != .none ? .refused(reason) : packet.from == myNumber ? .implicitlyAcknowledged : .acknowledged
                guard shared.acknowledgements.contains(data.requestID) else { return .consumed(nil, outcome) }
                switch outcome {
                case .acknowledged: shared.statistics.acknowledged += 1
                case .implicitlyAcknowledged: shared.statistics.implicitlyAcknowledged += 1
                case .refused(let error): shared.statistics.refused[error, default: 0] += 1
                case .sent: break
                }
                shared.acknowledgementSessions[data.requestID] = nil
                return .consumed(shared.acknowledgements.answer(data.requestID, .success(outcome)), outcome)
            }
            switch data.portnum {
            case .nodeinfoApp:
                if let user = try? Meshtastic_User(serializedBytes: data.payload) { Self.apply(user, to: &node) }
            case .positionApp:
                if let position = try? Meshtastic_Position(serializedBytes: data.payload) { Self.apply(position, to: &node) }
            default:
                break
            }
            return .deliver
        }
        switch disposition {
        case .deliver:
            guard let decoded else { return }
            if case .dropped = self.packetSink.yield(MeshtasticReceivedPacket(packet, data: decoded)) {
                self.shared.withLock { $0.statistics.packetsDropped += 1 }
            }
        case .consumed(let waiter, let outcome):
            waiter?.resume(returning: .success(outcome))
        case .encrypted:
            break
        }
    }

    // MARK: - Sending

    /// Sends `payload` on `portnum` to `destination` on channel `channel`, and waits for the radio's answer.
    ///
    /// - Returns: with `wantAck` (the default), the routing answer whose `request_id` is this packet's id:
    ///   ``MeshtasticSendOutcome/acknowledged`` from another node, ``MeshtasticSendOutcome/implicitlyAcknowledged``
    ///   from our own radio (a broadcast), or ``MeshtasticSendOutcome/refused(_:)`` with the routing error (a NAK,
    ///   such as `DUTY_CYCLE_LIMIT`); without, ``MeshtasticSendOutcome/sent`` once the radio has it.
    /// - Throws: ``MeshtasticSendError/payloadTooLarge(_:)`` above 233 bytes and ``MeshtasticSendError/notConnected``
    ///   before the handshake (nothing is sent), ``MeshtasticSendError/timedOut`` after the answer timeout,
    ///   ``MeshtasticSendError/linkLost`` when the connection broke or the radio rebooted first.
    ///
    /// While the radio reports a full send queue (QueueStatus `free == 0`), it waits, asking for fresh queue status.
    public func send(
        portnum: Meshtastic_PortNum, payload: [UInt8], to destination: UInt32 = MeshtasticRadioLink.broadcast, channel: UInt32,
        wantAck: Bool = true, hopLimit: UInt32? = nil, priority: Meshtastic_MeshPacket.Priority = .unset
    ) async throws(MeshtasticSendError) -> MeshtasticSendOutcome {
        guard payload.count <= MeshtasticPayload.maximumLength else { throw .payloadTooLarge(payload.count) }
        let deadline = self.timeline.now() + self.options.answerTimeout
        let sessionID = try await self.waitForQueueRoom(until: deadline)
        let prepared = self.shared.withLock { shared -> (id: UInt32, hopLimit: UInt32)? in
            guard let session = shared.session, session.id == sessionID, let info = session.info else { return nil }
            let id = shared.nextPacketID()
            if wantAck {
                shared.acknowledgements.register(id)
                shared.acknowledgementSessions[id] = sessionID
            }
            shared.recentSendIDs.append(id)
            if shared.recentSendIDs.count > 64 { shared.recentSendIDs.removeFirst() }
            return (id, hopLimit ?? info.hopLimit ?? self.options.defaultHopLimit)
        }
        guard let prepared else { throw .notConnected }
        let message = Meshtastic_ToRadio.with {
            $0.packet = .with {
                $0.to = destination
                $0.channel = channel
                $0.id = prepared.id
                $0.wantAck = wantAck
                $0.hopLimit = prepared.hopLimit
                $0.priority = priority
                $0.decoded = .with {
                    $0.portnum = portnum
                    $0.payload = Data(payload)
                }
            }
        }
        do {
            try await self.write(message, sessionID: sessionID)
        } catch {
            self.forgetAcknowledgement(prepared.id)
            throw .linkLost
        }
        self.shared.withLock { $0.statistics.packetsSent += 1 }
        guard wantAck else { return .sent }
        let id = prepared.id
        let result = await self.waitForAnswer(until: deadline) { continuation in
            self.shared.withLock { $0.acknowledgements.attach(id, continuation) }
        } expire: { cancelled in
            let waiter = self.shared.withLock { shared in
                if !cancelled, shared.acknowledgements.contains(id) { shared.statistics.answerTimeouts += 1 }
                return shared.acknowledgements.answer(id, .failure(cancelled ? .cancelled : .timedOut))
            }
            waiter?.resume(returning: .failure(cancelled ? .cancelled : .timedOut))
        }
        self.forgetAcknowledgement(id)
        return try result.get()
    }

    private func forgetAcknowledgement(_ id: UInt32) {
        self.shared.withLock {
            $0.acknowledgements.remove(id)
            $0.acknowledgementSessions[id] = nil
        }
    }

    /// The ready session's id once the radio's queue has room; throws when not ready, on timeout or cancellation.
    private func waitForQueueRoom(until deadline: Duration) async throws(MeshtasticSendError) -> Int {
        while true {
            let current = self.shared.withLock { shared -> (id: Int, free: UInt32?)? in
                guard let session = shared.session, session.info != nil, shared.state.isReady else { return nil }
                return (session.id, session.queueFree)
            }
            guard let current else { throw .notConnected }
            if current.free != 0 { return current.id }
            guard !Task.isCancelled else { throw .cancelled }
            guard self.timeline.now() < deadline else { throw .timedOut }
            // The radio reports its queue after every packet and heartbeat: ask, then wait for the answer.
            try? await self.write(Self.heartbeat(), sessionID: current.id)
            let token = self.shared.withLock { shared -> Int in
                let token = shared.token()
                shared.queueWaiters.register(token)
                return token
            }
            await self.waitForAnswer(until: min(deadline, self.timeline.now() + .seconds(5))) { continuation in
                self.shared.withLock { $0.queueWaiters.attach(token, continuation) }
            } expire: { _ in
                self.shared.withLock { $0.queueWaiters.answer(token, ()) }?.resume()
            }
            self.shared.withLock { $0.queueWaiters.remove(token) }
        }
    }

    /// Parks the caller with `attach` until its answer comes, `deadline` passes on the link's clock, or the task is
    /// cancelled; `expire` must answer the slot (idempotently) in the last two cases.
    private func waitForAnswer<Value: Sendable>(
        until deadline: Duration, attach: (CheckedContinuation<Value, Never>) -> Value?,
        expire: @escaping @Sendable (_ cancelled: Bool) -> Void
    ) async -> Value {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [timeline] in
                do {
                    try await timeline.sleepUntil(deadline)
                } catch {
                    return
                }
                expire(false)
            }
            let value = await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    if let value = attach(continuation) { continuation.resume(returning: value) }
                }
            } onCancel: {
                expire(true)
            }
            group.cancelAll()
            return value
        }
    }
}
