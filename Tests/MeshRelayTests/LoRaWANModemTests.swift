#if canImport(Glibc)
import KiezboxTestSupport
import MeshRelay
import SensorDrivers
import Testing

/// The production modem drivers on the production `LinuxSerialPort`, through the kernel's tty layer, with the
/// simulated Wio-E5 and RAK3172 behind the master side of a pseudo-terminal writing in split pieces. The
/// simulators follow the reference's strings (lora-and-appliance.md §1.1, §1.2, §10); joins and uplinks take a
/// few hundred milliseconds of real time, so their results arrive as later bursts, as from a real modem.
@Suite("LoRaWAN modems over real pseudo-terminals")
struct LoRaWANModemPseudoTerminalTests {
    /// Hang guards only: a slow pty on a busy machine must never look like a modem that did not answer.
    static let timeouts = LoRaWANModemTimeouts(reply: .seconds(5), join: .seconds(30), transmission: .seconds(30), downlinkGrace: .seconds(1))

    /// The driver for `dialect` on a pty, with the simulator behind it (joins 200 ms, uplinks 150 ms).
    private func onPseudoTerminal<T>(
        _ dialect: ModemDialect,
        radio: SimulatedLoRaWANRadio = SimulatedLoRaWANRadio(),
        noise: [UInt8] = [],
        body: (any LoRaWANModem, ModemLogRecorder) async throws -> T
    ) async throws -> T {
        radio.setDurations(join: .milliseconds(200), uplink: .milliseconds(150))
        let log = ModemLogRecorder()
        return try await withSimulatedDeviceOnPseudoTerminal(dialect.simulator(radio), baudRate: dialect.kind.baudRate, noise: noise) {
            port, _ in
            try await body(dialect.modem(port: port, timeouts: Self.timeouts, log: log), log)
        }
    }

    @Test("identify and configure OTAA EU868; the AppKey reaches the modem but never the log", arguments: ModemDialect.allCases)
    func identifyAndConfigure(dialect: ModemDialect) async throws {
        let radio = SimulatedLoRaWANRadio()
        let log = try await self.onPseudoTerminal(dialect, radio: radio) { modem, log in
            let identity = try await modem.identify()
            #expect(identity == LoRaWANModemIdentity(kind: dialect.kind, firmwareVersion: dialect == .wioE5 ? "4.0.11" : "RUI_4.0.6_RAK3172-E"))
            try await modem.configure(keys: testKeys, dataRate: nil)
            #expect(radio.isADREnabled)
            try await modem.configure(keys: testKeys, dataRate: 3)
            #expect(!radio.isADREnabled)
            #expect(try await modem.dataRate() == 3)
            return log
        }
        #expect(radio.devEUI == testKeys.devEUI)
        #expect(radio.joinEUI == testKeys.joinEUI)
        #expect(radio.appKey == testKeys.appKey)
        let logged = log.all.map(\.description)
        #expect(logged.contains { $0.contains("(hidden)") })
        for spelling in testAppKeySpellings {
            #expect(!logged.contains { $0.contains(spelling) }, "AppKey in the log")
        }
        #expect(log.texts(.skipped).isEmpty)
    }

    @Test("a join without accept fails with the modem's words, the next one joins", arguments: ModemDialect.allCases)
    func failedJoinThenSuccess(dialect: ModemDialect) async throws {
        let radio = SimulatedLoRaWANRadio()
        radio.failNextJoins(1)
        try await self.onPseudoTerminal(dialect, radio: radio) { modem, _ in
            try await modem.configure(keys: testKeys, dataRate: nil)
            #expect(try await modem.isJoined() == false)
            await #expect(throws: LoRaWANModemError.joinFailed(reason: dialect == .wioE5 ? "Join failed" : "JOIN_FAILED_RX_TIMEOUT")) {
                try await modem.join()
            }
            #expect(try await modem.isJoined() == false)
            try await modem.join()
            #expect(try await modem.isJoined())
        }
        #expect(radio.joinRequests.count == 2)
    }

    @Test("an uplink goes out on its port at the current data rate; a downlink in the dialect's format comes back", arguments: ModemDialect.allCases)
    func uplinkWithDownlink(dialect: ModemDialect) async throws {
        let radio = SimulatedLoRaWANRadio(dataRate: 5)
        radio.queueDownlink(SimulatedLoRaWANDownlink(port: 2, payload: Array("Hello".utf8), rssi: -70, snr: 8))
        let (first, second, log) = try await self.onPseudoTerminal(dialect, radio: radio) { modem, log in
            try await modem.configure(keys: testKeys, dataRate: nil)
            try await modem.join()
            let first = try await modem.send(port: 8, payload: [0x01, 0x02, 0xAB])
            let second = try await modem.send(port: 9, payload: [0xFF])
            return (first, second, log)
        }
        #expect(first == LoRaWANTransmission(dataRate: 5, payloadLength: 3, downlinks: [LoRaWANDownlink(port: 2, payload: Array("Hello".utf8), rssi: -70, snr: 8)]))
        #expect(second == LoRaWANTransmission(dataRate: 5, payloadLength: 1))
        #expect(radio.applicationUplinks.map { [$0.port] + $0.payload } == [[8, 0x01, 0x02, 0xAB], [9, 0xFF]])
        #expect(radio.applicationUplinks.map(\.dataRate) == [5, 5])
        // The downlink as each dialect prints it: Wio-E5 upper-case hex in quotes, RAK3172 lower-case.
        let replies = log.texts(.reply)
        switch dialect {
        case .wioE5:
            #expect(replies.contains("+MSGHEX: PORT: 2; RX: \"48656C6C6F\""))
            #expect(replies.contains("+MSGHEX: RXWIN1, RSSI -70, SNR 8"))
            #expect(log.texts(.command).contains("AT+MSGHEX=\"0102AB\""))
        case .rak3172:
            #expect(replies.contains("+EVT:RX_1:-70:8:UNICAST:2:48656c6c6f"))
            #expect(log.texts(.command).contains("AT+SEND=8:0102AB"))
        }
    }

    @Test("busy, duty cycle with its wait, length error at DR0, no free channel, not joined: each a typed error", arguments: ModemDialect.allCases)
    func refusals(dialect: ModemDialect) async throws {
        let radio = SimulatedLoRaWANRadio(dataRate: 5)
        try await self.onPseudoTerminal(dialect, radio: radio) { modem, _ in
            try await modem.configure(keys: testKeys, dataRate: nil)
            await #expect(throws: LoRaWANModemError.notJoined) { try await modem.send(port: 8, payload: [1]) }
            try await modem.join()

            radio.answerBusy()
            await #expect(throws: LoRaWANModemError.busy) { try await modem.send(port: 8, payload: [1]) }

            radio.refuseForDutyCycle(wait: .milliseconds(143_250))
            await #expect(throws: LoRaWANModemError.dutyCycle(wait: .milliseconds(143_250))) { try await modem.send(port: 8, payload: [1]) }

            radio.refuseNoFreeChannel()
            // RUI3 has no string of its own for it: the RAK3172 says busy.
            await #expect(throws: dialect == .wioE5 ? LoRaWANModemError.noFreeChannel : .busy) { try await modem.send(port: 8, payload: [1]) }

            radio.setDataRate(0)
            let report = [UInt8](repeating: 0x42, count: 60)
            // The Wio-E5 names its limit; the RAK3172 does not, but sends an empty frame anyway.
            let expected: LoRaWANModemError =
                dialect == .wioE5 ? .lengthError(maximum: 51, extraEmptyFrames: 0) : .lengthError(maximum: nil, extraEmptyFrames: 1)
            await #expect(throws: expected) { try await modem.send(port: 8, payload: report) }

            // A report that fits goes out, and the empty frame is not counted twice.
            let transmission = try await modem.send(port: 8, payload: Array(report.prefix(51)))
            #expect(transmission == LoRaWANTransmission(dataRate: 0, payloadLength: 51))
        }
        #expect(radio.applicationUplinks.map(\.payload.count) == [51])
        #expect(radio.uplinks.filter(\.isEmptyFrame).count == (dialect == .wioE5 ? 0 : 1))
    }

    @Test("noise lines and garbage on every burst are logged and skipped, never fatal", arguments: ModemDialect.allCases)
    func noise(dialect: ModemDialect) async throws {
        let radio = SimulatedLoRaWANRadio(dataRate: 5)
        // 30 lines before the first answer: more than SerialSession's default of 10 skipped frames per wait.
        radio.queueNoise(Array(String(repeating: "+LOG: radio calibrated\r\n", count: 30).utf8))
        let burstNoise: [UInt8] = [0x00, 0xFF, 0xFE, 0x13] + Array("DBG: tick\r\n".utf8)
        let log = try await self.onPseudoTerminal(dialect, radio: radio, noise: burstNoise) { modem, log in
            #expect(try await modem.identify().kind == dialect.kind)
            try await modem.configure(keys: testKeys, dataRate: nil)
            try await modem.join()
            _ = try await modem.send(port: 8, payload: [1, 2, 3])
            return log
        }
        let skipped = log.texts(.skipped)
        #expect(skipped.filter { $0 == "+LOG: radio calibrated" }.count == 30)
        #expect(skipped.contains { $0.hasSuffix("DBG: tick") })
        #expect(radio.applicationUplinks.count == 1)
    }

    @Test("calls made at the same time are one conversation after the other", arguments: ModemDialect.allCases)
    func concurrentCalls(dialect: ModemDialect) async throws {
        let radio = SimulatedLoRaWANRadio(dataRate: 5)
        let transmissions = try await self.onPseudoTerminal(dialect, radio: radio) { modem, _ in
            try await modem.configure(keys: testKeys, dataRate: nil)
            try await modem.join()
            return try await withThrowingTaskGroup(of: LoRaWANTransmission.self) { group in
                for port in UInt8(1)...6 {
                    group.addTask { try await modem.send(port: port, payload: [port]) }
                    group.addTask { _ = try await modem.dataRate(); return LoRaWANTransmission(dataRate: -1, payloadLength: 0) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
        #expect(transmissions.filter { $0.dataRate == 5 }.count == 6)
        // Each uplink carried its own port's byte: no command went out in the middle of another's conversation.
        #expect(Set(radio.applicationUplinks.map { [$0.port] + $0.payload }) == Set((UInt8(1)...6).map { [$0, $0] }))
    }

    @Test("the detector tells the dialects apart on the same kind of port", arguments: ModemDialect.allCases)
    func detector(dialect: ModemDialect) async throws {
        let identity = try await withSimulatedDeviceOnPseudoTerminal(
            dialect.simulator(SimulatedLoRaWANRadio()), baudRate: dialect.kind.baudRate
        ) { port, _ in
            try await LoRaWANModemDetector.identify(port: port, timeouts: Self.timeouts)
        }
        #expect(identity.kind == dialect.kind)
    }
}

/// The same drivers on the in-process `SimulatedSerialPort`, where simulated time makes seconds-long joins and
/// receive windows instant.
@Suite("LoRaWAN modems on simulated ports")
struct LoRaWANModemSimulatedPortTests {
    private func rig(
        _ dialect: ModemDialect,
        radio: SimulatedLoRaWANRadio
    ) -> (modem: any LoRaWANModem, port: SimulatedSerialPort, log: ModemLogRecorder) {
        let port = SimulatedSerialPort(device: dialect.simulator(radio))
        let log = ModemLogRecorder()
        return (dialect.modem(port: port, timeouts: LoRaWANModemTimeouts(), log: log), port, log)
    }

    @Test("every command is one write ending in CR LF (a split command gets `Input timeout` on a Wio-E5)", arguments: ModemDialect.allCases)
    func oneWritePerCommand(dialect: ModemDialect) async throws {
        let (modem, port, log) = self.rig(dialect, radio: SimulatedLoRaWANRadio())
        _ = try await modem.identify()
        try await modem.configure(keys: testKeys, dataRate: 5)
        try await modem.join()
        _ = try await modem.send(port: 8, payload: [1, 2, 3])
        let writes = port.writes.map { String(decoding: $0, as: UTF8.self) }
        // "\r\n" is one Character in Swift.
        #expect(writes.allSatisfy { write in write.last == "\r\n" && write.filter { $0 == "\r\n" }.count == 1 })
        #expect(writes.map { LoRaWANModemTests.hideKey(String($0.dropLast())) } == log.texts(.command))
    }

    @Test("joins taking seconds of simulated time, with the session's default skipped-frame limit exceeded, still end on their result", arguments: ModemDialect.allCases)
    func slowJoin(dialect: ModemDialect) async throws {
        let radio = SimulatedLoRaWANRadio(joinDuration: .seconds(11))
        let (modem, port, _) = self.rig(dialect, radio: radio)
        try await modem.configure(keys: testKeys, dataRate: nil)
        radio.queueNoise(Array(String(repeating: "noise\r\n", count: 100).utf8))
        try await modem.join()
        #expect(try await modem.isJoined())
        #expect(port.now >= .seconds(11))
    }

    @Test("the RAK3172's empty uplink after a confirmed downlink is counted with the next transmission")
    func rakEmptyUplinkAfterConfirmedDownlink() async throws {
        let radio = SimulatedLoRaWANRadio(dataRate: 5)
        radio.queueDownlink(SimulatedLoRaWANDownlink(port: 3, payload: [0xC0, 0xDE], window: 2, confirmed: true))
        let (modem, port, _) = self.rig(.rak3172, radio: radio)
        try await modem.configure(keys: testKeys, dataRate: nil)
        try await modem.join()
        let first = try await modem.send(port: 8, payload: [1])
        #expect(first.downlinks == [LoRaWANDownlink(port: 3, payload: [0xC0, 0xDE], rssi: -70, snr: 8)])
        // The modem's own uplink is on air after the downlink; the next report comes minutes later.
        await #expect(throws: LoRaWANModemError.busy) { try await modem.send(port: 8, payload: [2]) }
        port.advance(by: .seconds(60))
        let second = try await modem.send(port: 8, payload: [2])
        #expect(first.extraEmptyFrames + second.extraEmptyFrames == 1)
        #expect(radio.uplinks.filter(\.isEmptyFrame).count == 1)
    }

    @Test("a refused key shows neither in the error nor in the log", arguments: ModemDialect.allCases)
    func refusedKeyStaysHidden(dialect: ModemDialect) async throws {
        let device = AnsweringDevice { line in
            switch dialect {
            case .wioE5:
                if line.hasPrefix("AT+KEY") { return ["+KEY: ERROR(-1) " + line] }
                if line.hasPrefix("AT+ID=DevEui") { return ["+ID: DevEui, 01:23:45:67:89:AB:CD:EF"] }
                return ["+ID: AppEui, 80:00:00:00:00:00:00:07"]
            case .rak3172:
                return line.hasPrefix("AT+APPKEY") ? ["AT_PARAM_ERROR"] : ["OK"]
            }
        }
        let port = SimulatedSerialPort(device: device)
        let log = ModemLogRecorder()
        let modem = dialect.modem(port: port, timeouts: LoRaWANModemTimeouts(), log: log)
        let error = await #expect(throws: LoRaWANModemError.self) { try await modem.configure(keys: testKeys, dataRate: nil) }
        guard case .refused(let command, _) = error else {
            Issue.record("expected a refusal, got \(String(describing: error))")
            return
        }
        #expect(command.contains("(hidden)"))
        let texts = [String(describing: error)] + log.all.map(\.description)
        for spelling in testAppKeySpellings {
            #expect(!texts.contains { $0.contains(spelling) }, "AppKey shown")
        }
    }

    @Test("the detector: silence is no answer, another device is unrecognised")
    func detectorFailures() async throws {
        await #expect(throws: LoRaWANModemError.noAnswer(command: "AT+VER, AT+VER=?", port: "sim:/dev/serial0")) {
            try await LoRaWANModemDetector.identify(port: SimulatedSerialPort())
        }
        let babbler = SimulatedSerialPort(device: AnsweringDevice { _ in ["$GPGGA,,,,,,0,00,,,M,,M,,*66"] })
        await #expect(throws: LoRaWANModemError.unrecognisedModem(port: "sim:/dev/serial0", answer: "$GPGGA,,,,,,0,00,,,M,,M,,*66")) {
            try await LoRaWANModemDetector.identify(port: babbler)
        }
    }
}

enum LoRaWANModemTests {
    /// A command as the log shows it.
    static func hideKey(_ command: String) -> String {
        testAppKeySpellings.reduce(command) { $0.replacing($1, with: "(hidden)") }
    }
}
#endif
