import CMosquitto
import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An MQTT client on libmosquitto 2.0, safe to use from any task or thread.
///
/// ## Threads
///
/// The client owns one **network thread** (``start()`` creates it, ``stop()`` ends it). It is the only thread
/// that connects, reconnects and runs `mosquitto_loop`, so every libmosquitto callback except `on_log` runs
/// on it. `on_log` can run on whichever thread is inside a libmosquitto call (a `publish` logs "sending
/// PUBLISH" on the caller's thread). ``publish(topic:payload:qos:retain:messageExpiry:onOutcome:)``,
/// ``subscribe(_:qos:)`` and ``stop()`` may be called from any thread: the handle is put into threaded mode
/// (`mosquitto_threaded_set`), so libmosquitto guards its own queues with its internal mutexes.
///
/// Why not `mosquitto_loop_start()`: its thread runs `mosquitto_loop_forever`, which *returns* (and the thread
/// ends) on errors it considers fatal. With libmosquitto 2.0.11 that includes every TLS failure (a wrong CA,
/// or a Pi whose clock is not set yet, reports only an `on_log` line and no `on_disconnect`) and every MQTT 5
/// CONNACK refusal (wrong password, "unsupported protocol version"). The box would silently stop
/// reconnecting for good. Our thread runs the same steps as `loop_forever` (`mosquitto_reconnect`, then
/// `mosquitto_loop` until it fails) but treats every failure as "try again after the backoff", sees why the
/// connection ended, and can switch to MQTT 3.1.1 between attempts. For the same reason the reconnect delay
/// is ours (``ReconnectDelay``: doubling from `initial` up to `maximum`) rather than
/// `mosquitto_reconnect_delay_set`, whose "exponential" mode grows quadratically and only inside `loop_forever`.
///
/// Connecting (DNS, TCP, TLS setup) blocks the network thread, never a Swift concurrency thread.
///
/// ## Callbacks and the userdata box
///
/// libmosquitto calls plain C function pointers (`@convention(c)` closures cannot capture anything). Their
/// context is the `void *userdata` given to `mosquitto_new`: an `Unmanaged` reference to a
/// ``CallbackContext``. `Unmanaged` erases Swift's Sendable checking, so that box is a `Sendable` final class
/// holding only `let` properties of Sendable types (an `AsyncStream.Continuation` and `Mutex`es): whatever
/// thread a callback runs on, it only touches thread-safe state. Callbacks copy what they need (topic,
/// payload) before returning, because libmosquitto frees its buffers afterwards.
///
/// ## Lifetime
///
/// The box is retained once (`passRetained`) when the handle is created and released in `deinit`, only after
/// `mosquitto_destroy`: after that no callback can fire. The network thread holds a strong reference to the
/// client while it runs, so `deinit` runs only once the thread has ended (possibly on that thread, as its last
/// act, which is safe: the loop is no longer running). A client that was started but never stopped therefore
/// stays alive, connected and reconnecting, like any running service. The box never references the client.
///
/// ## Publishing with QoS ≥ 1
///
/// `mosquitto_publish_v5` chooses the message id and returns it through an out parameter, and the PUBACK can
/// arrive on the network thread before that call has returned. So the call and the insertion of the id into
/// the table of pending publishes happen under one lock, which `on_publish` takes too: it always finds the
/// entry. Nothing that libmosquitto can run inside `mosquitto_publish_v5` takes that lock (only `on_log` runs
/// there, and it has a lock of its own), so holding it across the call cannot deadlock.
///
/// With QoS ≥ 1 libmosquitto queues a publish made while disconnected (2.0.11 returns `MOSQ_ERR_NO_CONN` for it
/// anyway, which this wrapper reports as success), keeps the message in RAM and sends it (again, with DUP)
/// after every reconnect until it is acknowledged: do not publish it a second time. Messages
/// still unacknowledged when the client stops are reported as ``MQTTPublishOutcome/abandoned``.
///
/// ## Events
///
/// Connection changes, acknowledgements, SUBACKs and received messages arrive on ``events``: a bounded
/// `AsyncStream` (the oldest events are dropped if its single consumer stalls) that finishes when the client
/// stops. Exactly one task may iterate it.
public final class MosquittoClient: @unchecked Sendable {
    // @unchecked: `handle` (OpaquePointer) is not Sendable. Threading contract: `handle` is immutable; lifecycle
    // calls that must not overlap (connect, reconnect, loop) are made only by the network thread; other threads
    // only call the functions libmosquitto documents as safe alongside a running loop (publish, subscribe,
    // disconnect, mosquitto_socket); `mosquitto_destroy` runs in `deinit`, when no other thread can use the
    // handle. All mutable Swift state lives in Mutexes or Atomics.

    /// How to reach the broker and who to be there.
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// Must be stable for a persistent session. mosquitto accepts long ids; MQTT 3.1.1 only promises 23 characters.
        public var clientID: String
        /// `true`: the broker forgets subscriptions and queued messages when the connection ends.
        /// `false`: a persistent session (MQTT 5: Clean Start 0 plus ``sessionExpiry``).
        public var cleanSession: Bool
        /// MQTT 5 Session Expiry Interval for persistent sessions. (MQTT 3.1.1 sessions never expire by protocol.)
        public var sessionExpiry: Duration
        public var keepAlive: Duration
        public var credentials: Credentials?
        public var tls: TLS?
        /// Published by the broker when the connection ends without DISCONNECT.
        public var will: Will?
        public var protocolVersion: MQTTProtocolPreference
        public var reconnectDelay: ReconnectDelay
        /// Most QoS ≥ 1 messages on the wire without acknowledgement (`MOSQ_OPT_SEND_MAXIMUM`); libmosquitto
        /// queues the rest. An MQTT 5 broker's Receive Maximum can lower it.
        public var maximumInFlight: Int
        /// How long ``MosquittoClient/stop()`` waits for DISCONNECT to be written before closing anyway.
        public var disconnectTimeout: Duration
        /// Disable Nagle's algorithm on our side (`MOSQ_OPT_TCP_NODELAY`): small packets are not held back.
        public var tcpNoDelay: Bool
        /// Acknowledge the broker's TCP segments at once (Linux `TCP_QUICKACK`, set again after every read of the
        /// network loop). Against a broker that keeps Nagle's algorithm on (mosquitto's default), PUBACKs
        /// otherwise wait for our delayed ACK, about 40 ms, each time we wait for the last PUBACKs of a batch.
        public var quickAcknowledgements: Bool
        /// Whether every `on_publish` also becomes a ``MosquittoClient/Event/published(messageID:outcome:)``
        /// event. Turn it off when the `onOutcome` completions are all you need: a burst of acknowledgements
        /// then cannot push connection events out of the bounded event stream.
        public var publishEvents: Bool

        public init(
            host: String,
            port: Int = 1883,
            clientID: String,
            cleanSession: Bool = true,
            sessionExpiry: Duration = .seconds(86_400),
            keepAlive: Duration = .seconds(30),
            credentials: Credentials? = nil,
            tls: TLS? = nil,
            will: Will? = nil,
            protocolVersion: MQTTProtocolPreference = .v5FallingBackToV311,
            reconnectDelay: ReconnectDelay = ReconnectDelay(),
            maximumInFlight: Int = 20,
            disconnectTimeout: Duration = .seconds(5),
            tcpNoDelay: Bool = true,
            quickAcknowledgements: Bool = true,
            publishEvents: Bool = true
        ) {
            self.host = host
            self.port = port
            self.clientID = clientID
            self.cleanSession = cleanSession
            self.sessionExpiry = sessionExpiry
            self.keepAlive = keepAlive
            self.credentials = credentials
            self.tls = tls
            self.will = will
            self.protocolVersion = protocolVersion
            self.reconnectDelay = reconnectDelay
            self.maximumInFlight = maximumInFlight
            self.disconnectTimeout = disconnectTimeout
            self.tcpNoDelay = tcpNoDelay
            self.quickAcknowledgements = quickAcknowledgements
            self.publishEvents = publishEvents
        }
    }

    public struct Credentials: Sendable, Hashable {
        public var username: String
        public var password: String?

        public init(username: String, password: String?) {
            self.username = username
            self.password = password
        }
    }

    /// TLS with a CA file that the broker's certificate must chain to; optionally a client certificate.
    /// The broker's certificate must also name the host connected to (DNS or IP subject alternative name).
    public struct TLS: Sendable, Hashable {
        public var caFile: String
        public var clientCertificate: ClientCertificate?

        public init(caFile: String, clientCertificate: ClientCertificate? = nil) {
            self.caFile = caFile
            self.clientCertificate = clientCertificate
        }
    }

    /// PEM files; the key must not be encrypted.
    public struct ClientCertificate: Sendable, Hashable {
        public var certificateFile: String
        public var privateKeyFile: String

        public init(certificateFile: String, privateKeyFile: String) {
            self.certificateFile = certificateFile
            self.privateKeyFile = privateKeyFile
        }
    }

    public struct Will: Sendable, Hashable {
        public var topic: String
        public var payload: [UInt8]
        public var qos: MQTTQoS
        public var retain: Bool

        public init(topic: String, payload: [UInt8], qos: MQTTQoS = .atLeastOnce, retain: Bool = true) {
            self.topic = topic
            self.payload = payload
            self.qos = qos
            self.retain = retain
        }
    }

    /// The pause before reconnecting: `initial`, doubled after every further failed attempt, at most
    /// `maximum`; back to `initial` once a connection has been accepted.
    public struct ReconnectDelay: Sendable, Hashable {
        public var initial: Duration
        public var maximum: Duration

        public init(initial: Duration = .seconds(1), maximum: Duration = .seconds(60)) {
            self.initial = initial
            self.maximum = max(initial, maximum)
        }

        /// The pause after `failures` consecutive failed attempts (0 → `initial`).
        public func delay(afterFailures failures: Int) -> Duration {
            var delay = self.initial
            for _ in 0..<min(failures, 32) {
                delay *= 2
                if delay >= self.maximum { return self.maximum }
            }
            return min(delay, self.maximum)
        }
    }

    /// What libmosquitto reported, in order.
    public enum Event: Sendable {
        /// CONNACK accepted the connection (also after every reconnect).
        case connected(MQTTConnectionInfo)
        /// An attempt failed before a connection was established: refused, TLS, network.
        case connectionFailed(MQTTConnectionFailure)
        /// An established connection ended; `nil` when ``MosquittoClient/stop()`` closed it.
        case disconnected(MQTTConnectionFailure?)
        /// `on_publish`: PUBACK (QoS 1), PUBCOMP (QoS 2), or the message was written (QoS 0).
        case published(messageID: Int32, outcome: MQTTPublishOutcome)
        /// SUBACK, with the granted QoS per filter (≥ 0x80 is a refusal).
        case subscribed(messageID: Int32, grantedQoS: [Int32])
        case message(MQTTMessage)
    }

    public let configuration: Configuration
    /// Everything libmosquitto reports. Single consumer; finishes when the client has stopped.
    public let events: AsyncStream<Event>

    private let handle: OpaquePointer
    private let context: Unmanaged<CallbackContext>
    private let lifecycle = Mutex(Lifecycle())
    private let stopRequested = Atomic<Bool>(false)
    /// Signalled by ``stop()`` to cut a reconnect pause short.
    private let wakeup = DispatchSemaphore(value: 0)
    /// Wakes the network thread's poll() when another thread has queued a packet (publish, subscribe, disconnect).
    private let loopWake = LoopWake()

    private struct Lifecycle {
        enum Phase { case idle, running, stopping, stopped }
        var phase = Phase.idle
        var stopDeadline: ContinuousClock.Instant?
        var exitWaiters: [CheckedContinuation<Void, Never>] = []
    }

    /// `mosquitto_lib_init` is not thread-safe and must run once: a `static let` initialiser runs exactly once.
    private static let libraryInitialised: Bool = mosquitto_lib_init() == MOSQ_ERR_SUCCESS.rawValue

    /// "2.0.11": the libmosquitto linked at run time.
    public static var libraryVersion: String {
        var major: Int32 = 0
        var minor: Int32 = 0
        var revision: Int32 = 0
        mosquitto_lib_version(&major, &minor, &revision)
        return "\(major).\(minor).\(revision)"
    }

    /// Creates the libmosquitto handle and applies the configuration. Throws for a configuration libmosquitto
    /// rejects (an unreadable CA or certificate file, an invalid will topic); never for an unreachable broker.
    ///
    /// - Parameter eventBufferSize: how many events ``events`` holds for a slow consumer before dropping the oldest.
    public init(_ configuration: Configuration, eventBufferSize: Int = 1024) throws(MosquittoError) {
        precondition(Self.libraryInitialised, "mosquitto_lib_init failed")
        guard !configuration.clientID.isEmpty, (1...65_535).contains(configuration.port) else {
            throw MosquittoError(code: MOSQ_ERR_INVAL.rawValue, operation: "configure client (empty client id or bad port)")
        }
        let (stream, continuation) = AsyncStream.makeStream(
            of: Event.self, bufferingPolicy: .bufferingNewest(max(1, eventBufferSize)))
        let context = Unmanaged.passRetained(
            CallbackContext(
                events: continuation, protocolPreference: configuration.protocolVersion,
                publishEvents: configuration.publishEvents))
        guard let handle = mosquitto_new(configuration.clientID, configuration.cleanSession, context.toOpaque()) else {
            context.release()
            throw MosquittoError(code: MOSQ_ERR_NOMEM.rawValue, operation: "mosquitto_new")
        }
        self.configuration = configuration
        self.handle = handle
        self.context = context
        self.events = stream
        // If this throws, deinit destroys the handle and releases the box.
        try Self.apply(configuration, to: handle)
        CallbackContext.install(on: handle)
    }

    deinit {
        // Only reached when no network thread is running (it holds a strong reference to the client until it
        // ends), so nothing else uses the handle. After mosquitto_destroy no callback can fire: release the box.
        mosquitto_destroy(self.handle)
        self.context.takeUnretainedValue().events.finish()
        self.context.release()
    }

    private static func apply(_ configuration: Configuration, to handle: OpaquePointer) throws(MosquittoError) {
        func check(_ rc: Int32, _ operation: String) throws(MosquittoError) {
            guard rc == MOSQ_ERR_SUCCESS.rawValue else { throw MosquittoError(code: rc, operation: operation) }
        }
        try check(mosquitto_threaded_set(handle, true), "mosquitto_threaded_set")
        try check(
            mosquitto_int_option(handle, MOSQ_OPT_PROTOCOL_VERSION, configuration.protocolVersion.initialVersion.optionValue),
            "mosquitto_int_option(MOSQ_OPT_PROTOCOL_VERSION)")
        try check(
            mosquitto_int_option(handle, MOSQ_OPT_SEND_MAXIMUM, Int32(clamping: max(1, configuration.maximumInFlight))),
            "mosquitto_int_option(MOSQ_OPT_SEND_MAXIMUM)")
        try check(
            mosquitto_int_option(handle, MOSQ_OPT_TCP_NODELAY, configuration.tcpNoDelay ? 1 : 0),
            "mosquitto_int_option(MOSQ_OPT_TCP_NODELAY)")
        if let credentials = configuration.credentials {
            try check(
                mosquitto_username_pw_set(handle, credentials.username, credentials.password), "mosquitto_username_pw_set")
        }
        if let tls = configuration.tls {
            // tls_set checks that the files can be opened; certificate problems show up at the handshake.
            try check(
                mosquitto_tls_set(
                    handle, tls.caFile, nil, tls.clientCertificate?.certificateFile,
                    tls.clientCertificate?.privateKeyFile, nil),
                "mosquitto_tls_set")
            try check(mosquitto_tls_opts_set(handle, kz_tls_verify_peer(), nil, nil), "mosquitto_tls_opts_set")
        }
        if let will = configuration.will {
            let rc = will.payload.withUnsafeBytes { buffer in
                mosquitto_will_set(handle, will.topic, Int32(buffer.count), buffer.baseAddress, will.qos.rawValue, will.retain)
            }
            try check(rc, "mosquitto_will_set")
        }
    }

    // MARK: - State

    /// The connection as the network thread last saw it.
    public var connectionState: MQTTConnectionState {
        self.context.takeUnretainedValue().session.withLock { $0.connection }
    }

    // MARK: - Lifecycle

    /// Starts the network thread, which connects and keeps reconnecting until ``stop()``. Returns at once.
    /// Calling it again, or after ``stop()``, does nothing.
    public func start() {
        let start = self.lifecycle.withLock { lifecycle -> Bool in
            guard lifecycle.phase == .idle else { return false }
            lifecycle.phase = .running
            return true
        }
        guard start else { return }
        self.context.takeUnretainedValue().session.withLock { $0.connection = .connecting }
        let thread = Thread { self.runNetworkThread() }
        thread.name = "mqtt \(self.configuration.clientID)"
        thread.start()
    }

    /// Sends DISCONNECT (so the broker does not publish the Last Will), ends the network thread, reports
    /// unacknowledged publishes as abandoned and finishes ``events``. Waits at most
    /// ``Configuration/disconnectTimeout`` for DISCONNECT to be written; if the thread is inside a blocking
    /// TCP connect at that moment, until that attempt ends.
    public func stop() async {
        let phase = self.lifecycle.withLock { lifecycle -> Lifecycle.Phase in
            let phase = lifecycle.phase
            switch phase {
            case .idle:
                lifecycle.phase = .stopped
            case .running:
                lifecycle.phase = .stopping
                lifecycle.stopDeadline = ContinuousClock.now.advanced(by: self.configuration.disconnectTimeout)
            case .stopping, .stopped:
                break
            }
            return phase
        }
        switch phase {
        case .idle:
            self.finish()
            return
        case .running:
            self.stopRequested.store(true, ordering: .sequentiallyConsistent)
            // Queues DISCONNECT and wakes the loop's poll; when not connected it only marks the handle as
            // disconnecting. The network thread repeats it if a connect was in progress.
            _ = mosquitto_disconnect(self.handle)
            self.loopWake.ring()
            self.wakeup.signal()
        case .stopping, .stopped:
            break
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let finished = self.lifecycle.withLock { lifecycle -> Bool in
                if lifecycle.phase == .stopped { return true }
                lifecycle.exitWaiters.append(continuation)
                return false
            }
            if finished { continuation.resume() }
        }
    }

    /// Closes the TCP connection abruptly, as a power cut or a dead mesh link would: no DISCONNECT is sent, so
    /// the broker publishes the Last Will; the client reconnects after its reconnect delay. For fault-injection
    /// tests, and to force a fresh connection after the network changed.
    public func severConnection() {
        let socket = mosquitto_socket(self.handle)
        if socket >= 0 {
            _ = shutdown(socket, Int32(SHUT_RDWR))
        }
    }

    // MARK: - Publish and subscribe

    /// Publishes a message and returns its message id.
    ///
    /// With QoS ≥ 1 the message is accepted even while disconnected: libmosquitto keeps it in RAM and sends it
    /// after the next (re)connect, until the broker acknowledges it. (libmosquitto 2.0.11 reports
    /// `MOSQ_ERR_NO_CONN` for such a publish although it has queued it; this method returns normally then.)
    /// `onOutcome` is then called exactly once, on the network thread (keep it short, never block in it), with
    /// the PUBACK/PUBCOMP result, or with ``MQTTPublishOutcome/abandoned`` when the client stops first. It is
    /// never called for QoS 0.
    ///
    /// - Parameter messageExpiry: MQTT 5 Message Expiry Interval (whole seconds); ignored on an MQTT 3.1.1 connection.
    @discardableResult
    public func publish(
        topic: String,
        payload: [UInt8],
        qos: MQTTQoS = .atLeastOnce,
        retain: Bool = false,
        messageExpiry: Duration? = nil,
        onOutcome: (@Sendable (MQTTPublishOutcome) -> Void)? = nil
    ) throws(MosquittoError) -> Int32 {
        let context = self.context.takeUnretainedValue()
        var properties: OpaquePointer? = nil
        defer { mosquitto_property_free_all(&properties) }
        if let messageExpiry, context.session.withLock({ $0.protocolVersion }) == .v5 {
            let seconds = UInt32(clamping: max(1, messageExpiry.components.seconds))
            let rc = kz_property_add_message_expiry(&properties, seconds)
            guard rc == MOSQ_ERR_SUCCESS.rawValue else {
                throw MosquittoError(code: rc, operation: "mosquitto_property_add_int32(message expiry)")
            }
        }
        var messageID: Int32 = 0
        // The PUBACK for `messageID` may be handled by the network thread before mosquitto_publish_v5 returns:
        // the call and the registration happen under the lock that on_publish takes (see the type's documentation).
        let rc = context.pendingPublishes.withLock { pending -> Int32 in
            guard !pending.isClosed else { return MOSQ_ERR_NO_CONN.rawValue }
            let rc = payload.withUnsafeBytes { buffer in
                mosquitto_publish_v5(
                    self.handle, &messageID, topic, Int32(buffer.count), buffer.baseAddress, qos.rawValue, retain,
                    properties)
            }
            // libmosquitto 2.0.11 returns MOSQ_ERR_NO_CONN for a QoS ≥ 1 publish while disconnected, but has
            // queued the message all the same and sends it after connecting: for QoS ≥ 1 that is a success.
            let queued = rc == MOSQ_ERR_SUCCESS.rawValue || (rc == MOSQ_ERR_NO_CONN.rawValue && qos != .atMostOnce)
            guard queued else { return rc }
            if qos != .atMostOnce, let onOutcome {
                pending.completions[messageID] = onOutcome
            }
            return MOSQ_ERR_SUCCESS.rawValue
        }
        guard rc == MOSQ_ERR_SUCCESS.rawValue else {
            throw MosquittoError(code: rc, operation: "publish to \(topic)", detail: context.takeLastError())
        }
        self.loopWake.ring()
        return messageID
    }

    /// Subscribes to `filter` now if connected, and again after every reconnect (the broker forgets the
    /// subscriptions of a clean session; re-subscribing also delivers the retained messages again).
    public func subscribe(_ filter: String, qos: MQTTQoS = .atLeastOnce) throws(MosquittoError) {
        let check = mosquitto_sub_topic_check(filter)
        guard check == MOSQ_ERR_SUCCESS.rawValue else {
            throw MosquittoError(code: check, operation: "subscribe to \(filter)")
        }
        let context = self.context.takeUnretainedValue()
        let connected = context.session.withLock { session -> Bool in
            if !session.subscriptions.contains(where: { $0.filter == filter }) {
                session.subscriptions.append((filter, qos))
            }
            return session.connection.isConnected
        }
        guard connected else { return }
        let rc = mosquitto_subscribe_v5(self.handle, nil, filter, qos.rawValue, 0, nil)
        // NO_CONN: the connection just dropped; on_connect subscribes again.
        guard rc == MOSQ_ERR_SUCCESS.rawValue || rc == MOSQ_ERR_NO_CONN.rawValue else {
            throw MosquittoError(code: rc, operation: "subscribe to \(filter)", detail: context.takeLastError())
        }
        self.loopWake.ring()
    }

    // MARK: - Network thread

    private func runNetworkThread() {
        let context = self.context.takeUnretainedValue()
        let configuration = self.configuration
        var failures = 0
        // connect_bind_v5 stores host, port and CONNECT properties for the mosquitto_reconnect calls that follow.
        var needsFullConnect = true
        while !self.stopRequested.load(ordering: .sequentiallyConsistent) {
            let version = context.beginAttempt()
            let connectResult: Int32
            if needsFullConnect {
                connectResult = self.connect(version: version)
                needsFullConnect = false
            } else {
                connectResult = mosquitto_reconnect(self.handle)
            }
            var error: MosquittoError? = nil
            if connectResult != MOSQ_ERR_SUCCESS.rawValue {
                error = MosquittoError(
                    code: connectResult, operation: "connect to \(configuration.host):\(configuration.port)",
                    detail: context.takeLastError())
            } else {
                let loopResult = self.serviceConnection()
                if loopResult != MOSQ_ERR_SUCCESS.rawValue, loopResult != MOSQ_ERR_NO_CONN.rawValue {
                    error = MosquittoError(code: loopResult, operation: "MQTT connection", detail: context.takeLastError())
                }
            }
            let stopping = self.stopRequested.load(ordering: .sequentiallyConsistent)
            let outcome = context.endAttempt(error: error, stopping: stopping)
            if stopping { break }
            if outcome.fallBackToV311 {
                _ = mosquitto_int_option(self.handle, MOSQ_OPT_PROTOCOL_VERSION, MQTTProtocolVersion.v311.optionValue)
                context.session.withLock { $0.protocolVersion = .v311 }
                // The MQTT 5 CONNECT properties must go: connect_bind_v5 without properties replaces them.
                needsFullConnect = true
                failures = 0
                continue
            }
            if outcome.wasConnected { failures = 0 }
            let delay = configuration.reconnectDelay.delay(afterFailures: failures)
            failures += 1
            _ = self.wakeup.wait(timeout: .now() + .nanoseconds(Int(clamping: delay.nanoseconds)))
        }
        self.finish()
    }

    /// `mosquitto_connect_bind_v5` for `version`, with a Session Expiry Interval for an MQTT 5 persistent session.
    private func connect(version: MQTTProtocolVersion) -> Int32 {
        let configuration = self.configuration
        var properties: OpaquePointer? = nil
        defer { mosquitto_property_free_all(&properties) }
        if version == .v5, !configuration.cleanSession {
            let seconds = UInt32(clamping: configuration.sessionExpiry.components.seconds)
            let rc = kz_property_add_session_expiry(&properties, seconds)
            guard rc == MOSQ_ERR_SUCCESS.rawValue else { return rc }
        }
        let keepAlive = Int32(clamping: max(5, configuration.keepAlive.components.seconds))
        return mosquitto_connect_bind_v5(
            self.handle, configuration.host, Int32(configuration.port), keepAlive, nil, properties)
    }

    /// Runs `mosquitto_loop` until the connection ends; returns the result that ended it.
    private func serviceConnection() -> Int32 {
        let quickAcknowledgements = self.configuration.quickAcknowledgements
        var disconnectRequested = false
        while true {
            var timeout: Int32 = 1000
            if self.stopRequested.load(ordering: .sequentiallyConsistent) {
                if !disconnectRequested {
                    // Also covers a stop() that arrived while this thread was still connecting.
                    _ = mosquitto_disconnect(self.handle)
                    disconnectRequested = true
                }
                let deadline = self.lifecycle.withLock { $0.stopDeadline } ?? .now
                if ContinuousClock.now >= deadline { return MOSQ_ERR_SUCCESS.rawValue }
                timeout = 100
            }
            let rc = self.loopOnce(timeout: timeout)
            if rc != MOSQ_ERR_SUCCESS.rawValue { return rc }
            if quickAcknowledgements {
                let socket = mosquitto_socket(self.handle)
                if socket >= 0 { _ = kz_socket_acknowledge_quickly(socket) }
            }
        }
    }

    /// One turn of the network loop: what `mosquitto_loop` does, but with poll() instead of select().
    ///
    /// `mosquitto_loop` refuses (MOSQ_ERR_INVAL) a socket numbered 1024 or above, select()'s FD_SETSIZE. The daemon
    /// shares its process with the portal, which may hold a thousand connections on the emergency Wi-Fi: a
    /// reconnect then gets a high descriptor and MQTT would stay down for as long as the crowd stays. poll() has no
    /// such limit. libmosquitto's own wake-up pipe is private, so publishes from other threads ring ``loopWake``.
    private func loopOnce(timeout: Int32) -> Int32 {
        let socket = mosquitto_socket(self.handle)
        guard socket >= 0 else { return MOSQ_ERR_NO_CONN.rawValue }
        var descriptors = [
            pollfd(fd: socket, events: Int16(POLLIN) | (mosquitto_want_write(self.handle) ? Int16(POLLOUT) : 0), revents: 0),
            pollfd(fd: self.loopWake.descriptor, events: Int16(POLLIN), revents: 0),
        ]
        let ready = poll(&descriptors, 2, timeout)
        if ready < 0 {
            return errno == EINTR ? MOSQ_ERR_SUCCESS.rawValue : MOSQ_ERR_ERRNO.rawValue
        }
        if descriptors[1].revents != 0 { self.loopWake.drain() }
        if descriptors[0].revents != 0 {
            // Also on writable alone: during a TLS handshake mosquitto_loop_read is what advances it; otherwise
            // it reads what is there and returns at once.
            let rc = mosquitto_loop_read(self.handle, 1)
            if rc != MOSQ_ERR_SUCCESS.rawValue || mosquitto_socket(self.handle) < 0 { return rc }
        }
        if mosquitto_want_write(self.handle) {
            let rc = mosquitto_loop_write(self.handle, 1)
            if rc != MOSQ_ERR_SUCCESS.rawValue || mosquitto_socket(self.handle) < 0 { return rc }
        }
        return mosquitto_loop_misc(self.handle)
    }

    /// Reports pending publishes as abandoned, finishes the event stream and wakes ``stop()``.
    private func finish() {
        let context = self.context.takeUnretainedValue()
        let abandoned = context.pendingPublishes.withLock { pending in
            pending.isClosed = true
            defer { pending.completions = [:] }
            return Array(pending.completions.values)
        }
        for completion in abandoned { completion(.abandoned) }
        context.session.withLock { $0.connection = .stopped }
        context.events.finish()
        let waiters = self.lifecycle.withLock { lifecycle in
            lifecycle.phase = .stopped
            defer { lifecycle.exitWaiters = [] }
            return lifecycle.exitWaiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// The `userdata` of the libmosquitto handle: the only thing C callbacks can reach.
///
/// `Sendable` with only `let` properties of Sendable types, because callbacks run on the network thread (and
/// `on_log` on any thread calling into libmosquitto) while Swift tasks use the same object.
final class CallbackContext: Sendable {
    struct PendingPublishes {
        var completions: [Int32: @Sendable (MQTTPublishOutcome) -> Void] = [:]
        /// Set once the client has stopped: no completion could ever be called any more.
        var isClosed = false
    }

    struct Session {
        var connection = MQTTConnectionState.idle
        /// The version the current or next CONNECT uses.
        var protocolVersion: MQTTProtocolVersion
        let preference: MQTTProtocolPreference
        var subscriptions: [(filter: String, qos: MQTTQoS)] = []
        /// What on_connect saw during the current connection attempt.
        var attempt = Attempt()
    }

    struct Attempt {
        var connected = false
        var refusal: ConnectRefusal?
        var fallBackToV311 = false
    }

    let events: AsyncStream<MosquittoClient.Event>.Continuation
    /// Message id → completion. Held across `mosquitto_publish_v5` and taken by `on_publish`.
    let pendingPublishes = Mutex(PendingPublishes())
    let session: Mutex<Session>
    /// The last error-level line from `on_log`. A lock of its own: `on_log` runs inside libmosquitto calls
    /// made while `pendingPublishes` is held.
    let lastError = Mutex<String?>(nil)
    let publishEvents: Bool

    init(
        events: AsyncStream<MosquittoClient.Event>.Continuation, protocolPreference: MQTTProtocolPreference,
        publishEvents: Bool
    ) {
        self.events = events
        self.publishEvents = publishEvents
        self.session = Mutex(Session(protocolVersion: protocolPreference.initialVersion, preference: protocolPreference))
    }

    /// Recovers the box from libmosquitto's `void *userdata`. Unretained: the client holds the +1 until after
    /// `mosquitto_destroy`, so the box outlives every callback.
    static func from(_ userdata: UnsafeMutableRawPointer?) -> CallbackContext {
        Unmanaged<CallbackContext>.fromOpaque(userdata!).takeUnretainedValue()
    }

    func takeLastError() -> String? {
        self.lastError.withLock { lastError in
            defer { lastError = nil }
            return lastError
        }
    }

    /// Called by the network thread before each connection attempt; returns the protocol version to use.
    func beginAttempt() -> MQTTProtocolVersion {
        _ = self.takeLastError()
        return self.session.withLock { session in
            session.attempt = Attempt()
            session.connection = .connecting
            return session.protocolVersion
        }
    }

    /// Called by the network thread when an attempt or connection has ended; reports it.
    func endAttempt(error: MosquittoError?, stopping: Bool) -> (wasConnected: Bool, fallBackToV311: Bool) {
        let (attempt, event) = self.session.withLock { session -> (Attempt, MosquittoClient.Event?) in
            let attempt = session.attempt
            session.attempt = Attempt()
            let failure: MQTTConnectionFailure?
            if stopping {
                failure = nil
            } else if let refusal = attempt.refusal {
                failure = .refused(refusal)
            } else if let error {
                failure = error.isTLSFailure ? .tls(error.detail ?? error.message) : .network(error)
            } else {
                failure = .network(MosquittoError(code: MOSQ_ERR_CONN_LOST.rawValue, operation: "MQTT connection"))
            }
            session.connection = .disconnected(failure)
            if attempt.connected { return (attempt, .disconnected(failure)) }
            // A refusal was reported by on_connect already.
            if attempt.refusal == nil, let failure { return (attempt, .connectionFailed(failure)) }
            return (attempt, nil)
        }
        if let event { self.events.yield(event) }
        return (attempt.connected, attempt.fallBackToV311)
    }

    // MARK: C callbacks

    /// Installs the callbacks. Each is a `@convention(c)` closure: no captures, all context via `userdata`.
    static func install(on handle: OpaquePointer) {
        mosquitto_connect_v5_callback_set(handle) { handle, userdata, result, flags, _ in
            CallbackContext.from(userdata).connectAcknowledged(handle, result: result, flags: flags)
        }
        mosquitto_publish_v5_callback_set(handle) { _, userdata, messageID, reasonCode, _ in
            CallbackContext.from(userdata).publishFinished(messageID, reasonCode: reasonCode)
        }
        mosquitto_subscribe_v5_callback_set(handle) { _, userdata, messageID, count, granted, _ in
            let grantedQoS = granted.map { Array(UnsafeBufferPointer(start: $0, count: Int(count))) } ?? []
            CallbackContext.from(userdata).events.yield(.subscribed(messageID: messageID, grantedQoS: grantedQoS))
        }
        mosquitto_message_v5_callback_set(handle) { _, userdata, message, properties in
            guard let message = message?.pointee, let topic = message.topic else { return }
            // Copy now: libmosquitto frees topic and payload when this callback returns.
            let payload: [UInt8] =
                if let bytes = message.payload, message.payloadlen > 0 {
                    Array(UnsafeRawBufferPointer(start: bytes, count: Int(message.payloadlen)))
                } else {
                    []
                }
            var expiry: UInt32 = 0
            let hasExpiry = kz_property_read_message_expiry(properties, &expiry)
            let received = MQTTMessage(
                topic: String(cString: topic), payload: payload, qos: MQTTQoS(rawValue: message.qos) ?? .atMostOnce,
                retain: message.retain, messageExpiry: hasExpiry ? expiry : nil)
            CallbackContext.from(userdata).events.yield(.message(received))
        }
        mosquitto_log_callback_set(handle) { _, userdata, level, text in
            guard level & kz_log_level_error() != 0, let text else { return }
            let line = String(cString: text)
            CallbackContext.from(userdata).lastError.withLock { $0 = line }
        }
    }

    private func connectAcknowledged(_ handle: OpaquePointer?, result: Int32, flags: Int32) {
        let (event, subscriptions) = self.session.withLock {
            session -> (MosquittoClient.Event, [(filter: String, qos: MQTTQoS)]) in
            let version = session.protocolVersion
            if result == 0 {
                let info = MQTTConnectionInfo(protocolVersion: version, sessionPresent: flags & 1 != 0)
                session.attempt.connected = true
                session.connection = .connected(info)
                return (.connected(info), session.subscriptions)
            }
            let refusal = ConnectRefusal(libraryCode: result, version: version)
            session.attempt.refusal = refusal
            if refusal == .unsupportedProtocolVersion, version == .v5, session.preference == .v5FallingBackToV311 {
                session.attempt.fallBackToV311 = true
            }
            return (.connectionFailed(.refused(refusal)), [])
        }
        // Subscribing from a callback is allowed; doing it here leaves no gap after a reconnect.
        for subscription in subscriptions {
            _ = mosquitto_subscribe_v5(handle, nil, subscription.filter, subscription.qos.rawValue, 0, nil)
        }
        self.events.yield(event)
    }

    private func publishFinished(_ messageID: Int32, reasonCode: Int32) {
        let completion = self.pendingPublishes.withLock { $0.completions.removeValue(forKey: messageID) }
        let outcome: MQTTPublishOutcome = reasonCode >= 0x80 ? .refused(reasonCode: reasonCode) : .acknowledged
        completion?(outcome)
        if self.publishEvents {
            self.events.yield(.published(messageID: messageID, outcome: outcome))
        }
    }
}

extension Duration {
    /// The duration in whole nanoseconds (saturating).
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = self.components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return product.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue
    }
}

/// A pipe another thread writes a byte to so that the network thread's poll() returns at once.
final class LoopWake: Sendable {
    /// The end poll() watches.
    let descriptor: Int32
    private let writeEnd: Int32

    init() {
        var ends: [Int32] = [-1, -1]
        if pipe(&ends) == 0 {
            for end in ends {
                _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
                _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            }
        }
        self.descriptor = ends[0]
        self.writeEnd = ends[1]
    }

    deinit {
        if self.descriptor >= 0 { close(self.descriptor) }
        if self.writeEnd >= 0 { close(self.writeEnd) }
    }

    /// Wakes the poll; a full pipe already will.
    func ring() {
        var byte: UInt8 = 1
        _ = write(self.writeEnd, &byte, 1)
    }

    func drain() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(self.descriptor, &buffer, buffer.count) > 0 {}
    }
}
