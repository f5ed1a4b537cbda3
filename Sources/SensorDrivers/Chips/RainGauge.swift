internal import KiezboxCore
import Synchronization

/// A tipping-bucket rain gauge on a GPIO input: a magnet on the bucket closes a reed switch once per tip.
///
/// Wiring: the reed switch between the GPIO and ground, with the pull-up requested (the default), so each tip is
/// one falling edge. Wired to 3.3 V instead, pass `tipEdge: .rising` and `bias: .pullDown`.
///
/// ``watch()`` requests both edges and counts tips with the kernel's edge timestamps, so a busy daemon that reads
/// events late still counts right. **Debounce:** a tip-direction edge counts only when the line had been quiet
/// (no edge of either kind) for the `debounce` window before it. Reed contacts bounce for around a millisecond
/// when they close and again when they open; a bucket needs a good fraction of a second to swing over, and even
/// 1000 mm/h is only one tip a second at 0.2794 mm. The default 25 ms therefore rejects bounce with a wide
/// margin on both sides, including the bounce of the opening contact long after the closing edge (where a
/// simple hold-off after each counted tip would count it again).
///
/// **Kernel debounce:** the line is also requested with the kernel's debounce (`kernelDebounce`, default 5 ms,
/// never more than `debounce`), which filters the contact bounce before it reaches user space: the daemon is
/// woken once per contact change instead of once per bounce, and a level the kernel reports has held for 5 ms.
/// 5 ms is several times a reed contact's bounce and far below how long a tip holds the contact closed (tens of
/// milliseconds and more), so no tip is lost; the kernel stamps each edge when its period ended, so all edges are
/// about 5 ms late, which changes neither the count nor the intensity. The quiet-window rule above stays, for a
/// bounce longer than the kernel's period and for chips whose driver debounces differently.
///
/// ``measure()`` reports
/// - ``Quantity/rainfall``: mm since the previous measure (tips × `millimetresPerTip`);
/// - ``Quantity/rainIntensity``: mm/h over the last `intensityWindow` (default 10 min), from the tips' timestamps.
///
/// Both are ``ReadingQuality/degraded`` when the watch did not cover the whole period (not running, or restarted
/// since the previous measure; the intensity also until the watch has run for a full window), and
/// ``ReadingQuality/implausible`` above 1000 mm/h, about a tip a second sustained: beyond what a bucket can
/// count, so a chattering contact or interference on a long cable.
///
/// `millimetresPerTip` defaults to 0.2794 mm (0.011 in), the common figure for the Misol WH-SP-RG / SparkFun
/// weather-meter gauge; sensors.md gives no figure, so calibrate by pouring a known volume through the funnel.
public final class RainGauge: WatchingSensorDriver {
    /// The common Misol / SparkFun figure (0.011 in per tip); not from the reference, calibrate per gauge.
    public static let defaultMillimetresPerTip = 0.2794
    /// See the type's documentation for why 25 ms.
    public static let defaultDebounce = Duration.milliseconds(25)
    /// See the type's documentation for why 5 ms.
    public static let defaultKernelDebounce = Duration.milliseconds(5)
    public static let defaultIntensityWindow = Duration.seconds(600)
    /// Above this the reading is flagged implausible.
    public static let plausibleMillimetresPerHour = 1000.0

    private struct State {
        var watching = false
        /// When the running watch started, in the edge time base.
        var watchStartedAt: Duration?
        /// The previous edge of either kind, for the quiet-window rule.
        var lastEdgeAt: Duration?
        var tipsSinceMeasure = 0
        /// Timestamps of counted tips within the intensity window (older ones are pruned).
        var recentTips: [Duration] = []
        var totalTips = 0
        var ignoredEdges = 0
        /// A watch ended since the previous measure, so tips may have been missed.
        var missedSinceMeasure = false
    }

    private let chip: any GPIOChip
    private let line: UInt32
    private let millimetresPerTip: Double
    private let debounce: Duration
    private let kernelDebounce: Duration
    private let intensityWindow: Duration
    private let tipEdge: GPIOEdge.Kind
    private let bias: GPIOBias
    private let consumer: String
    private let now: @Sendable () -> Duration
    private let state = Mutex(State())

    /// Creates a driver; the line is requested when ``watch()`` runs.
    ///
    /// - Parameters:
    ///   - chip: the GPIO chip the gauge is wired to.
    ///   - line: the line offset (the BCM number on the Pi's header chip).
    ///   - millimetresPerTip: rain per bucket tip, mm.
    ///   - debounce: how long the line must have been quiet before a tip edge counts.
    ///   - kernelDebounce: the debounce the kernel applies to the line before the edges reach the driver; capped
    ///     at `debounce`, `.zero` for none.
    ///   - intensityWindow: the period the rain intensity is averaged over; zero or less means the default.
    ///   - tipEdge: the edge a tip produces: falling for a switch to ground.
    ///   - bias: the pull to request: pull-up for a switch to ground.
    ///   - consumer: the label `gpioinfo` shows for the line.
    ///   - now: now in the edge timestamps' time base: ``monotonicNow()`` on Linux,
    ///     ``SimulatedGPIOChip/timestampNow`` in simulations.
    public init(
        chip: any GPIOChip,
        line: UInt32,
        millimetresPerTip: Double = RainGauge.defaultMillimetresPerTip,
        debounce: Duration = RainGauge.defaultDebounce,
        kernelDebounce: Duration = RainGauge.defaultKernelDebounce,
        intensityWindow: Duration = RainGauge.defaultIntensityWindow,
        tipEdge: GPIOEdge.Kind = .falling,
        bias: GPIOBias = .pullUp,
        consumer: String = "kiezbox rain gauge",
        now: @escaping @Sendable () -> Duration = monotonicNow
    ) {
        self.chip = chip
        self.line = line
        self.millimetresPerTip = millimetresPerTip
        self.debounce = debounce
        // The kernel's period never exceeds the driver's: a configured shorter window shortens both.
        self.kernelDebounce = max(.zero, min(kernelDebounce, debounce))
        // A zero or negative window (a configuration slip) would divide by zero: fall back to the default.
        self.intensityWindow = intensityWindow > .zero ? intensityWindow : Self.defaultIntensityWindow
        self.tipEdge = tipEdge
        self.bias = bias
        self.consumer = consumer
        self.now = now
    }

    public var chipName: String { "rain gauge" }

    /// Tips counted since the driver was created.
    public var tipCount: Int { self.state.withLock { $0.totalTips } }

    /// Tip-direction edges ignored as contact bounce since the driver was created.
    public var ignoredEdgeCount: Int { self.state.withLock { $0.ignoredEdges } }

    /// Whether ``watch()`` is running.
    public var isWatching: Bool { self.state.withLock { $0.watching } }

    /// Requests both edges on the line and counts tips until the task is cancelled.
    ///
    /// - Throws: ``GPIOError`` when the line cannot be requested (``GPIOError/Code/busy`` when something else holds
    ///   it) or the event stream fails; ``RainGaugeError`` when the stream ends without cancellation.
    public func watch() async throws {
        let events = try self.chip.requestEdgeEvents(
            line: self.line, bias: self.bias, debounce: self.kernelDebounce, consumer: self.consumer
        )
        defer { events.release() }
        let startedAt = self.now()
        self.state.withLock { state in
            state.watching = true
            state.watchStartedAt = startedAt
            state.lastEdgeAt = nil
        }
        defer {
            self.state.withLock { state in
                state.watching = false
                state.watchStartedAt = nil
                state.missedSinceMeasure = true
            }
        }
        for try await edge in events.edges {
            self.state.withLock { self.record(edge, in: &$0) }
        }
        if Task.isCancelled { return }
        throw RainGaugeError(.edgeEventsEnded, chip: self.chip.name, line: self.line)
    }

    private func record(_ edge: GPIOEdge, in state: inout State) {
        // Every edge, counted or not, restarts the quiet window.
        defer { state.lastEdgeAt = edge.timestamp }
        guard edge.kind == self.tipEdge else { return }
        if let last = state.lastEdgeAt, edge.timestamp - last < self.debounce {
            state.ignoredEdges += 1
            return
        }
        state.tipsSinceMeasure += 1
        state.totalTips += 1
        state.recentTips.append(edge.timestamp)
        state.recentTips.removeAll { $0 <= edge.timestamp - self.intensityWindow }
    }

    /// Reports rainfall since the previous measure (mm) and the rain intensity over the window (mm/h).
    public func measure() async throws -> [MeasuredValue] {
        let now = self.now()
        return self.state.withLock { state in
            let rainfall = Double(state.tipsSinceMeasure) * self.millimetresPerTip
            let windowStart = now - self.intensityWindow
            state.recentTips.removeAll { $0 <= windowStart }
            let hours = self.intensityWindow / .seconds(3600)
            let intensity = Double(state.recentTips.count) * self.millimetresPerTip / hours

            let implausible = intensity > Self.plausibleMillimetresPerHour
            let rainfallComplete = state.watching && !state.missedSinceMeasure
            let windowCovered = state.watchStartedAt.map { $0 <= windowStart } ?? false
            func quality(complete: Bool) -> ReadingQuality {
                implausible ? .implausible : complete ? .good : .degraded
            }

            state.tipsSinceMeasure = 0
            state.missedSinceMeasure = false
            return [
                MeasuredValue(.rainfall, rainfall, quality: quality(complete: rainfallComplete)),
                MeasuredValue(.rainIntensity, intensity, quality: quality(complete: state.watching && windowCovered)),
            ]
        }
    }
}

/// A rain gauge whose input stopped working, with what a resident can check.
public struct RainGaugeError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: Error, Sendable, Hashable {
        /// The edge-event stream ended although nobody cancelled the watch.
        case edgeEventsEnded
    }

    public var code: Code
    /// The GPIO chip's name.
    public var chip: String
    public var line: UInt32

    public init(_ code: Code, chip: String, line: UInt32) {
        self.code = code
        self.chip = chip
        self.line = line
    }

    public var description: String {
        switch self.code {
        case .edgeEventsEnded:
            "rain gauge on \(self.chip) line \(self.line): edge events stopped (the line was released or the chip "
                + "went away); the watch will be restarted, and rain in between is not counted"
        }
    }
}
