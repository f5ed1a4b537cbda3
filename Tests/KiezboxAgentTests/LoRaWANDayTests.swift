import Foundation
import KiezboxCore
import Logging
import MeshRelay
import ReadingStore
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing

@testable import KiezboxAgent

/// A whole day of the LoRaWAN uplink on the manual clock: the production sampler, flush service and relay on the
/// simulated kit, the production RAK3172 driver talking to the simulated modem, and the uplink's own schedule.
@Suite("LoRaWAN uplink over a simulated day", .serialized, .timeLimit(.minutes(10)))
struct LoRaWANDayTests {
    static let configuration = """
        [box]
        id = "lora-day"
        district = "test-kiez"
        [store]
        flush_interval = "30s"
        [[sensor]]
        id = "climate"
        chip = "bme280"
        interval = "1m"
        [[sensor]]
        id = "air"
        chip = "sps30"
        interval = "1m"
        [[sensor]]
        id = "co2"
        chip = "scd4x"
        interval = "1m"
        [[sensor]]
        id = "battery"
        chip = "ina219"
        interval = "1m"
        [lorawan]
        port = "/dev/ttyUSB0"
        modem = "rak3172"
        dev_eui = "70B3D57ED0012345"
        join_eui = "0000000000000000"
        app_key = "2B7E151628AED2A6ABF7158809CF4F3C"
        data_rate = 5
        report_interval = "1m"
        """

    @Test("24 hours: airtime within TTN's 30 s, reports paced to last the day, the crisis summary first after the switch")
    func day() async throws {
        try await withWorkspace { directory in
            let configuration = try KiezboxConfiguration.parse(Self.configuration, file: "k.toml")
            let settings = try #require(configuration.uplinks.loRaWAN)
            let start = Date(timeIntervalSince1970: 1_790_000_000)
            let clock = ManualClock(startDate: start)
            let store = try ReadingStore(directory: directory, configuration: configuration.store)
            let kit = SimulatedKit(following: configuration.sensors, position: nil, loRaWAN: settings)
            let radio = try #require(kit.loRaWANRadio)
            kit.updateWorld(at: clock.currentDate())
            let logger = Logger(label: "test")
            let sampler = Sampler(
                sensors: SensorFactory(buses: kit).scheduledSensors(configuration.sensors), clock: clock, logger: logger
            ) { try await store.record($0) }
            let flush = StoreFlushService(store: store, clock: clock, logger: logger)
            let crisis = Mutex(false)
            let connector = LoRaWANModemConnector(settings: settings, buses: kit, logger: logger)
            let uplink = LoRaWANUplink(
                configuration: .init(
                    keys: settings.keys, dataRate: settings.dataRate, payloadFormat: settings.payload,
                    schedule: .init(reportInterval: settings.reportInterval), fairUse: settings.fairUse, sources: [.voltage: "battery"]
                ),
                connect: { try await connector.connect().modem }, store: store, clock: clock,
                boxState: {
                    let inCrisis = crisis.withLock { $0 }
                    let status = BoxStatus(mode: inCrisis ? .crisis : .normal, mainsPresent: !inCrisis, onBattery: inCrisis, helpRequestsOpen: inCrisis)
                    return LoRaWANBoxState(
                        status: status,
                        crisisSummary: inCrisis
                            ? CrisisSummary(status: status, batteryLevel: 80, batteryVoltage: 12.9, phonesConnected: 14, openHelpRequests: [.medical: 2, .water: 1])
                            : nil)
                },
                logger: logger
            )
            let relay = RelayService(
                uplinks: [uplink], store: store, clock: clock, configuration: .init(idlePoll: .seconds(30), maximumBackoff: .seconds(60)),
                logger: logger
            )
            // One sampler task per sensor, the flush service, the relay pump and the LoRaWAN loop.
            let sleepers = configuration.sensors.count + 3
            let step = Duration.seconds(30)
            let day = 24 * 3600 / 30
            var framesBeforeCrisis = 0

            try await testGracefulShutdown { trigger in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for service in [flush, sampler, relay, uplink] as [any Service] { group.addTask { try await service.run() } }
                    for index in 0..<day {
                        if index == day / 2 {
                            framesBeforeCrisis = radio.applicationUplinks.count
                            crisis.withLock { $0 = true }
                        }
                        await clock.waitForSleepers(sleepers)
                        clock.advance(by: step)
                        if index % 20 == 0 { kit.updateWorld(at: clock.currentDate()) }
                    }
                    await clock.waitForSleepers(sleepers)
                    trigger.triggerGracefulShutdown()
                    try await group.waitForAll()
                }
            }

            let frames = radio.applicationUplinks
            let airtime = frames.reduce(Duration.zero) { total, frame in
                total + uplinkAirtime(applicationPayloadLength: frame.payload.count, dataRate: EU868DataRate(rawValue: frame.dataRate) ?? .dr0)
            }
            let joinAirtime = LoRaModulation(spreadingFactor: .sf7).timeOnAir(phyPayloadLength: 23) * radio.joinRequests.count
            let reports = frames.filter { $0.port == BoxReport.compactPort }
            let summaries = frames.filter { $0.port == CrisisSummary.compactPort }
            let ledger = try store.loRaWANAirtime(since: start)
            let ledgerAirtime = ledger.filter { $0.kind != .downlink }.reduce(Duration.zero) { $0 + $1.airtime }
            print(
                "LoRaWAN day: \(frames.count) frames (\(reports.count) reports, \(summaries.count) crisis summaries), "
                    + "\(radio.joinRequests.count) join(s); airtime \(airtime + joinAirtime) of 30 s "
                    + "(ledger \(ledgerAirtime)); full report \(reports.last?.payload.count ?? 0) bytes at DR\(frames.last?.dataRate ?? -1)"
            )

            #expect(radio.joinRequests.count == 1)
            #expect(airtime + joinAirtime <= .seconds(30), "TTN's fair use: 30 s of uplink airtime a day")
            // The ledger counts exactly what went on air (the modem sent nothing it did not record).
            #expect(ledgerAirtime == airtime + joinAirtime)
            // Paced to last the day: the routine allowance (22.5 s) spent at about one report every 4–5 minutes.
            #expect(reports.count >= 250, "reports spread over the day, not a burst")
            // (The ledger has the box's clock; the simulated modem keeps time of its own.)
            let lateFrames = ledger.filter { $0.kind == .uplink && $0.at > start.addingTimeInterval(20 * 3600) }
            #expect(lateFrames.count >= 20, "reports still going out in the last hours")
            // The first frame after the switch is the crisis summary; it repeats while the crisis lasts.
            #expect(frames.count > framesBeforeCrisis)
            #expect(frames.dropFirst(framesBeforeCrisis).first?.port == CrisisSummary.compactPort)
            #expect(summaries.count >= 12, "a summary every 30 minutes for 12 hours")
            #expect(frames.prefix(framesBeforeCrisis).allSatisfy { $0.port == BoxReport.compactPort })
            // A full report of this kit: seven values (no state-of-charge reading), 15 bytes; eight would be 16.
            #expect(reports.last?.payload.count == 15)
        }
    }
}
