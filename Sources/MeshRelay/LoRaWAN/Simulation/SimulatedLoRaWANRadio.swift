import SensorDrivers
import Synchronization

/// A frame a simulated modem put on air.
public struct SimulatedLoRaWANUplink: Sendable, Hashable {
    /// Simulated time of the transmission.
    public var time: Duration
    /// FPort; 0 for an empty frame.
    public var port: UInt8
    public var payload: [UInt8]
    /// EU868 data rate it went out at.
    public var dataRate: Int
    /// A frame the modem sent on its own, not asked for (the RAK3172's empty frame after an oversized payload or a
    /// confirmed downlink).
    public var isEmptyFrame: Bool
}

/// A downlink the simulated network sends in the receive window after the next uplink.
public struct SimulatedLoRaWANDownlink: Sendable, Hashable {
    public var port: UInt8
    public var payload: [UInt8]
    public var rssi: Int
    public var snr: Int
    /// Receive window 1 or 2.
    public var window: Int
    /// A confirmed downlink: the RAK3172 answers it with an empty uplink of its own.
    public var confirmed: Bool

    public init(port: UInt8, payload: [UInt8], rssi: Int = -70, snr: Int = 8, window: Int = 1, confirmed: Bool = false) {
        self.port = port
        self.payload = payload
        self.rssi = rssi
        self.snr = snr
        self.window = window
        self.confirmed = confirmed
    }
}

/// The radio, MAC and network behind a simulated LoRaWAN modem, whatever its AT dialect (``SimulatedWioE5``,
/// ``SimulatedRAK3172``): the session and settings the modem keeps, scripted faults, and a record of what went on
/// air, so tests (and a simulated day on a manual clock) can count uplinks.
///
/// Joins and uplinks take simulated time (``joinDuration``, ``uplinkDuration``): the modem answers at once that it
/// started, and the result comes through ``SimulatedSerialDevice/transmissions(upTo:)`` when that time has passed.
/// Meanwhile a new join or uplink is refused as busy, as on the real modem.
///
/// ```swift
/// let radio = SimulatedLoRaWANRadio(joinDuration: .seconds(6))
/// radio.failNextJoins(2)
/// radio.queueDownlink(SimulatedLoRaWANDownlink(port: 8, payload: [0x12, 0x34]))
/// let modem = SimulatedRAK3172(radio: radio)
/// ```
public final class SimulatedLoRaWANRadio: Sendable {
    /// EU868 maximum application payload by data rate DR0…DR7 (LoRaMac-node's table, no FOpts; §1.3).
    public static let maximumPayloadLengths = [51, 51, 51, 115, 242, 242, 242, 242]
    /// The network's answer to a join in this simulation.
    static let netIDAndDevAddr = "NetID 000013 DevAddr 26:01:5F:66"

    struct State {
        var dataRate: Int
        var adr = true
        var applicationPort: UInt8 = 8
        var devEUI: [UInt8]?
        var joinEUI: [UInt8]?
        var appKey: [UInt8]?
        var registeredKeys: LoRaWANKeys?
        var joinedSince: Duration?
        var busyUntil: Duration = .zero
        var joinDuration: Duration
        var uplinkDuration: Duration
        var echoesAppKey = true
        var failingJoins = 0
        var busyAnswers = 0
        var dutyCycleRefusals: [Duration] = []
        var noFreeChannelRefusals = 0
        var downlinks: [SimulatedLoRaWANDownlink] = []
        var lastDownlink: SimulatedLoRaWANDownlink?
        var noise: [UInt8] = []
        var uplinks: [SimulatedLoRaWANUplink] = []
        var joinRequests: [Duration] = []

        func isJoined(at time: Duration) -> Bool {
            self.joinedSince.map { $0 <= time } ?? false
        }

        /// Sets DevEUI, JoinEUI or AppKey; a different value ends the session (it belonged to the old identity).
        mutating func setKey(_ key: WritableKeyPath<State, [UInt8]?>, _ value: [UInt8]) {
            if self[keyPath: key] != value { self.joinedSince = nil }
            self[keyPath: key] = value
        }

        var maximumPayloadLength: Int {
            SimulatedLoRaWANRadio.maximumPayloadLengths[min(max(self.dataRate, 0), SimulatedLoRaWANRadio.maximumPayloadLengths.count - 1)]
        }
    }

    let state: Mutex<State>

    /// - Parameters:
    ///   - dataRate: the data rate before any `AT+DR` (both modems start at DR0).
    ///   - registeredKeys: the device as registered in the network; when set, joins with other keys fail.
    ///   - joinDuration: from the join command to the accept (join request airtime plus the 5 s join window).
    ///   - uplinkDuration: from the send command to its end (airtime plus the receive windows).
    public init(
        dataRate: Int = 0,
        registeredKeys: LoRaWANKeys? = nil,
        joinDuration: Duration = .seconds(6),
        uplinkDuration: Duration = .seconds(3)
    ) {
        self.state = Mutex(
            State(dataRate: dataRate, registeredKeys: registeredKeys, joinDuration: joinDuration, uplinkDuration: uplinkDuration)
        )
    }

    // MARK: - Scripting

    /// The next `count` joins get no join accept.
    public func failNextJoins(_ count: Int) {
        self.state.withLock { $0.failingJoins += max(0, count) }
    }

    /// The next `count` joins or uplinks are refused as busy (`LoRaWAN modem is busy`, `AT_BUSY_ERROR`).
    public func answerBusy(times count: Int = 1) {
        self.state.withLock { $0.busyAnswers += max(0, count) }
    }

    /// The next uplink is refused by the duty cycle, with `wait` until a band is free (`No band in <N>ms`,
    /// `Restricted_Wait_<ms>_ms`). Calls queue up: one refusal each.
    public func refuseForDutyCycle(wait: Duration) {
        self.state.withLock { $0.dutyCycleRefusals.append(wait) }
    }

    /// The next `count` uplinks find no free channel.
    public func refuseNoFreeChannel(times count: Int = 1) {
        self.state.withLock { $0.noFreeChannelRefusals += max(0, count) }
    }

    /// Sends `downlink` after the next uplink that goes out.
    public func queueDownlink(_ downlink: SimulatedLoRaWANDownlink) {
        self.state.withLock { $0.downlinks.append(downlink) }
    }

    /// Puts `bytes` on the line before the modem's next answer (debug lines, garbage).
    public func queueNoise(_ bytes: [UInt8]) {
        self.state.withLock { $0.noise += bytes }
    }

    /// Changes the data rate as the network's ADR would (DR0 allows 51 bytes).
    public func setDataRate(_ dataRate: Int) {
        self.state.withLock { $0.dataRate = dataRate }
    }

    /// Changes how long joins and uplinks take from now on.
    public func setDurations(join: Duration, uplink: Duration) {
        self.state.withLock {
            $0.joinDuration = join
            $0.uplinkDuration = uplink
        }
    }

    /// Whether the Wio-E5 echoes the AppKey it was given (firmware 4.0.11 was seen answering nothing).
    public func setEchoesAppKey(_ echoes: Bool) {
        self.state.withLock { $0.echoesAppKey = echoes }
    }

    /// Forgets the session, as after the network dropped the device.
    public func dropSession() {
        self.state.withLock { $0.joinedSince = nil }
    }

    // MARK: - What happened

    /// Every frame that went on air, in order.
    public var uplinks: [SimulatedLoRaWANUplink] { self.state.withLock { $0.uplinks } }
    /// The frames the host asked for (not the modem's own empty frames).
    public var applicationUplinks: [SimulatedLoRaWANUplink] { self.uplinks.filter { !$0.isEmptyFrame } }
    /// Simulated times of the join requests sent.
    public var joinRequests: [Duration] { self.state.withLock { $0.joinRequests } }
    /// Whether a join has completed and the session was not dropped (at the latest time the modem saw).
    public var hasSession: Bool { self.state.withLock { $0.joinedSince != nil } }
    public var dataRate: Int { self.state.withLock { $0.dataRate } }
    public var isADREnabled: Bool { self.state.withLock { $0.adr } }
    /// The keys as the host set them (nil until set).
    public var devEUI: [UInt8]? { self.state.withLock { $0.devEUI } }
    public var joinEUI: [UInt8]? { self.state.withLock { $0.joinEUI } }
    public var appKey: [UInt8]? { self.state.withLock { $0.appKey } }

    // MARK: - The dialects' side

    enum JoinOutcome {
        case busy
        case accepted(at: Duration)
        case rejected(at: Duration)
    }

    enum UplinkOutcome {
        case notJoined
        case busy
        case dutyCycle(wait: Duration)
        case noFreeChannel
        /// Too long for the data rate; `emptyFrameDone` is when the modem's own empty frame ends, if it sends one.
        case tooLong(maximum: Int, emptyFrameDone: Duration?)
        /// On air until `done`; `emptyFrameDone` ends the empty uplink the modem sends for a confirmed downlink.
        case sent(done: Duration, downlink: SimulatedLoRaWANDownlink?, emptyFrameDone: Duration?)
    }

    func takeNoise() -> [UInt8] {
        self.state.withLock { state in
            defer { state.noise = [] }
            return state.noise
        }
    }

    func join(at time: Duration) -> JoinOutcome {
        self.state.withLock { state in
            guard time >= state.busyUntil else { return .busy }
            if state.busyAnswers > 0 {
                state.busyAnswers -= 1
                return .busy
            }
            state.joinRequests.append(time)
            let done = time + state.joinDuration
            state.busyUntil = done
            state.joinedSince = nil
            let keysMatch = state.registeredKeys.map {
                $0.devEUI == state.devEUI && $0.joinEUI == state.joinEUI && $0.appKey == state.appKey
            } ?? true
            guard state.failingJoins == 0, keysMatch else {
                state.failingJoins = max(0, state.failingJoins - 1)
                return .rejected(at: done)
            }
            state.joinedSince = done
            return .accepted(at: done)
        }
    }

    /// An uplink of `payload` on `port` (the Wio-E5's `AT+PORT` when nil). `sendsEmptyFrames`: the modem sends an
    /// empty frame when the payload is too long, and after a confirmed downlink (the RAK3172 does).
    func uplink(port: UInt8?, payload: [UInt8], at time: Duration, sendsEmptyFrames: Bool) -> UplinkOutcome {
        self.state.withLock { state in
            guard time >= state.busyUntil else { return .busy }
            guard state.isJoined(at: time) else { return .notJoined }
            if state.busyAnswers > 0 {
                state.busyAnswers -= 1
                return .busy
            }
            if !state.dutyCycleRefusals.isEmpty { return .dutyCycle(wait: state.dutyCycleRefusals.removeFirst()) }
            if state.noFreeChannelRefusals > 0 {
                state.noFreeChannelRefusals -= 1
                return .noFreeChannel
            }
            let maximum = state.maximumPayloadLength
            guard payload.count <= maximum else {
                guard sendsEmptyFrames else { return .tooLong(maximum: maximum, emptyFrameDone: nil) }
                state.uplinks.append(SimulatedLoRaWANUplink(time: time, port: 0, payload: [], dataRate: state.dataRate, isEmptyFrame: true))
                state.busyUntil = time + state.uplinkDuration
                return .tooLong(maximum: maximum, emptyFrameDone: state.busyUntil)
            }
            let port = port ?? state.applicationPort
            state.uplinks.append(SimulatedLoRaWANUplink(time: time, port: port, payload: payload, dataRate: state.dataRate, isEmptyFrame: false))
            let done = time + state.uplinkDuration
            state.busyUntil = done
            let downlink = state.downlinks.isEmpty ? nil : state.downlinks.removeFirst()
            if let downlink { state.lastDownlink = downlink }
            guard sendsEmptyFrames, downlink?.confirmed == true else { return .sent(done: done, downlink: downlink, emptyFrameDone: nil) }
            state.uplinks.append(SimulatedLoRaWANUplink(time: done, port: 0, payload: [], dataRate: state.dataRate, isEmptyFrame: true))
            state.busyUntil = done + state.uplinkDuration
            return .sent(done: done, downlink: downlink, emptyFrameDone: state.busyUntil)
        }
    }
}
