import KiezboxCore
import SensorDrivers
import Testing

// Frames from sensors.md §7 (Sensirion python-shdlc-driver tests; SPS30 command table).
private enum Vector {
    static let empty: [UInt8] = [0x7e, 0x00, 0x00, 0x00, 0xff, 0x7e]
    static let stuffedRequest: [UInt8] = [0x7e, 0x7d, 0x5e, 0x7d, 0x5d, 0x04, 0x7d, 0x31, 0x12, 0x7d, 0x33, 0x14, 0xb6, 0x7e]
    static let stuffedResponse: [UInt8] = [0x7e, 0x7d, 0x5e, 0x7d, 0x5d, 0x7d, 0x31, 0x03, 0x12, 0x7d, 0x33, 0x14, 0xb7, 0x7e]
}

private func value(_ quantity: Quantity, in values: [MeasuredValue]) -> MeasuredValue? {
    values.first { $0.quantity == quantity }
}

@Suite("SHDLC framing")
struct SHDLCFrameTests {
    @Test("an empty MOSI frame: 7e 00 00 00 ff 7e")
    func emptyFrame() throws {
        #expect(SHDLCRequest(address: 0, command: 0).frame == Vector.empty)
        #expect(try SHDLCRequest.decode(frame: Vector.empty) == SHDLCRequest(address: 0, command: 0))
    }

    @Test("address, command and data are stuffed (7E, 7D, 11, 13 become 7D, byte ^ 0x20)")
    func stuffedRequest() throws {
        let request = SHDLCRequest(address: 0x7E, command: 0x7D, data: [0x11, 0x12, 0x13, 0x14])
        #expect(request.frame == Vector.stuffedRequest)
        #expect(try SHDLCRequest.decode(frame: Vector.stuffedRequest) == request)
    }

    @Test("a stuffed MISO frame: address 7E, command 7D, state 0x11, data 12 13 14")
    func stuffedResponse() throws {
        let response = try SHDLCResponse.decode(frame: Vector.stuffedResponse)
        #expect(response == SHDLCResponse(address: 0x7E, command: 0x7D, state: 0x11, data: [0x12, 0x13, 0x14]))
        #expect(response.errorCode == 0x11)
        #expect(!response.deviceStatusFlag)
        #expect(response.frame == Vector.stuffedResponse)
    }

    @Test(
        "SPS30 command frames",
        arguments: [
            (SHDLCRequest(command: 0x00, data: [0x01, 0x03]), [UInt8]([0x7e, 0x00, 0x00, 0x02, 0x01, 0x03, 0xf9, 0x7e])),
            (SHDLCRequest(command: 0x01), [0x7e, 0x00, 0x01, 0x00, 0xfe, 0x7e]),
            (SHDLCRequest(command: 0x03), [0x7e, 0x00, 0x03, 0x00, 0xfc, 0x7e]),
            (SHDLCRequest(command: 0x10), [0x7e, 0x00, 0x10, 0x00, 0xef, 0x7e]),
            // CMD 0x11 is stuffed: a naive 7e 00 11 00 ee 7e is wrong.
            (SHDLCRequest(command: 0x11), [0x7e, 0x00, 0x7d, 0x31, 0x00, 0xee, 0x7e]),
            (SHDLCRequest(command: 0xD0, data: [0x03]), [0x7e, 0x00, 0xd0, 0x01, 0x03, 0x2b, 0x7e]),
            (SHDLCRequest(command: 0xD3), [0x7e, 0x00, 0xd3, 0x00, 0x2c, 0x7e]),
        ]
    )
    func commandFrames(request: SHDLCRequest, expected: [UInt8]) throws {
        #expect(request.frame == expected)
        #expect(try SHDLCRequest.decode(frame: expected) == request)
    }

    @Test("the naive, unstuffed wake-up frame is rejected")
    func naiveWakeUp() {
        #expect(throws: SHDLCError.unescapedControlByte(0x11)) { try SHDLCRequest.decode(frame: [0x7e, 0x00, 0x11, 0x00, 0xee, 0x7e]) }
    }

    @Test(
        "every rejection is a typed error",
        arguments: [
            ([UInt8]([0x00, 0x00, 0x00, 0x00, 0xff, 0x7e]), SHDLCError.missingDelimiter),
            ([0x7e, 0x00, 0x00, 0x00, 0xff], .missingDelimiter),
            ([0x7e, 0x00, 0x7d, 0x41, 0x00, 0xff, 0x7e], .invalidEscape(0x41)),
            ([0x7e, 0x00, 0x00, 0x00, 0xff, 0x7d, 0x7e], .danglingEscape),
            ([0x7e, 0x00, 0x13, 0x00, 0xff, 0x7e], .unescapedControlByte(0x13)),
            ([0x7e, 0x00, 0x7e, 0x00, 0xff, 0x7e], .unexpectedDelimiter),
            ([0x7e, 0x00, 0x00, 0x7e], .tooShort(2)),
            ([0x7e, 0x00, 0x00, 0x01, 0xfe, 0x7e], .lengthMismatch(declared: 1, actual: 0)),
            ([0x7e, 0x00, 0x00, 0x00, 0xfe, 0x7e], .checksumMismatch(computed: 0xff, received: 0xfe)),
        ]
    )
    func rejections(bytes: [UInt8], expected: SHDLCError) {
        #expect(throws: expected) { try SHDLCRequest.decode(frame: bytes) }
    }

    @Test("PM2.5 = 12.25 µg/m³ is the float 41 44 00 00, big-endian")
    func floatVector() throws {
        var data = [UInt8](repeating: 0, count: 40)
        data[4...7] = [0x41, 0x44, 0x00, 0x00]
        let measurement = try #require(SPS30UART.Measurement(data: data))
        #expect(measurement.massConcentrations[1] == 12.25)
        #expect(measurement.data == data)
        #expect(SPS30UART.Measurement(data: Array(data.dropLast())) == nil)
    }

    @Test("the stream decoder starts mid-frame, treats 7E 7E as a boundary and keeps a closing 7E as an opening")
    func streamDecoder() {
        var decoder = SHDLCResponseStreamDecoder()
        let good = SHDLCResponse(command: 0x03, data: Array(0..<40)).frame
        var corrupted = SHDLCResponse(command: 0x01).frame
        corrupted[corrupted.count - 2] ^= 0x40
        // The tail of a frame we missed the start of, then frames back to back, split into small reads.
        let stream: [UInt8] = [0x12, 0x34, 0xAA, 0x7e] + good + corrupted + Vector.stuffedResponse + [0x7e, 0x7e] + good
        var frames: [SHDLCResponse] = []
        var offset = 0
        while offset < stream.count {
            let end = min(offset + 7, stream.count)
            decoder.append(Array(stream[offset..<end]))
            offset = end
            while let frame = decoder.next() { frames.append(frame) }
        }
        #expect(frames.map(\.frame) == [good, Vector.stuffedResponse, good])
        #expect(decoder.statistics.checksumErrors == 1)
    }
}

private struct Rig {
    let sensor: SimulatedSPS30UART
    let port: SimulatedSerialPort
    let driver: SPS30UART

    init(sensor: SimulatedSPS30UART = SimulatedSPS30UART(), configuration: SPS30UART.Configuration = SPS30UART.Configuration()) {
        self.sensor = sensor
        self.port = SimulatedSerialPort(name: "sim:/dev/ttyUSB1", device: sensor)
        self.driver = SPS30UART(port: self.port, configuration: configuration, pause: self.port.pause)
    }
}

@Suite("SPS30 driver over SHDLC on a simulated line")
struct SPS30UARTDriverTests {
    @Test("starts, warms up, reads the four mass concentrations and stops")
    func measurement() async throws {
        let rig = Rig()
        rig.sensor.setConcentrations(pm1: 3.5, pm2_5: 12.25, pm4: 15, pm10: 16.5)
        let values = try await rig.driver.measure()
        #expect(values == [MeasuredValue(.pm1, 3.5), MeasuredValue(.pm2_5, 12.25), MeasuredValue(.pm4, 15), MeasuredValue(.pm10, 16.5)])
        #expect(rig.sensor.requestsReceived.map(\.command) == [0x00, 0x03, 0x01])
        #expect(rig.sensor.mode == .idle)
        #expect(rig.port.now >= .seconds(30))
        #expect(rig.driver.lastMeasurement?.typicalParticleSize == 0.52)
    }

    @Test("values from the first seconds of a measurement are not returned")
    func warmUp() async throws {
        let rig = Rig()
        rig.sensor.setConcentrations(pm1: 1, pm2_5: 2, pm4: 3, pm10: 4)
        rig.sensor.setWarmUp(duration: .seconds(20), factor: 3)
        #expect(try await value(.pm2_5, in: rig.driver.measure())?.value == 2)
        let impatient = SPS30UART(port: rig.port, configuration: .init(warmUp: .zero), pause: rig.port.pause)
        #expect(try await value(.pm2_5, in: impatient.measure())?.value == 6)
    }

    @Test("an empty answer means no new data yet: read again a second later")
    func noNewDataYet() async throws {
        let rig = Rig(configuration: .init(warmUp: .zero))
        #expect(try await rig.driver.measure().count == 4)
        #expect(rig.sensor.requestsReceived.map(\.command) == [0x00, 0x03, 0x03, 0x01])
    }

    @Test("a sleeping sensor gets the wake-up pulse and the stuffed wake-up frame")
    func wakeUp() async throws {
        let rig = Rig()
        rig.sensor.setMode(.sleeping)
        #expect(try await rig.driver.measure().count == 4)
        let writes = rig.port.writes
        let pulse = try #require(writes.firstIndex(of: [0xFF]))
        #expect(writes[pulse + 1] == [0x7e, 0x00, 0x7d, 0x31, 0x00, 0xee, 0x7e])
        #expect(rig.sensor.requestsReceived.map(\.command).suffix(4) == [0x11, 0x00, 0x03, 0x01])
    }

    @Test("a sensor already measuring (0x43 to start) is accepted")
    func alreadyMeasuring() async throws {
        let rig = Rig()
        rig.sensor.setMode(.measuring)
        rig.port.advance(by: .seconds(60))
        #expect(try await rig.driver.measure().count == 4)
        #expect(rig.sensor.mode == .idle)
    }

    @Test("a flagged state byte leads to the status register; fan and laser errors degrade the values")
    func deviceStatus() async throws {
        let rig = Rig()
        rig.sensor.setDeviceStatus([.fanError])
        let values = try await rig.driver.measure()
        #expect(values.allSatisfy { $0.quality == .degraded })
        #expect(rig.driver.lastDeviceStatus == [.fanError])
        #expect(rig.sensor.requestsReceived.map(\.command) == [0x00, 0x03, 0xD2, 0x01])
    }

    @Test("other execution errors are typed errors")
    func deviceError() async throws {
        let rig = Rig()
        rig.sensor.failNextRequests(1, code: 0x04)
        await #expect(throws: SPS30UARTError(.deviceError(command: 0x00, code: 0x04), port: "sim:/dev/ttyUSB1")) {
            try await rig.driver.measure()
        }
        #expect(try await rig.driver.measure().count == 4)
    }

    @Test("bad checksums are counted, never used, and the command sent again")
    func checksumRetry() async throws {
        let rig = Rig()
        rig.sensor.corruptNextFrames(2)
        #expect(try await rig.driver.measure().count == 4)
        #expect(rig.driver.checksumErrorCount == 2)
        #expect(rig.sensor.requestsReceived.map(\.command).prefix(3) == [0x00, 0x00, 0x00])
    }

    @Test("only corrupt answers: a typed error counting them")
    func onlyCorrupt() async throws {
        let rig = Rig()
        rig.sensor.corruptNextFrames(3)
        await #expect(throws: SPS30UARTError(.corruptFrames(count: 3), port: "sim:/dev/ttyUSB1")) { try await rig.driver.measure() }
    }

    @Test("noise and 4-byte reads do not disturb the frames")
    func noiseAndSplits() async throws {
        let rig = Rig()
        rig.sensor.setNoiseBeforeFrames([0x7E, 0x00, 0x03, 0x7D, 0x7E, 0x55])
        rig.port.setMaximumBytesPerRead(4)
        rig.sensor.setConcentrations(pm1: 1, pm2_5: 2, pm4: 3, pm10: 4)
        #expect(try await value(.pm10, in: rig.driver.measure())?.value == 4)
    }

    @Test("a cut answer is skipped and the command sent again")
    func cutFrame() async throws {
        let rig = Rig()
        rig.sensor.cutNextFrames(1)
        #expect(try await rig.driver.measure().count == 4)
    }

    @Test("a silent sensor gives noReply, after trying to wake it")
    func silence() async throws {
        let rig = Rig()
        rig.sensor.setSilent(true)
        await #expect(throws: SPS30UARTError(.noReply(command: 0x11), port: "sim:/dev/ttyUSB1")) { try await rig.driver.measure() }
        rig.sensor.setSilent(false)
        #expect(try await rig.driver.measure().count == 4)
    }

    @Test("NaN, negative and out-of-range values are flagged implausible, not dropped")
    func implausible() async throws {
        let rig = Rig()
        rig.sensor.setMeasurement(
            SPS30UART.Measurement(massConcentrations: [.nan, 2, 1500, 1600], numberConcentrations: [], typicalParticleSize: 0.5)
        )
        let values = try await rig.driver.measure()
        #expect(values.count == 4)
        #expect(values.allSatisfy { $0.quality == .implausible })
        #expect(value(.pm4, in: values)?.value == 1500)
    }

    @Test("an unplugged adapter surfaces as the port's typed error")
    func disconnected() async throws {
        let rig = Rig()
        rig.port.disconnect()
        await #expect(throws: SerialError(.closed, port: "sim:/dev/ttyUSB1")) { try await rig.driver.measure() }
    }

    @Test("without stopping, the sensor keeps measuring and later reads skip the warm-up")
    func continuous() async throws {
        let rig = Rig(configuration: .init(stopsBetweenMeasurements: false))
        _ = try await rig.driver.measure()
        #expect(rig.sensor.mode == .measuring)
        rig.port.advance(by: .seconds(60))
        let before = rig.port.now
        _ = try await rig.driver.measure()
        #expect(rig.port.now - before < .seconds(2))
        #expect(rig.sensor.requestsReceived.map(\.command) == [0x00, 0x03, 0x03])
    }
}
