import KiezboxCore
import SensorDrivers
import Testing

private let address: UInt8 = 0x62

/// A simulated SCD4x on a simulated bus with a driver pointed at it.
private typealias Rig = SensirionRig<SimulatedSCD4x, SCD4x>

extension Rig {
    fileprivate init(pause: @escaping Pause = instantSensirionPause, mode: SCD4x.Mode = .lowPowerPeriodic, warmUpSamples: Int = 1) {
        self.init(SimulatedSCD4x(), at: address) { SCD4x(device: $0, pause: pause, mode: mode, warmUpSamples: warmUpSamples) }
    }
}

private let dataReadyPoll: [SimulatedSensirionWire.Transfer] = [.write([0xE4, 0xB8]), .read(count: 3)]
private let readMeasurement: [SimulatedSensirionWire.Transfer] = [.write([0xEC, 0x05]), .read(count: 9)]
private let sample = dataReadyPoll + readMeasurement

@Suite("SCD4x vectors (sensors.md §6)")
struct SCD4xVectorTests {
    @Test("datasheet measurement 01 f4 33 66 67 a2 5e b9 3c: 500 ppm, 25.003 °C, 37.002 %")
    func measurement() throws {
        let words = try SensirionWords.decode([0x01, 0xF4, 0x33, 0x66, 0x67, 0xA2, 0x5E, 0xB9, 0x3C])
        let (ppm, celsius, percentRH) = SCD4x.measurement(from: words)
        #expect(ppm == 500)
        #expect(abs(celsius - 25.003) < 5e-4)
        #expect(abs(percentRH - 37.002) < 5e-4)
    }

    @Test("the datasheet's misprinted CO₂ CRC 0x7b is (correctly) rejected")
    func misprintedCRC() {
        let error = #expect(throws: SensirionWordError.self) {
            try SensirionWords.decode([0x01, 0xF4, 0x7B, 0x66, 0x67, 0xA2, 0x5E, 0xB9, 0x3C])
        }
        #expect(error?.code == .checksumMismatch(word: 0, received: 0x7B, expected: 0x33))
    }

    @Test("datasheet serial f8 96 31 9f 07 c2 3b be 89 = 273325796834238")
    func serial() throws {
        let words = try SensirionWords.decode([0xF8, 0x96, 0x31, 0x9F, 0x07, 0xC2, 0x3B, 0xBE, 0x89])
        #expect(SCD4x.serialNumber(from: words) == 273_325_796_834_238)
    }

    @Test("datasheet command frames: offset 5.4 °C, altitude 1950 m, 98700 Pa, FRC 480 ppm")
    func commandFrames() {
        // word = T·65536/175 for the offset.
        #expect(UInt16(5.4 * 65536 / 175) == 0x07E6)
        #expect(SensirionWords.command(0x241D, arguments: [0x07E6]) == [0x24, 0x1D, 0x07, 0xE6, 0x48])
        #expect(abs(Double(0x0912) * 175 / 65536 - 6.2) < 0.001)
        #expect(SensirionWords.command(0x2427, arguments: [1950]) == [0x24, 0x27, 0x07, 0x9E, 0x09])
        #expect(SensirionWords.command(0xE000, arguments: [UInt16(98_700 / 100)]) == [0xE0, 0x00, 0x03, 0xDB, 0x42])
        #expect(SensirionWords.command(0x362F, arguments: [480]) == [0x36, 0x2F, 0x01, 0xE0, 0xB4])
        #expect(Int(0x7FCE) - 0x8000 == -50)
    }

    @Test("data-ready: 0x8000 not ready, 0x8006 ready (mask 0x07FF)")
    func dataReadyWords() async throws {
        let (chip, device) = attach(SimulatedSCD4x(), at: address)
        chip.setSamplePeriod(dataReadyPolls: 1)
        try await device.write([0x21, 0xB1])
        try await device.write([0xE4, 0xB8])
        #expect(try SensirionWords.decode(try await device.read(count: 3)) == [0x8000])
        try await device.write([0xE4, 0xB8])
        #expect(try SensirionWords.decode(try await device.read(count: 3)) == [0x8006])
    }
}

@Suite("SCD4x driver on a simulated bus")
struct SCD4xDriverTests {
    @Test("datasheet measurement end to end (no warm-up discard)")
    func endToEnd() async throws {
        let rig = Rig(warmUpSamples: 0)
        rig.chip.setMeasurement(SimulatedSCD4x.referenceMeasurement)
        let values = try await rig.driver.measure()
        #expect(values.map(\.quantity) == [.co2, .temperature, .relativeHumidity])
        #expect(value(of: .co2, in: values)?.value == 500)
        #expect(abs((value(of: .temperature, in: values)?.value ?? .nan) - 25.003) < 5e-4)
        #expect(abs((value(of: .relativeHumidity, in: values)?.value ?? .nan) - 37.002) < 5e-4)
        #expect(values.allSatisfy { $0.quality == .good })
        #expect(rig.driver.serialNumber == 273_325_796_834_238)
        #expect(rig.driver.chipName == "SCD4x")
    }

    @Test("first measure on the wire: stop, serial, start low-power, then data-ready and read (first sample discarded)")
    func onTheWire() async throws {
        let pauses = RecordedPauses()
        let rig = Rig(pause: pauses.pause)
        _ = try await rig.driver.measure()
        #expect(
            rig.chip.wire.transfers
                == [.write([0x3F, 0x86]), .write([0x36, 0x82]), .read(count: 9), .write([0x21, 0xAC])] + sample + sample
        )
        #expect(pauses.all == [.milliseconds(500)] + Array(repeating: .milliseconds(1), count: 5))
        #expect(rig.chip.mode == .lowPowerPeriodic)
        #expect(rig.chip.persistCount == 0)

        rig.chip.wire.clearTransfers()
        _ = try await rig.driver.measure()
        #expect(rig.chip.wire.transfers == sample)
    }

    @Test("periodic mode starts with 21 B1 and polls every 0.5 s")
    func periodicMode() async throws {
        let pauses = RecordedPauses()
        let rig = Rig(pause: pauses.pause, mode: .periodic, warmUpSamples: 0)
        rig.chip.setSamplePeriod(dataReadyPolls: 3)
        _ = try await rig.driver.measure()
        #expect(rig.chip.wire.acknowledgedWrites.contains([0x21, 0xB1]))
        #expect(rig.chip.mode == .periodic)
        #expect(pauses.all.filter { $0 == .milliseconds(500) }.count == 4)  // the stop wait, then 3 poll intervals
        // 0x8000 means "not ready" (only the low 11 bits count): no read_measurement until 0x8006.
        #expect(rig.chip.wire.acknowledgedWrites.filter { $0 == [0xEC, 0x05] }.count == 1)
        #expect(rig.chip.wire.nackedReadCount == 0)
    }

    @Test("a chip left measuring by another program is stopped and restarted")
    func leftMeasuring() async throws {
        let rig = Rig()
        rig.chip.setMode(.periodic)
        let values = try await rig.driver.measure()
        #expect(values.count == 3)
        #expect(rig.chip.mode == .lowPowerPeriodic)
        // Serial read only works in idle: it succeeded, so the stop came first.
        #expect(rig.driver.serialNumber == SimulatedSCD4x.referenceSerialNumber)
    }

    @Test("the first sample after a start is discarded (warm-up transient never returned)")
    func warmUp() async throws {
        let rig = Rig()
        rig.chip.setCO2(ppm: 640)
        rig.chip.enqueueSamples([SimulatedSCD4x.Measurement(co2: 0, temperatureTicks: 0, humidityTicks: 0)])
        let values = try await rig.driver.measure()
        #expect(value(of: .co2, in: values)?.value == 640)
        #expect(rig.chip.sampleCounts.read == 2)
    }

    @Test("read_measurement NACKed before data is ready is not an error: re-read, then polling resumes")
    func readNACKIsNotReady() async throws {
        let rig = Rig(warmUpSamples: 0)
        _ = try await rig.driver.measure()
        rig.chip.wire.clearTransfers()
        rig.chip.wire.setExecutionTime(prematureReads: 2)
        let values = try await rig.driver.measure()
        #expect(values.count == 3)
        #expect(rig.chip.wire.nackedReadCount == 4)  // two on data-ready, two on read_measurement
        #expect(rig.chip.sampleCounts.read == 2)
    }

    @Test("a read that stays NACKed goes back to polling and ends in a typed error, not a hang", .timeLimit(.minutes(1)))
    func readNeverAnswered() async throws {
        let rig = Rig(warmUpSamples: 0)
        _ = try await rig.driver.measure()
        rig.chip.wire.setExecutionTime(prematureReads: .max)
        let error = await #expect(throws: SCD4xError.self) { try await rig.driver.measure() }
        #expect(error?.code == .notReady(command: 0xE4B8))
    }

    @Test("a hung chip (never data-ready) is a typed error after 25 polls", .timeLimit(.minutes(1)))
    func stalled() async throws {
        let pauses = RecordedPauses()
        let rig = Rig(pause: pauses.pause)
        rig.chip.stallMeasurements(true)
        let error = await #expect(throws: SCD4xError.self) { try await rig.driver.measure() }
        #expect(error?.code == .notReady(command: 0xE4B8))
        #expect(error?.description.contains("no new measurement") == true)
        #expect(rig.chip.wire.acknowledgedWrites.filter { $0 == [0xE4, 0xB8] }.count == 25)
        #expect(pauses.all.filter { $0 == .seconds(3) }.count == 24)

        rig.chip.stallMeasurements(false)
        _ = try await rig.driver.measure()
        #expect(rig.chip.startCount == 2)
    }

    @Test("a bad CRC is counted, the next sample is fetched, the corrupted one never returned")
    func badCRC() async throws {
        let rig = Rig(warmUpSamples: 0)
        rig.chip.setCO2(ppm: 700)
        _ = try await rig.driver.measure()
        rig.chip.wire.clearTransfers()
        rig.chip.enqueueSamples([SimulatedSCD4x.Measurement(co2: 9999, temperatureTicks: 0x6667, humidityTicks: 0x5EB9)])
        rig.chip.wire.corruptChecksums(ofNextWords: 1, skipping: 1)  // the CO₂ word of the next measurement
        let values = try await rig.driver.measure()
        #expect(value(of: .co2, in: values)?.value == 700)
        #expect(rig.driver.checksumErrorCount == 1)
        #expect(rig.chip.wire.transfers == sample + sample)
    }

    @Test("persistent CRC errors and garbage end in typed errors, every failure counted")
    func persistent() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        rig.chip.wire.corruptChecksums(ofNextWords: 1000)
        let error = await #expect(throws: SCD4xError.self) { try await rig.driver.measure() }
        #expect(error?.code == .checksumMismatch(command: 0xE4B8, word: 0))
        #expect(rig.driver.checksumErrorCount == 3)

        rig.chip.wire.clearFaults()
        _ = try await rig.driver.measure()
        rig.chip.wire.sendGarbage(onNextReads: 10)
        await #expect(throws: SCD4xError.self) { try await rig.driver.measure() }
        #expect(rig.driver.checksumErrorCount == 6)
    }

    @Test("a NACKed command propagates as I2CError; the next measure stops, reads the serial and starts again")
    func nack() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        rig.chip.wire.nackNextTransfers(1)
        let error = await #expect(throws: I2CError.self) { try await rig.driver.measure() }
        #expect(error?.code == .noAcknowledge)
        rig.chip.wire.clearTransfers()
        _ = try await rig.driver.measure()
        #expect(rig.chip.wire.transfers.prefix(4) == [.write([0x3F, 0x86]), .write([0x36, 0x82]), .read(count: 9), .write([0x21, 0xAC])])
        #expect(rig.chip.startCount == 2)
    }

    @Test(
        "implausible values are flagged, not dropped",
        arguments: [
            (SimulatedSCD4x.Measurement(ppm: 0, celsius: 21, percentRH: 50), Quantity.co2),
            (SimulatedSCD4x.Measurement(ppm: 41_000, celsius: 21, percentRH: 50), .co2),
            (SimulatedSCD4x.Measurement(ppm: 420, celsius: 65, percentRH: 50), .temperature),
            (SimulatedSCD4x.Measurement(ppm: 420, celsius: -20, percentRH: 50), .temperature),
        ]
    )
    func implausible(measurement: SimulatedSCD4x.Measurement, flagged: Quantity) async throws {
        let rig = Rig(warmUpSamples: 0)
        rig.chip.setMeasurement(measurement)
        let values = try await rig.driver.measure()
        for measured in values {
            #expect(measured.quality == (measured.quantity == flagged ? .implausible : .good))
        }
    }

    @Test("setCO2 and setEnvironment round trip", arguments: [(415.0, 21.5, 55.0), (2400.0, -5.25, 90.0), (800.0, 35.0, 0.0)])
    func roundTrip(ppm: Double, celsius: Double, percentRH: Double) async throws {
        let rig = Rig()
        rig.chip.setCO2(ppm: ppm)
        rig.chip.setEnvironment(celsius: celsius, percentRH: percentRH)
        let values = try await rig.driver.measure()
        #expect(value(of: .co2, in: values)?.value == ppm)
        #expect(abs((value(of: .temperature, in: values)?.value ?? .nan) - celsius) <= 0.0014)
        #expect(abs((value(of: .relativeHumidity, in: values)?.value ?? .nan) - percentRH) <= 0.001)
    }
}

@Suite("SimulatedSCD4x command state machine")
struct SimulatedSCD4xTests {
    private func rig() -> (chip: SimulatedSCD4x, device: any I2CDevice) {
        attach(SimulatedSCD4x(), at: address)
    }

    @Test("while measuring only read, data-ready, stop and ambient pressure are accepted")
    func commandsDuringMeasurement() async throws {
        let (_, device) = self.rig()
        try await device.write([0x21, 0xB1])
        await #expect(throws: I2CError.self) { try await device.write([0x36, 0x82]) }
        await #expect(throws: I2CError.self) { try await device.write(commandBytes(0x241D, 0x07E6)) }
        try await device.write(commandBytes(0xE000, 987))
        try await device.write([0x3F, 0x86])
        try await device.write([0xE0, 0x00])
        #expect(try SensirionWords.decode(try await device.read(count: 3)) == [987])
    }

    @Test("datasheet frames are accepted in idle and read back; a bad argument CRC is NACKed")
    func settings() async throws {
        let (_, device) = self.rig()
        try await device.write([0x24, 0x1D, 0x07, 0xE6, 0x48])
        try await device.write([0x23, 0x18])
        #expect(try SensirionWords.decode(try await device.read(count: 3)) == [0x07E6])
        try await device.write([0x24, 0x27, 0x07, 0x9E, 0x09])
        await #expect(throws: I2CError.self) { try await device.write([0x24, 0x27, 0x07, 0x9E, 0x0A]) }
        try await device.write([0x23, 0x22])
        #expect(try SensirionWords.decode(try await device.read(count: 3)) == [1950])
        try await device.write([0x20, 0x2F])
        #expect(try SensirionWords.decode(try await device.read(count: 3)) == [0x1000])
    }

    @Test("forced recalibration: 0xFFFF before any sample; afterwards 0x8000 + correction (480 vs 530 ppm → 0x7FCE)")
    func forcedRecalibration() async throws {
        let (chip, device) = self.rig()
        try await device.write([0x36, 0x2F, 0x01, 0xE0, 0xB4])
        #expect(try SensirionWords.decode(try await device.read(count: 3)) == [0xFFFF])
        chip.setCO2(ppm: 530)
        try await device.write([0x21, 0xB1])
        try await device.write([0xE4, 0xB8])
        _ = try await device.read(count: 3)
        try await device.write([0x3F, 0x86])
        try await device.write([0x36, 0x2F, 0x01, 0xE0, 0xB4])
        #expect(try SensirionWords.decode(try await device.read(count: 3)) == [0x7FCE])
    }

    @Test("the serial number goes on the wire as the datasheet prints it: f8 96 31 9f 07 c2 3b be 89")
    func serialOnTheWire() async throws {
        let (_, device) = self.rig()
        try await device.write([0x36, 0x82])
        #expect(try await device.read(count: 9) == [0xF8, 0x96, 0x31, 0x9F, 0x07, 0xC2, 0x3B, 0xBE, 0x89])
    }

    @Test("the datasheet measurement goes on the wire as 01 f4 33 66 67 a2 5e b9 3c")
    func measurementOnTheWire() async throws {
        let (chip, device) = self.rig()
        chip.setMeasurement(SimulatedSCD4x.referenceMeasurement)
        try await device.write([0x21, 0xB1])
        try await device.write([0xE4, 0xB8])
        #expect(try await device.read(count: 3) == SensirionWords.encode([0x8006]))
        try await device.write([0xEC, 0x05])
        #expect(try await device.read(count: 9) == [0x01, 0xF4, 0x33, 0x66, 0x67, 0xA2, 0x5E, 0xB9, 0x3C])
    }

    @Test("read_measurement with an empty buffer is NACKed; a sample is read once")
    func emptyBuffer() async throws {
        let (_, device) = self.rig()
        try await device.write([0x21, 0xB1])
        try await device.write([0xEC, 0x05])
        await #expect(throws: I2CError.self) { try await device.read(count: 9) }
        try await device.write([0xE4, 0xB8])
        _ = try await device.read(count: 3)
        try await device.write([0xEC, 0x05])
        #expect(try await device.read(count: 9).count == 9)
        try await device.write([0xEC, 0x05])
        await #expect(throws: I2CError.self) { try await device.read(count: 9) }
    }
}
