import Foundation
import KiezboxCore
import Logging
import SensorDrivers
import ServiceLifecycle

/// A sensor the sampler reads: its configuration and the driver that talks to the chip.
struct ScheduledSensor: Sendable {
    var id: String
    var interval: Duration
    var offsets: [Quantity: Double]
    var driver: any SensorDriver
    /// Read first after one interval rather than at once: a watching driver (rain gauge, mains-fail input)
    /// reports what it saw over the interval, so there is nothing to read at the start.
    var firstReadingAfterInterval = false
    /// A particulate sensor: its fan is the first load shed (``ShedSettings/particulateEvery``).
    var isParticulate = false
}

/// How long a failing sensor waits before the next attempt: doubling from `initial` up to `maximum`.
struct RetryBackoff: Sendable, Hashable {
    var initial: Duration = .seconds(5)
    var maximum: Duration = .seconds(600)

    func delay(afterFailures failures: Int) -> Duration {
        guard failures > 0 else { return .zero }
        var delay = self.initial
        for _ in 1..<failures {
            delay *= 2
            if delay >= self.maximum { return self.maximum }
        }
        return min(delay, self.maximum)
    }
}

/// Reads every configured sensor on its own cadence and hands the readings to the store.
///
/// Each sensor has its own task, so a slow or failing chip never delays the others. A failing sensor is logged
/// and retried with backoff; when it answers again it returns to its cadence. Deadlines are computed from the
/// schedule, not from when the last read finished, so the cadence does not drift.
struct Sampler<C: KiezboxClock>: Service where C.Instant: Sendable {
    let sensors: [ScheduledSensor]
    let clock: C
    let backoff: RetryBackoff
    let logger: Logger
    /// Where each sensor loop reports its rounds, for the watchdog.
    let heartbeat: SamplerHeartbeat<C.Instant>
    /// The load shedder's step: particulate sensors skip slots while it says so (nil: never shed).
    let shedLevel: ShedLevel?
    /// Where readings go (the store's `record`).
    let sink: @Sendable ([Reading]) async throws -> Void

    init(
        sensors: [ScheduledSensor], clock: C, backoff: RetryBackoff = .init(), logger: Logger,
        heartbeat: SamplerHeartbeat<C.Instant> = .init(), shedLevel: ShedLevel? = nil,
        sink: @escaping @Sendable ([Reading]) async throws -> Void
    ) {
        self.sensors = sensors
        self.clock = clock
        self.backoff = backoff
        self.logger = logger
        self.heartbeat = heartbeat
        self.shedLevel = shedLevel
        self.sink = sink
    }

    func run() async throws {
        let now = self.clock.now
        self.heartbeat.start(self.sensors.map { (id: $0.id, firstRound: $0.firstReadingAfterInterval ? now.advanced(by: $0.interval) : now) })
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                for sensor in self.sensors {
                    group.addTask { await self.runSchedule(of: sensor) }
                }
            }
        }
        self.logger.info("sampler stopped")
    }

    private func runSchedule(of sensor: ScheduledSensor) async {
        var logger = self.logger
        logger[metadataKey: "sensor"] = "\(sensor.id)"
        var nextDeadline = self.clock.now
        var failures = 0
        var outcome = SamplerHeartbeat<C.Instant>.Outcome.starting
        // Slots since the last reading: the first slot reads whatever the shed step.
        var slotsSinceReading = Int.max / 2
        if sensor.firstReadingAfterInterval {
            nextDeadline = nextDeadline.advanced(by: sensor.interval)
            do { try await self.clock.sleep(until: nextDeadline, tolerance: nil) } catch { return }
        }
        while !Task.isCancelled {
            if sensor.isParticulate, let shed = self.shedLevel?.settings, !shed.readsParticulate(slotsSinceLastReading: slotsSinceReading) {
                // Shedding load: the fan stays off this slot; the schedule (and the watchdog's heartbeat) goes on,
                // so a lower step takes effect at the next slot.
                slotsSinceReading += 1
                nextDeadline = self.nextSlot(after: nextDeadline, interval: sensor.interval)
            } else {
                do {
                    let values = try await sensor.driver.measure()
                    slotsSinceReading = 1
                    if failures > 0 {
                        logger.notice("sensor answers again", metadata: ["after_failures": "\(failures)"])
                    }
                    failures = 0
                    outcome = .ok
                    let measuredAt = self.clock.currentDate()
                    let readings = values.map { value in
                        Reading(
                            sensorID: sensor.id, quantity: value.quantity,
                            value: value.value + (sensor.offsets[value.quantity] ?? 0), measuredAt: measuredAt,
                            quality: value.quality
                        )
                    }
                    do {
                        try await self.sink(readings)
                    } catch {
                        // The store keeps what it could not commit and retries on its next flush.
                        logger.error("could not store readings", metadata: ["error": "\(error)"])
                    }
                    nextDeadline = self.nextSlot(after: nextDeadline, interval: sensor.interval)
                } catch {
                    if Task.isCancelled { break }
                    failures += 1
                    outcome = .failing
                    let delay = self.backoff.delay(afterFailures: failures)
                    let level: Logger.Level = failures == 1 || failures % 10 == 0 ? .warning : .debug
                    logger.log(
                        level: level, "sensor failed; retrying",
                        metadata: [
                            "chip": "\(sensor.driver.chipName)", "error": "\(error)", "failures": "\(failures)",
                            "retry_in": "\(format(delay))",
                        ]
                    )
                    nextDeadline = self.clock.now.advanced(by: delay)
                }
            }
            self.heartbeat.beat(sensor.id, outcome: outcome, nextRound: nextDeadline)
            do {
                try await self.clock.sleep(until: nextDeadline, tolerance: nil)
            } catch {
                break
            }
        }
    }

    /// The slot after `deadline`; a loop that fell behind (a slow chip, a suspended system) skips the missed slots
    /// rather than bursting.
    private func nextSlot(after deadline: C.Instant, interval: Duration) -> C.Instant {
        let next = deadline.advanced(by: interval)
        let now = self.clock.now
        guard next < now else { return next }
        let missed = Int(next.duration(to: now) / interval) + 1
        return next.advanced(by: interval * missed)
    }
}
