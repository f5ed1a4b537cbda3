import KiezboxCore
import SensorDrivers
import Testing

private let address: UInt8 = 0x44

/// A simulated SHT4x on a simulated bus with a driver pointed at it.
private typealias Rig = SensirionRig<SimulatedSHT4x, SHT4x>

extension Rig {
    fileprivate init(pause: @escaping Pause = instantSensirionPause, precision: SHT4x.Precision = .high) {
        self.init(SimulatedSHT4x(), at: address) { SHT4x(device: $0, pause: pause, precision: precision) }
        // §4 vector: the same 6 bytes as the SHT3x, 66 66 93 80 00 a2.
        self.chip.setRawSignals(temperature: 0x6666, humidity: 0x8000)
    }
}

private let initialisation: [SimulatedSensirionWire.Transfer] = [.write([0x94]), .write([0x89]), .read(count: 6)]
private let measurement: [SimulatedSensirionWire.Transfer] = [.write([0xFD]), .read(count: 6)]

@Suite("SHT4x conversion (sensors.md §4)")
struct SHT4xConversionTests {
    @Test("vector 66 66 93 80 00 a2: 25.000 °C, 56.501 %")
    func vector() throws {
        let words = try SensirionWords.decode([0x66, 0x66, 0x93, 0x80, 0x00, 0xA2])
        #expect(abs(SHT4x.celsius(ticks: words[0]) - 25.0) < 1e-9)
        #expect(abs(SHT4x.percentRH(ticks: words[1]) - 56.500_95) < 1e-4)
    }

    @Test("humidity is cropped: 0xFFFF (119 %) → 100, 0x0000 (−6 %) → 0")
    func crop() {
        #expect(SHT4x.percentRH(ticks: 0xFFFF) == 100)
        #expect(SHT4x.percentRH(ticks: 0x0000) == 0)
        // Just inside the crop on both sides.
        #expect(SHT4x.percentRH(ticks: SimulatedSHT4x.humidityTicks(99.9)) < 100)
        #expect(SHT4x.percentRH(ticks: SimulatedSHT4x.humidityTicks(0.1)) > 0)
    }

    @Test("the simulation inverts the conversion to the nearest tick")
    func inverse() {
        #expect(SimulatedSHT4x.temperatureTicks(25.0) == 0x6666)
        #expect(SimulatedSHT4x.humidityTicks(56.500_95) == 0x8000)
        #expect(SimulatedSHT4x.humidityTicks(119) == 0xFFFF)
        #expect(SimulatedSHT4x.humidityTicks(-6) == 0)
    }
}

@Suite("SHT4x driver on a simulated bus")
struct SHT4xDriverTests {
    @Test("vector end to end: 25.000 °C, 56.501 %, and the serial number")
    func endToEnd() async throws {
        let rig = Rig()
        let values = try await rig.driver.measure()
        #expect(values.map(\.quantity) == [.temperature, .relativeHumidity])
        #expect(abs((value(of: .temperature, in: values)?.value ?? .nan) - 25.0) < 1e-9)
        #expect(abs((value(of: .relativeHumidity, in: values)?.value ?? .nan) - 56.500_95) < 1e-4)
        #expect(values.allSatisfy { $0.quality == .good })
        #expect(rig.driver.serialNumber == 0x0F1E_2D3C)
        #expect(rig.driver.chipName == "SHT4x")
    }

    @Test("first measure: soft reset 94, serial 89, then FD and a separate 6-byte read; later only FD")
    func onTheWire() async throws {
        let pauses = RecordedPauses()
        let rig = Rig(pause: pauses.pause)
        _ = try await rig.driver.measure()
        #expect(rig.chip.wire.transfers == initialisation + measurement)
        #expect(pauses.all == [.milliseconds(10), .milliseconds(10), .milliseconds(10)])
        #expect(rig.chip.resetCount == 1)

        rig.chip.wire.clearTransfers()
        pauses.clear()
        _ = try await rig.driver.measure()
        #expect(rig.chip.wire.transfers == measurement)
        #expect(pauses.all == [.milliseconds(10)])
        #expect(rig.chip.heaterPulseCount == 0)
    }

    @Test(
        "precision picks the command and its wait",
        arguments: [
            (SHT4x.Precision.high, UInt8(0xFD), Duration.milliseconds(10)),
            (.medium, 0xF6, .milliseconds(5)),
            (.low, 0xE0, .milliseconds(2)),
        ]
    )
    func precision(_ precision: SHT4x.Precision, command: UInt8, wait: Duration) async throws {
        let pauses = RecordedPauses()
        let rig = Rig(pause: pauses.pause, precision: precision)
        _ = try await rig.driver.measure()
        #expect(rig.chip.wire.acknowledgedWrites.last == [command])
        #expect(pauses.all.last == wait)
    }

    @Test("NACKed reads mean not ready: re-read without a new command")
    func notReady() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        rig.chip.wire.clearTransfers()
        rig.chip.wire.setExecutionTime(prematureReads: 4)
        let values = try await rig.driver.measure()
        #expect(values.count == 2)
        #expect(rig.chip.wire.transfers == [.write([0xFD])] + Array(repeating: .nackedRead(count: 6), count: 4) + [.read(count: 6)])
    }

    @Test("a measurement that never finishes is a typed error, then the chip is set up again", .timeLimit(.minutes(1)))
    func neverReady() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        rig.chip.wire.setExecutionTime(prematureReads: .max)
        let error = await #expect(throws: SHT4xError.self) { try await rig.driver.measure() }
        #expect(error?.code == .notReady(command: 0xFD))
        #expect(error?.description.contains("no answer to 0xfd") == true)

        rig.chip.wire.setExecutionTime(prematureReads: 0)
        rig.chip.wire.clearTransfers()
        _ = try await rig.driver.measure()
        #expect(rig.chip.wire.transfers == initialisation + measurement)
    }

    @Test("bad CRC: counted, measured again, never returned; persistent: typed error naming the word")
    func badCRC() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        rig.chip.wire.clearTransfers()
        rig.chip.wire.corruptChecksums(ofNextWords: 1, skipping: 1)
        let values = try await rig.driver.measure()
        #expect(rig.driver.checksumErrorCount == 1)
        #expect(rig.chip.wire.transfers == measurement + measurement)
        #expect(abs((value(of: .relativeHumidity, in: values)?.value ?? .nan) - 56.500_95) < 1e-4)

        rig.chip.wire.corruptChecksums(ofNextWords: 1000)
        let error = await #expect(throws: SHT4xError.self) { try await rig.driver.measure() }
        #expect(error?.code == .checksumMismatch(command: 0xFD, word: 0))
        #expect(rig.driver.checksumErrorCount == 4)
    }

    @Test("a bad serial-number CRC during initialisation is retried too")
    func badSerialCRC() async throws {
        let rig = Rig()
        rig.chip.wire.corruptChecksums(ofNextWords: 1)
        _ = try await rig.driver.measure()
        #expect(rig.driver.checksumErrorCount == 1)
        #expect(rig.driver.serialNumber == 0x0F1E_2D3C)
        #expect(rig.chip.wire.transfers == [.write([0x94]), .write([0x89]), .read(count: 6), .write([0x89]), .read(count: 6)] + measurement)
    }

    @Test("garbage is caught by the CRC; persistent garbage is a typed error, no hang")
    func garbage() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        rig.chip.wire.sendGarbage(onNextReads: 2)
        _ = try await rig.driver.measure()
        #expect(rig.driver.checksumErrorCount == 2)
        rig.chip.wire.sendGarbage(onNextReads: 3)
        await #expect(throws: SHT4xError.self) { try await rig.driver.measure() }
        #expect(rig.driver.checksumErrorCount == 5)
    }

    @Test("a NACK propagates as I2CError; the next measure resets and reads the serial again")
    func nack() async throws {
        let rig = Rig()
        _ = try await rig.driver.measure()
        rig.chip.wire.nackNextTransfers(1)
        let error = await #expect(throws: I2CError.self) { try await rig.driver.measure() }
        #expect(error?.code == .noAcknowledge)
        rig.chip.wire.clearTransfers()
        _ = try await rig.driver.measure()
        #expect(rig.chip.wire.transfers == initialisation + measurement)
    }

    @Test("humidity beyond the calibration range is cropped to 100 %, good; extreme temperature is implausible")
    func cropAndImplausible() async throws {
        let rig = Rig()
        rig.chip.setRawSignals(temperature: 0xFFFF, humidity: 0xFFFF)
        let values = try await rig.driver.measure()
        #expect(value(of: .relativeHumidity, in: values)?.value == 100)
        #expect(value(of: .relativeHumidity, in: values)?.quality == .good)
        #expect(value(of: .temperature, in: values)?.value == 130)
        #expect(value(of: .temperature, in: values)?.quality == .implausible)

        rig.chip.setRawSignals(temperature: 0x0000, humidity: 0x0000)
        let cold = try await rig.driver.measure()
        #expect(value(of: .relativeHumidity, in: cold)?.value == 0)
        #expect(value(of: .temperature, in: cold)?.quality == .implausible)
    }

    @Test("setEnvironment round trip", arguments: [(21.5, 55.0), (-12.75, 92.0), (38.2, 100.0), (0.0, 0.0), (5.0, 3.5)])
    func roundTrip(celsius: Double, percentRH: Double) async throws {
        let rig = Rig()
        rig.chip.setEnvironment(celsius: celsius, percentRH: percentRH)
        let values = try await rig.driver.measure()
        #expect(abs((value(of: .temperature, in: values)?.value ?? .nan) - celsius) <= 0.0014)
        #expect(abs((value(of: .relativeHumidity, in: values)?.value ?? .nan) - percentRH) <= 0.001)
    }
}

@Suite("SimulatedSHT4x command state machine")
struct SimulatedSHT4xTests {
    @Test("heater commands answer with a measurement; unknown commands and extra bytes are NACKed")
    func commands() async throws {
        let (chip, device) = attach(SimulatedSHT4x(), at: address)
        chip.setRawSignals(temperature: 0x6666, humidity: 0x8000)
        try await device.write([0x39])
        #expect(try await device.read(count: 6) == [0x66, 0x66, 0x93, 0x80, 0x00, 0xA2])
        #expect(chip.heaterPulseCount == 1)
        await #expect(throws: I2CError.self) { try await device.write([0x24, 0x00]) }
        await #expect(throws: I2CError.self) { try await device.write([0x42]) }
        try await device.write([0x89])
        #expect(try SensirionWords.decode(try await device.read(count: 6)) == [0x0F1E, 0x2D3C])
    }
}
