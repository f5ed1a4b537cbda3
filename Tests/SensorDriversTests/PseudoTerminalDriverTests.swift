#if canImport(Glibc)
import KiezboxCore
import KiezboxTestSupport
import SensorDrivers
import Testing

/// The production drivers on the production `LinuxSerialPort`, through the kernel's tty layer, with the simulated
/// chips writing their byte streams (noise, split writes, bad checksums) into the master side of a pseudo-terminal.
@Suite("Drivers over real pseudo-terminals")
struct PseudoTerminalDriverTests {
    @Test("SDS011: commands reach the sensor through the pty; noise, split frames and a bad checksum are survived")
    func sds011() async throws {
        let sensor = SimulatedSDS011()
        sensor.setConcentrations(pm2_5: 17.3, pm10: 28.1)
        sensor.corruptNextMeasurements(1)
        // The sensor's clock moves only with the driver's pauses (time scale 0): woken in active mode, a real
        // SDS011 streams a frame every second until it is switched to query mode, and on a busy machine that
        // frame would take the corruption meant for a queried measurement.
        let values = try await withSimulatedDeviceOnPseudoTerminal(
            sensor, baudRate: SDS011.baudRate, timeScale: 0, noise: [0xAA, 0x13, 0xAB, 0xAA]
        ) { port, pause in
            let driver = SDS011(port: port, configuration: .init(samples: 3, replyTimeout: .seconds(2)), pause: pause)
            let values = try await driver.measure()
            #expect(driver.checksumErrorCount == 1)
            return values
        }
        #expect(values == [MeasuredValue(.pm2_5, 17.3), MeasuredValue(.pm10, 28.1)])
        #expect(
            sensor.commandsReceived == [
                .setWorkState(.working), .queryReportingMode, .setReportingMode(.query), .queryWorkingPeriod,
                .queryData, .queryData, .queryData, .queryData, .setWorkState(.sleeping),
            ]
        )
        #expect(sensor.workState == .sleeping)
        #expect(sensor.rejectedCommandCount == 0)
    }

    @Test("PMS5003: active-mode warm-up frames are discarded, passive reads survive noise and a bad checksum")
    func pms5003() async throws {
        let sensor = SimulatedPMS5003()
        sensor.setConcentrations(pm1: 6, pm2_5: 11, pm10: 15)
        sensor.setWarmUp(duration: .seconds(30), factor: 5)
        let values = try await withSimulatedDeviceOnPseudoTerminal(sensor, baudRate: PMS5003.baudRate, noise: [0x42, 0x4D, 0x00, 0x42]) { port, pause in
            let driver = PMS5003(port: port, configuration: .init(samples: 2, replyTimeout: .seconds(2)), pause: pause)
            // Corrupt the first passive read's answer once the warm-up frames have gone by.
            let first = try await driver.measure()
            sensor.corruptNextMeasurements(1)
            let second = try await driver.measure()
            #expect(driver.checksumErrorCount >= 1)
            #expect(first == second)
            return second
        }
        #expect(values == [MeasuredValue(.pm1, 6), MeasuredValue(.pm2_5, 11), MeasuredValue(.pm10, 15)])
        #expect(sensor.commandsReceived.filter { $0 == .wake }.count == 2)
        #expect(sensor.isAsleep)
    }

    @Test("SPS30 over SHDLC at 115200: wake-up with its stuffed frame, start, read, stop")
    func sps30() async throws {
        let sensor = SimulatedSPS30UART()
        sensor.setMode(.sleeping)
        sensor.setConcentrations(pm1: 2.5, pm2_5: 4.75, pm4: 5.5, pm10: 6.25)
        let values = try await withSimulatedDeviceOnPseudoTerminal(sensor, baudRate: SPS30UART.baudRate, noise: [0x7E, 0x7D]) { port, pause in
            let driver = SPS30UART(port: port, configuration: .init(replyTimeout: .seconds(2)), pause: pause)
            return try await driver.measure()
        }
        #expect(values.map(\.value) == [2.5, 4.75, 5.5, 6.25])
        #expect(sensor.requestsReceived.map(\.command).suffix(4) == [0x11, 0x00, 0x03, 0x01])
    }

    @Test("NMEA GPS: a fix read through the pty despite noise, split writes and corrupt sentences")
    func gps() async throws {
        let receiver = SimulatedNMEAGPS()
        receiver.setTalker("GN")
        receiver.setPosition(latitude: 52.520_008, longitude: 13.404_954, altitude: 34)
        receiver.corruptNextSentences(6)
        let values = try await withSimulatedDeviceOnPseudoTerminal(receiver, baudRate: NMEAGPS.baudRate, timeScale: 20, noise: Array("\u{00}$GP\r\n".utf8)) { port, _ in
            // Silence means 3 s on a box; here a hang guard, so that a busy machine never reads as a silent GPS.
            let driver = NMEAGPS(port: port, configuration: .init(silenceTimeout: .seconds(30)))
            let values = try await driver.measure()
            #expect(driver.checksumErrorCount >= 1)
            return values
        }
        #expect(values.count == 3)
        #expect(abs((values.first { $0.quantity == .latitude }?.value ?? 0) - 52.520_008) < 1e-6)
        #expect(abs((values.first { $0.quantity == .longitude }?.value ?? 0) - 13.404_954) < 1e-6)
        #expect(values.first { $0.quantity == .altitude }?.value == 34)
    }

    @Test("NMEA GPS without a fix through the pty: a typed error, no position")
    func gpsNoFix() async throws {
        let receiver = SimulatedNMEAGPS()
        receiver.setFixState(.noFix)
        try await withSimulatedDeviceOnPseudoTerminal(receiver, baudRate: NMEAGPS.baudRate, timeScale: 20) { port, _ in
            await #expect(throws: NMEAGPSError.self) { try await NMEAGPS(port: port).measure() }
        }
    }
}
#endif
