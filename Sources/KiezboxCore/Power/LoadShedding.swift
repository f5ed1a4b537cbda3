import Synchronization

/// How much a shed step slows each kind of load down (docs/power.md, "Load shedding"): the services take their
/// configured cadence times these factors. The portal and the emergency Wi-Fi have no factor: no step turns them
/// down, they are what the battery is saved for.
public struct ShedSettings: Sendable, Hashable {
    /// A particulate sensor (its fan and laser) is read only every this many of its configured slots; 0 = not at all.
    public var particulateEvery: Int
    /// The relay's idle poll (how often it looks for readings to send) is this many times longer.
    public var relayIntervalFactor: Int
    /// The LoRaWAN routine report and the Meshtastic status go this many times less often.
    public var loRaReportFactor: Int

    public init(particulateEvery: Int = 1, relayIntervalFactor: Int = 1, loRaReportFactor: Int = 1) {
        self.particulateEvery = particulateEvery
        self.relayIntervalFactor = relayIntervalFactor
        self.loRaReportFactor = loRaReportFactor
    }

    /// Nothing shed.
    public static let none = ShedSettings()

    /// Whether a particulate sensor is read in the `slot`-th slot since its last reading (1: the next one).
    public func readsParticulate(slotsSinceLastReading slot: Int) -> Bool {
        self.particulateEvery > 0 && slot >= self.particulateEvery
    }
}

/// When the box sheds load and how much: a pure decision from the state of charge and whether the box lives on its
/// battery (docs/power.md, "Load shedding").
///
/// Step *n* (1…4) begins when the state of charge falls below the *n*-th threshold, and the steps are cumulative,
/// in this order:
/// 1. the particulate sensor's fan runs a quarter as often;
/// 2. the particulate sensor once an hour (a twelfth), and the relay looks for readings six times less often;
/// 3. the relay thirty times less often, LoRa reports (LoRaWAN routine, Meshtastic status) four times less often;
/// 4. the particulate sensor not at all, the relay sixty times less often, LoRa reports twelve times less often.
///
/// A step ends only when the state of charge is ``recoveryMargin`` above its threshold, so noise around a threshold
/// does not toggle it. Steps apply only while the box lives on its battery (no mains-fail input says mains is
/// present); with mains back the box returns to step 0 at once. An unknown state of charge keeps the current step.
public struct LoadSheddingPolicy: Sendable, Hashable {
    /// The state of charge (0…1) below which each step begins, strictly falling; empty: never shed.
    public var thresholds: [Double]
    /// How far above a step's threshold the state of charge must be before the step ends (0…1).
    public var recoveryMargin: Double

    public static let defaultThresholds = [0.50, 0.35, 0.20, 0.10]
    public static let defaultRecoveryMargin = 0.05

    /// What each step sheds, cumulatively; as many steps as this table has rows at most.
    public static let stepSettings: [ShedSettings] = [
        ShedSettings(particulateEvery: 4),
        ShedSettings(particulateEvery: 12, relayIntervalFactor: 6),
        ShedSettings(particulateEvery: 12, relayIntervalFactor: 30, loRaReportFactor: 4),
        ShedSettings(particulateEvery: 0, relayIntervalFactor: 60, loRaReportFactor: 12),
    ]

    public init(thresholds: [Double] = Self.defaultThresholds, recoveryMargin: Double = Self.defaultRecoveryMargin) {
        self.thresholds = thresholds
        self.recoveryMargin = recoveryMargin
    }

    /// How many steps there are.
    public var stepCount: Int { self.thresholds.count }

    /// What step `step` sheds (0: nothing). With fewer thresholds than rows in ``stepSettings`` the last step still
    /// takes the last row's measures, so the deepest step always sheds the most.
    public func settings(at step: Int) -> ShedSettings {
        guard step > 0, !self.thresholds.isEmpty else { return .none }
        let step = min(step, self.thresholds.count)
        if step == self.thresholds.count { return Self.stepSettings[Self.stepSettings.count - 1] }
        return Self.stepSettings[min(step, Self.stepSettings.count) - 1]
    }

    /// The step to be in, from the `current` one.
    ///
    /// - Parameters:
    ///   - stateOfCharge: 0…1, or nil when no fresh estimate is known.
    ///   - onBattery: false when mains is known to be present.
    public func step(from current: Int, stateOfCharge: Double?, onBattery: Bool) -> Int {
        guard onBattery else { return 0 }
        guard let stateOfCharge else { return current }
        let below = self.thresholds.count { stateOfCharge < $0 }
        let notYetRecovered = self.thresholds.count { stateOfCharge < $0 + self.recoveryMargin }
        return max(below, min(current, notYetRecovered))
    }
}

/// The box's current shed step, shared by the services that shed load: the load shedder sets it, the sampler,
/// the relay and the LoRa uplinks read it each time they schedule their next round (no restart needed).
public final class ShedLevel: Sendable {
    /// A step and what it sheds.
    public struct Current: Sendable, Hashable {
        public var step: Int
        public var settings: ShedSettings

        public init(step: Int, settings: ShedSettings) {
            self.step = step
            self.settings = settings
        }
    }

    private let state: Mutex<Current>

    public init(_ initial: Current = Current(step: 0, settings: .none)) {
        self.state = Mutex(initial)
    }

    /// The step now and what it sheds.
    public var current: Current { self.state.withLock { $0 } }
    /// What the current step sheds.
    public var settings: ShedSettings { self.current.settings }

    /// Moves to `current` (the load shedder only).
    public func set(_ current: Current) {
        self.state.withLock { $0 = current }
    }
}

extension Duration {
    /// This configured interval under a shed factor (1 or less: unchanged).
    public func shed(by factor: Int) -> Duration {
        factor <= 1 ? self : self * factor
    }
}
