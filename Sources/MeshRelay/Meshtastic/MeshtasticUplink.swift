public import Foundation
public import KiezboxCore
public import Logging
public import ServiceLifecycle
import SwiftProtobuf
import Synchronization

/// The box's status on the Meshtastic mesh: its newest readings as standard telemetry (so every Meshtastic app
/// shows the box) and as a Kiezbox 2.0 update (so the pilot's gateways store it), within the box's airtime share.
///
/// As an ``Uplink`` it is live-only: the mesh has room for a status every so often, not for a backlog. Each batch
/// leaves the newest value of each quantity of the box's own sensors for the next status and is acknowledged
/// whole at once, so its cursor never holds the store back; readings superseded before a status went out are
/// skipped deliberately (counted). Readings the bridge took from pilot boxes are never sent back to the mesh.
/// As a `Service` it sends the status every ``Configuration/statusInterval``, and at once when the mode changes.
public final class MeshtasticUplink: Uplink, Service {
    public struct Configuration: Sendable {
        public var sendTelemetry: Bool
        /// Set to send our Kiezbox 2.0 update (the pilot's gateways need box and district ids).
        public var pilotUpdate: KiezboxPilotUpdateEncoder?
        public var statusInterval: Duration
        /// How often the mode is looked at between statuses.
        public var checkInterval: Duration

        public init(
            sendTelemetry: Bool = true, pilotUpdate: KiezboxPilotUpdateEncoder? = nil, statusInterval: Duration = .seconds(1800),
            checkInterval: Duration = .seconds(60)
        ) {
            self.sendTelemetry = sendTelemetry
            self.pilotUpdate = pilotUpdate
            self.statusInterval = statusInterval
            self.checkInterval = checkInterval
        }
    }

    public struct Statistics: Sendable, Hashable {
        public var statusesSent = 0
        public var packetsSent = 0
        /// Packets not sent, by reason ("budget", "refused: DUTY_CYCLE_LIMIT", "not connected").
        public var packetsNotSent: [String: Int] = [:]
        /// Readings acknowledged without going out: superseded by a newer one of the same quantity first.
        public var readingsSkipped = 0
        public var lastStatusAt: Date?
    }

    private struct State {
        var newest: [String: Reading] = [:]
        var statistics = Statistics()
        var lastMode: Mode?
    }

    public let name = "meshtastic"
    public let maximumBatch = 500
    private let configuration: Configuration
    private let transmitter: MeshtasticTransmitter
    private let mode: @Sendable () -> Mode
    private let shedLevel: ShedLevel?
    private let isOwnSensor: @Sendable (String) -> Bool
    private let clock: any KiezboxClock
    private let startedAt: Date
    private let logger: Logger
    private let state = Mutex(State())
    /// Wakes the service: every check interval, and when the first readings arrive (the first status need not
    /// wait a whole interval).
    private let wakeUps: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    /// - Parameters:
    ///   - mode: the box's current mode.
    ///   - isOwnSensor: whether a sensor id is one of this box's (not a pilot box's the bridge stored).
    public init(
        configuration: Configuration, transmitter: MeshtasticTransmitter, mode: @escaping @Sendable () -> Mode,
        isOwnSensor: @escaping @Sendable (String) -> Bool = { !PilotBoxAddress.isPilotSensorID($0) }, clock: any KiezboxClock,
        shedLevel: ShedLevel? = nil, logger: Logger
    ) {
        self.shedLevel = shedLevel
        self.configuration = configuration
        self.transmitter = transmitter
        self.mode = mode
        self.isOwnSensor = isOwnSensor
        self.clock = clock
        self.startedAt = clock.currentDate()
        self.logger = logger
        (self.wakeUps, self.wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    public var statistics: Statistics { self.state.withLock { $0.statistics } }

    public func deliver(_ batch: [StoredReading]) async throws -> Set<Int64> {
        let firstReadings = self.state.withLock { state in
            let hadNone = state.newest.isEmpty && state.statistics.lastStatusAt == nil
            for stored in batch where self.isOwnSensor(stored.reading.sensorID) {
                let key = stored.reading.sensorID + "|" + stored.reading.quantity.rawValue
                if let kept = state.newest[key] {
                    state.statistics.readingsSkipped += 1
                    if kept.measuredAt > stored.reading.measuredAt { continue }
                }
                state.newest[key] = stored.reading
            }
            return hadNone && !state.newest.isEmpty
        }
        if firstReadings { self.wake.yield() }
        return Set(batch.map(\.id))
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    while !Task.isCancelled {
                        self.wake.yield()
                        do { try await self.clock.sleep(for: self.configuration.checkInterval) } catch { break }
                    }
                    self.wake.finish()
                }
                group.addTask {
                    for await _ in self.wakeUps { await self.sendStatusIfDue() }
                }
            }
        }
    }

    /// Sends the status when the interval has passed since the last one or the mode changed (the service calls
    /// this every ``Configuration/checkInterval``).
    public func sendStatusIfDue() async {
        let now = self.clock.currentDate()
        let mode = self.mode()
        let due = self.state.withLock { state in
            let modeChanged = state.lastMode != nil && state.lastMode != mode
            guard let last = state.statistics.lastStatusAt else { return !state.newest.isEmpty || modeChanged }
            let interval = self.configuration.statusInterval.shed(by: self.shedLevel?.settings.loRaReportFactor ?? 1)
            return modeChanged || now.timeIntervalSince(last) >= interval.timeInterval
        }
        guard due else { return }
        await self.sendStatus(mode: mode, now: now)
    }

    /// The status's packets: the telemetry variants that have data, then the Kiezbox 2.0 update.
    func statusPayloads(mode: Mode, now: Date) -> [(port: Meshtastic_PortNum, payload: [UInt8])] {
        // A sensor that stopped answering drops out of the status instead of repeating its last value for ever.
        let oldest = now.addingTimeInterval(-2 * self.configuration.statusInterval.timeInterval)
        let readings = self.state.withLock { $0.newest.values.filter { $0.measuredAt >= oldest } }
        let status = MeshStatus(latest: readings, mode: mode, uptime: .seconds(now.timeIntervalSince(self.startedAt)))
        var payloads: [(Meshtastic_PortNum, [UInt8])] = []
        if self.configuration.sendTelemetry {
            for telemetry in MeshtasticTelemetryEncoder.telemetry(for: status, now: now) {
                if let bytes: [UInt8] = try? telemetry.serializedBytes() { payloads.append((.telemetryApp, bytes)) }
            }
        }
        if let encoder = self.configuration.pilotUpdate, let bytes: [UInt8] = try? encoder.message(for: status, now: now).serializedBytes() {
            payloads.append((.kiezboxControlApp, bytes))
        }
        return payloads
    }

    private func sendStatus(mode: Mode, now: Date) async {
        var sent = 0
        for (port, payload) in self.statusPayloads(mode: mode, now: now) {
            let result = await self.transmitter.broadcast(port, payload: payload, as: .routine)
            let reason: String? =
                switch result {
                case .sent: nil
                case .overBudget: "budget"
                case .refused(let error): "refused: \(error)"
                case .failed(let error): "\(error)"
                }
            self.state.withLock { state in
                if let reason { state.statistics.packetsNotSent[reason, default: 0] += 1 } else { state.statistics.packetsSent += 1 }
            }
            if let reason {
                self.logger.notice("Meshtastic status packet not sent", metadata: ["port": "\(port)", "reason": "\(reason)"])
                if case .failed(let error) = result {
                    // No link (not yet, or the radio rebooted): the status goes as soon as it is back, not a whole
                    // check interval later.
                    if error == .notConnected || error == .linkLost, (try? await self.transmitter.waitUntilLinkReady()) != nil {
                        self.wake.yield()
                    }
                    break
                }
                // The share is used up: the rest would fare no better; the next check tries again.
                if case .overBudget = result { break }
            } else {
                sent += 1
            }
        }
        // Nothing went out (no link yet, the share used up): the next check tries again.
        guard sent > 0 else { return }
        self.state.withLock { state in
            state.lastMode = mode
            state.statistics.lastStatusAt = now
            state.statistics.statusesSent += 1
        }
    }
}
