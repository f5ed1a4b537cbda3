import KiezboxCore
import SensorDrivers
import Testing

// Frames from sensors.md §8 (Nova control protocol V1.3, airrohr `SDS_cmd`).
private enum Vector {
    static let measurement: [UInt8] = [0xAA, 0xC0, 0xD4, 0x04, 0x3A, 0x0A, 0xA1, 0x60, 0x1D, 0xAB]
    static let zero: [UInt8] = [0xAA, 0xC0, 0x00, 0x00, 0x00, 0x00, 0xA1, 0x60, 0x01, 0xAB]
    static let workingPeriodReply: [UInt8] = [0xAA, 0xC5, 0x08, 0x01, 0x01, 0x00, 0xA1, 0x60, 0x0B, 0xAB]

    static func command(_ d1: UInt8, _ d2: UInt8, _ d3: UInt8, id: (UInt8, UInt8) = (0xFF, 0xFF), checksum: UInt8) -> [UInt8] {
        [0xAA, 0xB4, d1, d2, d3] + [UInt8](repeating: 0, count: 10) + [id.0, id.1, checksum, 0xAB]
    }
}

private func value(_ quantity: Quantity, in values: [MeasuredValue]) -> MeasuredValue? {
    values.first { $0.quantity == quantity }
}

@Suite("SDS011 frames (control protocol V1.3)")
struct SDS011FrameTests {
    @Test("the protocol document's measurement frame: PM2.5 123.6, PM10 261.8, id A160")
    func measurementVector() throws {
        let frame = try SDS011Frame.decode(Vector.measurement)
        guard case .measurement(let measurement) = frame else {
            Issue.record("expected a measurement, got \(frame)")
            return
        }
        #expect(measurement.pm2_5 == 123.6)
        #expect(measurement.pm10 == 261.8)
        #expect(measurement.deviceID == 0xA160)
        #expect(frame.bytes == Vector.measurement)
    }

    @Test("the zero frame")
    func zeroVector() throws {
        #expect(try SDS011Frame.decode(Vector.zero) == .measurement(SDS011Measurement(pm2_5Tenths: 0, pm10Tenths: 0, deviceID: 0xA160)))
    }

    @Test("the working-period reply")
    func replyVector() throws {
        let frame = try SDS011Frame.decode(Vector.workingPeriodReply)
        #expect(frame == .reply(SDS011Reply(command: 0x08, parameters: [0x01, 0x01, 0x00], deviceID: 0xA160)))
        #expect(frame.bytes == Vector.workingPeriodReply)
    }

    @Test(
        "command frames equal airrohr's constants",
        arguments: [
            (SDS011Command.setWorkState(.working), Vector.command(0x06, 0x01, 0x01, checksum: 0x06)),
            (.setWorkState(.sleeping), Vector.command(0x06, 0x01, 0x00, checksum: 0x05)),
            (.setWorkingPeriod(minutes: 0), Vector.command(0x08, 0x01, 0x00, checksum: 0x07)),
            (.setWorkingPeriod(minutes: 5), Vector.command(0x08, 0x01, 0x05, checksum: 0x0C)),
            (.setReportingMode(.active), Vector.command(0x02, 0x01, 0x00, checksum: 0x01)),
            (.setReportingMode(.query), Vector.command(0x02, 0x01, 0x01, checksum: 0x02)),
        ]
    )
    func commandFrames(command: SDS011Command, expected: [UInt8]) throws {
        #expect(command.frame() == expected)
        let decoded = try SDS011Command.decode(expected[...])
        #expect(decoded == SDS011AddressedCommand(command: command, deviceID: 0xFFFF))
    }

    @Test("query data addressed to A160, from the protocol document")
    func queryDataVector() throws {
        let expected = Vector.command(0x04, 0x00, 0x00, id: (0xA1, 0x60), checksum: 0x05)
        #expect(SDS011Command.queryData.frame(deviceID: 0xA160) == expected)
    }

    @Test(
        "every rejection is a typed error",
        arguments: [
            ([UInt8](Vector.measurement.prefix(9)), SDS011FrameError.wrongLength(expected: 10, found: 9)),
            ([0xAB] + Vector.measurement.dropFirst(), .missingHead(found: 0xAB)),
            ([0xAA, 0xC1] + Vector.measurement.dropFirst(2), .unknownFrameKind(0xC1)),
            (Vector.measurement.dropLast() + [0xAA], .missingTail(found: 0xAA)),
            (Array(Vector.measurement.prefix(8)) + [0x1E, 0xAB], .checksumMismatch(computed: 0x1D, received: 0x1E)),
        ]
    )
    func rejections(bytes: [UInt8], expected: SDS011FrameError) {
        #expect(throws: expected) { try SDS011Frame.decode(bytes) }
    }

    @Test("command decoding rejects unknown commands and out-of-range parameters")
    func commandRejections() {
        var unknown = Vector.command(0x03, 0x00, 0x00, checksum: 0x01)
        #expect(throws: SDS011FrameError.unknownCommand(0x03)) { try SDS011Command.decode(unknown[...]) }
        unknown = Vector.command(0x08, 0x01, 31, checksum: 0x26)
        #expect(throws: SDS011FrameError.invalidParameter(command: 0x08, parameter: 31)) { try SDS011Command.decode(unknown[...]) }
    }

    @Test("the stream decoder skips noise, joins split frames, counts bad checksums and takes C5 among C0")
    func streamDecoder() {
        var decoder = SDS011StreamDecoder()
        var corrupted = Vector.zero
        corrupted[8] = 0x02
        let stream: [UInt8] =
            [0x00, 0xAA, 0x13, 0xAA] + Vector.measurement + corrupted + Vector.workingPeriodReply + [0xAA, 0xC0] + Vector.zero
        var frames: [SDS011Frame] = []
        // Feed it in uneven pieces: frames straddle every boundary.
        var offset = 0
        for size in [1, 3, 7, 2, 11, 5, 100] where offset < stream.count {
            let end = min(offset + size, stream.count)
            decoder.append(Array(stream[offset..<end]))
            offset = end
            while let frame = decoder.next() { frames.append(frame) }
        }
        #expect(frames.count == 3)
        #expect(frames.first.map { $0.bytes } == Vector.measurement)
        #expect(frames.dropFirst().first.map { $0.bytes } == Vector.workingPeriodReply)
        #expect(frames.last.map { $0.bytes } == Vector.zero)
        #expect(decoder.statistics.checksumErrors == 1)
        #expect(decoder.statistics.frames == 3)
        #expect(decoder.bufferedByteCount == 0)
    }
}

/// A simulated SDS011 on a simulated port with a driver pointed at it.
private struct Rig {
    let sensor: SimulatedSDS011
    let port: SimulatedSerialPort
    let driver: SDS011

    init(sensor: SimulatedSDS011 = SimulatedSDS011(), configuration: SDS011.Configuration = SDS011.Configuration()) {
        self.sensor = sensor
        self.port = SimulatedSerialPort(name: "sim:/dev/ttyUSB0", device: sensor)
        self.driver = SDS011(port: self.port, configuration: configuration, pause: self.port.pause)
    }
}

@Suite("SDS011 driver on a simulated line")
struct SDS011DriverTests {
    @Test("wakes, configures query mode, warms up, averages five readings and sleeps")
    func dutyCycle() async throws {
        let rig = Rig()
        rig.sensor.setConcentrations(pm2_5: 12.3, pm10: 20.5)
        let values = try await rig.driver.measure()
        #expect(value(.pm2_5, in: values) == MeasuredValue(.pm2_5, 12.3))
        #expect(value(.pm10, in: values) == MeasuredValue(.pm10, 20.5))
        #expect(
            rig.sensor.commandsReceived == [
                .setWorkState(.working), .queryReportingMode, .setReportingMode(.query), .queryWorkingPeriod,
                .queryData, .queryData, .queryData, .queryData, .queryData, .setWorkState(.sleeping),
            ]
        )
        #expect(rig.sensor.workState == .sleeping)
        #expect(rig.sensor.reportingMode == .query)
        #expect(rig.driver.lastDeviceID == 0xA160)
        // 30 s warm-up plus four 1 s gaps between the five queries.
        #expect(rig.port.now >= .seconds(34))
    }

    @Test("settings already right are not written again (the sensor keeps them in flash)")
    func settingsPersist() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        let second = SDS011(port: rig.port, pause: rig.port.pause)
        rig.port.clearWrites()
        _ = try await second.measure()
        let writes = rig.port.writes.compactMap { try? SDS011Command.decode($0[...]).command }
        #expect(!writes.contains(.setReportingMode(.query)))
        #expect(!writes.contains(.setWorkingPeriod(minutes: 0)))
        // The first driver configured the sensor once; the next measurement does not ask again.
        rig.sensor.setConcentrations(pm2_5: 1, pm10: 2)
        rig.port.clearWrites()
        _ = try await rig.driver.measure()
        #expect(rig.port.writes.compactMap { try? SDS011Command.decode($0[...]).command }.first == .setWorkState(.working))
        #expect(!rig.port.writes.compactMap { try? SDS011Command.decode($0[...]).command }.contains(.queryReportingMode))
    }

    @Test("readings taken during the warm-up are never returned")
    func warmUpDiscarded() async throws {
        let sensor = SimulatedSDS011()
        sensor.setConcentrations(pm2_5: 10, pm10: 20)
        sensor.setWarmUp(duration: .seconds(30), factor: 3)
        let rig = Rig(sensor: sensor)
        let values = try await rig.driver.measure()
        #expect(value(.pm2_5, in: values)?.value == 10)

        // The same sensor read by a driver without warm-up shows what would have been returned.
        sensor.setModes(reporting: .query, workState: .sleeping)
        let impatient = SDS011(port: rig.port, configuration: .init(warmUp: .zero, samples: 1), pause: rig.port.pause)
        let early = try await impatient.measure()
        #expect(value(.pm2_5, in: early)?.value == 30)
    }

    @Test("a sensor that fell back to active mode while asleep: frames queued during the warm-up are discarded")
    func activeModeWarmUpFramesDiscarded() async throws {
        let rig = Rig(configuration: .init(samples: 1))
        rig.sensor.setConcentrations(pm2_5: 10, pm10: 20)
        rig.sensor.setWarmUp(duration: .seconds(30), factor: 3)
        _ = try await rig.driver.measure()
        // Another program (or a factory reset) put it back in active mode; the driver still believes it configured.
        rig.sensor.setModes(reporting: .active, workState: .sleeping)
        let values = try await rig.driver.measure()
        // Thirty frames with tripled values were queued during the warm-up; none of them is used.
        #expect(value(.pm2_5, in: values)?.value == 10)
        #expect(value(.pm10, in: values)?.value == 20)
    }

    @Test("a sensor left in active mode streams C0 frames; replies among them are found and warm-up frames dropped")
    func activeModeInterleaving() async throws {
        let sensor = SimulatedSDS011()
        sensor.setModes(reporting: .active, workState: .working)
        sensor.setConcentrations(pm2_5: 4.2, pm10: 6.9)
        let rig = Rig(sensor: sensor)
        // The sensor has been streaming for a while before the driver starts.
        rig.port.advance(by: .seconds(5))
        let values = try await rig.driver.measure()
        #expect(value(.pm2_5, in: values)?.value == 4.2)
        #expect(sensor.reportingMode == .query)
    }

    @Test("C0 frames streaming while a C5 reply is awaited are skipped, and a lost command is sent again")
    func measurementsWhileAwaitingReply() async throws {
        let sensor = SimulatedSDS011()
        sensor.setModes(reporting: .active, workState: .working)
        sensor.dropNextCommands(1)  // the first wake command is lost; the sensor keeps streaming C0 frames
        let rig = Rig(sensor: sensor, configuration: .init(samples: 1))
        #expect(try await rig.driver.measure().count == 2)
        #expect(sensor.commandsReceived.prefix(2) == [.setWorkState(.working), .setWorkState(.working)])
        // Ten streamed frames ended the wait for the lost reply, not an unbounded read.
        #expect(rig.port.now < .seconds(30 + 15))
    }

    @Test("bad checksums are counted, never used, and the query is repeated")
    func checksumRetry() async throws {
        let rig = Rig(configuration: .init(samples: 1))
        rig.sensor.setConcentrations(pm2_5: 7, pm10: 9)
        _ = try await rig.driver.measure()
        rig.sensor.corruptNextFrames(2)  // the first two replies to the wake command
        #expect(try await rig.driver.measure().count == 2)
        #expect(rig.driver.checksumErrorCount == 2)

        let awake = Rig(configuration: .init(samples: 1, sleepsBetweenMeasurements: false))
        awake.sensor.setConcentrations(pm2_5: 7, pm10: 9)
        _ = try await awake.driver.measure()
        awake.sensor.corruptNextFrames(2)  // the first two answers to the query
        let values = try await awake.driver.measure()
        #expect(value(.pm2_5, in: values)?.value == 7)
        #expect(awake.driver.checksumErrorCount == 2)
        #expect(awake.sensor.commandsReceived.suffix(3) == [.queryData, .queryData, .queryData])
    }

    @Test("only corrupt measurements: a typed error naming the wiring, and the sensor is put back to sleep")
    func onlyCorruptFrames() async throws {
        let rig = Rig(configuration: .init(samples: 2))
        rig.sensor.corruptNextMeasurements(2 * 3)  // all three attempts of both samples
        await #expect(throws: SDS011Error(.corruptFrames(count: 6), port: "sim:/dev/ttyUSB0")) { try await rig.driver.measure() }
        #expect(rig.driver.checksumErrorCount == 6)
        #expect(rig.sensor.workState == .sleeping)
        #expect(try await rig.driver.measure().count == 2)
        // After the failure the driver checked the sensor's settings again.
        #expect(rig.sensor.commandsReceived.filter { $0 == .queryReportingMode }.count == 2)
    }

    @Test("noise before every frame and frames split into 3-byte reads still decode")
    func noiseAndSplitReads() async throws {
        let rig = Rig()
        rig.sensor.setNoiseBeforeFrames([0xAA, 0x00, 0xAB, 0xAA, 0xAA, 0xC5, 0x01])
        rig.port.setMaximumBytesPerRead(3)
        rig.sensor.setConcentrations(pm2_5: 55.5, pm10: 66.6)
        let values = try await rig.driver.measure()
        #expect(value(.pm2_5, in: values)?.value == 55.5)
        #expect(value(.pm10, in: values)?.value == 66.6)
    }

    @Test("cut frames are skipped and the query repeated")
    func cutFrames() async throws {
        let rig = Rig(configuration: .init(samples: 1))
        _ = try await rig.driver.measure()
        rig.sensor.cutNextFrames(2)
        rig.sensor.setConcentrations(pm2_5: 3, pm10: 4)
        let values = try await rig.driver.measure()
        #expect(value(.pm10, in: values)?.value == 4)
    }

    @Test("a silent sensor gives noReply within bounded simulated time")
    func silence() async throws {
        let rig = Rig()
        rig.sensor.setSilent(true)
        await #expect(throws: SDS011Error(.noReply(command: 0x06), port: "sim:/dev/ttyUSB0")) { try await rig.driver.measure() }
        #expect(rig.port.now <= .seconds(10))
        rig.sensor.setSilent(false)
        #expect(try await rig.driver.measure().count == 2)
    }

    @Test("a lost wake command is sent again")
    func lostCommand() async throws {
        let rig = Rig()
        rig.sensor.dropNextCommands(1)
        #expect(try await rig.driver.measure().count == 2)
        #expect(rig.sensor.commandsReceived.prefix(2) == [.setWorkState(.working), .setWorkState(.working)])
    }

    @Test("an unplugged adapter surfaces as the port's typed error")
    func disconnected() async throws {
        let rig = Rig()
        rig.port.disconnect()
        await #expect(throws: SerialError(.closed, port: "sim:/dev/ttyUSB0")) { try await rig.driver.measure() }
    }

    @Test("values beyond the 999.9 µg/m³ range are flagged implausible, not dropped")
    func implausible() async throws {
        let rig = Rig(configuration: .init(samples: 1))
        rig.sensor.setRawTenths(pm2_5: 12_000, pm10: 20_000)
        let values = try await rig.driver.measure()
        #expect(value(.pm2_5, in: values) == MeasuredValue(.pm2_5, 1200, quality: .implausible))
        #expect(value(.pm10, in: values) == MeasuredValue(.pm10, 2000, quality: .implausible))
    }

    @Test("PM2.5 above PM10 is flagged implausible")
    func inverted() async throws {
        let rig = Rig(configuration: .init(samples: 1))
        rig.sensor.setConcentrations(pm2_5: 30, pm10: 20)
        let values = try await rig.driver.measure()
        #expect(values.allSatisfy { $0.quality == .implausible })
    }

    @Test("the minimum and maximum of five readings are dropped before averaging")
    func trimmedAverage() async throws {
        let rig = Rig()
        let levels: [Double] = [10, 11, 12, 13, 99]
        // Change the sensor's value as the driver pauses between queries.
        let sensor = rig.sensor
        let port = rig.port
        let queries = QueryCounter()
        let driver = SDS011(
            port: port,
            pause: { duration in
                port.advance(by: duration)
                if duration == .seconds(1) {
                    let index = queries.next()
                    sensor.setConcentrations(pm2_5: levels[min(index, levels.count - 1)], pm10: 100)
                }
            })
        sensor.setConcentrations(pm2_5: levels[0], pm10: 100)
        let values = try await driver.measure()
        #expect(value(.pm2_5, in: values)?.value == 12)
    }

    @Test("a sensor with a different id is ignored when an id is configured")
    func deviceIDFilter() async throws {
        let rig = Rig(sensor: SimulatedSDS011(deviceID: 0x1234), configuration: .init(deviceID: 0xA160, commandAttempts: 2))
        await #expect(throws: SDS011Error.self) { try await rig.driver.measure() }
        let matching = Rig(sensor: SimulatedSDS011(deviceID: 0x1234), configuration: .init(deviceID: 0x1234))
        #expect(try await matching.driver.measure().count == 2)
    }

    @Test("without duty cycling the sensor stays awake and warms up only once")
    func continuous() async throws {
        let rig = Rig(configuration: .init(samples: 1, sleepsBetweenMeasurements: false))
        _ = try await rig.driver.measure()
        #expect(rig.sensor.workState == .working)
        let before = rig.port.now
        rig.port.clearWrites()
        _ = try await rig.driver.measure()
        #expect(rig.port.now - before < .seconds(5))
        #expect(rig.port.writes.count == 1)
    }
}

/// Counts calls from a `@Sendable` closure.
private final class QueryCounter: Sendable {
    private let count = Mutex(0)
    func next() -> Int {
        self.count.withLock { value in
            value += 1
            return value
        }
    }
}

import Synchronization
