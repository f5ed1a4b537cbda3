import Synchronization

/// A Sensirion SPS30 in UART mode at the far end of a simulated serial line, speaking SHDLC.
///
/// Modes as in the datasheet: idle (after power-up and reset), measuring, and sleeping (firmware 2.0+). It answers
/// every frame addressed to it with a MISO frame whose state byte carries the execution error (bits 0–6) and, in
/// bit 7, whether the device status register has an error flag:
/// - `0x00` start measurement with `01 03` (float output); 0x43 when already measuring, 0x04 for another format;
/// - `0x01` stop; `0x03` read measured values: 40 bytes when a new value exists (one per second of measuring),
///   no data otherwise; 0x43 when not measuring;
/// - `0x10` sleep (from idle only); while asleep the UART is off: a first byte only activates it for 100 ms, and
///   within that window only the wake-up command `0x11` is heard;
/// - `0xD0` device information (`03`: serial number), `0xD2` device status register (`00`, or `01` to clear),
///   `0xD3` reset; anything else answers 0x02 (unknown command).
///
/// Values come from ``setConcentrations(pm1:pm2_5:pm4:pm10:)``; for ``warmUpDuration`` after the start they are
/// ``warmUpFactor`` times off. Faults: corrupted checksums, noise, cut frames, lost commands, silence, and device
/// status errors (fan, laser, fan speed).
public final class SimulatedSPS30UART: SimulatedUARTSensor {
    /// The mode the sensor is in.
    public enum Mode: Sendable, Hashable {
        case idle
        case measuring
        case sleeping
    }

    private struct State {
        let address: UInt8
        var decoder = SHDLCRequestStreamDecoder()
        var mode = Mode.idle
        var lastValueRead: Int = 0
        var uartActiveUntil: Duration?
        var measurement = SPS30UART.Measurement(
            massConcentrations: [5.1, 7.3, 8.4, 8.9],
            numberConcentrations: [35.2, 41.0, 41.5, 41.6, 41.6],
            typicalParticleSize: 0.52
        )
        /// Since when it measures, and how its first values are off.
        var warmUp = SimulatedWarmUp<Float>(duration: .seconds(8), factor: 1.8)
        var deviceStatus = SPS30UART.DeviceStatus()
        var serialNumber = "SIM30UART0000001"
        var requests: [SHDLCRequest] = []
        var faults = SimulatedLineFaults()
        var forcedErrors: (count: Int, code: UInt8) = (0, 0)

        mutating func send(_ response: SHDLCResponse) -> [UInt8] {
            var response = response
            if !self.deviceStatus.intersection([.fanError, .laserError, .fanSpeedWarning]).isEmpty { response.state |= 0x80 }
            return self.faults.transmit(response.frame) { bytes in
                // The frame as sent, but with a checksum that does not match (stuffing stays valid).
                let content = [response.address, response.command, response.state, UInt8(response.data.count)] + response.data
                bytes = [SHDLC.delimiter] + SHDLC.stuff(content + [SHDLC.checksum(content[...]) ^ 0x01]) + [SHDLC.delimiter]
            }
        }

        func measuredValues(at time: Duration) -> SPS30UART.Measurement {
            guard self.warmUp.isWarmingUp(at: time) else { return self.measurement }
            var values = self.measurement
            values.massConcentrations = values.massConcentrations.map { $0 * self.warmUp.factor }
            return values
        }

        mutating func handle(_ request: SHDLCRequest, at time: Duration) -> [UInt8] {
            guard request.address == self.address else { return [] }
            self.requests.append(request)
            if self.faults.dropsCommand() { return [] }
            func answer(_ state: UInt8 = 0, _ data: [UInt8] = []) -> SHDLCResponse {
                SHDLCResponse(address: self.address, command: request.command, state: state, data: data)
            }
            if self.forcedErrors.count > 0 {
                self.forcedErrors.count -= 1
                return self.send(answer(self.forcedErrors.code))
            }
            if self.mode == .sleeping {
                guard request.command == SPS30UART.Command.wakeUp else { return [] }
                self.mode = .idle
                return self.send(answer())
            }
            let notAllowed = SPS30UART.Command.notAllowedInState
            switch request.command {
            case SPS30UART.Command.startMeasurement:
                guard request.data.count == 2 else { return self.send(answer(0x01)) }
                guard request.data == SPS30UART.Command.floatOutput else { return self.send(answer(0x04)) }
                guard self.mode == .idle else { return self.send(answer(notAllowed)) }
                self.mode = .measuring
                self.warmUp.since = time
                self.lastValueRead = 0
                return self.send(answer())
            case SPS30UART.Command.stopMeasurement:
                guard self.mode == .measuring else { return self.send(answer(notAllowed)) }
                self.mode = .idle
                return self.send(answer())
            case SPS30UART.Command.readMeasuredValues:
                guard self.mode == .measuring else { return self.send(answer(notAllowed)) }
                // A new value every second of measuring; reading it consumes it.
                let available = Int(min((time - self.warmUp.since) / .seconds(1), 1e9))
                guard available > self.lastValueRead else { return self.send(answer()) }
                self.lastValueRead = available
                return self.send(answer(0, self.measuredValues(at: time).data))
            case SPS30UART.Command.sleep:
                guard self.mode == .idle else { return self.send(answer(notAllowed)) }
                let reply = self.send(answer())
                self.mode = .sleeping
                self.uartActiveUntil = nil
                return reply
            case SPS30UART.Command.wakeUp:
                return self.send(answer())
            case SPS30UART.Command.deviceInformation:
                guard request.data == [0x03] else { return self.send(answer(0x04)) }
                return self.send(answer(0, Array(self.serialNumber.utf8) + [0]))
            case SPS30UART.Command.readDeviceStatus:
                guard request.data.count == 1, request.data[0] <= 1 else { return self.send(answer(0x04)) }
                let reply = self.send(answer(0, SerialWire.bigEndianBytes(self.deviceStatus.rawValue) + [0]))
                if request.data[0] == 1 { self.deviceStatus = [] }
                return reply
            case SPS30UART.Command.reset:
                let reply = self.send(answer())
                self.mode = .idle
                return reply
            default:
                return self.send(answer(0x02))
            }
        }
    }

    private let state: Mutex<State>

    /// - Parameter address: the SHDLC address it answers to (0 for the SPS30).
    public init(address: UInt8 = 0) {
        self.state = Mutex(State(address: address))
    }

    // MARK: SimulatedSerialDevice

    public func received(_ bytes: [UInt8], at time: Duration) -> [UInt8] {
        self.state.withLock { state in
            var heard = bytes[...]
            if state.mode == .sleeping {
                if let activeUntil = state.uartActiveUntil, time <= activeUntil {
                    // Still awake from an earlier pulse.
                } else {
                    // The UART is off: the first byte's start bit only wakes it, and any half frame is gone.
                    guard !heard.isEmpty else { return [] }
                    heard = heard.dropFirst()
                    state.uartActiveUntil = time + .milliseconds(100)
                    state.decoder.discardBufferedBytes()
                }
            }
            return SHDLCRequestStreamDecoder.replies(to: heard, in: &state, decoder: \.decoder) { $0.handle($1, at: time) }
        }
    }

    public func changeLineFaults(_ change: (inout SimulatedLineFaults) -> Void) {
        self.state.withLock { change(&$0.faults) }
    }

    // MARK: Physical values

    /// Sets the true mass concentrations in µg/m³; number concentrations follow roughly (about 5 particles/cm³ per
    /// µg/m³ of PM2.5, as in typical urban air).
    public func setConcentrations(pm1: Float, pm2_5: Float, pm4: Float, pm10: Float) {
        self.state.withLock { state in
            state.measurement = SPS30UART.Measurement(
                massConcentrations: [pm1, pm2_5, pm4, pm10],
                numberConcentrations: [pm1 * 4.8, pm1 * 5.6, pm2_5 * 5.7, pm4 * 5.0, pm10 * 4.7],
                typicalParticleSize: 0.52
            )
        }
    }

    /// Sets every value of a read exactly.
    public func setMeasurement(_ measurement: SPS30UART.Measurement) {
        self.state.withLock { $0.measurement = measurement }
    }

    /// How long after a start values are off, and by what factor (default 8 s, 1.8×).
    public func setWarmUp(duration: Duration, factor: Float) {
        self.state.withLock { $0.warmUp.set(duration: duration, factor: factor) }
    }

    /// Puts the sensor in a mode as if a previous program had left it so.
    public func setMode(_ mode: Mode) {
        self.state.withLock { state in
            state.mode = mode
            state.uartActiveUntil = nil
        }
    }

    /// Sets the device status register (fan, laser, fan-speed flags).
    public func setDeviceStatus(_ status: SPS30UART.DeviceStatus) {
        self.state.withLock { $0.deviceStatus = status }
    }

    // MARK: Inspection

    public var mode: Mode { self.state.withLock { $0.mode } }
    /// Every well-formed frame addressed to the sensor, in order.
    public var requestsReceived: [SHDLCRequest] { self.state.withLock { $0.requests } }
    /// Frames the sensor heard but rejected (bad checksum or stuffing).
    public var rejectedFrameCount: Int {
        self.state.withLock { $0.decoder.statistics.checksumErrors + $0.decoder.statistics.malformedFrames }
    }

    // MARK: Faults

    /// Ignores the next `count` frames.
    public func dropNextRequests(_ count: Int) {
        self.changeLineFaults { $0.commandsToDrop = max(0, count) }
    }

    /// Answers the next `count` frames with execution error `code` in the state byte and does nothing else.
    public func failNextRequests(_ count: Int, code: UInt8) {
        self.state.withLock { $0.forcedErrors = (max(0, count), code & 0x7F) }
    }

    /// Ends every fault (the device status stays; clear it with ``setDeviceStatus(_:)``).
    public func clearFaults() {
        self.state.withLock { state in
            state.faults = SimulatedLineFaults()
            state.forcedErrors = (0, 0)
        }
    }
}
