import KiezboxCore
import SensorDrivers
import Testing

private let address: UInt8 = 0x44

/// A simulated SHT3x on a simulated bus with a driver pointed at it.
private typealias Rig = SensirionRig<SimulatedSHT3x, SHT3x>

extension Rig {
    fileprivate init(pause: @escaping Pause = instantSensirionPause, repeatability: SHT3x.Repeatability = .high) {
        self.init(SimulatedSHT3x(), at: address) { SHT3x(device: $0, pause: pause, repeatability: repeatability) }
        // §3 vector: 66 66 93 80 00 a2.
        self.chip.setRawSignals(temperature: 0x6666, humidity: 0x8000)
    }
}

private let initialisation: [SimulatedSensirionWire.Transfer] = [
    .write([0x30, 0x93]),  // break
    .write([0x30, 0xA2]),  // soft reset
    .write([0xF3, 0x2D]),  // status
    .read(count: 3),
    .write([0x30, 0x41]),  // clear status
]

private let singleShot: [SimulatedSensirionWire.Transfer] = [.write([0x24, 0x00]), .read(count: 6)]

@Suite("SHT3x conversion (sensors.md §3)")
struct SHT3xConversionTests {
    @Test("vector 66 66 93 80 00 a2: 25.000 °C, 50.0008 %")
    func vector() throws {
        let words = try SensirionWords.decode([0x66, 0x66, 0x93, 0x80, 0x00, 0xA2])
        #expect(abs(SHT3x.celsius(ticks: words[0]) - 25.0) < 1e-9)
        #expect(abs(SHT3x.percentRH(ticks: words[1]) - 50.000_763) < 1e-5)
    }

    @Test("range ends: 0 → −45 °C / 0 %, 0xFFFF → 130 °C / 100 %")
    func ends() {
        #expect(SHT3x.celsius(ticks: 0) == -45)
        #expect(SHT3x.celsius(ticks: 0xFFFF) == 130)
        #expect(SHT3x.percentRH(ticks: 0) == 0)
        #expect(SHT3x.percentRH(ticks: 0xFFFF) == 100)
    }

    @Test("the simulation inverts the conversion to the nearest tick")
    func inverse() {
        #expect(SimulatedSHT3x.temperatureTicks(25.0) == 0x6666)
        #expect(SimulatedSHT3x.humidityTicks(50.0) == 0x8000)
        #expect(SimulatedSHT3x.temperatureTicks(-100) == 0)
        #expect(SimulatedSHT3x.temperatureTicks(200) == 0xFFFF)
    }
}

@Suite("SHT3x driver on a simulated bus")
struct SHT3xDriverTests {
    @Test("vector end to end: 25.000 °C, 50.0008 %, both good")
    func endToEnd() async throws {
        let rig = Rig()
        let values = try await rig.driver.measure()
        #expect(values.map(\.quantity) == [.temperature, .relativeHumidity])
        #expect(abs((value(of: .temperature, in: values)?.value ?? .nan) - 25.0) < 1e-9)
        #expect(abs((value(of: .relativeHumidity, in: values)?.value ?? .nan) - 50.000_763) < 1e-5)
        #expect(values.allSatisfy { $0.quality == .good })
        #expect(rig.driver.chipName == "SHT3x")
        #expect(rig.driver.checksumErrorCount == 0)
        #expect(rig.driver.statusRegister == SimulatedSHT3x.powerOnStatus)
    }

    @Test("first measure: break, soft reset, status, clear, then 24 00 and a separate 6-byte read")
    func initialisationOnTheWire() async throws {
        let pauses = RecordedPauses()
        let rig = Rig(pause: pauses.pause)
        _ = try await rig.driver.measure()
        #expect(rig.chip.wire.transfers == initialisation + singleShot)
        #expect(pauses.all == [.milliseconds(1), .milliseconds(2), .milliseconds(10), .milliseconds(10), .milliseconds(15)])
        // The clear took away the reset and alert flags.
        #expect(rig.chip.status & (SHT3x.StatusBit.resetDetected | SHT3x.StatusBit.alertPending) == 0)
    }

    @Test("later measures put only the polling single shot on the wire, never the clock-stretching 0x2Cxx")
    func laterMeasures() async throws {
        let pauses = RecordedPauses()
        let rig = Rig(pause: pauses.pause)
        _ = try await rig.driver.measure()
        rig.chip.wire.clearTransfers()
        pauses.clear()
        _ = try await rig.driver.measure()
        #expect(rig.chip.wire.transfers == singleShot)
        #expect(pauses.all == [.milliseconds(15)])
        #expect(rig.chip.wire.acknowledgedWrites.allSatisfy { $0.first != 0x2C })
    }

    @Test(
        "repeatability picks the polling command and its wait",
        arguments: [
            (SHT3x.Repeatability.high, [UInt8(0x24), 0x00], Duration.milliseconds(15)),
            (.medium, [0x24, 0x0B], .milliseconds(7)),
            (.low, [0x24, 0x16], .milliseconds(5)),
        ]
    )
    func repeatability(_ repeatability: SHT3x.Repeatability, command: [UInt8], wait: Duration) async throws {
        let pauses = RecordedPauses()
        let rig = Rig(pause: pauses.pause, repeatability: repeatability)
        _ = try await rig.driver.measure()
        #expect(rig.chip.wire.acknowledgedWrites.last == command)
        #expect(pauses.all.last == wait)
    }

    @Test("a NACKed read means not ready: the read is retried without a new command")
    func notReadyThenReady() async throws {
        let pauses = RecordedPauses()
        let rig = Rig(pause: pauses.pause)
        _ = try await rig.driver.measure()
        rig.chip.wire.clearTransfers()
        pauses.clear()
        rig.chip.wire.setExecutionTime(prematureReads: 3)

        let values = try await rig.driver.measure()
        #expect(abs((value(of: .temperature, in: values)?.value ?? .nan) - 25.0) < 1e-9)
        #expect(
            rig.chip.wire.transfers
                == [.write([0x24, 0x00])] + Array(repeating: .nackedRead(count: 6), count: 3) + [.read(count: 6)]
        )
        #expect(pauses.all == [.milliseconds(15), .milliseconds(1), .milliseconds(1), .milliseconds(1)])
        #expect(rig.chip.measurementCount == 2)
    }

    @Test("a measurement that never finishes is a typed error after bounded retries, not a hang", .timeLimit(.minutes(1)))
    func neverReady() async throws {
        let rig = Rig()
        rig.chip.wire.setExecutionTime(prematureReads: .max)
        let error = await #expect(throws: SHT3xError.self) { try await rig.driver.measure() }
        #expect(error?.code == .notReady(command: 0x2400))
        #expect(error?.description.contains("power-cycle") == true)
        // One command, the first read and ten bounded re-reads.
        #expect(rig.chip.wire.nackedReadCount == 11)
        #expect(rig.chip.measurementCount == 1)

        // The next measure initialises again and succeeds once the chip answers.
        rig.chip.wire.setExecutionTime(prematureReads: 0)
        rig.chip.wire.clearTransfers()
        _ = try await rig.driver.measure()
        #expect(rig.chip.wire.transfers == initialisation + singleShot)
    }

    @Test("a bad CRC is counted, the measurement is taken again, and only the good answer is used")
    func badCRCRetried() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        rig.chip.wire.clearTransfers()
        rig.chip.setRawSignals(temperature: 0x6666, humidity: 0x8000)
        rig.chip.wire.corruptChecksums(ofNextWords: 1)

        let values = try await rig.driver.measure()
        #expect(rig.driver.checksumErrorCount == 1)
        #expect(rig.chip.wire.transfers == singleShot + singleShot)
        #expect(abs((value(of: .temperature, in: values)?.value ?? .nan) - 25.0) < 1e-9)
    }

    @Test("a CRC error in the humidity word fails the whole answer too")
    func badSecondWord() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        rig.chip.wire.clearTransfers()
        rig.chip.setRawSignals(temperature: 0x6666, humidity: 0x8000)
        rig.chip.wire.corruptChecksums(ofNextWords: 1, skipping: 1)
        let values = try await rig.driver.measure()
        #expect(rig.driver.checksumErrorCount == 1)
        #expect(rig.chip.wire.transfers == singleShot + singleShot)
        #expect(abs((value(of: .relativeHumidity, in: values)?.value ?? .nan) - 50.000_763) < 1e-5)
    }

    @Test("persistent CRC errors: a typed error after 3 attempts, every one counted, no value returned")
    func persistentBadCRC() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        rig.chip.wire.clearTransfers()
        rig.chip.wire.corruptChecksums(ofNextWords: 1000)
        let error = await #expect(throws: SHT3xError.self) { try await rig.driver.measure() }
        #expect(error?.code == .checksumMismatch(command: 0x2400, word: 0))
        #expect(error?.description.contains("CRC error") == true)
        #expect(rig.driver.checksumErrorCount == 3)
        #expect(rig.chip.wire.transfers == singleShot + singleShot + singleShot)

        // After the failure the chip is initialised again.
        rig.chip.wire.clearFaults()
        rig.chip.wire.clearTransfers()
        _ = try await rig.driver.measure()
        #expect(rig.chip.wire.transfers == initialisation + singleShot)
    }

    @Test("garbage on the bus is caught by the CRC and retried; persistent garbage is a typed error")
    func garbage() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        rig.chip.wire.sendGarbage(onNextReads: 1)
        let values = try await rig.driver.measure()
        #expect(abs((value(of: .temperature, in: values)?.value ?? .nan) - 25.0) < 1e-9)
        #expect(rig.driver.checksumErrorCount == 1)

        rig.chip.wire.sendGarbage(onNextReads: 100)
        let error = await #expect(throws: SHT3xError.self) { try await rig.driver.measure() }
        if case .checksumMismatch = error?.code {} else { Issue.record("expected a checksum error, got \(String(describing: error))") }
        #expect(rig.driver.checksumErrorCount == 4)
    }

    @Test("a NACKed command propagates as I2CError and the next measure initialises again")
    func nackedCommand() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        rig.chip.wire.nackNextTransfers(1)
        let error = await #expect(throws: I2CError.self) { try await rig.driver.measure() }
        #expect(error?.code == .noAcknowledge)
        #expect(error?.address == address)

        rig.chip.wire.clearTransfers()
        _ = try await rig.driver.measure()
        #expect(rig.chip.wire.transfers == initialisation + singleShot)
    }

    @Test("an absent chip is an address NACK; a stuck bus is a timeout; neither hangs")
    func absentAndStuck() async throws {
        let bus = SimulatedI2CBus(name: "sim:i2c-1")
        let driver = SHT3x(device: bus.device(at: 0x45), pause: instantSensirionPause)
        let absent = await #expect(throws: I2CError.self) { try await driver.measure() }
        #expect(absent?.code == .noAcknowledge)

        let rig = Rig()
        rig.bus.setFault(.stuck)
        let stuck = await #expect(throws: I2CError.self) { try await rig.driver.measure() }
        #expect(stuck?.code == .timeout)
    }

    @Test(
        "temperatures outside −40…125 °C are flagged implausible, not dropped",
        arguments: [(UInt16(0x0000), -45.0), (0xFFFF, 130.0)]
    )
    func implausible(ticks: UInt16, celsius: Double) async throws {
        let rig = Rig()
        rig.chip.setRawSignals(temperature: ticks, humidity: 0x8000)
        let values = try await rig.driver.measure()
        #expect(value(of: .temperature, in: values)?.value == celsius)
        #expect(value(of: .temperature, in: values)?.quality == .implausible)
        #expect(value(of: .relativeHumidity, in: values)?.quality == .good)
    }

    @Test(
        "setEnvironment round trip through the driver",
        arguments: [(21.5, 55.0), (-12.75, 92.0), (-39.9, 0.0), (38.2, 100.0), (0.0, 15.0)]
    )
    func environmentRoundTrip(celsius: Double, percentRH: Double) async throws {
        let rig = Rig()
        rig.chip.setEnvironment(celsius: celsius, percentRH: percentRH)
        let values = try await rig.driver.measure()
        #expect(abs((value(of: .temperature, in: values)?.value ?? .nan) - celsius) <= 0.0014)
        #expect(abs((value(of: .relativeHumidity, in: values)?.value ?? .nan) - percentRH) <= 0.001)
        #expect(values.allSatisfy { $0.quality == .good })
    }
}

@Suite("SimulatedSHT3x command state machine")
struct SimulatedSHT3xTests {
    private func rig() -> (chip: SimulatedSHT3x, device: any I2CDevice) {
        attach(SimulatedSHT3x(), at: address)
    }

    @Test("unknown and periodic-mode commands are NACKed and flag status bit 1")
    func unknownCommand() async throws {
        let (chip, device) = self.rig()
        await #expect(throws: I2CError.self) { try await device.write([0x21, 0x30]) }
        #expect(chip.status & 0x0002 != 0)
        try await device.write([0xF3, 0x2D])
        let status = try SensirionWords.decode(try await device.read(count: 3))
        #expect(status == [SimulatedSHT3x.powerOnStatus | 0x0002])
    }

    @Test("argument bytes with a bad CRC set status bits 0 and 1; the next good command clears them")
    func badArgumentCRC() async throws {
        let (chip, device) = self.rig()
        await #expect(throws: I2CError.self) { try await device.write([0x61, 0x1D, 0x12, 0x34, 0x00]) }
        #expect(chip.status & 0x0003 == 0x0003)
        try await device.write([0x30, 0x66])
        #expect(chip.status & 0x0003 == 0)
    }

    @Test("clock-stretching single shots answer at the first read even with an execution time")
    func clockStretching() async throws {
        let (chip, device) = self.rig()
        chip.wire.setExecutionTime(prematureReads: 5)
        chip.setEnvironment(celsius: 25, percentRH: 50)
        try await device.write([0x2C, 0x06])
        #expect(try await device.read(count: 6) == [0x66, 0x66, 0x93, 0x80, 0x00, 0xA2])
    }

    @Test("heater on/off, clear and soft reset act on the status register")
    func statusRegister() async throws {
        let (chip, device) = self.rig()
        try await device.write([0x30, 0x41])
        #expect(chip.status == 0x0000)
        try await device.write([0x30, 0x6D])
        #expect(chip.status == SHT3x.StatusBit.heaterOn)
        try await device.write([0x30, 0x66])
        #expect(chip.status == 0x0000)
        try await device.write([0x30, 0xA2])
        #expect(chip.status == SimulatedSHT3x.powerOnStatus)
    }

    @Test("a read before any command is NACKed")
    func readWithoutCommand() async throws {
        let (_, device) = self.rig()
        let error = await #expect(throws: I2CError.self) { try await device.read(count: 6) }
        #expect(error?.code == .noAcknowledge)
    }
}
