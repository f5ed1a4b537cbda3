internal import KiezboxCore
import Synchronization

/// The Plantower PMS5003 particulate sensor (PM1.0, PM2.5, PM10) on a UART at 9600 8N1, in passive mode.
///
/// Each ``measure()``:
/// 1. wakes the sensor (`E4 01`, which it does not answer) unless it is known to be awake, and waits the warm-up
///    time (30 s by default; the datasheet figure is unverified, airrohr uses 15 s) through the injected ``Pause``;
/// 2. throws away everything sent meanwhile, so the measurements a fan spinning up streamed in active mode are
///    never used, and switches to passive mode (`E1 00`, answered with `42 4D 00 04 E1 00`);
/// 3. requests ``Configuration/samples`` readings (`E2`), ``Configuration/sampleInterval`` apart, and averages the
///    atmospheric-environment values without their minimum and maximum (airrohr reports the same words);
/// 4. puts the sensor to sleep (`E4 00`).
///
/// Frames are found by scanning for `42 4D` and validating the length field before the data is trusted. A frame
/// with a bad checksum is counted in ``checksumErrorCount``, never used, and the request is repeated (at most
/// ``Configuration/commandAttempts`` times). After a failure the sensor is woken and set up again next time.
///
/// ```swift
/// let port = try LinuxSerialPort(path: "/dev/ttyAMA0", baudRate: PMS5003.baudRate)
/// let dust = PMS5003(port: port)
/// let values = try await dust.measure()   // .pm1, .pm2_5, .pm10 in µg/m³
/// ```
public final class PMS5003: SensorDriver {
    /// How the driver runs the sensor.
    public struct Configuration: Sendable, Hashable {
        /// How long the fan runs after waking before readings count.
        public var warmUp: Duration
        /// Readings averaged per measurement.
        public var samples: Int
        /// Time between readings.
        public var sampleInterval: Duration
        /// Sleep between measurements (fan and laser off) or stay awake in passive mode.
        public var sleepsBetweenMeasurements: Bool
        /// How long to wait for an answer before sending a command again.
        public var replyTimeout: Duration
        /// How often a command or read request is sent before the driver gives up.
        public var commandAttempts: Int

        public init(
            warmUp: Duration = .seconds(30),
            samples: Int = 5,
            sampleInterval: Duration = .seconds(1),
            sleepsBetweenMeasurements: Bool = true,
            replyTimeout: Duration = .seconds(1),
            commandAttempts: Int = 3
        ) {
            self.warmUp = warmUp
            self.samples = max(1, samples)
            self.sampleInterval = sampleInterval
            self.sleepsBetweenMeasurements = sleepsBetweenMeasurements
            self.replyTimeout = replyTimeout
            self.commandAttempts = max(1, commandAttempts)
        }
    }

    /// The sensor's line speed (8N1).
    public static let baudRate = SerialBaudRate.b9600
    /// The datasheet's maximum range; values outside are flagged ``ReadingQuality/implausible``.
    public static let plausibleMicrogramsPerCubicMetre = 0.0...1000.0

    private let port: any SerialPort
    private let configuration: Configuration
    private let cycle: ParticulateDutyCycle<PMS5003SensorFrameFormat>
    private let lastUsed = Mutex<PMS5003Measurement?>(nil)

    /// Creates a driver; nothing is sent until the first ``measure()``.
    ///
    /// - Parameters:
    ///   - port: the sensor's serial port, opened at ``baudRate``.
    ///   - configuration: warm-up, averaging and duty cycle.
    ///   - pause: how to wait for warm-up and between readings; inject an instant or simulated pause in tests.
    public init(port: any SerialPort, configuration: Configuration = Configuration(), pause: @escaping Pause = realPause) {
        self.port = port
        self.configuration = configuration
        self.cycle = ParticulateDutyCycle(
            port: port, pause: pause, warmUp: configuration.warmUp, sleepsBetweenMeasurements: configuration.sleepsBetweenMeasurements
        )
    }

    public var chipName: String { "PMS5003" }

    /// Frames received with a wrong checksum since the driver was created.
    public var checksumErrorCount: Int { self.cycle.checksumErrorCount }

    /// The last measurement frame used, with its particle counts and CF=1 values, for diagnostics.
    public var lastMeasurement: PMS5003Measurement? { self.lastUsed.withLock { $0 } }

    /// Wakes the sensor, lets it warm up, averages passive-mode readings and puts it back to sleep.
    ///
    /// - Returns: ``Quantity/pm1``, ``Quantity/pm2_5`` and ``Quantity/pm10`` in µg/m³ (atmospheric environment).
    /// - Throws: ``SerialError`` when the port fails, ``PMS5003Error`` when the sensor does not answer properly.
    public func measure() async throws -> [MeasuredValue] {
        try await self.cycle.run(
            wake: { _ in try await self.port.write(PMS5003Command.wake.frame) },
            afterWarmUp: { reader in
                // Measurements streamed in active mode during the warm-up come from a fan spinning up; dropping them
                // first also keeps them from burying the answer to the passive-mode command.
                try await reader.discardPending()
                try await self.send(.passiveMode, reader: &reader)
                try await reader.discardPending()
            },
            measure: { reader in
                try await self.cycle.sample(
                    count: self.configuration.samples, interval: self.configuration.sampleInterval, reader: &reader
                ) { reader async throws(SerialError) in try await self.read(reader: &reader) }
            },
            // The readings are good; a lost sleep answer only means the sensor is set up again next time.
            sleep: { reader in try await self.send(.sleep, reader: &reader) },
            finish: { samples, corrupted in
                guard let last = samples.last else {
                    throw PMS5003Error(corrupted > 0 ? .corruptFrames(count: corrupted) : .noMeasurement, port: self.port.name)
                }
                self.lastUsed.withLock { $0 = last }
                return self.values(from: samples)
            },
            failed: { _ in
                // Spare the laser: a sensor left running after a failure would run until the next measurement.
                if self.configuration.sleepsBetweenMeasurements { try? await self.port.write(PMS5003Command.sleep.frame) }
            }
        )
    }

    // MARK: - Exchanges

    /// Sends a command until the sensor answers it.
    private func send(_ command: PMS5003Command, reader: inout SerialSession<PMS5003SensorFrameFormat>) async throws {
        guard let expected = command.expectedReply else {
            try await self.port.write(command.frame)
            return
        }
        let answered = try await self.exchange(command, reader: &reader) { frame -> Bool? in
            frame == .commandReply(expected) ? true : nil
        }
        if answered == nil { throw PMS5003Error(.noReply(command: command.code.command), port: self.port.name) }
    }

    /// One passive read; nil when no valid measurement came after every attempt.
    private func read(reader: inout SerialSession<PMS5003SensorFrameFormat>) async throws(SerialError) -> PMS5003Measurement? {
        try await self.exchange(.read, reader: &reader) { frame -> PMS5003Measurement? in
            guard case .measurement(let measurement) = frame else { return nil }
            return measurement
        }
    }

    /// Sends `command` until a frame `accept` takes arrives, within the configured attempts.
    private func exchange<Value>(
        _ command: PMS5003Command,
        reader: inout SerialSession<PMS5003SensorFrameFormat>,
        _ accept: (PMS5003SensorFrameFormat.Frame) -> Value?
    ) async throws(SerialError) -> Value? {
        try await reader.exchange(
            command.frame, attempts: self.configuration.commandAttempts, timeout: self.configuration.replyTimeout, accept
        )
    }

    // MARK: - Conversion

    private func values(from samples: [PMS5003Measurement]) -> [MeasuredValue] {
        let pm1 = ParticulateAverage.trimmedMean(samples.map { Double($0.pm1) }) ?? 0
        let pm2_5 = ParticulateAverage.trimmedMean(samples.map { Double($0.pm2_5) }) ?? 0
        let pm10 = ParticulateAverage.trimmedMean(samples.map { Double($0.pm10) }) ?? 0
        // The size classes are cumulative (PM10 includes PM2.5 includes PM1), so another order means a confused sensor.
        let ordered = pm1 <= pm2_5 && pm2_5 <= pm10
        func quality(_ value: Double) -> ReadingQuality {
            Self.plausibleMicrogramsPerCubicMetre.contains(value) && ordered ? .good : .implausible
        }
        return [
            MeasuredValue(.pm1, pm1, quality: quality(pm1)),
            MeasuredValue(.pm2_5, pm2_5, quality: quality(pm2_5)),
            MeasuredValue(.pm10, pm10, quality: quality(pm10)),
        ]
    }
}

/// A PMS5003 that did not answer as its protocol says, with the port it is on.
public typealias PMS5003Error = SerialDeviceError<PMS5003ErrorCode>

/// How a PMS5003 did not answer as its protocol says, with what a resident can check.
public enum PMS5003ErrorCode: SerialDeviceFailure {
    /// No answer to a mode or sleep command after every attempt.
    case noReply(command: UInt8)
    /// No measurement frame in answer to any read request.
    case noMeasurement
    /// Frames arrived, but every one had a wrong checksum.
    case corruptFrames(count: Int)

    public func description(port: String) -> String {
        switch self {
        case .noReply(let command):
            "no answer from the PMS5003 on \(port) to command \(SerialWire.hex(command)): check that its TX goes to the "
                + "Pi's RX and its RX to the Pi's TX, the 5 V supply, that SET and RESET are high (or unconnected), "
                + "and that the port runs at 9600 baud"
        case .noMeasurement:
            "the PMS5003 on \(port) answered commands but sent no measurement: power-cycle it (pull RESET low)"
        case .corruptFrames(let count):
            "\(count) frames from the PMS5003 on \(port) had wrong checksums: check the ground wire and keep "
                + "the cable short and away from mains or motor wiring"
        }
    }
}
