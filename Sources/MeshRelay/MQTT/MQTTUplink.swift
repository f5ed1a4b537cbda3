import Foundation
public import KiezboxCore
public import Logging
import Synchronization

/// Why the MQTT uplink did not deliver, or could not do what was asked.
public enum MQTTUplinkError: Error, Sendable, Hashable, CustomStringConvertible {
    /// ``MQTTUplink/start()`` has not been called.
    case notStarted
    /// ``MQTTUplink/stop()`` has been called.
    case stopped
    /// No connection to the broker, with the reason of the last failed attempt when there was one
    /// (``MQTTConnectionFailure/refused(_:)`` for wrong credentials, ``MQTTConnectionFailure/tls(_:)`` for an
    /// untrusted broker certificate, ``MQTTConnectionFailure/network(_:)`` for an unreachable broker).
    case notConnected(MQTTConnectionFailure?)
    /// Connected, but the broker acknowledged nothing within the acknowledgement timeout.
    case acknowledgementTimeout(Duration)
    /// The broker answered every message with an MQTT 5 reason code ≥ 0x80 (e.g. 0x87 not authorised).
    case publishRefused(reasonCode: Int32)
    /// libmosquitto rejected a publish, subscribe or the configuration.
    case client(MosquittoError)
    /// A district, box id or prefix that cannot be a topic segment.
    case invalidTopicSegment(String)
    /// A readings message could not be encoded as JSON.
    case encodingFailed(String)

    public var description: String {
        switch self {
        case .notStarted: "MQTT uplink not started"
        case .stopped: "MQTT uplink stopped"
        case .notConnected(nil): "not connected to the MQTT broker"
        case .notConnected(let failure?): "not connected to the MQTT broker: \(failure)"
        case .acknowledgementTimeout(let timeout): "the MQTT broker acknowledged nothing within \(timeout)"
        case .publishRefused(let code):
            "the MQTT broker refused the messages (reason code 0x\(String(code, radix: 16)))"
        case .client(let error): "libmosquitto: \(error)"
        case .invalidTopicSegment(let segment): "not usable in an MQTT topic: \"\(segment)\""
        case .encodingFailed(let reason): "readings message not encodable: \(reason)"
        }
    }
}

/// Delivers readings to an MQTT broker with QoS 1 and keeps the box's retained status there.
///
/// Topics and payloads are documented in docs/mqtt.md:
/// * `<prefix>/<district>/<box>/readings`: ``ReadingsMessage`` JSON, QoS 1, not retained;
/// * `<prefix>/<district>/<box>/status`: ``StatusMessage`` JSON, QoS 1, retained: `online` after every
///   CONNACK, `offline` before a clean ``stop()``, and `offline` as the Last Will when the connection dies.
///
/// ## Delivery
///
/// ``deliver(_:)`` splits a batch into messages of ``Configuration/readingsPerMessage`` readings, keeps at
/// most ``Configuration/maximumInFlight`` messages unacknowledged, and returns exactly the ids of readings
/// whose message got its PUBACK. It gives up when no PUBACK for its messages has arrived for
/// ``Configuration/acknowledgementTimeout``. Nothing is lost when it gives up: the ids are not returned, so the
/// relay offers them again. A message already handed to libmosquitto is never published a second time while
/// it is pending (libmosquitto resends it itself after a reconnect); a later call that is offered its
/// readings waits for that message instead, and a PUBACK that arrives after its call gave up is remembered and
/// returned by the next call that is offered those readings. Receivers may still see a message twice (QoS 1,
/// or a box restart before the PUBACK): each observation carries its stable id to de-duplicate by.
///
/// A PUBACK that never comes (a broker or bridge that drops a message without a word, a PUBACK lost on a path
/// that does not break) must not hold its readings and its in-flight slot for ever: once a message has waited
/// ``Configuration/acknowledgementDeadline`` on a live connection, the uplink reconnects (libmosquitto sends it
/// again); if the next deadline passes too, it stops the client and starts a new one, which forgets the
/// unacknowledged messages, so their readings are offered again and published in new messages.
///
/// ## Lifecycle
///
/// ``start()`` starts connecting and returns at once; ``stop()`` publishes `offline`, disconnects and ends the
/// network thread. The daemon calls them from its service (for example a ServiceLifecycle `Service` whose
/// `run()` calls `start()`, waits for graceful shutdown and then awaits `stop()`). An uplink cannot be started
/// again after `stop()`; create a new one.
public final class MQTTUplink: Uplink {
    public struct Configuration: Sendable {
        /// The uplink's name, also the name of its cursor in the store.
        public var name: String
        public var host: String
        public var port: Int
        /// `nil`: "kiezbox-<district>-<box>".
        public var clientID: String?
        public var credentials: MosquittoClient.Credentials?
        public var tls: MosquittoClient.TLS?
        public var keepAlive: Duration
        public var topicPrefix: String
        public var readingsPerMessage: Int
        /// Most readings messages published and not yet acknowledged, across all calls.
        public var maximumInFlight: Int
        /// The most readings one ``MQTTUplink/deliver(_:)`` call takes (``MQTTUplink/maximumBatch``). `nil`:
        /// five in-flight windows (5 × readingsPerMessage × maximumInFlight = 10 000 by default). Within a call
        /// the window is refilled as PUBACKs arrive; only its end waits for the last PUBACKs, so larger batches
        /// pay that wait less often.
        public var maximumBatch: Int?
        /// How long ``MQTTUplink/deliver(_:)`` waits without any PUBACK before it gives up; also the wait for
        /// the PUBACK of a status message.
        public var acknowledgementTimeout: Duration
        /// How long a readings message may wait for its PUBACK while connected, counted from the latest of its
        /// publication, the last CONNACK and the last PUBACK of an older message (PUBACKs come in publication
        /// order, so a slow link does not count against the messages queued behind the one on the wire). Past
        /// it the uplink reconnects, so libmosquitto sends the message again; past it once more, the uplink
        /// replaces its libmosquitto client and publishes the message's readings again in new messages. Checked
        /// every quarter of it, so it acts after 1–1.25 times this. `nil`: four acknowledgement timeouts.
        public var acknowledgementDeadline: Duration?
        /// `false` (default): a clean session; the neighbours' retained statuses arrive again on every
        /// (re)subscribe anyway. `true`: the broker keeps subscriptions and queues messages while the box is away.
        public var persistentSession: Bool
        /// MQTT 5 Session Expiry Interval of a persistent session.
        public var sessionExpiry: Duration
        public var protocolVersion: MQTTProtocolPreference
        public var reconnectDelay: MosquittoClient.ReconnectDelay
        /// MQTT 5 Message Expiry Interval of readings messages: a broker drops them when they are older (for
        /// example while queued for a subscriber that is away). `nil`: they do not expire.
        public var readingsExpiry: Duration?
        /// The mode the status reports until ``MQTTUplink/publishStatus(_:)`` is called; also the mode of the Last Will.
        public var initialMode: Mode
        /// The portal's HTTPS side, announced in every status (the Last Will included).
        public var portalHTTPS: StatusMessage.PortalHTTPS? = nil
        /// The box's bulletin signing key (public, raw, base64), announced in every status (the Last Will included).
        public var bulletinKey: String? = nil

        public init(
            host: String,
            port: Int = 1883,
            name: String = "mqtt",
            clientID: String? = nil,
            credentials: MosquittoClient.Credentials? = nil,
            tls: MosquittoClient.TLS? = nil,
            keepAlive: Duration = .seconds(30),
            topicPrefix: String = "kiezbox/v1",
            readingsPerMessage: Int = 100,
            maximumInFlight: Int = 20,
            maximumBatch: Int? = nil,
            acknowledgementTimeout: Duration = .seconds(15),
            acknowledgementDeadline: Duration? = nil,
            persistentSession: Bool = false,
            sessionExpiry: Duration = .seconds(86_400),
            protocolVersion: MQTTProtocolPreference = .v5FallingBackToV311,
            reconnectDelay: MosquittoClient.ReconnectDelay = MosquittoClient.ReconnectDelay(),
            readingsExpiry: Duration? = nil,
            initialMode: Mode = .normal
        ) {
            self.name = name
            self.host = host
            self.port = port
            self.clientID = clientID
            self.credentials = credentials
            self.tls = tls
            self.keepAlive = keepAlive
            self.topicPrefix = topicPrefix
            self.readingsPerMessage = readingsPerMessage
            self.maximumInFlight = maximumInFlight
            self.maximumBatch = maximumBatch
            self.acknowledgementTimeout = acknowledgementTimeout
            self.acknowledgementDeadline = acknowledgementDeadline
            self.persistentSession = persistentSession
            self.sessionExpiry = sessionExpiry
            self.protocolVersion = protocolVersion
            self.reconnectDelay = reconnectDelay
            self.readingsExpiry = readingsExpiry
            self.initialMode = initialMode
        }
    }

    public let configuration: Configuration
    public let sender: SenderIdentity
    public let topics: MQTTTopics

    public var name: String { self.configuration.name }
    public let maximumBatch: Int

    private let readingsPerMessage: Int
    private let maximumInFlight: Int
    /// Every libmosquitto client of this uplink is made from it (a replacement too).
    private let clientConfiguration: MosquittoClient.Configuration
    /// The current libmosquitto client; replaced when messages stay unacknowledged past the deadline.
    private let currentClient: Mutex<MosquittoClient>
    private var client: MosquittoClient { self.currentClient.withLock { $0 } }
    /// Between two checks of the unacknowledged messages: a quarter of the acknowledgement deadline.
    private let deadlineCheckInterval: Duration
    /// How many checks a message may wait before it is overdue (four full intervals have passed then).
    private static let deadlineChecks = 5
    private let logger: Logger
    private let clock: any KiezboxClock
    private let state: Mutex<State>
    /// The mode the status reports. Held while a status is built and handed to libmosquitto, so status
    /// messages leave in the order of mode changes and the retained one is always the latest mode.
    private let statusMode: Mutex<Mode>
    private let statusBatteryVolts = Mutex<Double?>(nil)
    private let statusPower = Mutex<StatusMessage.Power?>(nil)

    private struct State {
        enum Phase { case idle, running, stopping, stopped }
        var phase = Phase.idle
        var lastFailure: MQTTConnectionFailure?
        var consumer: Task<Void, Never>?
        var nextToken: UInt64 = 0
        /// Readings messages handed to libmosquitto and not yet acknowledged, by our own sequence number
        /// (libmosquitto's 16-bit message ids wrap; ours do not). At most `maximumInFlight`.
        var outstanding: [UInt64: OutstandingMessage] = [:]
        /// Reading id → the outstanding message carrying it.
        var messageOfReading: [Int64: UInt64] = [:]
        /// Readings acknowledged after the call that published them gave up (bounded).
        var lateAcknowledged = Set<Int64>()
        var deliveries: [UInt64: Delivery] = [:]
        /// Checks the outstanding messages against the acknowledgement deadline while there are any.
        var deadlineWatch: Task<Void, Never>?
        /// Filters subscribed to, for a replacement client.
        var subscriptions: [String] = []
        /// Reconnects made because a message was overdue, and messages given up with their client.
        var overdueReconnects = 0
        var givenUpMessages = 0
        /// Set while the client is about to be replaced: nothing new is published, so that only the overdue
        /// messages are given up, not messages the broker would still acknowledge.
        var draining = false
        /// Waiters for connection changes (``waitUntilConnected(timeout:)``).
        var connectionWatchers: [UInt64: Doorbell] = [:]
        var neighbourStreams: [UInt64: (district: String, continuation: AsyncStream<StatusMessage>.Continuation)] = [:]
        var announcementStreams: [UInt64: (district: String, continuation: AsyncStream<[UInt8]>.Continuation)] = [:]
        var bulletinStreams: [UInt64: (district: String, continuation: AsyncStream<MQTTMessage>.Continuation)] = [:]

        mutating func token() -> UInt64 {
            self.nextToken += 1
            return self.nextToken
        }
    }

    /// A readings message handed to libmosquitto and not acknowledged yet.
    private struct OutstandingMessage {
        let readingIDs: [Int64]
        /// Deadline checks passed on a live connection since the message, the last CONNACK or the last PUBACK
        /// of an older message, whichever came last.
        var checksWaited = 0
        /// Whether the uplink has reconnected once already because this message was overdue.
        var reconnectedFor = false
    }

    /// One running ``deliver(_:)`` call.
    private struct Delivery {
        let doorbell: Doorbell
        let batch: Set<Int64>
        /// Outstanding messages whose outcome this call waits for.
        var awaiting: Set<UInt64> = []
        var acknowledged: Set<Int64> = []
        var refusal: Int32?
        var timerSerial = 0
        var timedOut = false
    }

    /// - Parameters:
    ///   - sender: the box and the store instance whose readings this uplink sends.
    ///   - clock: for status timestamps and acknowledgement timeouts.
    ///   - logger: where overdue acknowledgements are reported.
    public init(
        configuration: Configuration, sender: SenderIdentity, clock: any KiezboxClock = LiveClock(),
        logger: Logger = Logger(label: "kiezbox.mqtt")
    ) throws(MQTTUplinkError) {
        let topics = try MQTTTopics(
            prefix: configuration.topicPrefix, district: sender.box.district, box: sender.box.boxID)
        let will = StatusMessage(
            state: .offline, box: sender.box, mode: configuration.initialMode, portalHTTPS: configuration.portalHTTPS,
            bulletinKey: configuration.bulletinKey, time: clock.currentDate())
        let clientConfiguration = MosquittoClient.Configuration(
            host: configuration.host,
            port: configuration.port,
            clientID: configuration.clientID ?? "kiezbox-\(sender.box.district)-\(sender.box.boxID)",
            cleanSession: !configuration.persistentSession,
            sessionExpiry: configuration.sessionExpiry,
            keepAlive: configuration.keepAlive,
            credentials: configuration.credentials,
            tls: configuration.tls,
            will: MosquittoClient.Will(topic: topics.status, payload: Self.encode(will), qos: .atLeastOnce, retain: true),
            protocolVersion: configuration.protocolVersion,
            reconnectDelay: configuration.reconnectDelay,
            maximumInFlight: max(1, configuration.maximumInFlight),
            publishEvents: false  // deliveries use the completions; keep the event stream for connection changes
        )
        do {
            self.currentClient = Mutex(try MosquittoClient(clientConfiguration))
        } catch {
            throw .client(error)
        }
        self.clientConfiguration = clientConfiguration
        // At least 100 ms between checks: a zero or negative deadline must not make the check spin.
        self.deadlineCheckInterval = max(
            .milliseconds(100), (configuration.acknowledgementDeadline ?? configuration.acknowledgementTimeout * 4) / 4)
        self.logger = logger
        self.configuration = configuration
        self.sender = sender
        self.topics = topics
        self.clock = clock
        self.readingsPerMessage = max(1, configuration.readingsPerMessage)
        self.maximumInFlight = max(1, configuration.maximumInFlight)
        self.maximumBatch = max(1, configuration.maximumBatch ?? 5 * self.readingsPerMessage * self.maximumInFlight)
        self.state = Mutex(State())
        self.statusMode = Mutex(configuration.initialMode)
    }

    /// The connection as libmosquitto's network thread last saw it.
    public var connectionState: MQTTConnectionState { self.client.connectionState }

    /// Why the uplink is not connected: the client's own state first (the event consumer may not have seen
    /// the latest attempt yet), else the last failure seen.
    private func currentFailure() -> MQTTConnectionFailure? {
        if case .disconnected(let failure?) = self.client.connectionState { return failure }
        return self.state.withLock { $0.lastFailure }
    }

    /// Now while the broker connection is up; otherwise `nil` (the daemon keeps the last time it saw it up).
    public var lastContact: Date? { self.client.connectionState.isConnected ? self.clock.currentDate() : nil }
    public var reportsContact: Bool { true }

    /// Readings messages handed to libmosquitto and not acknowledged yet (at most
    /// ``Configuration/maximumInFlight``): a gauge for monitoring.
    public var unacknowledgedMessageCount: Int { self.state.withLock { $0.outstanding.count } }

    /// How often a readings message went past the acknowledgement deadline and the uplink reconnected so
    /// libmosquitto would send it again: a counter for monitoring.
    public var overdueReconnectCount: Int { self.state.withLock { $0.overdueReconnects } }

    /// Readings messages given up because their PUBACK did not come after a reconnect either (their readings
    /// were offered again): a counter for monitoring.
    public var givenUpMessageCount: Int { self.state.withLock { $0.givenUpMessages } }

    // MARK: - Lifecycle

    /// Starts connecting (and reconnecting, until ``stop()``) and returns at once. An unreachable broker is not
    /// an error: readings stay in the store until it can be reached.
    public func start() async throws {
        let events = self.client.events
        let started = self.state.withLock { state -> Bool in
            guard state.phase == .idle else { return false }
            state.phase = .running
            state.consumer = Task { await self.consume(events) }
            return true
        }
        if started { self.client.start() }
    }

    /// Publishes the retained `offline` status (waiting up to 3 s, at most the acknowledgement timeout, for its PUBACK),
    /// disconnects cleanly so the Last Will is not sent, and ends the network thread. Neighbour streams finish;
    /// running ``deliver(_:)`` calls return what was acknowledged.
    public func stop() async {
        let (wasRunning, deadlineWatch) = self.state.withLock { state -> (Bool, Task<Void, Never>?) in
            switch state.phase {
            case .idle, .running:
                let wasRunning = state.phase == .running
                state.phase = .stopping
                return (wasRunning, state.deadlineWatch)
            case .stopping, .stopped:
                return (false, nil)
            }
        }
        // A client replacement under way finishes first: the client and consumer below are then the current ones.
        deadlineWatch?.cancel()
        await deadlineWatch?.value
        let consumer = self.state.withLock { $0.consumer }
        if wasRunning, self.client.connectionState.isConnected {
            // Bounded well inside systemd's TimeoutStopSec=30: the store's final flush comes after the uplink stops.
            _ = await self.publishStatusAndWait(.offline, timeout: min(self.configuration.acknowledgementTimeout, Self.offlineStatusWait))
        }
        await self.client.stop()
        await consumer?.value
        let (streams, announcementStreams, bulletinStreams, doorbells) = self.state.withLock { state in
            state.phase = .stopped
            defer {
                state.neighbourStreams = [:]
                state.announcementStreams = [:]
                state.bulletinStreams = [:]
            }
            return (
                state.neighbourStreams.values.map(\.continuation),
                state.announcementStreams.values.map(\.continuation),
                state.bulletinStreams.values.map(\.continuation),
                state.deliveries.values.map(\.doorbell) + state.connectionWatchers.values
            )
        }
        for stream in streams { stream.finish() }
        for stream in announcementStreams { stream.finish() }
        for stream in bulletinStreams { stream.finish() }
        for doorbell in doorbells { doorbell.ring() }
    }

    /// Waits until the broker has accepted the connection. Throws ``MQTTUplinkError/notConnected(_:)`` at once
    /// when the broker refused (credentials) or the TLS handshake failed, otherwise after `timeout`.
    public func waitUntilConnected(timeout: Duration) async throws(MQTTUplinkError) {
        let doorbell = Doorbell()
        let token = self.state.withLock { state in
            let token = state.token()
            state.connectionWatchers[token] = doorbell
            return token
        }
        defer { _ = self.state.withLock { $0.connectionWatchers.removeValue(forKey: token) } }
        let outcome = await awaitCondition(doorbell: doorbell, timeout: timeout, clock: self.clock) {
            () -> Result<Void, MQTTUplinkError>? in
            if self.client.connectionState.isConnected { return .success(()) }
            switch self.state.withLock({ $0.phase }) {
            case .idle: return .failure(.notStarted)
            case .stopping, .stopped: return .failure(.stopped)
            case .running: break
            }
            let failure = self.currentFailure()
            switch failure {
            case .refused?, .tls?: return .failure(.notConnected(failure))
            case .network?, nil: return nil
            }
        }
        switch outcome {
        case .success?: return
        case .failure(let error)?: throw error
        case nil: throw .notConnected(self.currentFailure())
        }
    }

    /// Closes the TCP connection without DISCONNECT (the broker publishes the Last Will; the uplink reconnects
    /// after its reconnect delay). For fault-injection tests and to force a new connection after a network change.
    public func severConnection() {
        self.client.severConnection()
    }

    // MARK: - Status

    /// Publishes the retained `online` status with `mode` and waits for its PUBACK. The mode is remembered and
    /// published again after every reconnect, also when this call throws because the box is offline.
    public func publishStatus(_ mode: Mode, batteryVolts: Double? = nil, power: StatusMessage.Power? = nil) async throws(MQTTUplinkError) {
        self.statusMode.withLock { $0 = mode }
        self.statusBatteryVolts.withLock { $0 = batteryVolts }
        self.statusPower.withLock { $0 = power }
        switch self.state.withLock({ $0.phase }) {
        case .idle: throw .notStarted
        case .stopping, .stopped: throw .stopped
        case .running: break
        }
        guard self.client.connectionState.isConnected else { throw .notConnected(self.currentFailure()) }
        switch await self.publishStatusAndWait(.online) {
        case .acknowledged?: return
        case .refused(let reasonCode)?: throw .publishRefused(reasonCode: reasonCode)
        case .abandoned?: throw .stopped
        case nil: throw .acknowledgementTimeout(self.configuration.acknowledgementTimeout)
        }
    }

    /// Publishes the status (retained, QoS 1); returns the outcome, or `nil` if the PUBACK did not come in time.
    /// The longest a stop waits for the broker to acknowledge the `offline` status.
    static let offlineStatusWait: Duration = .seconds(3)

    private func publishStatusAndWait(_ state: StatusMessage.State, timeout: Duration? = nil) async -> MQTTPublishOutcome? {
        let outcome = Mutex<MQTTPublishOutcome?>(nil)
        let doorbell = Doorbell()
        do {
            try self.publishStatusNow(state) { result in
                outcome.withLock { $0 = result }
                doorbell.ring()
            }
        } catch {
            return nil
        }
        let timeout = timeout ?? self.configuration.acknowledgementTimeout
        return await awaitCondition(doorbell: doorbell, timeout: timeout, clock: self.clock) {
            outcome.withLock { $0 }
        }
    }

    private func publishStatusNow(
        _ state: StatusMessage.State, onOutcome: (@Sendable (MQTTPublishOutcome) -> Void)? = nil
    ) throws(MosquittoError) {
        try self.statusMode.withLock { mode throws(MosquittoError) in
            let status = StatusMessage(
                state: state, box: self.sender.box, mode: mode, batteryVolts: self.statusBatteryVolts.withLock { $0 },
                power: self.statusPower.withLock { $0 }, portalHTTPS: self.configuration.portalHTTPS,
                bulletinKey: self.configuration.bulletinKey, time: self.clock.currentDate()
            )
            try self.client.publish(
                topic: self.topics.status, payload: Self.encode(status), qos: .atLeastOnce, retain: true,
                onOutcome: onOutcome)
        }
    }

    // MARK: - Neighbours

    /// The statuses of the other boxes in `district` (retained ones first, then every change), decoded; the
    /// box's own status is left out, and so is anything that does not decode as a ``StatusMessage`` (including
    /// the empty payload that deletes a retained status). Subscribes with QoS 1 and again after every
    /// reconnect, so retained statuses arrive again then. The stream finishes when the uplink stops; it keeps
    /// the newest 256 statuses for a slow consumer.
    public func subscribe(toDistrict district: String) throws(MQTTUplinkError) -> AsyncStream<StatusMessage> {
        try self.openStream(
            filter: try MQTTTopics.statusFilter(prefix: self.topics.prefix, district: district), district: district,
            streams: \.neighbourStreams
        )
    }

    // MARK: - Announcements

    /// Publishes a signed announcement envelope, unchanged, retained with QoS 1 at
    /// `<prefix>/<district>/announcements/<name>` of this box's district, and waits for its PUBACK. With
    /// `expiry` (MQTT 5) the broker drops the retained copy when the announcement expires. While disconnected
    /// libmosquitto keeps the message and sends it after reconnecting; this call then throws
    /// ``MQTTUplinkError/notConnected(_:)`` after the acknowledgement timeout, but the message is not lost
    /// unless the process ends first.
    public func publishAnnouncement(_ envelope: [UInt8], named name: String, expiry: Duration? = nil) async throws(MQTTUplinkError) {
        try await self.publishRetainedAndWait(envelope, topic: try self.topics.announcement(named: name), expiry: expiry)
    }

    // MARK: - Bulletin

    /// Publishes a signed bulletin envelope (``BulletinMessage``) retained with QoS 1 at
    /// `<prefix>/<district>/<box>/bulletin/<post-id>` of this box, with MQTT 5 message expiry `expiry` (the
    /// post's), and waits for its PUBACK. Nothing is queued while disconnected: throws
    /// ``MQTTUplinkError/notConnected(_:)`` at once, and the caller tries again later.
    public func publishBulletin(_ envelope: [UInt8], postID: String, expiry: Duration) async throws(MQTTUplinkError) {
        let topic = try self.topics.bulletinPost(id: postID)
        if self.state.withLock({ $0.phase }) == .running, !self.client.connectionState.isConnected {
            throw .notConnected(self.currentFailure())
        }
        try await self.publishRetainedAndWait(envelope, topic: topic, expiry: expiry)
    }

    /// Every box's bulletin messages in `district` (retained ones first, then every change), this box's own and
    /// empty payloads left out; the topic names the origin box and post. Subscribed like
    /// ``subscribe(toDistrict:)``.
    public func subscribe(toBulletinIn district: String) throws(MQTTUplinkError) -> AsyncStream<MQTTMessage> {
        try self.openStream(
            filter: try MQTTTopics.bulletinFilter(prefix: self.topics.prefix, district: district), district: district,
            streams: \.bulletinStreams
        )
    }

    // MARK: - Other retained messages

    /// Publishes `payload` retained with QoS 1 at `topic` (any topic, not only the box's own: Home Assistant's
    /// discovery topics live under their own prefix) and waits for its PUBACK; an empty payload deletes the
    /// retained message. Unlike announcements, nothing is queued while disconnected: throws
    /// ``MQTTUplinkError/notConnected(_:)`` at once, so the caller decides when to try again.
    public func publishRetained(_ payload: [UInt8], topic: String) async throws(MQTTUplinkError) {
        guard MQTTTopics.isPublishable(topic) else { throw .invalidTopicSegment(topic) }
        if self.state.withLock({ $0.phase }) == .running, !self.client.connectionState.isConnected {
            throw .notConnected(self.currentFailure())
        }
        try await self.publishRetainedAndWait(payload, topic: topic, expiry: nil)
    }

    /// Publishes `payload` retained with QoS 1 at `topic` and waits for its PUBACK (see ``publishAnnouncement(_:named:expiry:)``).
    private func publishRetainedAndWait(_ payload: [UInt8], topic: String, expiry: Duration?) async throws(MQTTUplinkError) {
        switch self.state.withLock({ $0.phase }) {
        case .idle: throw .notStarted
        case .stopping, .stopped: throw .stopped
        case .running: break
        }
        let outcome = Mutex<MQTTPublishOutcome?>(nil)
        let doorbell = Doorbell()
        do {
            try self.client.publish(
                topic: topic, payload: payload, qos: .atLeastOnce, retain: true, messageExpiry: expiry
            ) { result in
                outcome.withLock { $0 = result }
                doorbell.ring()
            }
        } catch {
            throw .client(error)
        }
        let result = await awaitCondition(doorbell: doorbell, timeout: self.configuration.acknowledgementTimeout, clock: self.clock) {
            outcome.withLock { $0 }
        }
        switch result {
        case .acknowledged?: return
        case .refused(let reasonCode)?: throw .publishRefused(reasonCode: reasonCode)
        case .abandoned?: throw .stopped
        case nil:
            if !self.client.connectionState.isConnected { throw .notConnected(self.currentFailure()) }
            throw .acknowledgementTimeout(self.configuration.acknowledgementTimeout)
        }
    }

    /// The raw payloads published on `<prefix>/<district>/announcements/+` (retained ones first, then every
    /// new one), this box's own included; empty payloads (a deleted retained message) are left out. Nothing is
    /// verified here: the payloads come from anyone who may publish on the broker. Subscribes with QoS 1 and
    /// again after every reconnect. The stream finishes when the uplink stops; it keeps the newest 256 payloads
    /// for a slow consumer.
    public func subscribe(toAnnouncementsIn district: String) throws(MQTTUplinkError) -> AsyncStream<[UInt8]> {
        try self.openStream(
            filter: try MQTTTopics.announcementsFilter(prefix: self.topics.prefix, district: district), district: district,
            streams: \.announcementStreams
        )
    }

    /// A stream of what arrives on `filter`, registered in `streams` (where the event consumer finds it) and
    /// subscribed with QoS 1; it finishes when the uplink stops, and keeps the newest 256 elements for a slow
    /// consumer.
    private func openStream<Element: Sendable>(
        filter: String, district: String,
        streams: WritableKeyPath<State, [UInt64: (district: String, continuation: AsyncStream<Element>.Continuation)]>
    ) throws(MQTTUplinkError) -> AsyncStream<Element> {
        let (stream, continuation) = AsyncStream.makeStream(of: Element.self, bufferingPolicy: .bufferingNewest(256))
        let token = self.state.withLock { state -> UInt64? in
            guard state.phase == .idle || state.phase == .running else { return nil }
            let token = state.token()
            state[keyPath: streams][token] = (district, continuation)
            if !state.subscriptions.contains(filter) { state.subscriptions.append(filter) }
            return token
        }
        guard let token else {
            continuation.finish()
            return stream
        }
        // Tokens are unique across both kinds of stream: remove it from both (a key path is not Sendable).
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { state in
                state.neighbourStreams.removeValue(forKey: token)
                state.announcementStreams.removeValue(forKey: token)
                state.bulletinStreams.removeValue(forKey: token)
            }
        }
        do {
            try self.client.subscribe(filter, qos: .atLeastOnce)
        } catch {
            continuation.finish()
            throw .client(error)
        }
        return stream
    }

    // MARK: - Events

    /// The single consumer of the client's events; ends when the client has stopped.
    private func consume(_ events: AsyncStream<MosquittoClient.Event>) async {
        let decoder = JSONDecoder()
        for await event in events {
            switch event {
            case .connected:
                self.state.withLock { state in
                    state.lastFailure = nil
                    // The deadline counts on a live connection only: from this CONNACK on.
                    for sequence in state.outstanding.keys { state.outstanding[sequence]?.checksWaited = 0 }
                }
                // Every CONNACK: the Last Will may have replaced the status while the box was away.
                try? self.publishStatusNow(.online)
                self.ringAll()
            case .connectionFailed(let failure), .disconnected(let failure?):
                self.state.withLock { $0.lastFailure = failure }
                self.ringAll()
            case .disconnected(nil):
                self.ringAll()
            case .message(let message):
                self.route(message, decoder: decoder)
            case .published, .subscribed:
                break
            }
        }
    }

    private func ringAll() {
        let doorbells = self.state.withLock { state in
            state.deliveries.values.map(\.doorbell) + state.connectionWatchers.values
        }
        for doorbell in doorbells { doorbell.ring() }
    }

    private func route(_ message: MQTTMessage, decoder: JSONDecoder) {
        if let (district, box, _) = MQTTTopics.bulletinTopicComponents(message.topic, prefix: self.topics.prefix) {
            guard !message.payload.isEmpty, !(district == self.topics.district && box == self.topics.box) else { return }
            let streams = self.state.withLock { state in
                state.bulletinStreams.values.filter { $0.district == district }.map(\.continuation)
            }
            for stream in streams { stream.yield(message) }
            return
        }
        if let district = MQTTTopics.announcementTopicDistrict(message.topic, prefix: self.topics.prefix) {
            guard !message.payload.isEmpty else { return }
            let streams = self.state.withLock { state in
                state.announcementStreams.values.filter { $0.district == district }.map(\.continuation)
            }
            for stream in streams { stream.yield(message.payload) }
            return
        }
        guard let (district, box) = MQTTTopics.statusTopicComponents(message.topic, prefix: self.topics.prefix),
            !(district == self.topics.district && box == self.topics.box),
            !message.payload.isEmpty,
            let status = try? decoder.decode(StatusMessage.self, from: Data(message.payload)),
            // A status speaks only for the box whose topic it came on (the broker's ACL lets a box write only
            // its own): what it says about its box, its bulletin key included, cannot be claimed for another.
            status.district == district, status.box == box
        else { return }
        let streams = self.state.withLock { state in
            state.neighbourStreams.values.filter { $0.district == district }.map(\.continuation)
        }
        for stream in streams { stream.yield(status) }
    }

    // MARK: - Delivery

    /// Delivers `batch` and returns the ids of the readings whose message the broker acknowledged.
    ///
    /// Throws ``MQTTUplinkError`` when nothing was acknowledged: ``MQTTUplinkError/notConnected(_:)`` (nothing
    /// is published while disconnected), ``MQTTUplinkError/acknowledgementTimeout(_:)``,
    /// ``MQTTUplinkError/publishRefused(reasonCode:)``, ``MQTTUplinkError/notStarted``,
    /// ``MQTTUplinkError/stopped``; `CancellationError` when the task was cancelled first.
    public func deliver(_ batch: [StoredReading]) async throws -> Set<Int64> {
        guard !batch.isEmpty else { return [] }
        let doorbell = Doorbell()
        let (token, fresh) = try self.state.withLock { state throws(MQTTUplinkError) -> (UInt64, [StoredReading]) in
            switch state.phase {
            case .idle: throw .notStarted
            case .stopping, .stopped: throw .stopped
            case .running: break
            }
            var delivery = Delivery(doorbell: doorbell, batch: Set(batch.map(\.id)))
            var fresh: [StoredReading] = []
            var seen = Set<Int64>()
            for reading in batch where seen.insert(reading.id).inserted {
                if state.lateAcknowledged.remove(reading.id) != nil {
                    delivery.acknowledged.insert(reading.id)
                } else if let message = state.messageOfReading[reading.id] {
                    delivery.awaiting.insert(message)  // libmosquitto has it queued: wait, do not republish
                } else {
                    fresh.append(reading)
                }
            }
            let token = state.token()
            state.deliveries[token] = delivery
            return (token, fresh)
        }
        var timer: Task<Void, Never>? = nil
        defer {
            timer?.cancel()
            _ = self.state.withLock { $0.deliveries.removeValue(forKey: token) }
        }
        let encoder = Self.makeEncoder()
        var unpublished = fresh[...]
        var publishError: MQTTUplinkError?
        var acknowledgedSoFar = -1
        while true {
            // Publish while connected and below the in-flight limit.
            while !unpublished.isEmpty, publishError == nil, self.client.connectionState.isConnected {
                let slotFree = self.state.withLock { state in
                    state.phase == .running && !state.draining && state.outstanding.count < self.maximumInFlight
                        && state.deliveries[token]?.timedOut == false
                }
                guard slotFree else { break }
                let chunk = Array(unpublished.prefix(self.readingsPerMessage))
                do {
                    try self.publishReadings(chunk, for: token, encoder: encoder)
                    unpublished.removeFirst(chunk.count)
                } catch {
                    publishError = error
                }
            }
            let progress = self.state.withLock { state in
                let delivery = state.deliveries[token]
                return (
                    acknowledged: delivery?.acknowledged.count ?? 0, awaitingNothing: delivery?.awaiting.isEmpty ?? true,
                    timedOut: delivery?.timedOut ?? true, running: state.phase == .running
                )
            }
            if progress.acknowledged != acknowledgedSoFar {
                // First pass, or a PUBACK arrived: the timeout counts from now.
                acknowledgedSoFar = progress.acknowledged
                timer?.cancel()
                timer = self.armTimer(for: token)
            }
            if progress.timedOut || !progress.running || Task.isCancelled { break }
            let canPublishMore = !unpublished.isEmpty && publishError == nil && self.client.connectionState.isConnected
            if progress.awaitingNothing && !canPublishMore { break }
            await doorbell.wait()
        }
        let (acknowledged, refusal, phase) = self.state.withLock { state in
            let delivery = state.deliveries[token]
            return (delivery?.acknowledged ?? [], delivery?.refusal, state.phase)
        }
        if !acknowledged.isEmpty { return acknowledged }
        if let publishError { throw publishError }
        if let refusal { throw MQTTUplinkError.publishRefused(reasonCode: refusal) }
        if phase != .running { throw MQTTUplinkError.stopped }
        try Task.checkCancellation()
        if !self.client.connectionState.isConnected { throw MQTTUplinkError.notConnected(self.currentFailure()) }
        throw MQTTUplinkError.acknowledgementTimeout(self.configuration.acknowledgementTimeout)
    }

    /// Publishes one readings message for the delivery `token`.
    private func publishReadings(
        _ chunk: [StoredReading], for token: UInt64, encoder: JSONEncoder
    ) throws(MQTTUplinkError) {
        let payload: [UInt8]
        do {
            payload = Array(try encoder.encode(ReadingsMessage(chunk, from: self.sender)))
        } catch {
            throw .encodingFailed("\(error)")
        }
        let ids = chunk.map(\.id)
        // Registered before publishing: the PUBACK can arrive before publish() returns.
        let sequence = self.state.withLock { state in
            let sequence = state.token()
            state.outstanding[sequence] = OutstandingMessage(readingIDs: ids)
            for id in ids { state.messageOfReading[id] = sequence }
            state.deliveries[token]?.awaiting.insert(sequence)
            if state.deadlineWatch == nil, state.phase == .running {
                state.deadlineWatch = Task { await self.watchAcknowledgementDeadline() }
            }
            return sequence
        }
        do {
            try self.client.publish(
                topic: self.topics.readings, payload: payload, qos: .atLeastOnce, retain: false,
                messageExpiry: self.configuration.readingsExpiry
            ) { outcome in
                self.messageFinished(sequence, outcome: outcome)
            }
        } catch {
            self.messageFinished(sequence, outcome: .abandoned)
            throw .client(error)
        }
    }

    /// The outcome of readings message `sequence`. Runs on libmosquitto's network thread: short, no blocking.
    private func messageFinished(_ sequence: UInt64, outcome: MQTTPublishOutcome) {
        let doorbells = self.state.withLock { state -> [Doorbell] in
            // Unknown: its client was replaced before (the replacement reported it abandoned). Nothing to do.
            guard let ids = state.outstanding.removeValue(forKey: sequence)?.readingIDs else { return [] }
            if outcome == .acknowledged {
                // PUBACKs come in publication order: the messages after this one have waited only since now.
                for later in state.outstanding.keys where later > sequence { state.outstanding[later]?.checksWaited = 0 }
            }
            for id in ids where state.messageOfReading[id] == sequence {
                state.messageOfReading[id] = nil
            }
            var claimed = Set<Int64>()
            for token in Array(state.deliveries.keys) {
                guard var delivery = state.deliveries[token] else { continue }
                delivery.awaiting.remove(sequence)
                switch outcome {
                case .acknowledged:
                    let mine = ids.filter { delivery.batch.contains($0) }
                    delivery.acknowledged.formUnion(mine)
                    claimed.formUnion(mine)
                case .refused(let reasonCode):
                    delivery.refusal = reasonCode
                case .abandoned:
                    break
                }
                state.deliveries[token] = delivery
            }
            if outcome == .acknowledged {
                // Acknowledged after its call gave up: the next call offered these readings returns them.
                for id in ids where !claimed.contains(id) {
                    state.lateAcknowledged.insert(id)
                }
                let capacity = 2 * self.maximumBatch
                while state.lateAcknowledged.count > capacity {
                    state.lateAcknowledged.removeFirst()  // forgotten: published once more later, receivers de-duplicate
                }
            }
            // A freed in-flight slot matters to every waiting call.
            return state.deliveries.values.map(\.doorbell)
        }
        for doorbell in doorbells { doorbell.ring() }
    }

    // MARK: - Acknowledgement deadline

    /// What a deadline check found.
    private enum OverdueAction {
        case none, finished
        /// Reconnect: libmosquitto sends the overdue messages again.
        case reconnect(messages: Int)
        /// Replace the client: its unacknowledged messages are given up and their readings offered again.
        case replaceClient(messages: Int, readings: Int)
    }

    /// Runs while readings messages are outstanding: every ``deadlineCheckInterval`` it counts how long each has
    /// waited on a live connection and acts on the overdue ones (see ``Configuration/acknowledgementDeadline``).
    private func watchAcknowledgementDeadline() async {
        while true {
            do { try await self.clock.sleep(for: self.deadlineCheckInterval) } catch { return }
            let connected = self.client.connectionState.isConnected
            let action = self.state.withLock { state -> OverdueAction in
                guard state.phase == .running, !state.outstanding.isEmpty else {
                    state.deadlineWatch = nil
                    state.draining = false
                    return .finished
                }
                guard connected else { return .none }
                for sequence in state.outstanding.keys { state.outstanding[sequence]?.checksWaited += 1 }
                let overdue = state.outstanding.values.filter { $0.checksWaited >= Self.deadlineChecks }
                if overdue.contains(where: \.reconnectedFor) {
                    // Overdue again after a reconnect: wait until the messages still moving are acknowledged (or
                    // overdue too), then give up everything left with the client.
                    state.draining = true
                    guard overdue.count == state.outstanding.count else { return .none }
                    state.givenUpMessages += overdue.count
                    return .replaceClient(messages: overdue.count, readings: overdue.reduce(0) { $0 + $1.readingIDs.count })
                }
                guard !overdue.isEmpty else { return .none }
                // All of them are sent again after the reconnect.
                for sequence in state.outstanding.keys { state.outstanding[sequence]?.reconnectedFor = true }
                state.overdueReconnects += 1
                return .reconnect(messages: overdue.count)
            }
            switch action {
            case .finished:
                return
            case .none:
                continue
            case .reconnect(let messages):
                self.logger.warning(
                    "readings messages unacknowledged past the deadline; reconnecting so they are sent again",
                    metadata: ["uplink": "\(self.name)", "messages": "\(messages)", "deadline": "\(self.deadlineCheckInterval * 4)"])
                self.client.severConnection()
            case .replaceClient(let messages, let readings):
                self.logger.warning(
                    "readings messages still unacknowledged after a reconnect; giving them up and publishing their readings again",
                    metadata: ["uplink": "\(self.name)", "messages": "\(messages)", "readings": "\(readings)"])
                await self.replaceClient()
            }
        }
    }

    /// Stops the current client (it reports its unacknowledged messages abandoned, which frees their readings
    /// and in-flight slots; libmosquitto's queue goes with the handle) and starts a new one in its place.
    private func replaceClient() async {
        let replacement: MosquittoClient
        do {
            replacement = try MosquittoClient(self.clientConfiguration)
        } catch {
            // The same configuration made the first client: not expected. Keep the old one and try again later.
            self.logger.error("could not create a new MQTT client", metadata: ["uplink": "\(self.name)", "error": "\(error)"])
            return
        }
        let previous = self.currentClient.withLock { current in
            defer { current = replacement }
            return current
        }
        // Subscribed before it starts: it subscribes on every CONNACK.
        for filter in self.state.withLock({ $0.subscriptions }) {
            try? replacement.subscribe(filter, qos: .atLeastOnce)
        }
        await previous.stop()
        await self.state.withLock { $0.consumer }?.value
        let events = replacement.events
        self.state.withLock { state in
            state.consumer = Task { await self.consume(events) }
            state.draining = false
        }
        replacement.start()
        self.ringAll()
    }

    /// Marks delivery `token` timed out after the acknowledgement timeout, unless re-armed before.
    private func armTimer(for token: UInt64) -> Task<Void, Never> {
        let serial = self.state.withLock { state -> Int in
            state.deliveries[token]?.timerSerial += 1
            return state.deliveries[token]?.timerSerial ?? 0
        }
        let timeout = self.configuration.acknowledgementTimeout
        return Task { [clock] in
            do { try await clock.sleep(for: timeout) } catch { return }
            let doorbell = self.state.withLock { state -> Doorbell? in
                guard state.deliveries[token]?.timerSerial == serial else { return nil }
                state.deliveries[token]?.timedOut = true
                return state.deliveries[token]?.doorbell
            }
            doorbell?.ring()
        }
    }

    // MARK: - JSON

    /// The encoder of every payload: sorted keys and unescaped slashes (byte-for-byte reproducible), and
    /// non-finite numbers as the strings "NaN", "Infinity", "-Infinity" instead of failing (a reading that can
    /// never be encoded would otherwise block the relay's cursor for ever).
    public static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return encoder
    }

    static func encode(_ status: StatusMessage) -> [UInt8] {
        // A StatusMessage has only strings, integers and finite coordinates: encoding cannot fail.
        (try? Array(self.makeEncoder().encode(status))) ?? []
    }
}
