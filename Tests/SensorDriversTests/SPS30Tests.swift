import KiezboxCore
import SensorDrivers
import Testing

private let address: UInt8 = 0x69

/// A simulated SPS30 on a simulated bus with a driver pointed at it.
private typealias Rig = SensirionRig<SimulatedSPS30, SPS30>

extension Rig {
    fileprivate init(
        chip: SimulatedSPS30 = SimulatedSPS30(),
        pause: @escaping Pause = instantSensirionPause,
        outputFormat: SPS30.OutputFormat = .float,
        warmUpSamples: Int = 0,
        sleepsBetweenMeasurements: Bool = false
    ) {
        self.init(chip, at: address) { device in
            SPS30(
                device: device,
                pause: pause,
                outputFormat: outputFormat,
                warmUpSamples: warmUpSamples,
                sleepsBetweenMeasurements: sleepsBetweenMeasurements
            )
        }
    }
}

private let initialisation: [SimulatedSensirionWire.Transfer] = [
    .write([0xD3, 0x04]),  // reset
    .write([0x01, 0x04]),  // stop: a no-op that lets the bus recover from the reset
    .write([0xD1, 0x00]), .read(count: 3),  // firmware
    .write([0xD0, 0x33]), .read(count: 48),  // serial
    .write([0x00, 0x10, 0x03, 0x00, 0xAC]),  // start, float format
]
private let floatSample: [SimulatedSensirionWire.Transfer] = [
    .write([0x02, 0x02]), .read(count: 3), .write([0x03, 0x00]), .read(count: 60),
]
private let statusRead: [SimulatedSensirionWire.Transfer] = [.write([0xD2, 0x06]), .read(count: 6)]

private func concentrations(_ values: [MeasuredValue]) -> [Double] {
    [Quantity.pm1, .pm2_5, .pm4, .pm10].map { value(of: $0, in: values)?.value ?? .nan }
}

@Suite("SPS30 framing (sensors.md §7, I²C)")
struct SPS30FramingTests {
    @Test("PM2.5 = 12.25 µg/m³ is 41 44 05 00 00 81 on the wire; start (float) is 00 10 03 00 ac")
    func vectors() throws {
        #expect(SensirionWords.encode(SensirionWords.words(of: 12.25)) == [0x41, 0x44, 0x05, 0x00, 0x00, 0x81])
        #expect(SensirionWords.command(0x0010, arguments: [0x0300]) == [0x00, 0x10, 0x03, 0x00, 0xAC])
        let words = try SensirionWords.decode([0x41, 0x44, 0x05, 0x00, 0x00, 0x81])
        #expect(SPS30.massConcentrations(from: [0, 0] + words, format: .float)[1] == 12.25)
    }

    @Test("60-byte round trip of ten floats, in the datasheet order")
    func roundTrip() async throws {
        let measurement = SimulatedSPS30.Measurement(
            pm1: 3.5, pm2_5: 12.25, pm4: 14.0, pm10: 15.75,
            numberConcentrations: [20, 25.5, 27, 27.25, 27.5], typicalParticleSize: 0.625
        )
        let (_, device) = attach(SimulatedSPS30(measurement: measurement), at: address)
        try await device.write([0x00, 0x10, 0x03, 0x00, 0xAC])
        try await device.write([0x02, 0x02])
        #expect(try await device.read(count: 3) == [0x00, 0x01, 0xB0])
        try await device.write([0x03, 0x00])
        let bytes = try await device.read(count: 60)
        #expect(bytes[6...11] == [0x41, 0x44, 0x05, 0x00, 0x00, 0x81])
        let floats = SensirionWords.floats(from: try SensirionWords.decode(bytes))
        #expect(floats == [3.5, 12.25, 14.0, 15.75, 20, 25.5, 27, 27.25, 27.5, 0.625])
    }

    @Test("serial number text is ASCII up to the first NUL")
    func serialText() {
        #expect(SPS30.serialNumber(from: [0x4142, 0x4300, 0x4445]) == "ABC")
        #expect(SPS30.serialNumber(from: []) == "")
    }
}

@Suite("SPS30 driver on a simulated bus")
struct SPS30DriverTests {
    @Test("first measure on the wire: reset, stop, firmware, serial, start; then data-ready, 60-byte read, status")
    func onTheWire() async throws {
        let pauses = RecordedPauses()
        let rig = Rig(pause: pauses.pause)
        rig.chip.setParticulates(pm1: 3.5, pm2_5: 12.25, pm4: 14.0, pm10: 15.75)
        let values = try await rig.driver.measure()
        #expect(values.map(\.quantity) == [.pm1, .pm2_5, .pm4, .pm10])
        #expect(concentrations(values) == [3.5, 12.25, 14.0, 15.75])
        #expect(values.allSatisfy { $0.quality == .good })
        #expect(rig.chip.wire.transfers == initialisation + floatSample + statusRead)
        #expect(pauses.all == [.milliseconds(300), .milliseconds(20)])
        #expect(rig.driver.serialNumber == "8C2D1E0F5A6B7C8D")
        #expect(rig.driver.firmwareVersion == 0x0202)
        #expect(rig.driver.statusRegister == 0)
        #expect(rig.driver.chipName == "SPS30")

        rig.chip.wire.clearTransfers()
        _ = try await rig.driver.measure()
        #expect(rig.chip.wire.transfers == floatSample + statusRead)
        #expect(rig.chip.mode == .measuring)
    }

    @Test("warm-up: 30 samples (30 s) are discarded after a start by default; the spin-up transient is never returned")
    func warmUp() async throws {
        let (chip, device) = attach(SimulatedSPS30(), at: address)
        let driver = SPS30(device: device, pause: instantSensirionPause)
        chip.setParticulates(pm1: 2, pm2_5: 3, pm4: 4, pm10: 5)
        chip.enqueueSamples(Array(repeating: SimulatedSPS30.Measurement(pm1: 900, pm2_5: 950, pm4: 990, pm10: 999), count: 30))
        let values = try await driver.measure()
        #expect(concentrations(values) == [2, 3, 4, 5])
        #expect(chip.sampleCounts.read == 31)

        _ = try await driver.measure()
        #expect(chip.sampleCounts.read == 32)
    }

    @Test("uint16 format: start 00 10 05 00 f6, 30-byte reads, whole µg/m³")
    func unsignedFormat() async throws {
        let rig = Rig(outputFormat: .unsignedInteger)
        rig.chip.setParticulates(pm1: 3.4, pm2_5: 12.6, pm4: 14.0, pm10: 15.5)
        let values = try await rig.driver.measure()
        let start = SensirionWords.command(0x0010, arguments: [0x0500])
        #expect(start == [0x00, 0x10, 0x05, 0x00, SensirionCRC.checksum(of: 0x0500)])
        #expect(rig.chip.wire.acknowledgedWrites.contains(start))
        #expect(rig.chip.wire.transfers.contains(.read(count: 30)))
        #expect(rig.chip.reportsUnsignedIntegers)
        #expect(concentrations(values) == [3, 13, 14, 16])
    }

    @Test("polling until data is ready, 100 ms apart")
    func polling() async throws {
        let pauses = RecordedPauses()
        let rig = Rig(pause: pauses.pause)
        rig.chip.setSamplePeriod(dataReadyPolls: 9)
        _ = try await rig.driver.measure()
        #expect(pauses.all.filter { $0 == .milliseconds(100) }.count == 9)
    }

    @Test("a hung sensor is a typed error after 50 polls (5 s), not a hang", .timeLimit(.minutes(1)))
    func stalled() async throws {
        let rig = Rig()
        rig.chip.stallMeasurements(true)
        let error = await #expect(throws: SPS30Error.self) { try await rig.driver.measure() }
        #expect(error?.code == .notReady(command: 0x0202))
        #expect(error?.description.contains("5 V") == true)
        #expect(rig.chip.wire.acknowledgedWrites.filter { $0 == [0x02, 0x02] }.count == 50)
    }

    @Test("NACKed reads (not ready yet) are read again, not errors")
    func notReadyReads() async throws {
        let rig = Rig()
        rig.chip.wire.setExecutionTime(prematureReads: 2)
        let values = try await rig.driver.measure()
        #expect(values.count == 4)
        #expect(rig.chip.wire.nackedReadCount == 2 * 5)  // firmware, serial, data-ready, read, status
    }

    @Test("fan error (status bit 4) is a typed error; the next measure resets and starts again")
    func fanError() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        rig.chip.setFanFailure(true)
        let error = await #expect(throws: SPS30Error.self) { try await rig.driver.measure() }
        #expect(error?.code == .chip(.fanFailure))
        #expect(error?.description.contains("fan error") == true)
        #expect(rig.driver.statusRegister == SPS30.StatusBit.fanError)

        rig.chip.setFanFailure(false)
        let values = try await rig.driver.measure()
        #expect(values.count == 4)
        #expect(rig.chip.resetCount == 2)
        #expect(rig.chip.startCount == 2)
        #expect(rig.driver.statusRegister == 0)
    }

    @Test("laser error (status bit 5) is a typed error")
    func laserError() async throws {
        let rig = Rig()
        rig.chip.setLaserFailure(true)
        let error = await #expect(throws: SPS30Error.self) { try await rig.driver.measure() }
        #expect(error?.code == .chip(.laserFailure))
        #expect(error?.description.contains("replace") == true)
    }

    @Test("fan speed warning (status bit 21) marks the values degraded, not dropped")
    func fanSpeedWarning() async throws {
        let rig = Rig()
        rig.chip.setFanSpeedOutOfRange(true)
        let values = try await rig.driver.measure()
        #expect(values.count == 4)
        #expect(values.allSatisfy { $0.quality == .degraded })
        #expect(rig.driver.statusRegister == SPS30.StatusBit.fanSpeedWarning)
    }

    @Test("firmware before 2.2 has no status register: it is not read")
    func oldFirmware() async throws {
        let rig = Rig(chip: SimulatedSPS30(firmwareVersion: 0x0201))
        rig.chip.setFanFailure(true)
        let values = try await rig.driver.measure()
        #expect(values.count == 4)
        #expect(!rig.chip.wire.acknowledgedWrites.contains([0xD2, 0x06]))
        #expect(rig.driver.statusRegister == nil)
    }

    @Test(
        "implausible: above 1000 µg/m³, negative, or not cumulative (PM1 ≤ PM2.5 ≤ PM4 ≤ PM10)",
        arguments: [
            ([Float(5), 8, 9, 1200], [ReadingQuality.good, .good, .good, .implausible]),
            ([Float(-1), 8, 9, 10], [ReadingQuality.implausible, .good, .good, .good]),
            ([Float(9), 8, 9, 10], [ReadingQuality](repeating: .implausible, count: 4)),
            ([Float(5), 8, 9, 10], [ReadingQuality](repeating: .good, count: 4)),
        ]
    )
    func implausible(pm: [Float], qualities: [ReadingQuality]) async throws {
        let rig = Rig()
        rig.chip.setMeasurement(SimulatedSPS30.Measurement(pm1: pm[0], pm2_5: pm[1], pm4: pm[2], pm10: pm[3]))
        let values = try await rig.driver.measure()
        #expect(values.map(\.quality) == qualities)
        #expect(concentrations(values) == pm.map(Double.init))
    }

    @Test("a NaN with a valid CRC is a typed error")
    func notANumber() async throws {
        let rig = Rig()
        rig.chip.setMeasurement(SimulatedSPS30.Measurement(pm1: 1, pm2_5: .nan, pm4: 3, pm10: 4))
        let error = await #expect(throws: SPS30Error.self) { try await rig.driver.measure() }
        #expect(error?.code == .chip(.nonFiniteValue(field: "pm2_5")))
    }

    @Test("bad CRC: counted, the next sample fetched, the corrupted one never returned; persistent: typed error")
    func badCRC() async throws {
        let rig = Rig()
        rig.chip.setParticulates(pm1: 1, pm2_5: 2, pm4: 3, pm10: 4)
        _ = try await rig.driver.measure()
        rig.chip.wire.clearTransfers()
        rig.chip.enqueueSamples([SimulatedSPS30.Measurement(pm1: 500, pm2_5: 600, pm4: 700, pm10: 800)])
        // Corrupt the PM10 low word: skip the data-ready word and seven words of the measurement.
        rig.chip.wire.corruptChecksums(ofNextWords: 1, skipping: 8)
        let values = try await rig.driver.measure()
        #expect(concentrations(values) == [1, 2, 3, 4])
        #expect(rig.driver.checksumErrorCount == 1)
        #expect(rig.chip.wire.transfers == floatSample + floatSample + statusRead)

        rig.chip.wire.corruptChecksums(ofNextWords: 10_000)
        let error = await #expect(throws: SPS30Error.self) { try await rig.driver.measure() }
        #expect(error?.code == .checksumMismatch(command: 0x0202, word: 0))
        #expect(rig.driver.checksumErrorCount == 4)
    }

    @Test("garbage is caught and retried; persistent garbage is a typed error, no hang")
    func garbage() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        rig.chip.wire.sendGarbage(onNextReads: 1)
        _ = try await rig.driver.measure()
        #expect(rig.driver.checksumErrorCount == 1)
        rig.chip.wire.sendGarbage(onNextReads: 1000)
        await #expect(throws: SPS30Error.self) { try await rig.driver.measure() }
    }

    @Test("sleeping between measurements: stop and sleep after, wake twice (first NACKed), start and warm up before")
    func dutyCycle() async throws {
        let rig = Rig(warmUpSamples: 2, sleepsBetweenMeasurements: true)
        _ = try await rig.driver.measure()
        #expect(rig.chip.mode == .sleeping)
        #expect(rig.chip.sampleCounts.read == 3)
        #expect(rig.chip.wire.acknowledgedWrites.suffix(2) == [[0x01, 0x04], [0x10, 0x01]])

        rig.chip.wire.clearTransfers()
        let values = try await rig.driver.measure()
        #expect(values.count == 4)
        #expect(
            rig.chip.wire.transfers.prefix(3)
                == [.nackedWrite([0x11, 0x03]), .write([0x11, 0x03]), .write([0x00, 0x10, 0x03, 0x00, 0xAC])]
        )
        #expect(rig.chip.sampleCounts.read == 6)
        #expect(rig.chip.mode == .sleeping)
        #expect(rig.chip.resetCount == 1)
    }

    @Test("a sensor left asleep by a previous run is woken before the reset (the NACKed reset already woke the interface)")
    func leftAsleep() async throws {
        let rig = Rig()
        rig.chip.setMode(.sleeping)
        let values = try await rig.driver.measure()
        #expect(values.count == 4)
        #expect(
            rig.chip.wire.transfers.prefix(4)
                == [.nackedWrite([0xD3, 0x04]), .write([0x11, 0x03]), .nackedWrite([0x11, 0x03]), .write([0xD3, 0x04])]
        )
    }

    @Test("an absent sensor is an I2CError (address NACK), also through the wake-up attempt")
    func absent() async throws {
        let bus = SimulatedI2CBus(name: "sim:i2c-1")
        let driver = SPS30(device: bus.device(at: address), pause: instantSensirionPause)
        let error = await #expect(throws: I2CError.self) { try await driver.measure() }
        #expect(error?.code == .noAcknowledge)
    }

    @Test("a NACK mid-measurement propagates; the next measure resets and starts again")
    func nack() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        rig.chip.wire.nackNextTransfers(1)
        await #expect(throws: I2CError.self) { try await rig.driver.measure() }
        rig.chip.wire.clearTransfers()
        _ = try await rig.driver.measure()
        #expect(rig.chip.wire.transfers == initialisation + floatSample + statusRead)
    }

    @Test("setParticulates round trip", arguments: [(0.0, 0.0, 0.0, 0.0), (4.2, 7.9, 9.1, 10.4), (35.5, 55.0, 61.2, 66.6)])
    func roundTrip(pm1: Double, pm2_5: Double, pm4: Double, pm10: Double) async throws {
        let rig = Rig()
        rig.chip.setParticulates(pm1: pm1, pm2_5: pm2_5, pm4: pm4, pm10: pm10)
        let values = try await rig.driver.measure()
        #expect(concentrations(values) == [pm1, pm2_5, pm4, pm10].map { Double(Float($0)) })
    }
}

@Suite("SimulatedSPS30 command state machine")
struct SimulatedSPS30Tests {
    private func rig() -> (chip: SimulatedSPS30, device: any I2CDevice) {
        attach(SimulatedSPS30(), at: address)
    }

    @Test("start is NACKed while measuring or with a wrong argument; read is NACKed in idle")
    func modes() async throws {
        let (chip, device) = self.rig()
        await #expect(throws: I2CError.self) { try await device.write(commandBytes(0x0010, 0x0400)) }
        await #expect(throws: I2CError.self) { try await device.write([0x03, 0x00]) }
        await #expect(throws: I2CError.self) { try await device.read(count: 60) }
        try await device.write(commandBytes(0x0010, 0x0300))
        await #expect(throws: I2CError.self) { try await device.write(commandBytes(0x0010, 0x0300)) }
        await #expect(throws: I2CError.self) { try await device.write([0x10, 0x01]) }  // no sleep while measuring
        #expect(chip.mode == .measuring)
    }

    @Test("sleep turns the interface off: the first transfer only wakes it; then 0x1103 goes to idle")
    func sleep() async throws {
        let (chip, device) = self.rig()
        try await device.write([0x10, 0x01])
        #expect(chip.mode == .sleeping)
        await #expect(throws: I2CError.self) { try await device.write([0x11, 0x03]) }
        await #expect(throws: I2CError.self) { try await device.write([0xD1, 0x00]) }
        try await device.write([0x11, 0x03])
        #expect(chip.mode == .idle)
    }

    @Test("auto-clean interval reads one week by default and can be set; status clears with 0xD210")
    func settingsAndStatus() async throws {
        let (chip, device) = self.rig()
        try await device.write([0x80, 0x04])
        #expect(try SensirionWords.decode(try await device.read(count: 6)) == [0x0009, 0x3A80])
        try await device.write(commandBytes(0x8004, 0x0000, 0x0E10))
        #expect(chip.autoCleanInterval == 3600)
        chip.setFanSpeedOutOfRange(true)
        try await device.write(commandBytes(0x0010, 0x0300))
        try await device.write([0xD2, 0x06])
        #expect(try SensirionWords.decode(try await device.read(count: 6)) == [0x0020, 0x0000])
        chip.setFanSpeedOutOfRange(false)
        try await device.write([0xD2, 0x10])
        #expect(chip.status == 0)
    }
}
