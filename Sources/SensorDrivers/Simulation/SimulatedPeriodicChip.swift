/// A simulated chip that measures on its own (``SimulatedSCD30``, ``SimulatedSCD4x``, ``SimulatedSPS30``): what it
/// reports, and how time passes, counted in data-ready polls.
public protocol SimulatedPeriodicChip: SimulatedI2CChip {
    /// One sample as the chip reports it.
    associatedtype Measurement: Sendable

    /// Sets what the following samples report.
    func setMeasurement(_ measurement: Measurement)

    /// Queues samples that come out before the steady ones, in order: a warm-up transient, say.
    func enqueueSamples(_ samples: [Measurement])

    /// How many data-ready polls answer "not ready" before each new sample (default 0).
    func setSamplePeriod(dataReadyPolls: Int)

    /// Makes data-ready stay "not ready" (a hung chip), or ends that.
    func stallMeasurements(_ stalled: Bool)

    /// How many samples the chip has taken and how many were read.
    var sampleCounts: (taken: Int, read: Int) { get }
}

/// The state of a simulated chip that measures on its own: its samples come from a ``SimulatedPeriodicSampler``.
protocol SimulatedSamplingState: SimulatedSensirionState {
    associatedtype Sample: Sendable
    var sampler: SimulatedPeriodicSampler<Sample> { get set }
}

extension SimulatedSamplingState {
    /// The waiting answer, once; reading the fresh sample consumes it.
    mutating func transmit() throws(I2CError.Code) -> [UInt16] {
        // Through a copy: `sampler` and `answer` are two accesses to `self` here.
        var answer = self.answer
        defer { self.answer = answer }
        return try self.sampler.serve(&answer)
    }
}

/// A simulated Sensirion chip that measures on its own, its sampler in its state.
protocol SimulatedSamplingChip: SimulatedSensirionChip, SimulatedPeriodicChip
where State: SimulatedSamplingState, State.Sample == Measurement {}

extension SimulatedSamplingChip {
    public func setMeasurement(_ measurement: Measurement) {
        self.withState { $0.sampler.steady = measurement }
    }

    public func enqueueSamples(_ samples: [Measurement]) {
        self.withState { $0.sampler.enqueue(samples) }
    }

    public func setSamplePeriod(dataReadyPolls: Int) {
        self.withState { $0.sampler.pollsPerSample = max(0, dataReadyPolls) }
    }

    public func stallMeasurements(_ stalled: Bool) {
        self.withState { $0.sampler.stalled = stalled }
    }

    public var sampleCounts: (taken: Int, read: Int) {
        self.withState { ($0.sampler.samplesTaken, $0.sampler.samplesRead) }
    }
}

/// When a periodically measuring simulated chip (SCD30, SCD4x, SPS30) has a new sample, with time counted in
/// data-ready polls: after a sample is read, the next one is ready after `pollsPerSample` polls that answer "not
/// ready" (0: at the next poll). Samples queued with ``enqueue(_:)`` come out first, in order, then the steady
/// environment.
struct SimulatedPeriodicSampler<Sample: Sendable>: Sendable {
    var steady: Sample
    var queued: [Sample] = []
    var measuring = false
    var stalled = false
    var pollsPerSample = 0
    /// The last sample taken, fresh or not.
    var latest: Sample?
    /// The data-ready flag.
    var fresh = false
    var pollsUntilSample = 0
    var samplesTaken = 0
    var samplesRead = 0

    init(steady: Sample) {
        self.steady = steady
    }

    mutating func start() {
        self.measuring = true
        self.fresh = false
        self.pollsUntilSample = self.pollsPerSample
    }

    mutating func stop() {
        self.measuring = false
        self.fresh = false
    }

    mutating func enqueue(_ samples: [Sample]) {
        self.queued += samples
    }

    /// One data-ready poll: true when a fresh sample waits; the poll is what lets simulated time pass.
    mutating func pollDataReady() -> Bool {
        guard self.measuring, !self.stalled else { return false }
        if self.fresh { return true }
        if self.pollsUntilSample > 0 {
            self.pollsUntilSample -= 1
            return false
        }
        self.latest = self.queued.isEmpty ? self.steady : self.queued.removeFirst()
        self.samplesTaken += 1
        self.fresh = true
        return true
    }

    /// The fresh sample, if one waits; it stays fresh until ``consumeFresh()``.
    var freshSample: Sample? { self.fresh ? self.latest : nil }

    /// Marks the fresh sample as read: data-ready clears and the next sample is due after `pollsPerSample` polls.
    mutating func consumeFresh() {
        guard self.fresh else { return }
        self.fresh = false
        self.samplesRead += 1
        self.pollsUntilSample = self.pollsPerSample
    }

    /// Serves a read of `answer` (``SensirionAnswer/serve(_:)``); reading an answer that carries the fresh sample
    /// consumes it.
    mutating func serve(_ answer: inout SensirionAnswer?) throws(I2CError.Code) -> [UInt16] {
        let consumesSample = answer?.consumesSample ?? false
        let words = try SensirionAnswer.serve(&answer)
        if consumesSample { self.consumeFresh() }
        return words
    }
}
