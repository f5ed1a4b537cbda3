internal import KiezboxCore
import Synchronization

/// The Sensirion SPS30 particulate sensor over its UART (SEL floating) with SHDLC framing, 115200 8N1.
///
/// Sensirion recommends the UART for cables longer than 20 cm. Each ``measure()``:
/// 1. starts measuring (`0x00` with `01 03`: float output). A sensor that does not answer may be asleep (firmware
///    2.0 sleep mode), so the driver then sends the wake-up sequence, `FF` followed by the wake-up frame
///    `7E 00 7D 31 00 EE 7E` (command 0x11 is stuffed), and starts again;
/// 2. waits the warm-up time (30 s by default, §15) through the injected ``Pause``;
/// 3. reads the measured values (`0x03`): an empty answer means "no new data yet", and the read is repeated a
///    second later, ``Configuration/readAttempts`` times at most;
/// 4. stops measuring (`0x01`), which turns the fan and laser off.
///
/// A MISO state byte with an execution error (bits 0–6) is a ``SPS30UARTError``; "not allowed in this state" (0x43)
/// in answer to a start means the sensor was already measuring and is accepted. A set device-status flag (bit 7)
/// makes the driver read the device status register (`0xD2`): fan or laser errors and the fan-speed warning mark
/// the values ``ReadingQuality/degraded``. A frame with a bad checksum is counted in ``checksumErrorCount``, never
/// used, and the command is sent again (at most ``Configuration/commandAttempts`` times).
///
/// The I²C variant of the chip has its own driver; this one speaks only SHDLC.
///
/// ```swift
/// let port = try LinuxSerialPort(path: "/dev/ttyUSB1", baudRate: SPS30UART.baudRate)
/// let dust = SPS30UART(port: port)
/// let values = try await dust.measure()   // .pm1, .pm2_5, .pm4, .pm10 in µg/m³
/// ```
public final class SPS30UART: SensorDriver {
    /// How the driver runs the sensor.
    public struct Configuration: Sendable, Hashable {
        /// The SHDLC slave address (0 for the SPS30).
        public var address: UInt8
        /// How long the sensor measures before its values count.
        public var warmUp: Duration
        /// Stop measuring between measurements (fan and laser off) or keep measuring.
        public var stopsBetweenMeasurements: Bool
        /// How long to wait for an answer before sending a command again.
        public var replyTimeout: Duration
        /// How often a command is sent before the driver gives up.
        public var commandAttempts: Int
        /// How often "no new data" is accepted before the driver gives up.
        public var readAttempts: Int
        /// Time between reads when there was no new data (the sensor updates once a second).
        public var readInterval: Duration

        public init(
            address: UInt8 = 0,
            warmUp: Duration = .seconds(30),
            stopsBetweenMeasurements: Bool = true,
            replyTimeout: Duration = .milliseconds(500),
            commandAttempts: Int = 3,
            readAttempts: Int = 5,
            readInterval: Duration = .seconds(1)
        ) {
            self.address = address
            self.warmUp = warmUp
            self.stopsBetweenMeasurements = stopsBetweenMeasurements
            self.replyTimeout = replyTimeout
            self.commandAttempts = max(1, commandAttempts)
            self.readAttempts = max(1, readAttempts)
            self.readInterval = readInterval
        }
    }

    /// The ten values of a read, as the sensor sends them (big-endian IEEE 754 floats).
    public struct Measurement: Sendable, Hashable {
        /// Mass concentrations PM1.0, PM2.5, PM4.0, PM10 in µg/m³.
        public var massConcentrations: [Float]
        /// Number concentrations PM0.5, PM1.0, PM2.5, PM4.0, PM10 in #/cm³.
        public var numberConcentrations: [Float]
        /// Typical particle size in µm.
        public var typicalParticleSize: Float

        /// The number of data bytes of a read in float format.
        public static let byteCount = 40

        public init(massConcentrations: [Float], numberConcentrations: [Float], typicalParticleSize: Float) {
            self.massConcentrations = (massConcentrations + [0, 0, 0, 0]).prefix(4).map { $0 }
            self.numberConcentrations = (numberConcentrations + [0, 0, 0, 0, 0]).prefix(5).map { $0 }
            self.typicalParticleSize = typicalParticleSize
        }

        /// Decodes the 40 data bytes of a read answer; nil for any other length.
        public init?(data: [UInt8]) {
            guard data.count == Self.byteCount else { return nil }
            let floats = (0..<10).map { Float(bitPattern: SerialWire.bigEndianUInt32(data, at: $0 * 4)) }
            self.init(massConcentrations: Array(floats[0..<4]), numberConcentrations: Array(floats[4..<9]), typicalParticleSize: floats[9])
        }

        /// The 40 data bytes, as the sensor sends them.
        public var data: [UInt8] {
            (self.massConcentrations + self.numberConcentrations + [self.typicalParticleSize]).flatMap { SerialWire.bigEndianBytes($0.bitPattern) }
        }
    }

    /// The device status register (firmware 2.2).
    public struct DeviceStatus: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        /// Bit 21: the fan speed is too high or too low.
        public static let fanSpeedWarning = DeviceStatus(rawValue: 1 << 21)
        /// Bit 5: the laser current is out of range.
        public static let laserError = DeviceStatus(rawValue: 1 << 5)
        /// Bit 4: the fan is switched on but not turning.
        public static let fanError = DeviceStatus(rawValue: 1 << 4)
    }

    /// SHDLC command ids (SPS30 datasheet, UART interface).
    public enum Command {
        public static let startMeasurement: UInt8 = 0x00
        public static let stopMeasurement: UInt8 = 0x01
        public static let readMeasuredValues: UInt8 = 0x03
        public static let sleep: UInt8 = 0x10
        public static let wakeUp: UInt8 = 0x11
        public static let deviceInformation: UInt8 = 0xD0
        public static let readDeviceStatus: UInt8 = 0xD2
        public static let reset: UInt8 = 0xD3
        /// Start-measurement argument: sub-command 0x01, output format 0x03 (big-endian floats).
        public static let floatOutput: [UInt8] = [0x01, 0x03]
        /// Execution error "command not allowed in the current state".
        public static let notAllowedInState: UInt8 = 0x43
    }

    /// The sensor's line speed (8N1).
    public static let baudRate = SerialBaudRate.b115200
    /// The specified mass-concentration range; values outside are flagged ``ReadingQuality/implausible``.
    public static let plausibleMicrogramsPerCubicMetre = 0.0...1000.0
    /// What to send before the wake-up frame: a low pulse on the sensor's RX activates its sleeping UART.
    static let wakePulse: [UInt8] = [0xFF]

    private struct State {
        var lastDeviceStatus: DeviceStatus?
        var lastMeasurement: Measurement?
    }

    private let port: any SerialPort
    private let configuration: Configuration
    private let pause: Pause
    private let cycle: ParticulateDutyCycle<SHDLCFrameFormat<SHDLCResponse>>
    private let state = Mutex(State())

    /// Creates a driver; nothing is sent until the first ``measure()``.
    ///
    /// - Parameters:
    ///   - port: the sensor's serial port, opened at ``baudRate``.
    ///   - configuration: warm-up, retries and duty cycle.
    ///   - pause: how to wait for warm-up and new data; inject an instant or simulated pause in tests.
    public init(port: any SerialPort, configuration: Configuration = Configuration(), pause: @escaping Pause = realPause) {
        self.port = port
        self.configuration = configuration
        self.pause = pause
        self.cycle = ParticulateDutyCycle(
            port: port, pause: pause, warmUp: configuration.warmUp, sleepsBetweenMeasurements: configuration.stopsBetweenMeasurements
        )
    }

    public var chipName: String { "SPS30" }

    /// Frames received with a wrong checksum since the driver was created.
    public var checksumErrorCount: Int { self.cycle.checksumErrorCount }

    /// The device status register as last read (only read when the state byte flags it).
    public var lastDeviceStatus: DeviceStatus? { self.state.withLock { $0.lastDeviceStatus } }

    /// The last complete read, with number concentrations and typical particle size, for diagnostics.
    public var lastMeasurement: Measurement? { self.state.withLock { $0.lastMeasurement } }

    /// Starts a measurement, lets the sensor settle, reads its values and stops it.
    ///
    /// - Returns: ``Quantity/pm1``, ``Quantity/pm2_5``, ``Quantity/pm4`` and ``Quantity/pm10`` in µg/m³.
    /// - Throws: ``SerialError`` when the port fails, ``SPS30UARTError`` when the sensor does not answer properly.
    public func measure() async throws -> [MeasuredValue] {
        try await self.cycle.run(
            wake: { reader in try await self.start(reader: &reader) },
            afterWarmUp: { _ in },
            measure: { reader -> (measurement: Measurement, flagged: Bool, status: DeviceStatus) in
                let (measurement, flagged) = try await self.readValues(reader: &reader)
                var status: DeviceStatus = []
                if flagged {
                    // If the register cannot be read, the flag alone still says something is wrong.
                    status = (try? await self.readDeviceStatus(reader: &reader)) ?? [.fanError, .laserError]
                }
                return (measurement, flagged, status)
            },
            sleep: { reader in try await self.exchange(Command.stopMeasurement, reader: &reader) },
            finish: { read, _ in
                self.state.withLock { state in
                    state.lastDeviceStatus = read.flagged ? read.status : state.lastDeviceStatus
                    state.lastMeasurement = read.measurement
                }
                return Self.values(from: read.measurement, status: read.status)
            },
            failed: { _ in
                // Spare the fan and laser after a failure.
                if self.configuration.stopsBetweenMeasurements {
                    try? await self.port.write(SHDLCRequest(address: self.configuration.address, command: Command.stopMeasurement).frame)
                }
            }
        )
    }

    // MARK: - Exchanges

    private func start(reader: inout SerialSession<SHDLCFrameFormat<SHDLCResponse>>) async throws {
        do {
            try await self.exchange(Command.startMeasurement, data: Command.floatOutput, reader: &reader)
        } catch let error as SPS30UARTError {
            switch error.code {
            case .deviceError(Command.startMeasurement, Command.notAllowedInState):
                return  // Already measuring (started by an earlier run of the daemon).
            case .noReply:
                // Asleep: its UART wakes on a pulse, then takes the wake-up command.
                try await self.port.write(Self.wakePulse)
                try await self.exchange(Command.wakeUp, reader: &reader)
                try await self.exchange(Command.startMeasurement, data: Command.floatOutput, reader: &reader)
            default:
                throw error
            }
        }
    }

    /// Reads until new data arrives; also says whether the state byte flagged the device status register.
    private func readValues(
        reader: inout SerialSession<SHDLCFrameFormat<SHDLCResponse>>
    ) async throws -> (Measurement, deviceStatusFlag: Bool) {
        for attempt in 0..<self.configuration.readAttempts {
            if attempt > 0 { try await self.pause(self.configuration.readInterval) }
            let response = try await self.exchange(Command.readMeasuredValues, reader: &reader)
            if response.data.isEmpty { continue }
            guard let measurement = Measurement(data: response.data) else {
                throw SPS30UARTError(.unexpectedDataLength(command: Command.readMeasuredValues, count: response.data.count), port: self.port.name)
            }
            return (measurement, response.deviceStatusFlag)
        }
        throw SPS30UARTError(.noNewData, port: self.port.name)
    }

    private func readDeviceStatus(reader: inout SerialSession<SHDLCFrameFormat<SHDLCResponse>>) async throws -> DeviceStatus {
        let response = try await self.exchange(Command.readDeviceStatus, data: [0x00], reader: &reader)
        guard response.data.count >= 4 else {
            throw SPS30UARTError(.unexpectedDataLength(command: Command.readDeviceStatus, count: response.data.count), port: self.port.name)
        }
        return DeviceStatus(rawValue: SerialWire.bigEndianUInt32(response.data, at: 0))
    }

    /// Sends a command until its answer arrives; an execution error in the state byte is thrown.
    @discardableResult
    private func exchange(
        _ command: UInt8,
        data: [UInt8] = [],
        reader: inout SerialSession<SHDLCFrameFormat<SHDLCResponse>>
    ) async throws -> SHDLCResponse {
        let address = self.configuration.address
        let checksumErrorsBefore = reader.statistics.checksumErrors
        let response = try await reader.exchange(
            SHDLCRequest(address: address, command: command, data: data).frame,
            attempts: self.configuration.commandAttempts,
            timeout: self.configuration.replyTimeout
        ) { response -> SHDLCResponse? in
            response.address == address && response.command == command ? response : nil
        }
        guard let response else {
            let corrupted = reader.statistics.checksumErrors - checksumErrorsBefore
            throw SPS30UARTError(corrupted > 0 ? .corruptFrames(count: corrupted) : .noReply(command: command), port: self.port.name)
        }
        guard response.errorCode == 0 else {
            throw SPS30UARTError(.deviceError(command: command, code: response.errorCode), port: self.port.name)
        }
        return response
    }

    // MARK: - Conversion

    private static func values(from measurement: Measurement, status: DeviceStatus) -> [MeasuredValue] {
        let quantities: [Quantity] = [.pm1, .pm2_5, .pm4, .pm10]
        let values = measurement.massConcentrations.map(Double.init)
        // The size classes are cumulative, so a smaller PM10 than PM1 means a confused sensor.
        let ordered = zip(values, values.dropFirst()).allSatisfy { $0 <= $1 }
        let degraded = !status.intersection([.fanError, .laserError, .fanSpeedWarning]).isEmpty
        return zip(quantities, values).map { quantity, value in
            let quality: ReadingQuality =
                if !value.isFinite || !self.plausibleMicrogramsPerCubicMetre.contains(value) || !ordered {
                    .implausible
                } else if degraded {
                    .degraded
                } else {
                    .good
                }
            return MeasuredValue(quantity, value, quality: quality)
        }
    }
}

/// An SPS30 on the UART that did not answer as its protocol says, with the port it is on.
public typealias SPS30UARTError = SerialDeviceError<SPS30UARTErrorCode>

/// How an SPS30 on the UART did not answer as its protocol says, with what a resident can check.
public enum SPS30UARTErrorCode: SerialDeviceFailure {
    /// No answer to a command after every attempt (and after a wake-up, for the start command).
    case noReply(command: UInt8)
    /// Answers arrived, but every one had a wrong checksum.
    case corruptFrames(count: Int)
    /// The state byte reported an execution error (0x01 wrong length, 0x02 unknown command, 0x03 no access,
    /// 0x04 illegal parameter, 0x28 out of range, 0x43 not allowed in this state).
    case deviceError(command: UInt8, code: UInt8)
    /// Every read answered "no new data".
    case noNewData
    /// An answer with a data length the command does not produce.
    case unexpectedDataLength(command: UInt8, count: Int)

    public func description(port: String) -> String {
        switch self {
        case .noReply(let command):
            "no answer from the SPS30 on \(port) to command \(SerialWire.hex(command)): check that SEL is unconnected "
                + "(UART mode), TX goes to the Pi's RX and RX to the Pi's TX, the 5 V supply, and 115200 baud"
        case .corruptFrames(let count):
            "\(count) answers from the SPS30 on \(port) had wrong checksums: check the ground wire and the cable"
        case .deviceError(let command, let code):
            "the SPS30 on \(port) refused command \(SerialWire.hex(command)) with error \(SerialWire.hex(code)): "
                + "power-cycle it; if it persists, its firmware may not support the command"
        case .noNewData:
            "the SPS30 on \(port) is measuring but reports no new data: power-cycle it"
        case .unexpectedDataLength(let command, let count):
            "the SPS30 on \(port) answered command \(SerialWire.hex(command)) with \(count) data bytes: "
                + "is this really an SPS30?"
        }
    }
}
