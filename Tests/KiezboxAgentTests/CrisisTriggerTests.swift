import Foundation
import KiezboxCore
import KiezboxTestSupport
import Logging
import MeshRelay
import ReadingStore
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

@testable import KiezboxAgent

@Suite("Crisis triggers beyond mains: uplink lost, battery low")
struct CrisisTriggerTests {
    /// Three lines: the mistakes' line numbers count them.
    static let box = "[box]\nid = \"trigger-box\"\ndistrict = \"test-kiez\"\n"

    func parse(_ rest: String) throws -> KiezboxConfiguration {
        try KiezboxConfiguration.parse(Self.box + rest, file: "k.toml")
    }

    let policy = ModePolicy(
        crisisAfterMainsLoss: 120, normalAfterMainsReturn: 600, crisisAfterUplinkLoss: 1800, crisisBelowBatteryPercent: 30)

    @Test("uplink lost: a crisis after the configured silence; it ends once the uplink has stayed back for normal_after")
    func uplinkLost() {
        #expect(self.policy.decide(current: .normal, ModeInputs(mainsPresentFor: 9999, uplinkSilentFor: 1799)).mode == .normal)
        let entered = self.policy.decide(current: .normal, ModeInputs(mainsPresentFor: 9999, uplinkSilentFor: 1800))
        #expect(entered.mode == .crisis)
        #expect(entered.reason.hasPrefix("uplink lost for 30 min"))
        // Still silent (past the 60 s within which it counts as back): stays, however long mains has been on.
        #expect(self.policy.decide(current: .crisis, ModeInputs(mainsPresentFor: 9999, uplinkSilentFor: 61)).mode == .crisis)
        // Back, but not for long enough yet.
        let waiting = self.policy.decide(current: .crisis, ModeInputs(mainsPresentFor: 9999, uplinkSilentFor: 5, uplinkLastLostAgo: 599))
        #expect(waiting.mode == .crisis)
        #expect(waiting.reason.contains("waiting until it stays up"))
        #expect(self.policy.decide(current: .crisis, ModeInputs(mainsPresentFor: 9999, uplinkSilentFor: 5, uplinkLastLostAgo: 600)).mode == .normal)
        // No uplink can tell (none configured, or only a mesh): never a crisis for it.
        #expect(self.policy.decide(current: .normal, ModeInputs(mainsPresentFor: 9999, uplinkSilentFor: nil)).mode == .normal)
        // Switched off.
        var off = self.policy
        off.crisisAfterUplinkLoss = nil
        #expect(off.decide(current: .normal, ModeInputs(uplinkSilentFor: 86_400)).mode == .normal)
        // A hand wins; an authority's declaration is named rather than the silence.
        #expect(self.policy.decide(current: .normal, ModeInputs(override: .normal, uplinkSilentFor: 86_400)).mode == .normal)
        #expect(self.policy.decide(current: .normal, ModeInputs(declaredBy: "Bezirksamt", uplinkSilentFor: 86_400)).reason == "declared by Bezirksamt")
    }

    @Test("battery low: a crisis only while mains is gone, at once below the threshold; mains back ends it after normal_after")
    func batteryLow() {
        let low = self.policy.decide(current: .normal, ModeInputs(mainsLostFor: 10, batteryPercent: 29.4))
        #expect(low.mode == .crisis)
        #expect(low.reason == "battery at 29 % (below 30 %) with mains lost for 10 s")
        #expect(self.policy.decide(current: .normal, ModeInputs(mainsLostFor: 10, batteryPercent: 30)).mode == .normal)
        // With mains present a low battery is charging, not a crisis.
        #expect(self.policy.decide(current: .normal, ModeInputs(mainsPresentFor: 10, batteryPercent: 5)).mode == .normal)
        // No mains input: nothing says mains is gone.
        #expect(self.policy.decide(current: .normal, ModeInputs(batteryPercent: 5)).mode == .normal)
        // Leaving: the same hysteresis as a blackout.
        #expect(self.policy.decide(current: .crisis, ModeInputs(mainsPresentFor: 599, batteryPercent: 29)).mode == .crisis)
        #expect(self.policy.decide(current: .crisis, ModeInputs(mainsPresentFor: 600, batteryPercent: 29)).mode == .normal)
        var off = self.policy
        off.crisisBelowBatteryPercent = nil
        #expect(off.decide(current: .normal, ModeInputs(mainsLostFor: 10, batteryPercent: 1)).mode == .normal)
        #expect(self.policy.decide(current: .normal, ModeInputs(override: .maintenance, mainsLostFor: 10, batteryPercent: 1)).mode == .maintenance)
    }

    @Test("[mode] uplink_lost_after and battery_below parse, \"off\" switches them off, and the defaults are 30 min and 30 %")
    func configuration() throws {
        let defaults = try self.parse("").mode.policy
        #expect(defaults.crisisAfterUplinkLoss == 1800)
        #expect(defaults.crisisBelowBatteryPercent == 30)
        let set = try self.parse("[mode]\nuplink_lost_after = \"45m\"\nbattery_below = 22.5").mode.policy
        #expect(set.crisisAfterUplinkLoss == 2700)
        #expect(set.crisisBelowBatteryPercent == 22.5)
        let off = try self.parse("[mode]\nuplink_lost_after = \"off\"\nbattery_below = \"off\"").mode.policy
        #expect(off.crisisAfterUplinkLoss == nil)
        #expect(off.crisisBelowBatteryPercent == nil)
    }

    @Test("mistakes in the triggers are refused with their line and key", arguments: [
        ("[mode]\nuplink_lost_after = 30", 2, "mode.uplink_lost_after"),
        ("[mode]\ncrisis_after = \"1m\"\nuplink_lost_after = \"soon\"", 3, "mode.uplink_lost_after"),
        ("[mode]\nuplink_lost_after = \"0s\"", 2, "mode.uplink_lost_after"),
        ("[mode]\nbattery_below = 120", 2, "mode.battery_below"),
        ("[mode]\n\nbattery_below = \"low\"", 3, "mode.battery_below"),
        ("[mode]\nbattery_below = -1", 2, "mode.battery_below"),
    ])
    func mistakes(_ source: String, line: Int, key: String) throws {
        do {
            _ = try self.parse(source)
            Issue.record("accepted: \(source)")
        } catch let error as ConfigurationError {
            #expect(error.key == key)
            #expect(error.line == line + 3, "\(error)")
        } catch {
            Issue.record("not a configuration error: \(error)")
        }
    }

    /// Runs the controller on a manual clock with `uplinks`, in a store that may already hold a contact.
    func withController(
        policy: ModePolicy, uplinks: [any Uplink] = [], prepare: (ReadingStore, ManualClock) async throws -> Void = { _, _ in },
        _ body: (ReadingStore, ManualClock) async throws -> Void
    ) async throws {
        let directory = try temporaryDirectory("kiezbox-triggers")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try ReadingStore(directory: directory)
        let clock = ManualClock(startDate: Date(timeIntervalSince1970: 1_790_000_000))
        try await prepare(store, clock)
        let controller = ModeController(
            store: store, desk: nil, clock: clock, policy: policy, hooks: ModeHooks(), logger: Logger(label: "test"), uplinks: uplinks)
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await controller.run() }
                await clock.waitForSleepers(1)
                try await body(store, clock)
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
    }

    func advance(_ seconds: Int, clock: ManualClock, before: () async throws -> Void = {}) async throws {
        for _ in 0..<(seconds / 10) {
            try await before()
            clock.advance(by: .seconds(10))
            await clock.waitForSleepers(1)
        }
    }

    /// An MQTT uplink that is never started: it can tell (it has a broker), and it has no contact.
    func unreachableUplink(_ store: ReadingStore) throws -> MQTTUplink {
        try MQTTUplink(
            configuration: .init(host: "127.0.0.1", port: 1),
            sender: SenderIdentity(box: BoxIdentity(district: "test-kiez", boxID: "box", name: "Box"), storeInstance: store.instanceID))
    }

    @Test("a restart during an uplink outage counts on from the last contact before it; the trigger is in the crisis history")
    func uplinkSilenceSurvivesRestart() async throws {
        var policy = self.policy
        policy.crisisAfterUplinkLoss = 1800
        let directory = try temporaryDirectory("kiezbox-triggers-restart")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let start = Date(timeIntervalSince1970: 1_790_000_000)
        do {
            let store = try ReadingStore(directory: directory)
            // The last run saw the broker 1700 s before this one started.
            try await store.recordUplinkContact(at: start.addingTimeInterval(-1700))
            try store.close()
        }
        let store = try ReadingStore(directory: directory)
        let clock = ManualClock(startDate: start)
        let controller = ModeController(
            store: store, desk: nil, clock: clock, policy: policy, hooks: ModeHooks(), logger: Logger(label: "test"),
            uplinks: [try self.unreachableUplink(store)])
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await controller.run() }
                await clock.waitForSleepers(1)
                try await self.advance(90, clock: clock)
                #expect(try store.mode() == .normal)  // 1790 s without contact
                try await self.advance(20, clock: clock)
                #expect(try store.mode() == .crisis)  // 1810 s: not counted from the restart
                let history = try store.crisisHistory()
                #expect(history.first?.mode == .crisis)
                #expect(history.first?.reason.hasPrefix("uplink lost for 30 min") == true, "\(history)")
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
    }

    @Test("no uplink that can tell: no crisis however long; a low battery with mains gone is one before crisis_after")
    func batteryWithoutUplinks() async throws {
        var policy = self.policy
        policy.crisisAfterMainsLoss = 3600
        try await self.withController(policy: policy) { store, clock in
            try await self.advance(2000, clock: clock)
            #expect(try store.mode() == .normal)
            try await store.setBatteryRecord(PowerRecords.record(percent: 25, at: clock.currentDate()))
            try await self.advance(30, clock: clock) {
                try await store.setBatteryRecord(PowerRecords.record(percent: 25, at: clock.currentDate()))
                try await store.record([Reading(sensorID: "mains", quantity: .mainsPresent, value: 0, measuredAt: clock.currentDate())])
                _ = try await store.flush()
            }
            #expect(try store.mode() == .crisis)
            #expect(try store.crisisHistory().first?.reason.hasPrefix("battery at 25 % (below 30 %)") == true)
        }
    }

    @Test("the crisis history keeps the newest 20 changes, newest first")
    func historyBounded() async throws {
        let directory = try temporaryDirectory("kiezbox-history")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try ReadingStore(directory: directory)
        let start = Date(timeIntervalSince1970: 1_790_000_000)
        for index in 0..<25 {
            try await store.recordCrisisTrigger(CrisisTrigger(at: start.addingTimeInterval(Double(index)), mode: index % 2 == 0 ? .crisis : .normal, reason: "#\(index)"))
        }
        let history = try store.crisisHistory()
        #expect(history.count == 20)
        #expect(history.first?.reason == "#24")
        #expect(history.last?.reason == "#5")
    }
}

/// Power model records at a given state of charge.
enum PowerRecords {
    static func record(percent: Double, at date: Date) -> BatteryRecord {
        let fraction = percent / 100
        return BatteryRecord(
            state: .init(stateOfCharge: fraction, stateOfChargeUncertainty: 0.03),
            estimate: PowerEstimate(
                stateOfCharge: fraction, stateOfChargeLow: fraction - 0.03, stateOfChargeHigh: fraction + 0.03, remainingAmpHours: 25 * fraction,
                averageDrawAmps: 1.5, hoursLeft: HoursLeft(likely: 16.7 * fraction, low: 14 * fraction, high: 20 * fraction), solarWatts: nil,
                lastAnchor: nil, lastAnchorAt: nil),
            at: date)
    }
}

/// The real daemon with an MQTT uplink: the broker goes away, and after `uplink_lost_after` the box is in crisis
/// mode, for that reason, in `kiezbox status`.
@Suite("Uplink lost in the daemon", .serialized, .timeLimit(.minutes(3)))
struct UplinkLostDaemonTests {
    @Test("the broker stops; after uplink_lost_after the daemon enters crisis and kiezbox status names the uplink")
    func brokerStops() async throws {
        try await MosquittoBroker.with { broker in try await withWorkspace { directory in
            let configuration = """
                [box]
                id = "lost-box"
                district = "test-kiez"

                [store]
                flush_interval = "200ms"

                [simulation]
                enabled = true

                [portal]
                enabled = false

                [mqtt]
                host = "127.0.0.1"
                port = \(broker.port)

                [mode]
                uplink_lost_after = "3s"
                check_interval = "200ms"

                [[sensor]]
                id = "roof"
                chip = "bme280"
                address = 0x76
                interval = "1s"
                """
            try configuration.write(toFile: directory + "/kiezbox.toml", atomically: true, encoding: .utf8)
            let arguments = ["--config", directory + "/kiezbox.toml", "--data-dir", directory + "/data"]
            let watcher = try await TestSubscriber.connected(port: broker.port, filter: "kiezbox/v1/test-kiez/lost-box/status")
            let daemon = try SpawnedDaemon([kiezboxBinary, "run"] + arguments, in: directory)
            defer {
                daemon.signal(SIGKILL)
                _ = reapedStatus(daemon.pid, blocking: true)
            }
            try await watcher.waitForMessages(where: { String(decoding: $0.payload, as: UTF8.self).contains("\"online\"") })
            await watcher.stop()
            // Connected for a while: still normal.
            let before = try await runProgram([kiezboxBinary, "status"] + arguments, in: directory)
            #expect(before.output.contains("mode        normal"), "\(before.all)")
            await broker.stop()
            let lostAt = ContinuousClock.now
            let status = try await eventually("crisis mode for the lost uplink in kiezbox status") { () async throws -> String? in
                let run = try await runProgram([kiezboxBinary, "status"] + arguments, in: directory)
                if run.output.contains("mode        crisis") { return run.output }
                try await Task.sleep(for: .milliseconds(200))
                return nil
            }
            print("uplink lost in the daemon: crisis \(ContinuousClock.now - lostAt) after the broker stopped (uplink_lost_after 3 s)")
            let history = try #require(status.components(separatedBy: "Crisis history (newest first)\n").last?.split(separator: "\n").first)
            #expect(history.contains("crisis") && history.contains("uplink lost for"), "\(status)")
        } }
    }
}
