import KiezboxCore
import SensorDrivers
import Testing

private let address: UInt8 = 0x61

/// The interface description's example answer to 0x0300 (`sensors.md` §5).
private let referenceFrame: [UInt8] = [
    0x43, 0xDB, 0xCB, 0x8C, 0x2E, 0x8F, 0x41, 0xD9, 0x70, 0xE7, 0xFF, 0xF5, 0x42, 0x43, 0xBF, 0x3A, 0x1B, 0x74,
]

/// A simulated SCD30 on a simulated bus with a driver pointed at it.
private typealias Rig = SensirionRig<SimulatedSCD30, SCD30>

extension Rig {
    fileprivate init(
        pause: @escaping Pause = instantSensirionPause,
        measurementInterval: Int = 30,
        ambientPressure: Int? = nil,
        warmUpSamples: Int = 1
    ) {
        self.init(SimulatedSCD30(), at: address) { device in
            SCD30(
                device: device,
                pause: pause,
                measurementInterval: measurementInterval,
                ambientPressure: ambientPressure,
                warmUpSamples: warmUpSamples
            )
        }
    }
}

private let dataReadyPoll: [SimulatedSensirionWire.Transfer] = [.write([0x02, 0x02]), .read(count: 3)]
private let readMeasurement: [SimulatedSensirionWire.Transfer] = [.write([0x03, 0x00]), .read(count: 18)]
private let sample = dataReadyPoll + readMeasurement

@Suite("SCD30 framing and float decoding (sensors.md §5)")
struct SCD30FramingTests {
    @Test("the interface-description frame: all six CRCs valid, 439.09515 ppm, 27.23828 °C, 48.80674 %")
    func referenceVector() throws {
        let words = try SensirionWords.decode(referenceFrame)
        #expect(words == [0x43DB, 0x8C2E, 0x41D9, 0xE7FF, 0x4243, 0x3A1B])
        let (ppm, celsius, percentRH) = SCD30.measurement(from: words)
        #expect(abs(Double(ppm) - 439.09515) < 1e-4)
        #expect(abs(Double(celsius) - 27.23828) < 1e-5)
        #expect(abs(Double(percentRH) - 48.80674) < 1e-5)
    }

    @Test("the simulation puts exactly the reference frame on the wire")
    func simulationFrame() async throws {
        let (chip, device) = attach(SimulatedSCD30(measurement: SimulatedSCD30.referenceMeasurement), at: address)
        chip.setSamplePeriod(dataReadyPolls: 1)
        try await device.write([0x00, 0x10, 0x00, 0x00, 0x81])
        try await device.write([0x02, 0x02])
        #expect(try await device.read(count: 3) == [0x00, 0x00, 0x81])  // not ready
        try await device.write([0x02, 0x02])
        #expect(try await device.read(count: 3) == [0x00, 0x01, 0xB0])  // ready
        try await device.write([0x03, 0x00])
        #expect(try await device.read(count: 18) == referenceFrame)
        try await device.write([0x02, 0x02])
        #expect(try await device.read(count: 3) == [0x00, 0x00, 0x81])  // not ready: read cleared it
    }
}

@Suite("SCD30 driver on a simulated bus")
struct SCD30DriverTests {
    @Test("reference frame end to end (no warm-up discard)")
    func endToEnd() async throws {
        let rig = Rig(warmUpSamples: 0)
        rig.chip.setMeasurement(SimulatedSCD30.referenceMeasurement)
        let values = try await rig.driver.measure()
        #expect(values.map(\.quantity) == [.co2, .temperature, .relativeHumidity])
        #expect(value(of: .co2, in: values)?.value == Double(Float(bitPattern: 0x43DB_8C2E)))
        #expect(value(of: .temperature, in: values)?.value == Double(Float(bitPattern: 0x41D9_E7FF)))
        #expect(value(of: .relativeHumidity, in: values)?.value == Double(Float(bitPattern: 0x4243_3A1B)))
        #expect(values.allSatisfy { $0.quality == .good })
        #expect(rig.driver.firmwareVersion == 0x0342)
        #expect(rig.driver.chipName == "SCD30")
    }

    @Test("first measure on the wire: firmware, interval read, interval write, start; separate messages, no repeated start")
    func initialisationOnTheWire() async throws {
        let pauses = RecordedPauses()
        let rig = Rig(pause: pauses.pause)
        _ = try await rig.driver.measure()
        let intervalWrite = commandBytes(0x4600, 30)
        #expect(intervalWrite == [0x46, 0x00, 0x00, 0x1E, SensirionCRC.checksum(of: 30)])
        #expect(
            rig.chip.wire.transfers
                == [
                    .write([0xD1, 0x00]), .read(count: 3),
                    .write([0x46, 0x00]), .read(count: 3),
                    .write(intervalWrite),
                    .write([0x00, 0x10, 0x00, 0x00, 0x81]),
                ] + sample + sample
        )
        #expect(
            pauses.all
                == [.milliseconds(3), .milliseconds(3), .milliseconds(20), .milliseconds(20)]
                + Array(repeating: .milliseconds(3), count: 4)
        )
        #expect(rig.chip.settings.measurementInterval == 30)
        #expect(rig.chip.isMeasuring)
    }

    @Test("reference command frames: start 00 10 00 00 81, start at 1013 mbar 00 10 03 f5 db, interval 2 s 46 00 00 02 e3")
    func commandFrames() async throws {
        let rig = Rig(measurementInterval: 2, ambientPressure: 1013)
        rig.chip.setSettings(SimulatedSCD30.Settings(measurementInterval: 30))
        _ = try await rig.driver.measure()
        let writes = rig.chip.wire.acknowledgedWrites
        #expect(writes.contains([0x46, 0x00, 0x00, 0x02, 0xE3]))
        #expect(writes.contains([0x00, 0x10, 0x03, 0xF5, 0xDB]))
        #expect(rig.chip.settings.ambientPressure == 1013)
        // ASC is never touched: 53 06 00 00 81 would switch it off.
        #expect(!writes.contains { $0.starts(with: [0x53, 0x06]) })
        #expect(SensirionWords.command(0x5306, arguments: [0]) == [0x53, 0x06, 0x00, 0x00, 0x81])
    }

    @Test("an interval already set is not written again (non-volatile memory cycles)")
    func intervalUnchanged() async throws {
        let rig = Rig()
        rig.chip.setSettings(SimulatedSCD30.Settings(measurementInterval: 30))
        _ = try await rig.driver.measure()
        #expect(rig.chip.settingWriteCount == 0)
        #expect(!rig.chip.wire.acknowledgedWrites.contains { $0.count == 5 && $0.starts(with: [0x46, 0x00]) })
    }

    @Test("arguments are clamped to the chip's ranges")
    func clamping() async throws {
        let rig = Rig(measurementInterval: 1, ambientPressure: 500)
        _ = try await rig.driver.measure()
        #expect(rig.chip.settings.measurementInterval == 2)
        #expect(rig.chip.settings.ambientPressure == 700)
    }

    @Test("the first sample after a start is discarded; later measures read one sample each")
    func warmUp() async throws {
        let rig = Rig()
        rig.chip.setCO2(ppm: 850)
        rig.chip.enqueueSamples([SimulatedSCD30.Measurement(ppm: 0, celsius: -40, percentRH: 0)])
        let values = try await rig.driver.measure()
        #expect(value(of: .co2, in: values)?.value == 850)
        #expect(rig.chip.sampleCounts.read == 2)

        rig.chip.wire.clearTransfers()
        _ = try await rig.driver.measure()
        #expect(rig.chip.wire.transfers == sample)
        #expect(rig.chip.sampleCounts.read == 3)
    }

    @Test("more warm-up samples discard more", arguments: [0, 1, 3])
    func warmUpCount(samples: Int) async throws {
        let rig = Rig(warmUpSamples: samples)
        _ = try await rig.driver.measure()
        #expect(rig.chip.sampleCounts.read == samples + 1)
    }

    @Test("data-ready is polled a tenth of the interval apart until a sample waits")
    func polling() async throws {
        let pauses = RecordedPauses()
        let rig = Rig(pause: pauses.pause, warmUpSamples: 0)
        rig.chip.setSamplePeriod(dataReadyPolls: 4)
        let values = try await rig.driver.measure()
        #expect(values.count == 3)
        #expect(pauses.all.filter { $0 == .seconds(3) }.count == 4)
        #expect(rig.chip.wire.acknowledgedWrites.filter { $0 == [0x02, 0x02] }.count == 5)
    }

    @Test("a hung chip (data-ready never set) is a typed error after 25 polls, not a hang", .timeLimit(.minutes(1)))
    func stalled() async throws {
        let pauses = RecordedPauses()
        let rig = Rig(pause: pauses.pause)
        rig.chip.stallMeasurements(true)
        let error = await #expect(throws: SCD30Error.self) { try await rig.driver.measure() }
        #expect(error?.code == .notReady(command: 0x0202))
        #expect(error?.description.contains("no new measurement") == true)
        #expect(rig.chip.wire.acknowledgedWrites.filter { $0 == [0x02, 0x02] }.count == 25)
        #expect(pauses.total < .seconds(80))

        // Re-initialised and restarted on the next measure.
        rig.chip.stallMeasurements(false)
        _ = try await rig.driver.measure()
        #expect(rig.chip.startCount == 2)
    }

    @Test("a bad CRC in the measurement is counted and the next sample is used, never the corrupted one")
    func badCRC() async throws {
        let rig = Rig(warmUpSamples: 0)
        rig.chip.setCO2(ppm: 600)
        _ = try await rig.driver.measure()
        rig.chip.wire.clearTransfers()
        // Corrupt the CO₂ low word of the next measurement: skip the data-ready word and the CO₂ high word.
        rig.chip.wire.corruptChecksums(ofNextWords: 1, skipping: 2)
        rig.chip.enqueueSamples([SimulatedSCD30.Measurement(ppm: 9999, celsius: 21, percentRH: 50)])
        let values = try await rig.driver.measure()
        #expect(value(of: .co2, in: values)?.value == 600)
        #expect(rig.driver.checksumErrorCount == 1)
        #expect(rig.chip.wire.transfers == sample + sample)
    }

    @Test("persistent CRC errors: typed error after 3 attempts, all counted")
    func persistentBadCRC() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        rig.chip.wire.corruptChecksums(ofNextWords: 1000)
        let error = await #expect(throws: SCD30Error.self) { try await rig.driver.measure() }
        #expect(error?.code == .checksumMismatch(command: 0x0202, word: 0))
        #expect(error?.description.contains("50 kHz") == true)
        #expect(rig.driver.checksumErrorCount == 3)
    }

    @Test("garbage is caught by the CRC and retried")
    func garbage() async throws {
        let rig = Rig()
        rig.chip.setCO2(ppm: 777)
        _ = try await rig.driver.measure()
        rig.chip.wire.sendGarbage(onNextReads: 2)
        let values = try await rig.driver.measure()
        #expect(value(of: .co2, in: values)?.value == 777)
        #expect(rig.driver.checksumErrorCount == 2)
    }

    @Test("a NaN with a valid CRC is a typed error, not a reading")
    func notANumber() async throws {
        let rig = Rig(warmUpSamples: 0)
        rig.chip.setMeasurement(SimulatedSCD30.Measurement(ppm: .nan, celsius: 21, percentRH: 50))
        let error = await #expect(throws: SCD30Error.self) { try await rig.driver.measure() }
        #expect(error?.code == .chip(.nonFiniteValue(field: "CO₂")))
    }

    @Test(
        "values outside plausible ranges are flagged, not dropped",
        arguments: [
            (SimulatedSCD30.Measurement(ppm: 100, celsius: 21, percentRH: 50), Quantity.co2),
            (SimulatedSCD30.Measurement(ppm: 45_000, celsius: 21, percentRH: 50), .co2),
            (SimulatedSCD30.Measurement(ppm: 420, celsius: 75, percentRH: 50), .temperature),
            (SimulatedSCD30.Measurement(ppm: 420, celsius: 21, percentRH: 101.5), .relativeHumidity),
            (SimulatedSCD30.Measurement(ppm: 420, celsius: 21, percentRH: -0.5), .relativeHumidity),
        ]
    )
    func implausible(measurement: SimulatedSCD30.Measurement, flagged: Quantity) async throws {
        let rig = Rig(warmUpSamples: 0)
        rig.chip.setMeasurement(measurement)
        let values = try await rig.driver.measure()
        #expect(values.count == 3)
        for measured in values {
            #expect(measured.quality == (measured.quantity == flagged ? .implausible : .good))
        }
    }

    @Test("a NACK propagates as I2CError; the next measure initialises, restarts and discards warm-up again")
    func nackThenRecover() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        rig.chip.wire.nackNextTransfers(1)
        let error = await #expect(throws: I2CError.self) { try await rig.driver.measure() }
        #expect(error?.code == .noAcknowledge)
        rig.chip.wire.clearTransfers()
        _ = try await rig.driver.measure()
        #expect(rig.chip.startCount == 2)
        #expect(rig.chip.wire.transfers.starts(with: [.write([0xD1, 0x00])]))
        #expect(rig.chip.sampleCounts.read == 4)
    }

    @Test("setCO2 and setEnvironment round trip", arguments: [(412.0, 21.5, 55.0), (1850.0, -5.25, 90.0), (5000.0, 35.0, 20.0)])
    func roundTrip(ppm: Double, celsius: Double, percentRH: Double) async throws {
        let rig = Rig()
        rig.chip.setCO2(ppm: ppm)
        rig.chip.setEnvironment(celsius: celsius, percentRH: percentRH)
        let values = try await rig.driver.measure()
        #expect(value(of: .co2, in: values)?.value == Double(Float(ppm)))
        #expect(value(of: .temperature, in: values)?.value == Double(Float(celsius)))
        #expect(value(of: .relativeHumidity, in: values)?.value == Double(Float(percentRH)))
    }
}

@Suite("SimulatedSCD30 command state machine")
struct SimulatedSCD30Tests {
    private func rig() -> (chip: SimulatedSCD30, device: any I2CDevice) {
        attach(SimulatedSCD30(), at: address)
    }

    @Test("a repeated start is NACKed: the SCD30 does not support it")
    func noRepeatedStart() async throws {
        let (_, device) = self.rig()
        let error = await #expect(throws: I2CError.self) { try await device.writeRead([0xD1, 0x00], count: 3) }
        #expect(error?.code == .noAcknowledge)
    }

    @Test("a bad argument CRC and out-of-range arguments are NACKed and change nothing")
    func badArguments() async throws {
        let (chip, device) = self.rig()
        await #expect(throws: I2CError.self) { try await device.write([0x46, 0x00, 0x00, 0x1E, 0x00]) }
        await #expect(throws: I2CError.self) { try await device.write(commandBytes(0x4600, 1)) }
        await #expect(throws: I2CError.self) { try await device.write(commandBytes(0x0010, 650)) }
        #expect(chip.settings.measurementInterval == 2)
        #expect(!chip.isMeasuring)
        try await device.write(commandBytes(0x4600, 1800))
        #expect(chip.settings.measurementInterval == 1800)
    }

    @Test("read measurement before any sample is NACKed; afterwards a stale read returns the last sample")
    func staleRead() async throws {
        let (_, device) = self.rig()
        try await device.write([0x03, 0x00])
        await #expect(throws: I2CError.self) { try await device.read(count: 18) }
        try await device.write(commandBytes(0x0010, 0))
        try await device.write([0x02, 0x02])
        _ = try await device.read(count: 3)
        try await device.write([0x03, 0x00])
        let first = try await device.read(count: 18)
        try await device.write([0x03, 0x00])
        #expect(try await device.read(count: 18) == first)
    }

    @Test("settings read back without argument; stop ends measuring; the state survives a soft reset")
    func settings() async throws {
        let (chip, device) = self.rig()
        try await device.write(commandBytes(0x5102, 34))
        try await device.write([0x51, 0x02])
        #expect(try SensirionWords.decode(try await device.read(count: 3)) == [34])
        try await device.write(commandBytes(0x0010, 0))
        try await device.write([0xD3, 0x04])
        #expect(chip.isMeasuring)
        try await device.write([0x01, 0x04])
        #expect(!chip.isMeasuring)
        #expect(chip.settings.altitude == 34)
    }
}
