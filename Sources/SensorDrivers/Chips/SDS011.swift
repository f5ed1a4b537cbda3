internal import KiezboxCore
import Synchronization

/// The Nova SDS011 laser dust sensor (PM2.5, PM10) on a UART at 9600 8N1, duty-cycled to spare its laser.
///
/// The sensor is put in query reporting mode with a continuous working period (both are stored in the sensor, so
/// they are read first and written only when they differ). Each ``measure()`` then:
/// 1. wakes the sensor with the work command and waits for its `C5` reply;
/// 2. waits the warm-up time (30 s by default; airrohr uses 15 s) through the injected ``Pause`` while the fan
///    spins up, then throws away everything the sensor sent meanwhile: readings from a spinning-up fan are not kept;
/// 3. queries ``Configuration/samples`` readings, ``Configuration/sampleInterval`` apart, and averages them without
///    their minimum and maximum (airrohr's method);
/// 4. puts the sensor to sleep again.
///
/// `C0` measurements and `C5` replies may interleave (a sensor still in active mode); the driver takes the frame it
/// waits for and skips the others. A frame with a bad checksum is counted in ``checksumErrorCount``, never used, and
/// the query is repeated (``Configuration/commandAttempts`` times at most). After any failure the sensor's settings
/// are checked again on the next measurement.
///
/// ```swift
/// let port = try LinuxSerialPort(path: "/dev/ttyUSB0", baudRate: SDS011.baudRate)
/// let dust = SDS011(port: port)
/// let values = try await dust.measure()   // .pm2_5 and .pm10 in µg/m³
/// ```
public final class SDS011: SensorDriver {
    /// How the driver runs the sensor.
    public struct Configuration: Sendable, Hashable {
        /// The sensor to address; ``SDS011Command/anySensor`` (0xFFFF) talks to whichever is on the line.
        public var deviceID: UInt16
        /// How long the fan runs before readings count (§15: 15 s in airrohr, 30 s conservative).
        public var warmUp: Duration
        /// Readings averaged per measurement.
        public var samples: Int
        /// Time between readings; the sensor updates its value once a second.
        public var sampleInterval: Duration
        /// Sleep between measurements (laser and fan off) or stay awake.
        public var sleepsBetweenMeasurements: Bool
        /// How long to wait for a reply before sending a command again.
        public var replyTimeout: Duration
        /// How often a command or query is sent before the driver gives up.
        public var commandAttempts: Int

        public init(
            deviceID: UInt16 = SDS011Command.anySensor,
            warmUp: Duration = .seconds(30),
            samples: Int = 5,
            sampleInterval: Duration = .seconds(1),
            sleepsBetweenMeasurements: Bool = true,
            replyTimeout: Duration = .seconds(1),
            commandAttempts: Int = 3
        ) {
            self.deviceID = deviceID
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
    /// The specified measuring range; values outside are flagged ``ReadingQuality/implausible``.
    public static let plausibleMicrogramsPerCubicMetre = 0.0...999.9

    private struct State {
        /// Reporting mode and working period have been checked since the last failure.
        var isConfigured = false
        var lastDeviceID: UInt16?
    }

    private let port: any SerialPort
    private let configuration: Configuration
    private let cycle: ParticulateDutyCycle<SDS011SensorFrameFormat>
    private let state = Mutex(State())

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

    public var chipName: String { "SDS011" }

    /// Frames received with a wrong checksum since the driver was created.
    public var checksumErrorCount: Int { self.cycle.checksumErrorCount }

    /// The id of the sensor that answered last (e.g. 0xA160), once one has.
    public var lastDeviceID: UInt16? { self.state.withLock { $0.lastDeviceID } }

    /// Wakes the sensor, lets it warm up, averages its readings and puts it back to sleep.
    ///
    /// - Returns: ``Quantity/pm2_5`` and ``Quantity/pm10`` in µg/m³.
    /// - Throws: ``SerialError`` when the port fails, ``SDS011Error`` when the sensor does not answer properly.
    public func measure() async throws -> [MeasuredValue] {
        try await self.cycle.run(
            wake: { reader in
                try await self.send(.setWorkState(.working), expecting: SDS011WorkState.working.rawValue, reader: &reader)
                guard !self.state.withLock({ $0.isConfigured }) else { return }
                // Query mode, so nothing streams unasked; a continuous working period, so the sensor does not sleep on
                // its own schedule against ours.
                let query = SDS011ReportingMode.query.rawValue
                try await self.ensure(.queryReportingMode, is: query, else: .setReportingMode(.query), reader: &reader)
                try await self.ensure(.queryWorkingPeriod, is: 0, else: .setWorkingPeriod(minutes: 0), reader: &reader)
                self.state.withLock { $0.isConfigured = true }
            },
            afterWarmUp: { reader in
                // Whatever came during the warm-up (frames of a sensor still in active mode) is from a spinning-up fan.
                try await reader.discardPending()
            },
            measure: { reader in
                try await self.cycle.sample(
                    count: self.configuration.samples, interval: self.configuration.sampleInterval, reader: &reader
                ) { reader async throws(SerialError) in try await self.query(reader: &reader) }
            },
            sleep: { reader in
                do {
                    try await self.send(.setWorkState(.sleeping), expecting: SDS011WorkState.sleeping.rawValue, reader: &reader)
                } catch {
                    // The readings are good; a lost sleep reply only means the sensor's state must be checked next time.
                    self.state.withLock { $0.isConfigured = false }
                    throw error
                }
            },
            finish: { samples, corrupted in
                guard !samples.isEmpty else {
                    throw SDS011Error(corrupted > 0 ? .corruptFrames(count: corrupted) : .noMeasurement, port: self.port.name)
                }
                return self.values(from: samples)
            },
            failed: { mayBeWorking in
                self.state.withLock { $0.isConfigured = false }
                // Spare the laser: a sensor left working after a failure would run until the next measurement.
                guard mayBeWorking, self.configuration.sleepsBetweenMeasurements else { return }
                var sleeper = SerialSession<SDS011SensorFrameFormat>(port: self.port)
                let sleep = SDS011Command.setWorkState(.sleeping).frame(deviceID: self.configuration.deviceID)
                _ = try? await sleeper.exchange(sleep, attempts: 1, timeout: self.configuration.replyTimeout) { _ in () }
            }
        )
    }

    // MARK: - Exchanges

    /// Sends a command until its `C5` reply reports `value` (for set commands) or any value (for queries).
    @discardableResult
    private func send(
        _ command: SDS011Command,
        expecting value: UInt8? = nil,
        reader: inout SerialSession<SDS011SensorFrameFormat>
    ) async throws -> SDS011Reply {
        let reply = try await self.exchange(command, reader: &reader) { frame -> SDS011Reply? in
            guard case .reply(let reply) = frame, reply.command == command.commandID, self.isAddressed(reply.deviceID) else {
                return nil
            }
            if let value, reply.value != value { return nil }
            return reply
        }
        guard let reply else { throw SDS011Error(.noReply(command: command.commandID), port: self.port.name) }
        self.state.withLock { $0.lastDeviceID = reply.deviceID }
        return reply
    }

    /// Reads a setting and writes it only when it differs: the sensor keeps it in flash.
    private func ensure(
        _ query: SDS011Command,
        is wanted: UInt8,
        else set: SDS011Command,
        reader: inout SerialSession<SDS011SensorFrameFormat>
    ) async throws {
        let current = try await self.send(query, reader: &reader)
        if current.value != wanted {
            try await self.send(set, expecting: wanted, reader: &reader)
        }
    }

    /// One query-data exchange; nil when no valid measurement came after every attempt.
    private func query(reader: inout SerialSession<SDS011SensorFrameFormat>) async throws(SerialError) -> SDS011Measurement? {
        let measurement = try await self.exchange(.queryData, reader: &reader) { frame -> SDS011Measurement? in
            guard case .measurement(let measurement) = frame, self.isAddressed(measurement.deviceID) else { return nil }
            return measurement
        }
        if let measurement { self.state.withLock { $0.lastDeviceID = measurement.deviceID } }
        return measurement
    }

    /// Sends `command` to the configured sensor until a frame `accept` takes arrives, within the configured attempts.
    private func exchange<Value>(
        _ command: SDS011Command,
        reader: inout SerialSession<SDS011SensorFrameFormat>,
        _ accept: (SDS011Frame) -> Value?
    ) async throws(SerialError) -> Value? {
        try await reader.exchange(
            command.frame(deviceID: self.configuration.deviceID),
            attempts: self.configuration.commandAttempts,
            timeout: self.configuration.replyTimeout,
            accept
        )
    }

    private func isAddressed(_ deviceID: UInt16) -> Bool {
        self.configuration.deviceID == SDS011Command.anySensor || deviceID == self.configuration.deviceID
    }

    // MARK: - Conversion

    private func values(from samples: [SDS011Measurement]) -> [MeasuredValue] {
        // Averaged in the sensor's tenths, so equal readings average to exactly the value sent.
        let pm2_5 = (ParticulateAverage.trimmedMean(samples.map { Double($0.pm2_5Tenths) }) ?? 0) / 10
        let pm10 = (ParticulateAverage.trimmedMean(samples.map { Double($0.pm10Tenths) }) ?? 0) / 10
        // PM10 includes PM2.5, so the reverse order means a confused sensor, not dusty air.
        let ordered = pm2_5 <= pm10
        func quality(_ value: Double) -> ReadingQuality {
            Self.plausibleMicrogramsPerCubicMetre.contains(value) && ordered ? .good : .implausible
        }
        return [MeasuredValue(.pm2_5, pm2_5, quality: quality(pm2_5)), MeasuredValue(.pm10, pm10, quality: quality(pm10))]
    }
}

/// An SDS011 that did not answer as its protocol says, with the port it is on.
public typealias SDS011Error = SerialDeviceError<SDS011ErrorCode>

/// How an SDS011 did not answer as its protocol says, with what a resident can check.
public enum SDS011ErrorCode: SerialDeviceFailure {
    /// No `C5` reply to a command after every attempt.
    case noReply(command: UInt8)
    /// No measurement frame in reply to any query.
    case noMeasurement
    /// Frames arrived, but every one had a wrong checksum.
    case corruptFrames(count: Int)

    public func description(port: String) -> String {
        switch self {
        case .noReply(let command):
            "no reply from the SDS011 on \(port) to command \(SerialWire.hex(command)): check that its TX goes to the "
                + "Pi's RX and its RX to the Pi's TX, its 5 V supply, and that the port runs at 9600 baud"
        case .noMeasurement:
            "the SDS011 on \(port) answered commands but sent no measurement: power-cycle it; "
                + "if it persists the sensor may be failing"
        case .corruptFrames(let count):
            "\(count) frames from the SDS011 on \(port) had wrong checksums: check the ground wire, keep the "
                + "cable short and away from mains or motor wiring"
        }
    }
}
