public import Foundation
public import KiezboxCore
public import ReadingStore

/// When the LoRaWAN uplink sends what: the decisions, without the modem, so they can be tested on their own.
///
/// - A **crisis summary** goes first when the box enters crisis mode, and again every
///   ``Policy/crisisSummaryInterval`` while it lasts. It may spend the crisis reserve (the whole allowance).
/// - A **routine report** (the latest value of each quantity) goes every *paced interval*: the configured
///   ``Policy/reportInterval``, or longer when the data rate makes frames so long that the routine allowance
///   would not last the day at that pace (see ``LoRaWANAirtimeBudget/pacedInterval(cost:minimum:)``).
/// - A **significant change** (a value moved by more than its threshold since the last report) lets the next
///   routine report go early, but no sooner than a quarter of the paced interval after the last one.
/// - Every send also waits until the rolling 24-hour window has room for it (``LoRaWANAirtimeBudget``) and
///   until the duty cycle allows it (the caller's `dutyCycleFree`).
public struct LoRaWANReportSchedule: Sendable, Hashable {
    public struct Policy: Sendable, Hashable {
        /// The routine cadence when the budget allows it.
        public var reportInterval: Duration
        /// How often the crisis summary repeats while crisis mode lasts.
        public var crisisSummaryInterval: Duration
        /// A change of at least this much in a quantity's value since the last report is significant.
        public var significantChanges: [Quantity: Double]

        public init(
            reportInterval: Duration = .seconds(600), crisisSummaryInterval: Duration = .seconds(1800),
            significantChanges: [Quantity: Double] = Self.defaultSignificantChanges
        ) {
            self.reportInterval = reportInterval
            self.crisisSummaryInterval = crisisSummaryInterval
            self.significantChanges = significantChanges
        }

        /// Changes a neighbour or civil protection would want to hear of before the next routine report.
        public static let defaultSignificantChanges: [Quantity: Double] = [
            .temperature: 3, .relativeHumidity: 15, .pressure: 5, .pm2_5: 25, .pm10: 40, .co2: 400, .voltage: 0.5, .batteryLevel: 10,
        ]
    }

    /// What to send next.
    public enum Frame: String, Sendable, Hashable {
        case crisisSummary = "crisis-summary"
        case routineReport = "report"
    }

    public struct Decision: Sendable, Hashable {
        public var frame: Frame
        /// Not before this moment.
        public var at: Date
        /// Why (for the log and `kiezbox status`): "crisis mode began", "routine", "significant change in pm2_5"…
        public var reason: String
    }

    public var policy: Policy
    public private(set) var lastReportAt: Date?
    public private(set) var lastReportValues: [Quantity: Double] = [:]
    public private(set) var lastSummaryAt: Date?
    /// The mode the last crisis summary was sent in; a switch into crisis mode sends one at once.
    public private(set) var summarisedCrisis = false

    public init(policy: Policy) {
        self.policy = policy
    }

    /// The next frame to send and its earliest moment, or nil when there is nothing to send (no values yet and
    /// no crisis), or the budget can never carry the frame.
    ///
    /// - Parameters:
    ///   - values: the latest value of each quantity the report carries.
    ///   - crisis: whether the box is in crisis mode now.
    ///   - costs: time on air of each kind of frame at the current data rate.
    ///   - dutyCycleFree: the earliest moment the duty cycle allows a frame.
    public func next(
        now: Date, values: [Quantity: Double], crisis: Bool, budget: LoRaWANAirtimeBudget,
        costs: [Frame: Duration], dutyCycleFree: Date
    ) -> Decision? {
        let routine = self.routineDecision(now: now, values: values, budget: budget, costs: costs, dutyCycleFree: dutyCycleFree)
        guard crisis, let summary = self.summaryDecision(now: now, budget: budget, costs: costs, dutyCycleFree: dutyCycleFree) else {
            return routine
        }
        // The summary goes first unless a routine report is due strictly before it.
        if let routine, routine.at < summary.at { return routine }
        return summary
    }

    private func summaryDecision(now: Date, budget: LoRaWANAirtimeBudget, costs: [Frame: Duration], dutyCycleFree: Date) -> Decision? {
        guard let cost = costs[.crisisSummary], let fits = budget.earliestSend(cost: cost, cap: budget.fairUse.uplinkAirtimePerDay) else {
            return nil
        }
        if !self.summarisedCrisis {
            return Decision(frame: .crisisSummary, at: max(now, fits, dutyCycleFree), reason: "crisis mode began")
        }
        let due = (self.lastSummaryAt ?? now).addingTimeInterval(self.policy.crisisSummaryInterval.timeInterval)
        return Decision(frame: .crisisSummary, at: max(due, fits, dutyCycleFree), reason: "crisis summary repeat")
    }

    private func routineDecision(
        now: Date, values: [Quantity: Double], budget: LoRaWANAirtimeBudget, costs: [Frame: Duration], dutyCycleFree: Date
    ) -> Decision? {
        guard !values.isEmpty, let cost = costs[.routineReport] else { return nil }
        guard let fits = budget.earliestSend(cost: cost, cap: budget.fairUse.routineAirtimePerDay) else { return nil }
        guard let last = self.lastReportAt else {
            return Decision(frame: .routineReport, at: max(now, fits, dutyCycleFree), reason: "first report")
        }
        let paced = budget.pacedInterval(cost: cost, minimum: self.policy.reportInterval).timeInterval
        var due = last.addingTimeInterval(paced)
        var reason = "routine"
        if let changed = self.significantChange(values) {
            let early = last.addingTimeInterval(paced / 4)
            if early < due {
                due = early
                reason = "significant change in \(changed.rawValue)"
            }
        }
        return Decision(frame: .routineReport, at: max(due, fits, dutyCycleFree), reason: reason)
    }

    /// The first quantity (in a stable order) whose value moved by at least its threshold since the last report.
    func significantChange(_ values: [Quantity: Double]) -> Quantity? {
        for (quantity, threshold) in self.policy.significantChanges.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            guard let value = values[quantity] else { continue }
            guard let sent = self.lastReportValues[quantity] else { return quantity }
            if abs(value - sent) >= threshold { return quantity }
        }
        return nil
    }

    /// Notes that `frame` went out at `at` carrying `values`.
    public mutating func sent(_ frame: Frame, at: Date, values: [Quantity: Double], crisis: Bool) {
        switch frame {
        case .routineReport:
            self.lastReportAt = at
            self.lastReportValues = values
        case .crisisSummary:
            self.lastSummaryAt = at
            self.summarisedCrisis = crisis
        }
    }

    /// Notes the current mode: leaving crisis mode arms the summary for the next crisis.
    public mutating func observe(crisis: Bool) {
        if !crisis { self.summarisedCrisis = false }
    }
}
