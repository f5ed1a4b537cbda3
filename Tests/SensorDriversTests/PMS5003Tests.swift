import KiezboxCore
import SensorDrivers
import Testing

// Frames from sensors.md §9 (pimoroni pms5003-python, airrohr PMS_cmd).
private enum Vector {
    static let frameA: [UInt8] = [
        0x42, 0x4d, 0x00, 0x1c, 0x00, 0x03, 0x00, 0x04, 0x00, 0x07, 0x00, 0x03, 0x00, 0x04, 0x00, 0x07,
        0x02, 0xd0, 0x00, 0xb8, 0x00, 0x19, 0x00, 0x08, 0x00, 0x04, 0x00, 0x02, 0x97, 0x00, 0x03, 0x0f,
    ]
    static let frameB: [UInt8] = [
        0x42, 0x4d, 0x00, 0x1c, 0x00, 0x09, 0x00, 0x0d, 0x00, 0x0e, 0x00, 0x09, 0x00, 0x0d, 0x00, 0x0e,
        0x06, 0x87, 0x01, 0xf3, 0x00, 0x4f, 0x00, 0x04, 0x00, 0x02, 0x00, 0x00, 0x93, 0x00, 0x03, 0x5c,
    ]
    // The answers to E1 00 and E4 00, as captured from sensors by several public drivers; the checksums follow §9's rule.
    static let passiveReply: [UInt8] = [0x42, 0x4D, 0x00, 0x04, 0xE1, 0x00, 0x01, 0x74]
    static let sleepReply: [UInt8] = [0x42, 0x4D, 0x00, 0x04, 0xE4, 0x00, 0x01, 0x77]
}

private func value(_ quantity: Quantity, in values: [MeasuredValue]) -> MeasuredValue? {
    values.first { $0.quantity == quantity }
}

@Suite("PMS5003 frames")
struct PMS5003FrameTests {
    @Test("frame A: CF1 3/4/7, atmospheric 3/4/7, counts 720/184/25/8/4/2, reserved 0x9700")
    func frameA() throws {
        let frame = try PMS5003Frame.decode(Vector.frameA)
        let expected = PMS5003Measurement(
            pm1Standard: 3, pm2_5Standard: 4, pm10Standard: 7, pm1: 3, pm2_5: 4, pm10: 7,
            particleCounts: [720, 184, 25, 8, 4, 2], reserved: 0x9700
        )
        #expect(frame == .measurement(expected))
        #expect(frame.bytes == Vector.frameA)
    }

    @Test("frame B: PM2.5 13, PM10 14, n0.3 1671, n0.5 499")
    func frameB() throws {
        guard case .measurement(let measurement) = try PMS5003Frame.decode(Vector.frameB) else {
            Issue.record("expected a measurement")
            return
        }
        #expect(measurement.pm2_5 == 13)
        #expect(measurement.pm10 == 14)
        #expect(measurement.particleCounts.prefix(2) == [1671, 499])
    }

    @Test(
        "command frames equal airrohr's constants",
        arguments: [
            (PMS5003Command.passiveMode, [UInt8]([0x42, 0x4d, 0xe1, 0x00, 0x00, 0x01, 0x70])),
            (.activeMode, [0x42, 0x4d, 0xe1, 0x00, 0x01, 0x01, 0x71]),
            (.read, [0x42, 0x4d, 0xe2, 0x00, 0x00, 0x01, 0x71]),
            (.sleep, [0x42, 0x4d, 0xe4, 0x00, 0x00, 0x01, 0x73]),
            (.wake, [0x42, 0x4d, 0xe4, 0x00, 0x01, 0x01, 0x74]),
        ]
    )
    func commands(command: PMS5003Command, expected: [UInt8]) throws {
        #expect(command.frame == expected)
        #expect(try PMS5003Command.decode(expected[...]) == command)
    }

    @Test("command answers are 8-byte frames with length field 4")
    func replies() throws {
        #expect(try PMS5003Frame.decode(Vector.passiveReply) == .commandReply(PMS5003CommandReply(command: 0xE1, data: 0x00)))
        #expect(try PMS5003Frame.decode(Vector.sleepReply) == .commandReply(PMS5003CommandReply(command: 0xE4, data: 0x00)))
        #expect(PMS5003Frame.commandReply(PMS5003CommandReply(command: 0xE1, data: 0)).bytes == Vector.passiveReply)
    }

    @Test(
        "every rejection is a typed error",
        arguments: [
            (Array(Vector.frameA.prefix(3)), PMS5003FrameError.wrongLength(expected: 4, found: 3)),
            ([0x42, 0x4e] + Vector.frameA.dropFirst(2), .missingStart(found: 0x424e)),
            ([0x42, 0x4d, 0x00, 0x14] + Vector.frameA.dropFirst(4), .unsupportedLengthField(20)),
            (Array(Vector.frameA.dropLast()), .wrongLength(expected: 32, found: 31)),
            (Vector.frameA.dropLast() + [0x10], .checksumMismatch(computed: 0x030f, received: 0x0310)),
        ]
    )
    func rejections(bytes: [UInt8], expected: PMS5003FrameError) {
        #expect(throws: expected) { try PMS5003Frame.decode(bytes) }
    }

    @Test("the stream decoder rejects a false start with an absurd length at once and finds the frame behind it")
    func streamDecoder() {
        var decoder = PMS5003StreamDecoder()
        var corrupted = Vector.frameB
        corrupted[20] ^= 0x01
        // A false "BM" with length 0xFFFF must not make the decoder wait for 64 KiB.
        decoder.append([0x42, 0x4D, 0xFF, 0xFF, 0x42, 0x42] + Vector.frameA.prefix(10))
        #expect(decoder.next() == nil)
        decoder.append(Array(Vector.frameA.dropFirst(10)) + corrupted + Vector.passiveReply + [0x00, 0x42])
        var frames: [PMS5003Frame] = []
        while let frame = decoder.next() { frames.append(frame) }
        #expect(frames.map(\.bytes) == [Vector.frameA, Vector.passiveReply])
        #expect(decoder.statistics.checksumErrors == 1)
        #expect(decoder.statistics.malformedFrames >= 2)
        #expect(decoder.bufferedByteCount == 1)
    }
}

private struct Rig {
    let sensor: SimulatedPMS5003
    let port: SimulatedSerialPort
    let driver: PMS5003

    init(sensor: SimulatedPMS5003 = SimulatedPMS5003(), configuration: PMS5003.Configuration = PMS5003.Configuration()) {
        self.sensor = sensor
        self.port = SimulatedSerialPort(name: "sim:/dev/ttyAMA0", device: sensor)
        self.driver = PMS5003(port: self.port, configuration: configuration, pause: self.port.pause)
    }
}

@Suite("PMS5003 driver on a simulated line")
struct PMS5003DriverTests {
    @Test("wakes, warms up, switches to passive mode, reads five frames and sleeps")
    func dutyCycle() async throws {
        let rig = Rig()
        rig.sensor.setConcentrations(pm1: 5, pm2_5: 9, pm10: 12)
        let values = try await rig.driver.measure()
        #expect(values == [MeasuredValue(.pm1, 5), MeasuredValue(.pm2_5, 9), MeasuredValue(.pm10, 12)])
        #expect(rig.sensor.commandsReceived == [.wake, .passiveMode, .read, .read, .read, .read, .read, .sleep])
        #expect(rig.sensor.isAsleep)
        #expect(rig.port.now >= .seconds(34))
        #expect(rig.driver.lastMeasurement?.pm2_5 == 9)
    }

    @Test("the frames streamed in active mode during warm-up are never returned")
    func warmUpDiscarded() async throws {
        let sensor = SimulatedPMS5003()
        sensor.setConcentrations(pm1: 2, pm2_5: 4, pm10: 6)
        sensor.setWarmUp(duration: .seconds(30), factor: 4)
        let rig = Rig(sensor: sensor)
        let values = try await rig.driver.measure()
        #expect(value(.pm2_5, in: values)?.value == 4)

        sensor.setModes(passive: false, asleep: true)
        let impatient = PMS5003(port: rig.port, configuration: .init(warmUp: .zero, samples: 1), pause: rig.port.pause)
        #expect(try await value(.pm2_5, in: impatient.measure())?.value == 16)
    }

    @Test("an asleep sensor left in passive mode by another program is woken and read")
    func asleepPassive() async throws {
        let sensor = SimulatedPMS5003()
        sensor.setModes(passive: true, asleep: true)
        let rig = Rig(sensor: sensor)
        #expect(try await rig.driver.measure().count == 3)
    }

    @Test("bad checksums are counted, never used, and the read repeated")
    func checksumRetry() async throws {
        let rig = Rig(configuration: .init(samples: 1))
        // Asleep in passive mode, so no active-mode frames during the warm-up use up the fault.
        rig.sensor.setModes(passive: true, asleep: true)
        rig.sensor.setConcentrations(pm1: 1, pm2_5: 2, pm10: 3)
        rig.sensor.corruptNextMeasurements(2)
        let values = try await rig.driver.measure()
        #expect(value(.pm10, in: values)?.value == 3)
        #expect(rig.driver.checksumErrorCount == 2)
        #expect(rig.sensor.commandsReceived.filter { $0 == .read }.count == 3)
    }

    @Test("only corrupt measurements: a typed error, and the sensor is put back to sleep")
    func onlyCorrupt() async throws {
        let rig = Rig(configuration: .init(samples: 1))
        rig.sensor.setModes(passive: true, asleep: true)
        rig.sensor.corruptNextMeasurements(3)
        await #expect(throws: PMS5003Error(.corruptFrames(count: 3), port: "sim:/dev/ttyAMA0")) { try await rig.driver.measure() }
        #expect(rig.sensor.isAsleep)
        #expect(try await rig.driver.measure().count == 3)
    }

    @Test("a corrupted answer to the passive-mode command is retried")
    func corruptReply() async throws {
        let sensor = SimulatedPMS5003()
        sensor.setModes(passive: true, asleep: false)
        let rig = Rig(sensor: sensor, configuration: .init(samples: 1))
        sensor.corruptNextFrames(1)
        #expect(try await rig.driver.measure().count == 3)
        #expect(rig.driver.checksumErrorCount == 1)
        #expect(sensor.commandsReceived.prefix(3) == [.wake, .passiveMode, .passiveMode])
    }

    @Test("noise, false starts and 5-byte reads do not disturb the frames")
    func noiseAndSplits() async throws {
        let rig = Rig()
        rig.sensor.setNoiseBeforeFrames([0x42, 0x00, 0x42, 0x4D, 0x00, 0x63, 0x4D, 0x42])
        rig.port.setMaximumBytesPerRead(5)
        rig.sensor.setConcentrations(pm1: 11, pm2_5: 22, pm10: 33)
        let values = try await rig.driver.measure()
        #expect(value(.pm2_5, in: values)?.value == 22)
    }

    @Test("cut frames are skipped and the read repeated")
    func cutFrames() async throws {
        let rig = Rig(configuration: .init(samples: 1, sleepsBetweenMeasurements: false))
        _ = try await rig.driver.measure()
        rig.sensor.cutNextFrames(2)
        rig.sensor.setConcentrations(pm1: 7, pm2_5: 8, pm10: 9)
        #expect(try await value(.pm10, in: rig.driver.measure())?.value == 9)
    }

    @Test("a silent sensor gives noReply to the passive-mode command")
    func silence() async throws {
        let rig = Rig()
        rig.sensor.setSilent(true)
        await #expect(throws: PMS5003Error(.noReply(command: 0xE1), port: "sim:/dev/ttyAMA0")) { try await rig.driver.measure() }
        rig.sensor.setSilent(false)
        #expect(try await rig.driver.measure().count == 3)
    }

    @Test("values beyond 1000 µg/m³ are flagged implausible, not dropped")
    func implausible() async throws {
        let rig = Rig(configuration: .init(samples: 1))
        rig.sensor.setConcentrations(pm1: 900, pm2_5: 1500, pm10: 2000)
        let values = try await rig.driver.measure()
        #expect(values.map(\.quality) == [.good, .implausible, .implausible])
        rig.sensor.setConcentrations(pm1: 20, pm2_5: 10, pm10: 30)
        #expect(try await rig.driver.measure().allSatisfy { $0.quality == .implausible })
    }

    @Test("an unplugged adapter surfaces as the port's typed error")
    func disconnected() async throws {
        let rig = Rig()
        rig.port.disconnect()
        await #expect(throws: SerialError(.closed, port: "sim:/dev/ttyAMA0")) { try await rig.driver.measure() }
    }

    @Test("without duty cycling the sensor stays awake in passive mode")
    func continuous() async throws {
        let rig = Rig(configuration: .init(samples: 2, sleepsBetweenMeasurements: false))
        _ = try await rig.driver.measure()
        rig.port.clearWrites()
        _ = try await rig.driver.measure()
        #expect(rig.port.writes == [PMS5003Command.read.frame, PMS5003Command.read.frame])
        #expect(!rig.sensor.isAsleep)
        #expect(rig.sensor.isPassive)
    }
}
