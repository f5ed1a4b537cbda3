public import Foundation
public import KiezboxCore
public import Logging
public import ReadingStore
public import ServiceLifecycle
import Synchronization

/// The box's state the LoRaWAN uplink reads before each frame: what goes beside the readings in a report, and
/// the crisis summary while the box is in crisis mode.
public struct LoRaWANBoxState: Sendable, Hashable {
    public var status: BoxStatus
    /// Present in crisis mode: what the summary carries.
    public var crisisSummary: CrisisSummary?

    public init(status: BoxStatus, crisisSummary: CrisisSummary? = nil) {
        self.status = status
        self.crisisSummary = crisisSummary
    }
}

/// Sends the box's state over LoRaWAN (The Things Network) through an AT-command modem, within TTN's fair use.
///
/// LoRa is a trickle, so this uplink never drains the backlog. It keeps the latest value of each quantity a
/// report carries and sends a report on a schedule (``LoRaWANReportSchedule``): the crisis summary first when
/// the box enters crisis mode, routine reports at a cadence the remaining airtime can sustain for the whole
/// day, and early when a value changes significantly. The readings the relay hands it are acknowledged at once:
/// each is either taken into the report state or superseded by a newer one (as the live-only sensor.community
/// uplink does), so its cursor never holds the store back; the store keeps every reading for the uplinks that
/// do backfill (MQTT, openSenseMap). After a restart the report state starts from the store's latest readings.
///
/// Every frame is written into the store's airtime ledger *before* it goes to the modem (and withdrawn when the
/// modem refused it without transmitting), so a power cut can never make the box forget airtime it spent.
/// Joins, the modem's own empty frames and downlinks are in the ledger too.
public final class LoRaWANUplink: Uplink, Service {
    public struct Configuration: Sendable {
        public var keys: LoRaWANKeys
        /// Nil: adaptive data rate; 0…5: fixed.
        public var dataRate: Int?
        public var payloadFormat: LoRaWANPayloadFormat
        public var schedule: LoRaWANReportSchedule.Policy
        public var fairUse: LoRaWANFairUse
        /// Which sensor's readings feed each quantity of the report (the battery's INA for `voltage`);
        /// quantities not listed are taken from any sensor.
        public var sources: [Quantity: String]
        /// The first wait after a failed join; it doubles up to ``maximumJoinBackoff``.
        public var joinBackoff: Duration
        public var maximumJoinBackoff: Duration
        /// How often the plan is looked at again while waiting (a mode switch or a significant change is noticed
        /// within this time).
        public var checkInterval: Duration

        public init(
            keys: LoRaWANKeys, dataRate: Int? = nil, payloadFormat: LoRaWANPayloadFormat = .compact,
            schedule: LoRaWANReportSchedule.Policy = .init(), fairUse: LoRaWANFairUse = .init(), sources: [Quantity: String] = [:],
            joinBackoff: Duration = .seconds(60), maximumJoinBackoff: Duration = .seconds(3600), checkInterval: Duration = .seconds(30)
        ) {
            self.keys = keys
            self.dataRate = dataRate
            self.payloadFormat = payloadFormat
            self.schedule = schedule
            self.fairUse = fairUse
            self.sources = sources
            self.joinBackoff = joinBackoff
            self.maximumJoinBackoff = maximumJoinBackoff
            self.checkInterval = checkInterval
        }
    }

    /// What the uplink has done since the daemon started.
    public struct Statistics: Sendable, Hashable {
        public var modem: LoRaWANModemIdentity?
        public var joined = false
        public var joinAttempts = 0
        public var reportsSent = 0
        public var summariesSent = 0
        public var downlinksReceived = 0
        /// Refusals by the modem, by kind ("busy", "duty-cycle", "length", …).
        public var refusals: [String: Int] = [:]
        public var lastSendAt: Date?
        public var lastError: String?
        public var nextSend: LoRaWANNextSend?
    }

    public let name = "lorawan"
    public var maximumBatch: Int { 1000 }
    public let configuration: Configuration

    private struct State {
        var statistics = Statistics()
        /// The latest value of each carried quantity and when it was measured.
        var latest: [Quantity: (value: Double, at: Date)] = [:]
        var seeded = false
    }

    private let connect: @Sendable () async throws -> any LoRaWANModem
    private let store: ReadingStore
    private let clock: any KiezboxClock
    private let boxState: @Sendable () async -> LoRaWANBoxState
    private let onDownlink: @Sendable (LoRaWANDownlink) async -> Void
    /// The load shedder's step: routine reports go less often with it (crisis summaries do not).
    private let shedLevel: ShedLevel?
    private let logger: Logger
    private let state = Mutex(State())

    /// - Parameters:
    ///   - connect: opens the modem's port and returns its driver (found out by dialect when the configuration
    ///     says "auto"); called again after the modem failed, so a pulled cable or a rebooted modem is picked up.
    ///   - boxState: read before every frame: the status bits and, in crisis mode, the crisis summary.
    ///   - onDownlink: every application downlink received (a signed crisis command, for example).
    public init(
        configuration: Configuration, connect: @escaping @Sendable () async throws -> any LoRaWANModem, store: ReadingStore, clock: any KiezboxClock,
        boxState: @escaping @Sendable () async -> LoRaWANBoxState,
        onDownlink: @escaping @Sendable (LoRaWANDownlink) async -> Void = { _ in }, shedLevel: ShedLevel? = nil, logger: Logger
    ) {
        self.shedLevel = shedLevel
        self.configuration = configuration
        self.connect = connect
        self.store = store
        self.clock = clock
        self.boxState = boxState
        self.onDownlink = onDownlink
        var logger = logger
        logger[metadataKey: "uplink"] = "lorawan"
        self.logger = logger
    }

    public var statistics: Statistics { self.state.withLock { $0.statistics } }

    /// The last frame a joined modem sent (TX done; the join itself was the network's answer).
    public var lastContact: Date? { self.statistics.lastSendAt }
    public var reportsContact: Bool { true }

    /// The latest value of each quantity a report carries.
    public var reportValues: [Quantity: Double] { self.state.withLock { $0.latest.mapValues(\.value) } }

    // MARK: - Uplink

    /// Takes the readings into the report state and acknowledges every one (see the type's documentation).
    public func deliver(_ batch: [StoredReading]) async throws -> Set<Int64> {
        self.seedIfNeeded()
        self.take(batch.map(\.reading))
        return Set(batch.map(\.id))
    }

    private func take(_ readings: [Reading]) {
        let carried = Set(BoxReport.carriedQuantities)
        self.state.withLock { state in
            for reading in readings where carried.contains(reading.quantity) && reading.quality != .implausible {
                if let source = self.configuration.sources[reading.quantity], source != reading.sensorID { continue }
                guard reading.value.isFinite else { continue }
                if let current = state.latest[reading.quantity], current.at > reading.measuredAt { continue }
                state.latest[reading.quantity] = (reading.value, reading.measuredAt)
            }
        }
    }

    /// After a restart: the store's latest readings, so the first report need not wait for new ones.
    private func seedIfNeeded() {
        guard !self.state.withLock({ $0.seeded }) else { return }
        let latest = (try? self.store.statistics().latest.map(\.reading)) ?? []
        self.take(latest)
        self.state.withLock { $0.seeded = true }
    }

    // MARK: - Service

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await self.serve()
        }
        try? await self.store.setLoRaWANNextSend(nil)
    }

    private struct Session {
        /// The connected modem, nil until identified (and again after it failed).
        var modem: (any LoRaWANModem)?
        var configured = false
        var joined = false
        var joinFailures = 0
        var nextJoinAt: Date?
        var modemFailures = 0
        var dataRate: EU868DataRate = .dr0
        /// When the modem last said the duty cycle forbids sending, until when.
        var dutyCycleBlockedUntil: Date?
        /// The modem's current payload limit after a length error, if it said one.
        var maximumPayloadLength: Int?
        var schedule: LoRaWANReportSchedule
        var plannedSend: LoRaWANNextSend?
    }

    private func serve() async {
        self.seedIfNeeded()
        var session = Session(schedule: LoRaWANReportSchedule(policy: self.configuration.schedule))
        while !Task.isCancelled {
            do {
                let wait = try await self.step(&session)
                if wait > .zero { try await self.clock.sleep(for: wait) }
            } catch is CancellationError {
                return
            } catch {
                // A stop in the middle of a conversation ends the modem's wait early: not a modem failure.
                if Task.isCancelled { return }
                session.modemFailures += 1
                session.modem = nil
                session.configured = false
                let delay = min(self.configuration.joinBackoff * (1 << min(session.modemFailures - 1, 6)), self.configuration.maximumJoinBackoff)
                self.note(error: "\(error)")
                self.logger.log(
                    level: session.modemFailures == 1 ? .warning : .debug, "LoRaWAN modem failed; retrying",
                    metadata: ["error": "\(error)", "retry_in_s": "\(delay.components.seconds)"]
                )
                do { try await self.clock.sleep(for: delay) } catch { return }
            }
        }
    }

    /// One look at the modem and the plan; returns how long to wait before the next look.
    private func step(_ session: inout Session) async throws -> Duration {
        let now = self.clock.currentDate()
        let modem: any LoRaWANModem
        if let connected = session.modem {
            modem = connected
        } else {
            modem = try await self.connect()
            let identity = try await modem.identify()
            session.modem = modem
            session.configured = false
            self.state.withLock { $0.statistics.modem = identity }
            self.logger.info("LoRaWAN modem found", metadata: ["modem": "\(identity.kind)", "firmware": "\(identity.firmwareVersion)", "port": "\(modem.portName)"])
        }
        if !session.configured {
            try await modem.configure(keys: self.configuration.keys, dataRate: self.configuration.dataRate)
            session.configured = true
            session.joined = try await modem.isJoined()
            if session.joined { session.dataRate = try await self.currentDataRate(modem) }
            self.state.withLock { $0.statistics.joined = session.joined }
            session.modemFailures = 0
        }
        if !session.joined {
            return try await self.joinIfDue(modem, &session, now: now)
        }

        let ledger = try self.store.loRaWANAirtime(since: now.addingTimeInterval(-LoRaWANAirtimeBudget.window))
        let budget = LoRaWANAirtimeBudget(fairUse: self.configuration.fairUse, now: now, ledger: ledger)
        let box = await self.boxState()
        let crisis = box.crisisSummary != nil
        session.schedule.observe(crisis: crisis)
        session.schedule.policy.reportInterval = self.configuration.schedule.reportInterval.shed(by: self.shedLevel?.settings.loRaReportFactor ?? 1)
        let values = self.reportValues
        let frames = self.frames(values: values, box: box, limit: self.payloadLimit(session))
        let costs = frames.mapValues { uplinkAirtime(applicationPayloadLength: $0.payload.count, dataRate: session.dataRate) }
        let dutyCycleFree = max(now, session.dutyCycleBlockedUntil ?? now, self.dutyCycleFree(ledger: ledger, now: now))
        guard let decision = session.schedule.next(now: now, values: values, crisis: crisis, budget: budget, costs: costs, dutyCycleFree: dutyCycleFree),
            let frame = frames[decision.frame]
        else {
            try await self.plan(nil, &session)
            // Right after a start the relay has not handed over the first readings yet: look again soon.
            return values.isEmpty ? min(self.configuration.checkInterval, .seconds(5)) : self.configuration.checkInterval
        }
        try await self.plan(LoRaWANNextSend(at: decision.at, frame: decision.frame.rawValue, reason: decision.reason), &session)
        if decision.at > now {
            return min(self.configuration.checkInterval, .seconds(decision.at.timeIntervalSince(now)))
        }
        try await self.send(frame, through: modem, kind: decision.frame, reason: decision.reason, crisis: crisis, session: &session)
        return .zero
    }

    private func plan(_ next: LoRaWANNextSend?, _ session: inout Session) async throws {
        guard next != session.plannedSend else { return }
        session.plannedSend = next
        self.state.withLock { $0.statistics.nextSend = next }
        try await self.store.setLoRaWANNextSend(next)
    }

    /// One join attempt when the backoff and the budget allow it.
    private func joinIfDue(_ modem: any LoRaWANModem, _ session: inout Session, now: Date) async throws -> Duration {
        // A join request is 23 bytes on air (MHDR, JoinEUI, DevEUI, DevNonce, MIC), at the modem's data rate.
        let joinRate = EU868DataRate(rawValue: self.configuration.dataRate ?? 0) ?? .dr0
        let cost = LoRaModulation(spreadingFactor: joinRate.spreadingFactor, bandwidth: joinRate.bandwidth).timeOnAir(phyPayloadLength: 23)
        let ledger = try self.store.loRaWANAirtime(since: now.addingTimeInterval(-LoRaWANAirtimeBudget.window))
        let budget = LoRaWANAirtimeBudget(fairUse: self.configuration.fairUse, now: now, ledger: ledger)
        let fits = budget.earliestSend(cost: cost, cap: self.configuration.fairUse.uplinkAirtimePerDay) ?? now.addingTimeInterval(LoRaWANAirtimeBudget.window)
        let due = max(session.nextJoinAt ?? now, fits)
        try await self.plan(LoRaWANNextSend(at: due, frame: "join", reason: session.joinFailures == 0 ? "not joined" : "join backoff"), &session)
        if due > now { return min(self.configuration.checkInterval, .seconds(due.timeIntervalSince(now))) }

        self.state.withLock { $0.statistics.joinAttempts += 1 }
        let entry = try await self.store.recordLoRaWANAirtime(
            LoRaWANAirtimeEntry(kind: .join, at: now, airtime: cost, dataRate: joinRate.rawValue, payloadLength: 0))
        do {
            try await modem.join()
        } catch let error as LoRaWANModemError {
            switch error {
            case .joinFailed:
                session.joinFailures += 1
                let delay = min(self.configuration.joinBackoff * (1 << min(session.joinFailures - 1, 10)), self.configuration.maximumJoinBackoff)
                session.nextJoinAt = self.clock.currentDate().addingTimeInterval(delay.timeInterval)
                self.note(error: error.description)
                self.logger.notice("LoRaWAN join failed", metadata: ["reason": "\(error)", "attempts": "\(session.joinFailures)", "next_in_s": "\(delay.components.seconds)"])
                return .zero
            case .busy, .dutyCycle, .noFreeChannel:
                // Refused before anything went on air.
                try await self.store.withdrawLoRaWANAirtime(id: entry)
                self.count(refusal: error)
                session.nextJoinAt = self.clock.currentDate().addingTimeInterval(self.refusalWait(error).timeInterval)
                return .zero
            default:
                throw error
            }
        }
        session.joined = true
        session.joinFailures = 0
        session.nextJoinAt = nil
        session.dataRate = try await self.currentDataRate(modem)
        self.state.withLock {
            $0.statistics.joined = true
            $0.statistics.lastError = nil
        }
        self.logger.info("LoRaWAN joined", metadata: ["data_rate": "DR\(session.dataRate.rawValue)"])
        return .zero
    }

    private func currentDataRate(_ modem: any LoRaWANModem) async throws -> EU868DataRate {
        EU868DataRate(rawValue: min(max(try await modem.dataRate(), 0), 5)) ?? .dr0
    }

    private func payloadLimit(_ session: Session) -> Int {
        min(session.dataRate.maximumApplicationPayloadLength, session.maximumPayloadLength ?? Int.max)
    }

    private struct Frame {
        var port: UInt8
        var payload: [UInt8]
        var values: [Quantity: Double]
    }

    /// The frames that could go now, each within `limit` bytes: values are left out, least important first,
    /// until a report fits (a length error after the data rate dropped must not silence the box).
    private func frames(values: [Quantity: Double], box: LoRaWANBoxState, limit: Int) -> [LoRaWANReportSchedule.Frame: Frame] {
        let format = self.configuration.payloadFormat
        var result: [LoRaWANReportSchedule.Frame: Frame] = [:]
        if !values.isEmpty {
            var carried = values
            var payload = BoxReport(values: carried, status: box.status).encode(format)
            for quantity in BoxReport.carriedQuantities.reversed() where payload.count > limit && carried.count > 1 {
                guard carried.removeValue(forKey: quantity) != nil else { continue }
                payload = BoxReport(values: carried, status: box.status).encode(format)
            }
            if payload.count <= limit {
                let port = format == .compact ? BoxReport.compactPort : BoxReport.cayenneLPPPort
                result[.routineReport] = Frame(port: port, payload: payload, values: carried)
            }
        }
        if let summary = box.crisisSummary {
            let payload = summary.encode(format)
            if payload.count <= limit {
                let port = format == .compact ? CrisisSummary.compactPort : CrisisSummary.cayenneLPPPort
                result[.crisisSummary] = Frame(port: port, payload: payload, values: values)
            }
        }
        return result
    }

    /// The earliest moment the EU868 duty cycle allows another frame, from the ledger's frames of the last hour
    /// (both the per-frame rule and the hourly budget; see ``EU868DutyCycle``).
    private func dutyCycleFree(ledger: [LoRaWANAirtimeEntry], now: Date) -> Date {
        var model = EU868DutyCycle<DateInstant>()
        for entry in ledger where entry.kind != .downlink && entry.at > now.addingTimeInterval(-3600) {
            model.recordTransmission(airtime: entry.airtime, endedAt: DateInstant(entry.at.addingTimeInterval(entry.airtime.timeInterval)))
        }
        // The costliest frame this uplink sends is at most 51 bytes at DR0; ask for a short one: the modem's own
        // refusal (with its wait) settles the rest.
        return model.nextAllowedSend(airtime: .milliseconds(50), notBefore: DateInstant(now))?.date ?? now
    }

    private func send(
        _ frame: Frame, through modem: any LoRaWANModem, kind: LoRaWANReportSchedule.Frame, reason: String, crisis: Bool,
        session: inout Session
    ) async throws {
        session.dataRate = try await self.currentDataRate(modem)
        let now = self.clock.currentDate()
        let airtime = uplinkAirtime(applicationPayloadLength: frame.payload.count, dataRate: session.dataRate)
        let entry = try await self.store.recordLoRaWANAirtime(
            LoRaWANAirtimeEntry(kind: .uplink, at: now, airtime: airtime, dataRate: session.dataRate.rawValue, payloadLength: frame.payload.count))
        let transmission: LoRaWANTransmission
        do {
            transmission = try await modem.send(port: frame.port, payload: frame.payload)
        } catch let error as LoRaWANModemError {
            try await self.store.withdrawLoRaWANAirtime(id: entry)
            self.count(refusal: error)
            switch error {
            case .notJoined:
                session.joined = false
                self.state.withLock { $0.statistics.joined = false }
            case .lengthError(let maximum, let extraEmptyFrames):
                session.maximumPayloadLength = maximum ?? max(1, frame.payload.count - 1)
                // RUI3 still transmits an empty frame to flush its MAC commands: airtime spent all the same.
                try await self.recordEmptyFrames(extraEmptyFrames, at: now, dataRate: session.dataRate)
            case .busy, .dutyCycle, .noFreeChannel:
                session.dutyCycleBlockedUntil = now.addingTimeInterval(self.refusalWait(error).timeInterval)
            default:
                throw error
            }
            self.logger.notice("LoRaWAN send refused", metadata: ["frame": "\(kind.rawValue)", "reason": "\(error)"])
            return
        }
        session.maximumPayloadLength = nil
        session.dutyCycleBlockedUntil = nil
        session.schedule.sent(kind, at: now, values: frame.values, crisis: crisis)
        try await self.recordEmptyFrames(transmission.extraEmptyFrames, at: now, dataRate: session.dataRate)
        for downlink in transmission.downlinks {
            _ = try await self.store.recordLoRaWANAirtime(
                LoRaWANAirtimeEntry(kind: .downlink, at: now, airtime: .zero, dataRate: session.dataRate.rawValue, payloadLength: downlink.payload.count))
        }
        self.state.withLock { state in
            switch kind {
            case .routineReport: state.statistics.reportsSent += 1
            case .crisisSummary: state.statistics.summariesSent += 1
            }
            state.statistics.downlinksReceived += transmission.downlinks.count
            state.statistics.lastSendAt = now
            state.statistics.lastError = nil
        }
        self.logger.info(
            "LoRaWAN frame sent",
            metadata: [
                "frame": "\(kind.rawValue)", "reason": "\(reason)", "bytes": "\(frame.payload.count)", "data_rate": "DR\(session.dataRate.rawValue)",
                "airtime_ms": "\(airtime.components.attoseconds / 1_000_000_000_000_000 + airtime.components.seconds * 1000)",
            ]
        )
        if !transmission.downlinks.isEmpty {
            // The box cannot refuse what the network sends; it asks for nothing (unconfirmed uplinks only) and says
            // when TTN's daily downlink allowance is used up, after which TTN may drop downlinks to it.
            let received = LoRaWANAirtimeBudget(
                fairUse: self.configuration.fairUse, now: now,
                ledger: try self.store.loRaWANAirtime(since: now.addingTimeInterval(-LoRaWANAirtimeBudget.window))
            ).downlinksReceived
            if received >= self.configuration.fairUse.downlinksPerDay {
                self.logger.warning(
                    "TTN's downlink allowance for the day is used up; further downlinks (signed commands too) may not arrive",
                    metadata: ["downlinks_24h": "\(received)", "limit": "\(self.configuration.fairUse.downlinksPerDay)"])
            }
        }
        for downlink in transmission.downlinks {
            self.logger.notice("LoRaWAN downlink received", metadata: ["port": "\(downlink.port)", "bytes": "\(downlink.payload.count)"])
            await self.onDownlink(downlink)
        }
    }

    private func recordEmptyFrames(_ count: Int, at date: Date, dataRate: EU868DataRate) async throws {
        for _ in 0..<count {
            _ = try await self.store.recordLoRaWANAirtime(
                LoRaWANAirtimeEntry(
                    kind: .emptyFrame, at: date, airtime: uplinkAirtime(applicationPayloadLength: 0, dataRate: dataRate),
                    dataRate: dataRate.rawValue, payloadLength: 0))
        }
    }

    /// How long to leave the modem alone after a refusal that sent nothing.
    private func refusalWait(_ error: LoRaWANModemError) -> Duration {
        switch error {
        case .dutyCycle(let wait): max(wait ?? .seconds(60), .seconds(1))
        case .busy: .seconds(10)
        default: .seconds(60)
        }
    }

    private func count(refusal error: LoRaWANModemError) {
        let kind: String =
            switch error {
            case .notJoined: "not-joined"
            case .busy: "busy"
            case .dutyCycle: "duty-cycle"
            case .lengthError: "length"
            case .noFreeChannel: "no-free-channel"
            case .joinFailed: "join-failed"
            default: "other"
            }
        self.state.withLock { $0.statistics.refusals[kind, default: 0] += 1 }
    }

    private func note(error: String) {
        self.state.withLock { $0.statistics.lastError = error }
    }
}
