public import KiezboxCore
public import Logging
public import ReadingStore
public import ServiceLifecycle

/// How the relay paces and retries.
public struct RelayConfiguration: Sendable, Hashable {
    /// The most readings handed to an uplink at once (an uplink may take fewer).
    public var batchSize: Int
    /// How often to look for new readings once an uplink has caught up.
    public var idlePoll: Duration
    /// The first wait after a failed delivery; it doubles with every further failure...
    public var initialBackoff: Duration
    /// ...up to this.
    public var maximumBackoff: Duration
    /// The most readings per second sent while catching up after an outage, so a returning mesh link is not
    /// flooded. Zero means no limit.
    public var maximumBackfillRate: Double

    public init(
        batchSize: Int = 500, idlePoll: Duration = .seconds(5), initialBackoff: Duration = .seconds(2),
        maximumBackoff: Duration = .seconds(300), maximumBackfillRate: Double = 500
    ) {
        self.batchSize = max(1, batchSize)
        self.idlePoll = idlePoll
        self.initialBackoff = initialBackoff
        self.maximumBackoff = max(initialBackoff, maximumBackoff)
        self.maximumBackfillRate = maximumBackfillRate
    }

    /// The wait after `failures` failed deliveries in a row, before jitter: exponential, capped.
    public func backoff(afterFailures failures: Int) -> Duration {
        var delay = self.initialBackoff
        for _ in 1..<max(1, failures) {
            delay *= 2
            if delay >= self.maximumBackoff { return self.maximumBackoff }
        }
        return min(delay, self.maximumBackoff)
    }
}

/// Pumps the outbox into every uplink, each on its own cursor, for as long as the daemon runs.
///
/// Every uplink is fed the oldest readings its cursor has not passed, in id order (which is commit order, so
/// each sensor's readings go out in the order they were measured), and its cursor advances over what it
/// acknowledged; what it did not acknowledge is offered again (duplicates carry ids to drop them by). A failed
/// delivery is retried after an exponential backoff with jitter, so boxes
/// that lost the same broker do not all come back at the same second. After an outage the backlog is sent at
/// most at ``RelayConfiguration/maximumBackfillRate``.
public struct RelayService<C: KiezboxClock>: Service {
    let uplinks: [any Uplink]
    let store: ReadingStore
    let clock: C
    let configuration: RelayConfiguration
    let logger: Logger
    /// Picks the actual wait from the backoff: by default uniformly between half of it and all of it.
    let jitter: @Sendable (Duration) -> Duration
    /// The load shedder's step: the idle poll grows with it (nil: never shed).
    let shedLevel: ShedLevel?

    public init(
        uplinks: [any Uplink], store: ReadingStore, clock: C, configuration: RelayConfiguration = .init(), logger: Logger,
        shedLevel: ShedLevel? = nil, jitter: @escaping @Sendable (Duration) -> Duration = RelayService.halfToFullJitter
    ) {
        self.shedLevel = shedLevel
        self.uplinks = uplinks
        self.store = store
        self.clock = clock
        self.configuration = configuration
        self.logger = logger
        self.jitter = jitter
    }

    /// Uniformly between half the backoff and all of it.
    public static func halfToFullJitter(_ delay: Duration) -> Duration {
        delay * Double.random(in: 0.5...1.0)
    }

    public func run() async throws {
        for uplink in self.uplinks {
            try await self.store.registerUplink(uplink.name, startingAt: .oldest)
        }
        await withDiscardingTaskGroup { group in
            for uplink in self.uplinks {
                group.addTask { await self.pump(uplink) }
            }
        }
    }

    private func pump(_ uplink: any Uplink) async {
        let logger = {
            var logger = self.logger
            logger[metadataKey: "uplink"] = "\(uplink.name)"
            return logger
        }()
        await cancelWhenGracefulShutdown {
            await self.startUplink(uplink, logger: logger)
            var failures = 0
            var backfill = BackfillProgress()
            while !Task.isCancelled {
                do {
                    let limit = min(self.configuration.batchSize, uplink.maximumBatch)
                    let batch = try await self.store.undelivered(for: uplink.name, limit: limit)
                    guard !batch.isEmpty else {
                        if backfill.delivered > 0 { logger.info("caught up", metadata: ["delivered": "\(backfill.delivered)"]) }
                        backfill = BackfillProgress()
                        let factor = self.shedLevel?.settings.relayIntervalFactor ?? 1
                        try await self.clock.sleep(for: self.configuration.idlePoll.shed(by: factor))
                        continue
                    }
                    let offered = Set(batch.map(\.id))
                    let acknowledged = try await uplink.deliver(batch).intersection(offered)
                    guard !acknowledged.isEmpty else {
                        throw RelayError(uplink: uplink.name, reason: "nothing of the batch was acknowledged")
                    }
                    try await self.store.acknowledge(acknowledged, for: uplink.name)
                    if failures > 0 { logger.notice("delivering again", metadata: ["after_failures": "\(failures)"]) }
                    failures = 0
                    // A full batch means more is waiting: this is a backlog, so pace it.
                    if batch.count == limit {
                        backfill.delivered += acknowledged.count
                        if backfill.shouldReport() {
                            let waiting = (try? self.store.statistics().uplinks.first { $0.name == uplink.name }?.undelivered) ?? nil
                            logger.info(
                                "backfilling",
                                metadata: ["delivered": "\(backfill.delivered)", "waiting": "\(waiting.map(String.init) ?? "?")"]
                            )
                        }
                        if self.configuration.maximumBackfillRate > 0 {
                            try await self.clock.sleep(for: .seconds(Double(acknowledged.count) / self.configuration.maximumBackfillRate))
                        }
                    }
                } catch is CancellationError {
                    break
                } catch {
                    if Task.isCancelled { break }
                    failures += 1
                    let delay = self.jitter(self.configuration.backoff(afterFailures: failures))
                    logger.log(
                        level: failures == 1 || failures % 10 == 0 ? .warning : .debug, "delivery failed; retrying",
                        metadata: ["error": "\(error)", "failures": "\(failures)", "retry_in_ms": "\(delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000)"]
                    )
                    do { try await self.clock.sleep(for: delay) } catch { break }
                }
            }
        }
        await uplink.stop()
    }

    /// Starts the uplink, retrying with backoff until it starts or the relay is cancelled.
    private func startUplink(_ uplink: any Uplink, logger: Logger) async {
        var failures = 0
        while !Task.isCancelled {
            do {
                try await uplink.start()
                return
            } catch {
                failures += 1
                let delay = self.jitter(self.configuration.backoff(afterFailures: failures))
                logger.warning("uplink did not start; retrying", metadata: ["error": "\(error)"])
                do { try await self.clock.sleep(for: delay) } catch { return }
            }
        }
    }

}

/// How far a backfill has come, and when to say so in the log (every 10 batches' worth, not every batch).
struct BackfillProgress {
    var delivered = 0
    private var reportedAt = 0

    mutating func shouldReport() -> Bool {
        guard self.delivered - self.reportedAt >= 5000 || self.reportedAt == 0 else { return false }
        self.reportedAt = self.delivered
        return true
    }
}

/// A delivery that did not get through.
public struct RelayError: Error, Sendable, CustomStringConvertible {
    public var uplink: String
    public var reason: String
    public var description: String { "\(self.uplink): \(self.reason)" }
}
