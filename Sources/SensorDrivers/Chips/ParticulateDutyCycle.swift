import Synchronization

/// The duty cycle the UART particulate sensors (SDS011, PMS5003, SPS30 over SHDLC) share, so each chip's file holds
/// only its frames, commands and what is special about it.
///
/// Each ``run(wake:afterWarmUp:measure:sleep:finish:failed:)``:
/// 1. throws away whatever is pending on the line;
/// 2. unless the sensor is known to be ready (kept awake by an earlier measurement), lets the chip wake it, waits the
///    warm-up time through the injected ``Pause`` and lets the chip throw away or set up what it needs afterwards;
/// 3. lets the chip measure;
/// 4. when the sensor sleeps between measurements, lets the chip put it to sleep: a failure there only means the
///    sensor is woken and set up again next time;
/// 5. lets the chip judge the result (e.g. no sample at all).
///
/// Frames with a wrong checksum are added to ``checksumErrorCount`` whatever happens. After any failure the sensor is
/// no longer ready, and the chip is told whether it may have been left working (to spare its laser).
final class ParticulateDutyCycle<Format: SerialFrameFormat>: Sendable {
    typealias Reader = SerialSession<Format>

    private struct State {
        /// Known to be awake and set up (only when not slept between measurements).
        var isReady = false
        var checksumErrors = 0
    }

    let port: any SerialPort
    let pause: Pause
    private let warmUp: Duration
    private let sleepsBetweenMeasurements: Bool
    private let state = Mutex(State())

    init(port: any SerialPort, pause: @escaping Pause, warmUp: Duration, sleepsBetweenMeasurements: Bool) {
        self.port = port
        self.pause = pause
        self.warmUp = warmUp
        self.sleepsBetweenMeasurements = sleepsBetweenMeasurements
    }

    /// Frames received with a wrong checksum since the driver was created.
    var checksumErrorCount: Int { self.state.withLock { $0.checksumErrors } }

    /// One measurement, with the chip's steps; see the type's description.
    ///
    /// - Parameters:
    ///   - wake: wakes (and if needed configures) a sensor that is not ready, before the warm-up.
    ///   - afterWarmUp: what follows the warm-up (discarding the frames of a spinning-up fan, setting a mode).
    ///   - measure: takes the readings.
    ///   - sleep: puts the sensor to sleep (only called when it sleeps between measurements).
    ///   - finish: turns the readings into the result after the sleep, given the checksum errors seen so far.
    ///   - failed: called after any failure with whether the sensor may have been left working.
    func run<Readings, Result>(
        wake: (inout Reader) async throws -> Void,
        afterWarmUp: (inout Reader) async throws -> Void,
        measure: (inout Reader) async throws -> Readings,
        sleep: (inout Reader) async throws -> Void,
        finish: (Readings, _ checksumErrors: Int) throws -> Result,
        failed: (_ mayBeWorking: Bool) async -> Void
    ) async throws -> Result {
        var reader = Reader(port: self.port)
        defer {
            let errors = reader.statistics.checksumErrors
            self.state.withLock { $0.checksumErrors += errors }
        }
        let isReady = self.state.withLock { $0.isReady }
        var mayBeWorking = isReady
        do {
            try await reader.discardPending()
            if !isReady {
                mayBeWorking = true
                try await wake(&reader)
                try await self.pause(self.warmUp)
                try await afterWarmUp(&reader)
            }
            let readings = try await measure(&reader)
            var ready = !self.sleepsBetweenMeasurements
            if self.sleepsBetweenMeasurements {
                do { try await sleep(&reader) } catch { ready = false }
            }
            self.state.withLock { $0.isReady = ready }
            return try finish(readings, reader.statistics.checksumErrors)
        } catch {
            self.state.withLock { $0.isReady = false }
            await failed(mayBeWorking)
            throw error
        }
    }

    /// `count` readings, `interval` apart; a reading that never came after every attempt is left out.
    func sample<Sample>(
        count: Int,
        interval: Duration,
        reader: inout Reader,
        _ read: (inout Reader) async throws(SerialError) -> Sample?
    ) async throws -> [Sample] {
        var samples: [Sample] = []
        for index in 0..<count {
            if index > 0 { try await self.pause(interval) }
            if let sample = try await read(&reader) { samples.append(sample) }
        }
        return samples
    }
}
