import Crypto
import EmergencyPortal
import Foundation
import KiezboxCore
import Logging
import MeshRelay
import ReadingStore
import SensorDrivers
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing

@testable import KiezboxAgent

/// The LoRaWAN uplink with the production RAK3172 driver on a simulated modem, on the manual clock: signed crisis
/// commands arriving as downlinks reach the mode controller's receiver, and the airtime ledger holds across a
/// restart.
@Suite("LoRaWAN downlinks and the ledger across restarts", .serialized, .timeLimit(.minutes(3)))
struct LoRaWANDownlinkTests {
    static let start = Date(timeIntervalSince1970: 1_790_000_000)
    static let keys = LoRaWANKeys(
        devEUI: [0x70, 0xB3, 0xD5, 0x7E, 0xD0, 0x01, 0x23, 0x45], joinEUI: [UInt8](repeating: 0, count: 8),
        appKey: [UInt8](repeating: 0x2B, count: 16))

    /// Runs the uplink alone (readings handed over directly, as the relay does) until `until` says stop or the
    /// simulated hours run out.
    func run(
        store: ReadingStore, radio: SimulatedLoRaWANRadio, clock: ManualClock, hours: Int = 2,
        onDownlink: @escaping @Sendable (LoRaWANDownlink) async -> Void = { _ in }, until: @escaping () -> Bool = { false }
    ) async throws -> LoRaWANUplink {
        let port = SimulatedSerialPort(name: "sim:/dev/ttyUSB0", device: SimulatedRAK3172(radio: radio))
        let uplink = LoRaWANUplink(
            configuration: .init(keys: Self.keys, dataRate: 5, schedule: .init(reportInterval: .seconds(300))),
            connect: { RAK3172Modem(port: port) }, store: store, clock: clock,
            boxState: { LoRaWANBoxState(status: BoxStatus()) }, onDownlink: onDownlink, logger: Logger(label: "test")
        )
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await uplink.run() }
                for minute in 0..<(hours * 120) where !until() {
                    if minute % 2 == 0 {
                        let reading = Reading(sensorID: "climate", quantity: .temperature, value: 20, measuredAt: clock.currentDate())
                        _ = try await uplink.deliver([StoredReading(id: Int64(minute + 1), reading: reading)])
                    }
                    await clock.waitForSleepers(1)
                    clock.advance(by: .seconds(30))
                }
                await clock.waitForSleepers(1)
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        return uplink
    }

    @Test("a declaration in two signed fragments puts the box in crisis; a forged one is refused and counted")
    func signedDeclaration() async throws {
        try await withWorkspace { directory in
            let store = try ReadingStore(directory: directory)
            let clock = ManualClock(startDate: Self.start)
            let privateKey = Curve25519.Signing.PrivateKey()
            let signer = AnnouncementSigner(keyID: "bezirk-2026", privateKey: privateKey)
            let desk = AnnouncementDesk(
                keys: [AnnouncementKey(keyID: "bezirk-2026", issuer: "Bezirksamt", publicKey: privateKey.publicKey)], district: "test-kiez",
                store: store, logger: Logger(label: "test"))
            let receiver = CrisisDownlinkReceiver(trusting: desk, logger: Logger(label: "test"))
            let signed = try signer.sign(
                CrisisCommand(
                    action: .declareCrisis, district: "test-kiez", issuedAt: Self.start, validFor: 6 * 3600, sequence: 0,
                    keyTag: signer.crisisCommandKeyTag))
            let fragments = signed.fragments(maximumFrameBytes: 51)
            #expect(fragments.count == 2 && fragments.allSatisfy { $0.count <= 51 })

            let radio = SimulatedLoRaWANRadio()
            radio.setDurations(join: .zero, uplink: .zero)
            // A forged command first (someone else's key under the same tag), then the real one in two halves.
            let forger = AnnouncementSigner(keyID: "bezirk-2026", privateKey: Curve25519.Signing.PrivateKey())
            var forged = try forger.sign(
                CrisisCommand(
                    action: .declareCrisis, district: "test-kiez", issuedAt: Self.start, validFor: 6 * 3600, sequence: 1,
                    keyTag: signer.crisisCommandKeyTag)
            ).bytes
            forged[forged.count - 1] ^= 0x01
            radio.queueDownlink(SimulatedLoRaWANDownlink(port: CrisisDownlinkReceiver.commandPort, payload: forged))
            for fragment in fragments {
                radio.queueDownlink(SimulatedLoRaWANDownlink(port: CrisisDownlinkReceiver.fragmentPort, payload: fragment))
            }
            let outcomes = Mutex<[CrisisDownlinkOutcome]>([])
            _ = try await self.run(
                store: store, radio: radio, clock: clock,
                onDownlink: { downlink in
                    let outcome = await receiver.receive(port: downlink.port, payload: downlink.payload, at: clock.currentDate())
                    outcomes.withLock { $0.append(outcome) }
                },
                until: { outcomes.withLock { $0.count } >= 3 })

            let received = outcomes.withLock { $0 }
            #expect(received.count == 3)
            if case .refused(.badSignature, _) = received.first {} else { Issue.record("the forged command was not refused: \(received)") }
            #expect(receiver.counts().refused[.badSignature] == 1)
            #expect(receiver.counts().declared == 1)
            let declared = try receiver.declaredCrisis(at: clock.currentDate())
            #expect(declared?.issuer == "Bezirksamt")
            // The mode controller's decision from that declaration (a hand would still win).
            let decision = ModePolicy().decide(
                current: .normal, ModeInputs(declaredBy: declared.map { "\($0.issuer) (LoRaWAN downlink)" }))
            #expect(decision.mode == .crisis)
            // Three downlinks in the ledger, each against TTN's ten a day.
            #expect(try store.loRaWANAccount(fairUse: .init(), now: clock.currentDate()).downlinksReceived == 3)
        }
    }

    @Test("a restart remembers the airtime spent: a box that used its allowance stays quiet until the window frees")
    func ledgerAcrossRestart() async throws {
        try await withWorkspace { directory in
            let clock = ManualClock(startDate: Self.start)
            let radio = SimulatedLoRaWANRadio()
            radio.setDurations(join: .zero, uplink: .zero)
            do {
                let store = try ReadingStore(directory: directory)
                // An earlier run spent 23 s (more than the routine 22.5 s) in the last hour, before a power cut.
                _ = try await store.recordLoRaWANAirtime(
                    LoRaWANAirtimeEntry(kind: .uplink, at: Self.start.addingTimeInterval(-3600), airtime: .seconds(23), dataRate: 0, payloadLength: 16))
                try store.close()
            }
            let store = try ReadingStore(directory: directory)
            let uplink = try await self.run(store: store, radio: radio, clock: clock, hours: 2)
            #expect(uplink.statistics.joined)
            #expect(radio.applicationUplinks.isEmpty, "no routine report while the allowance is spent")
            let account = try store.loRaWANAccount(fairUse: .init(), now: clock.currentDate())
            #expect(account.airtimeUsedSeconds >= 23)
            // The plan waits for the old frame to leave the 24-hour window (23 h after the start).
            let plan = try #require(uplink.statistics.nextSend)
            #expect(plan.frame == "report")
            #expect(abs(plan.at.timeIntervalSince(Self.start.addingTimeInterval(23 * 3600))) < 60)
        }
    }
}
