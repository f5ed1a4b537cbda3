import EmergencyPortal
import Foundation
import KiezboxCore
import Logging
import ReadingStore
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
}

/// When the box is in crisis mode: a blackout (mains lost for a while), an authority's signed declaration, or a
/// resident's hand. Leaving a blackout waits until mains has stayed on for a while, so a flickering grid does not
/// switch the emergency Wi-Fi on and off.
struct ModePolicy: Sendable, Hashable {
    /// Mains must be gone this long before the box declares a blackout (a short dip is not a crisis).
    var crisisAfterMainsLoss: TimeInterval = 120
    /// Mains must be back this long before a blackout crisis ends.
    var normalAfterMainsReturn: TimeInterval = 600

    /// The mode to be in, and why (for the log).
    func decide(current: Mode, _ inputs: ModeInputs) -> (mode: Mode, reason: String) {
        if let override = inputs.override { return (override, "set by hand (kiezbox mode set)") }
        if let issuer = inputs.declaredBy { return (.crisis, "declared by \(issuer)") }
        if let lost = inputs.mainsLostFor, lost >= self.crisisAfterMainsLoss {
            return (.crisis, "mains power lost for \(Int(lost / 60)) min")
        }
        if current == .crisis {
            if inputs.mainsLostFor != nil { return (.crisis, "mains power still lost") }
            if let present = inputs.mainsPresentFor, present < self.normalAfterMainsReturn {
                return (.crisis, "mains back for \(Int(present)) s; waiting until it stays on")
            }
        }
        return (.normal, current == .crisis ? "mains power back, no crisis declared" : "normal operation")
    }
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
    /// A mains reading older than this says nothing about now (the input is not being read).
    var mainsStaleAfter: TimeInterval = 300

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var tracker = MainsTracker()
            // Where the last run left off: a restart during a blackout stays in crisis.
            var current = (try? self.store.mode()) ?? .normal
            var recorded = false
            var stateFileStatus = StateFileStatus()
            while !Task.isCancelled {
                let now = self.clock.currentDate()
                let inputs = self.inputs(at: now, tracker: &tracker)
                let (mode, reason) = self.policy.decide(current: current, inputs)
                self.updateStateFile(mode, status: &stateFileStatus)
                do {
                    if mode != current || !recorded {
                        try await self.store.setMode(mode)
                        recorded = true
                        if mode != current {
                            self.logger.notice("mode changed", metadata: ["from": "\(current)", "to": "\(mode)", "reason": "\(reason)"])
                            self.hooks.run(leaving: current, entering: mode, logger: self.logger)
                        }
                        current = mode
                    }
                } catch {
                    self.logger.warning("could not record the mode", metadata: ["error": "\(error)"])
                }
                do { try await self.clock.sleep(for: self.interval) } catch { return }
            }
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

    private func inputs(at now: Date, tracker: inout MainsTracker) -> ModeInputs {
        let mains = (try? self.store.latest())?.first { $0.reading.quantity == .mainsPresent }?.reading
        let fresh = mains.flatMap { now.timeIntervalSince($0.measuredAt) <= self.mainsStaleAfter ? $0 : nil }
        tracker.observe(present: fresh.map { $0.value >= 0.5 }, at: now)
        let declared = (try? self.desk?.current(at: now))?.first { $0.declaresCrisis }
        // A declaration by signed announcement, else one by LoRaWAN downlink (the same keys; a hand still wins).
        let declaredByDownlink = (try? self.downlinks?.declaredCrisis(at: now)) ?? nil
        return ModeInputs(
            override: try? self.store.modeOverride(), declaredBy: declared?.issuer ?? declaredByDownlink.map { "\($0.issuer) (LoRaWAN downlink)" },
            mainsLostFor: tracker.lostSince.map { now.timeIntervalSince($0) },
            mainsPresentFor: tracker.presentSince.map { now.timeIntervalSince($0) }
        )
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
