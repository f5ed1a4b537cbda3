import EmergencyPortal
import Foundation
import KiezboxCore
import Logging
import MeshRelay
import ReadingStore
import SensorDrivers
import ServiceLifecycle

/// What the mode decision looks at, at one moment.
struct ModeInputs: Sendable, Hashable {
    /// Set by hand (`kiezbox mode set`): wins over everything.
    var override: Mode?
    /// The issuer of a valid announcement that declares a crisis.
    var declaredBy: String?
    /// How long the mains-fail input has reported no mains, when it does now.
    var mainsLostFor: TimeInterval?
    /// How long it has reported mains present, when it does now.
    var mainsPresentFor: TimeInterval?
    /// How long no configured uplink has reached the other side; `nil` when no uplink can tell (none
    /// configured, or only a Meshtastic mesh) or the daemon has only just started and given them no time yet.
    var uplinkSilentFor: TimeInterval?
    /// How long ago the uplinks were last lost (silent for ``ModePolicy/uplinkBackWithin`` or more); `nil`:
    /// not since the daemon started.
    var uplinkLastLostAgo: TimeInterval?
    /// The battery's state of charge in percent, from the power model's latest estimate; `nil` without one.
    var batteryPercent: Double?
}

/// When the box is in crisis mode: a blackout (mains lost for a while), the uplinks lost for a while, the battery
/// low while mains is gone, an authority's signed declaration, or a resident's hand. Leaving an automatic crisis
/// waits until its cause has stayed away for a while, so a flickering grid or a flapping link does not switch the
/// emergency Wi-Fi on and off.
struct ModePolicy: Sendable, Hashable {
    /// Mains must be gone this long before the box declares a blackout (a short dip is not a crisis).
    var crisisAfterMainsLoss: TimeInterval = 120
    /// Mains (or the uplinks) must be back this long before an automatic crisis ends.
    var normalAfterMainsReturn: TimeInterval = 600
    /// No uplink may reach the other side for this long before the box declares a crisis; `nil`: never.
    var crisisAfterUplinkLoss: TimeInterval? = 1800
    /// Below this state of charge (percent) while mains is gone the box declares a crisis, however short the
    /// blackout so far; `nil`: never.
    var crisisBelowBatteryPercent: Double? = 30

    /// Uplinks silent for less than this count as back (the contact is looked at every controller round).
    var uplinkBackWithin: TimeInterval? {
        self.crisisAfterUplinkLoss.map { min($0, 60) }
    }

    /// The automatic cause of a crisis present now, if any, in words for the log and `kiezbox status`.
    func automaticCause(_ inputs: ModeInputs) -> String? {
        if let lost = inputs.mainsLostFor, lost >= self.crisisAfterMainsLoss {
            return "mains power lost for \(spokenDuration(lost))"
        }
        if let below = self.crisisBelowBatteryPercent, let percent = inputs.batteryPercent, percent < below,
            let lost = inputs.mainsLostFor
        {
            return "battery at \(String(format: "%.0f", percent)) % (below \(String(format: "%g", below)) %) with mains lost for \(spokenDuration(lost))"
        }
        if let after = self.crisisAfterUplinkLoss, let silent = inputs.uplinkSilentFor, silent >= after {
            return "uplink lost for \(spokenDuration(silent)) (no broker, open-data or LoRaWAN contact)"
        }
        return nil
    }

    /// How long until mains lost now has been lost for ``crisisAfterMainsLoss``; `nil` when it is not lost or
    /// already has been.
    func untilMainsLossCounts(_ inputs: ModeInputs) -> TimeInterval? {
        guard let lost = inputs.mainsLostFor, lost < self.crisisAfterMainsLoss else { return nil }
        return self.crisisAfterMainsLoss - lost
    }

    /// The mode to be in, and why (for the log).
    func decide(current: Mode, _ inputs: ModeInputs) -> (mode: Mode, reason: String) {
        if let override = inputs.override { return (override, "set by hand (kiezbox mode set)") }
        if let issuer = inputs.declaredBy { return (.crisis, "declared by \(issuer)") }
        if let cause = self.automaticCause(inputs) { return (.crisis, cause) }
        if current == .crisis {
            if inputs.mainsLostFor != nil { return (.crisis, "mains power still lost") }
            if let present = inputs.mainsPresentFor, present < self.normalAfterMainsReturn {
                return (.crisis, "mains back for \(Int(present)) s; waiting until it stays on")
            }
            if let backWithin = self.uplinkBackWithin, let silent = inputs.uplinkSilentFor, silent >= backWithin {
                return (.crisis, "uplink still lost")
            }
            if let lostAgo = inputs.uplinkLastLostAgo, lostAgo < self.normalAfterMainsReturn {
                return (.crisis, "uplink back for \(Int(lostAgo)) s; waiting until it stays up")
            }
        }
        return (.normal, current == .crisis ? "cause gone, no crisis declared" : "normal operation")
    }
}

/// "45 s" below two minutes, else "31 min".
func spokenDuration(_ interval: TimeInterval) -> String {
    interval < 120 ? "\(Int(interval)) s" : "\(Int(interval / 60)) min"
}

/// Decides the box's mode every ``interval`` and records it in the store, where the portal, `kiezbox status`
/// and the MQTT status read it, and in the mode file (``stateFile``), which root's kiezbox-mode.path turns into
/// starting or stopping the emergency Wi-Fi. On entering and leaving crisis it runs the residents' own
/// commands (`[mode] on_crisis`, `on_normal`; by default none).
struct ModeController<C: KiezboxClock>: Service {
    let store: ReadingStore
    let desk: AnnouncementDesk?
    /// Signed crisis commands received by LoRaWAN downlink; `nil` without a LoRaWAN uplink or authority keys.
    var downlinks: CrisisDownlinkReceiver? = nil
    let clock: C
    let policy: ModePolicy
    let hooks: ModeHooks
    let logger: Logger
    /// Written on start and on every change; `nil`: no mode file.
    var stateFile: ModeStateFile? = nil
    var interval: Duration = .seconds(10)
    /// A mains reading (or a power model estimate) older than this says nothing about now.
    var mainsStaleAfter: TimeInterval = 300
    /// The configured uplinks, whose contact with the other side feeds the "uplink lost" trigger.
    var uplinks: [any Uplink] = []
    /// The mains-fail input, when the box has one and its driver is built: its confirmed state is read directly
    /// (not from the store, which has it only after the next sample and commit), and each of its changes starts a
    /// round at once.
    var mainsInput: (@Sendable () -> MainsFailInput?)? = nil
    /// The portal's shared snapshot: made stale on every mode change, so the next page shows the new mode.
    var portalContent: PortalContent? = nil

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                // A mains change rings; the rounds wait for the interval or the bell, whichever comes first.
                let doorbell = self.mainsInput.map { input in
                    let doorbell = Doorbell()
                    group.addTask { await self.ringOnMainsChanges(input, doorbell: doorbell) }
                    return doorbell
                }
                await self.decideEveryRound(woken: doorbell)
                group.cancelAll()
            }
        }
    }

    private func decideEveryRound(woken doorbell: Doorbell?) async {
        var tracker = MainsTracker()
        var contact = UplinkContactTracker(startedAt: self.clock.currentDate(), recorded: try? self.store.uplinkContact())
        // Where the last run left off: a restart during a blackout stays in crisis.
        var current = (try? self.store.mode()) ?? .normal
        var recorded = false
        var stateFileStatus = StateFileStatus()
        while !Task.isCancelled {
            let now = self.clock.currentDate()
            await self.observeUplinks(&contact, at: now)
            let inputs = self.inputs(at: now, tracker: &tracker, contact: &contact)
            let (mode, reason) = self.policy.decide(current: current, inputs)
            self.updateStateFile(mode, status: &stateFileStatus)
            do {
                if mode != current || !recorded {
                    try await self.store.setMode(mode)
                    self.portalContent?.invalidate()
                    recorded = true
                    if mode != current {
                        self.logger.notice("mode changed", metadata: ["from": "\(current)", "to": "\(mode)", "reason": "\(reason)"])
                        self.hooks.run(leaving: current, entering: mode, logger: self.logger)
                        try await self.store.recordCrisisTrigger(CrisisTrigger(at: now, mode: mode, reason: reason))
                    }
                    current = mode
                }
            } catch {
                self.logger.warning("could not record the mode", metadata: ["error": "\(error)"])
            }
            // A blackout that is about to last long enough is decided on time, not up to an interval late.
            let wait = min(self.interval, self.policy.untilMainsLossCounts(inputs).map { Duration.seconds($0) } ?? self.interval)
            do { try await self.pause(for: wait, woken: doorbell) } catch { return }
        }
    }

    /// Rings `doorbell` on every confirmed mains change, once the input's driver is built (it is built when its
    /// watch starts; until then it is looked for every second).
    private func ringOnMainsChanges(_ input: @Sendable () -> MainsFailInput?, doorbell: Doorbell) async {
        while !Task.isCancelled {
            if let mains = input() {
                for await _ in mains.changes() { doorbell.ring() }
                return
            }
            do { try await self.clock.sleep(for: .seconds(1)) } catch { return }
        }
    }

    /// Waits for the next round: `duration`, or a ring of `doorbell` (a mains change) if that comes first.
    private func pause(for duration: Duration, woken doorbell: Doorbell?) async throws {
        guard let doorbell else { return try await self.clock.sleep(for: duration) }
        let timer = Task { [clock] in
            do { try await clock.sleep(for: duration) } catch { return }
            doorbell.ring()
        }
        defer { timer.cancel() }
        await doorbell.wait()
        try Task.checkCancellation()
    }

    /// Takes in the uplinks' latest contact and keeps it in the store (at most once a minute), so a restart
    /// during an outage goes on counting from the last contact before it.
    private func observeUplinks(_ contact: inout UplinkContactTracker, at now: Date) async {
        let reporting = self.uplinks.filter { $0.reportsContact }
        guard !reporting.isEmpty else { return }
        contact.canTell = true
        if let latest = reporting.compactMap({ $0.lastContact }).max() { contact.observe(latest) }
        guard let latest = contact.latest, contact.persisted.map({ latest.timeIntervalSince($0) >= 60 }) ?? true else { return }
        do {
            try await self.store.recordUplinkContact(at: latest)
            contact.persisted = latest
        } catch {
            self.logger.warning("could not record the uplinks' last contact", metadata: ["error": "\(error)"])
        }
    }

    /// What the mode file says, and the last failure to write it (logged once, not every round).
    struct StateFileStatus {
        var written: Mode?
        var failure: String?
    }

    /// Writes `mode` to the mode file unless it already says so. A failure (no /run/kiezbox yet) is retried on
    /// the next round: the Wi-Fi depends on the file being right.
    private func updateStateFile(_ mode: Mode, status: inout StateFileStatus) {
        guard let file = self.stateFile, status.written != mode else { return }
        do {
            try file.write(mode)
            status = StateFileStatus(written: mode, failure: nil)
        } catch {
            if status.failure != error.description {
                self.logger.error("could not write the mode file; the emergency Wi-Fi does not follow the mode", metadata: ["error": "\(error)"])
            }
            status.failure = error.description
        }
    }

    private func inputs(at now: Date, tracker: inout MainsTracker, contact: inout UplinkContactTracker) -> ModeInputs {
        let mains = (try? self.store.latest())?.first { $0.reading.quantity == .mainsPresent }?.reading
        let fresh = mains.flatMap { now.timeIntervalSince($0.measuredAt) <= self.mainsStaleAfter ? $0 : nil }
        let live = self.mainsInput?().flatMap { $0.isWatching ? $0.mainsPresent : nil }
        tracker.observe(present: live ?? fresh.map { $0.value >= 0.5 }, at: now)
        let declared = (try? self.desk?.current(at: now))?.first { $0.declaresCrisis }
        // A declaration by signed announcement, else one by LoRaWAN downlink (the same keys; a hand still wins).
        let declaredByDownlink = (try? self.downlinks?.declaredCrisis(at: now)) ?? nil
        return ModeInputs(
            override: try? self.store.modeOverride(), declaredBy: declared?.issuer ?? declaredByDownlink.map { "\($0.issuer) (LoRaWAN downlink)" },
            mainsLostFor: tracker.lostSince.map { now.timeIntervalSince($0) },
            mainsPresentFor: tracker.presentSince.map { now.timeIntervalSince($0) },
            uplinkSilentFor: contact.silentFor(at: now, policy: self.policy),
            uplinkLastLostAgo: contact.lastLostAt.map { now.timeIntervalSince($0) },
            batteryPercent: self.batteryPercent(at: now)
        )
    }

    /// The power model's latest state of charge, unless the estimate is stale (the model is not running).
    private func batteryPercent(at now: Date) -> Double? {
        guard let record = try? self.store.batteryRecord(), now.timeIntervalSince(record.at) <= self.mainsStaleAfter else { return nil }
        return record.estimate.stateOfCharge * 100
    }
}

/// When the uplinks last reached the other side, and when they were last lost.
struct UplinkContactTracker: Sendable, Hashable {
    let startedAt: Date
    /// Whether any configured uplink can tell (without one, the "uplink lost" trigger never fires).
    var canTell = false
    /// The latest contact seen, in this run or recorded by an earlier one.
    var latest: Date?
    /// The contact last written to the store.
    var persisted: Date?
    /// The last round in which the uplinks counted as lost (silent for ``ModePolicy/uplinkBackWithin``).
    var lastLostAt: Date?

    init(startedAt: Date, recorded: Date?) {
        self.startedAt = startedAt
        self.latest = recorded
        self.persisted = recorded
    }

    mutating func observe(_ contact: Date) {
        if self.latest.map({ contact > $0 }) ?? true { self.latest = contact }
    }

    /// How long the uplinks have been silent; `nil` when none can tell, and during the first
    /// ``ModePolicy/uplinkBackWithin`` after the start (the connections' time to come up). The silence counts
    /// from the last contact, also one before a restart; from the start when there never was one.
    mutating func silentFor(at now: Date, policy: ModePolicy) -> TimeInterval? {
        guard self.canTell, let backWithin = policy.uplinkBackWithin, now.timeIntervalSince(self.startedAt) >= backWithin else { return nil }
        let silent = now.timeIntervalSince(self.latest ?? self.startedAt)
        if silent >= backWithin { self.lastLostAt = now }
        return silent
    }
}

/// Since when mains has been lost or present, from successive observations.
struct MainsTracker: Sendable, Hashable {
    var lostSince: Date?
    var presentSince: Date?

    /// `present`: what the input says now; `nil` when it says nothing (no sensor, stale reading).
    mutating func observe(present: Bool?, at now: Date) {
        switch present {
        case true?:
            self.lostSince = nil
            if self.presentSince == nil { self.presentSince = now }
        case false?:
            self.presentSince = nil
            if self.lostSince == nil { self.lostSince = now }
        case nil:
            self.lostSince = nil
            self.presentSince = nil
        }
    }
}

/// Commands run when the box enters or leaves crisis mode (`[mode] on_crisis`, `on_normal`).
struct ModeHooks: Sendable, Hashable {
    var onCrisis: [String] = []
    var onNormal: [String] = []

    func run(leaving old: Mode, entering new: Mode, logger: Logger) {
        let command: [String]
        switch (old, new) {
        case (_, .crisis): command = self.onCrisis
        case (.crisis, _): command = self.onNormal
        default: return
        }
        guard let executable = command.first else { return }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(command.dropFirst())
        process.terminationHandler = { process in
            if process.terminationStatus != 0 {
                logger.error("mode hook failed", metadata: ["command": "\(command.joined(separator: " "))", "status": "\(process.terminationStatus)"])
            }
        }
        do {
            try process.run()
            logger.info("mode hook started", metadata: ["command": "\(command.joined(separator: " "))"])
        } catch {
            logger.error("mode hook could not start", metadata: ["command": "\(command.joined(separator: " "))", "error": "\(error)"])
        }
    }
}
