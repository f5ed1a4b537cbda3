import Foundation
import KiezboxCore
import Logging
import SensorDrivers
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing

@testable import KiezboxAgent

/// The store as the notify service sees it, scripted: facts to answer with, and a round trip that can be made
/// to hang without looking at cancellation (as a SQLite call on a dead SD card does).
final class StoreStandIn: Sendable {
    private struct State {
        var facts: StoreFacts
        var roundTrips = 0
        var blockFromRoundTrip = Int.max
        var blocked: [CheckedContinuation<Void, Never>] = []
    }

    private let state: Mutex<State>
    /// Reached when a round trip has begun to hang.
    let hanging = Milestone()

    init(_ facts: StoreFacts) {
        self.state = Mutex(State(facts: facts))
    }

    func set(mode: Mode) { self.state.withLock { $0.facts.mode = mode } }
    /// Round trip `number` (counting from 1) and every later one hang until ``release()``.
    func hang(fromRoundTrip number: Int) { self.state.withLock { $0.blockFromRoundTrip = number } }

    func roundTrip() async -> StoreFacts {
        let (blocks, facts) = self.state.withLock { state in
            state.roundTrips += 1
            return (state.roundTrips >= state.blockFromRoundTrip, state.facts)
        }
        if blocks {
            await withCheckedContinuation { continuation in
                self.state.withLock { $0.blocked.append(continuation) }
                self.hanging.reach()
            }
        }
        return facts
    }

    /// Lets the hung round trips end (after the test, so they do not outlive it).
    func release() {
        let blocked = self.state.withLock { state in
            defer { state.blocked = [] }
            state.blockFromRoundTrip = .max
            return state.blocked
        }
        for continuation in blocked { continuation.resume() }
    }
}

/// A driver that answers once, then never again (until cancelled): a chip that hangs the bus.
final class HangingDriver: SensorDriver {
    let chipName = "hanging"
    private let calls = Mutex(0)

    func measure() async throws -> [MeasuredValue] {
        let call = self.calls.withLock { calls in
            calls += 1
            return calls
        }
        if call == 1 { return [MeasuredValue(.rainfall, 0)] }
        await Milestone().reached()
        throw CancellationError()
    }
}

@Suite("systemd notify protocol")
struct SystemdNotifierTests {
    @Test("NOTIFY_SOCKET: unset is no notifier; a path or @abstract name is used; anything else is refused")
    func socketAddress() throws {
        #expect(try SystemdNotifier(environment: [:]) == nil)
        #expect(try SystemdNotifier(environment: ["NOTIFY_SOCKET": "/run/systemd/notify"])?.socket == .path("/run/systemd/notify"))
        #expect(try SystemdNotifier(environment: ["NOTIFY_SOCKET": "@sd-notify"])?.socket == .abstract("sd-notify"))
        for invalid in ["run/systemd/notify", "", "@", "vsock:2:1234", "/" + String(repeating: "x", count: 108)] {
            #expect(throws: SystemdNotifierError.self, "\(invalid)") { try SystemdNotifier(environment: ["NOTIFY_SOCKET": invalid]) }
        }
    }

    @Test("WATCHDOG_USEC sets the watchdog; WATCHDOG_PID naming another process means it is not ours")
    func watchdogTimeout() throws {
        let socket = ["NOTIFY_SOCKET": "/run/systemd/notify"]
        #expect(try SystemdNotifier(environment: socket)?.watchdogTimeout == nil)
        #expect(try SystemdNotifier(environment: socket.merging(["WATCHDOG_USEC": "30000000"]) { $1 })?.watchdogTimeout == .seconds(30))
        let ours = socket.merging(["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"]) { $1 }
        #expect(try SystemdNotifier(environment: ours, processID: 4242)?.watchdogTimeout == .seconds(30))
        #expect(try SystemdNotifier(environment: ours, processID: 4243)?.watchdogTimeout == nil)
        #expect(throws: SystemdNotifierError.self) {
            try SystemdNotifier(environment: socket.merging(["WATCHDOG_USEC": "soon"]) { $1 })
        }
    }

    @Test("one datagram per message, assignments separated by newlines", arguments: [false, true])
    func datagram(abstract: Bool) async throws {
        let listener = try NotifySocketListener(abstract: abstract)
        defer { listener.stop() }
        let notifier = try #require(try SystemdNotifier(environment: ["NOTIFY_SOCKET": listener.address]))
        try notifier.send(["READY=1", "STATUS=normal · sensors 2/2 ok"])
        try notifier.send(["WATCHDOG=1"])
        #expect(try await listener.message(1) == "READY=1\nSTATUS=normal · sensors 2/2 ok")
        #expect(try await listener.message(2) == "WATCHDOG=1")
    }

    @Test("a socket nobody listens on is an error, not a hang")
    func nobodyListening() throws {
        let notifier = try #require(try SystemdNotifier(environment: ["NOTIFY_SOCKET": "/nonexistent/notify"]))
        #expect(throws: SystemdNotifierError.self) { try notifier.send(["READY=1"]) }
    }

    @Test("the sensor summary counts the sensors that answer and names the failing and hung ones")
    func sensorSummary() {
        typealias Sensor = SamplerHeartbeat<ManualClock.Instant>.Sensor
        let at = ManualClock.Instant(offset: .zero)
        let sensors = [
            Sensor(id: "climate", outcome: .ok, roundDue: at), Sensor(id: "rain", outcome: .failing, roundDue: at),
            Sensor(id: "co2", outcome: .ok, roundDue: at), Sensor(id: "gps", outcome: .starting, roundDue: at),
            Sensor(id: "pm", outcome: .starting, roundDue: at),
        ]
        let summary = SystemdNotifyService<ManualClock>.sensorSummary
        #expect(summary(sensors, ["co2"]) == "sensors 1/5 ok (rain failing, co2 hung, 2 starting)")
        #expect(summary(Array(sensors.prefix(3)), []) == "sensors 2/3 ok (rain failing)")
        #expect(summary([], []) == "no sensors")
    }
}

@Suite("systemd notify service on an injected clock")
struct SystemdNotifyServiceTests {
    let logger = Logger(label: "test")

    func service(
        _ listener: NotifySocketListener, clock: ManualClock, heartbeat: SamplerHeartbeat<ManualClock.Instant>,
        portal: PortalListening? = nil, store: StoreStandIn, samplerMargin: Duration = .seconds(120)
    ) throws -> SystemdNotifyService<ManualClock> {
        let notifier = try #require(try SystemdNotifier(environment: ["NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "30000000"]))
        return SystemdNotifyService(
            notifier: notifier, clock: clock, heartbeat: heartbeat,
            startup: [heartbeat.started] + [portal?.firstAttempt].compactMap { $0 }, portal: portal,
            storeRoundTrip: { await store.roundTrip() }, logger: self.logger,
            statusInterval: .seconds(10), samplerMargin: samplerMargin, storeMargin: .seconds(20)
        )
    }

    @Test("READY=1 with the status line, WATCHDOG=1 every half timeout, STATUS again on a mode change, STOPPING=1 on shutdown")
    func lifecycle() async throws {
        let clock = ManualClock()
        let listener = try NotifySocketListener()
        defer { listener.stop() }
        let heartbeat = SamplerHeartbeat<ManualClock.Instant>()
        heartbeat.start([("climate", clock.now), ("rain", clock.now)])
        heartbeat.beat("climate", outcome: .ok, nextRound: clock.now.advanced(by: .seconds(10)))
        heartbeat.beat("rain", outcome: .failing, nextRound: clock.now.advanced(by: .seconds(5)))
        let portal = PortalListening(port: 80)
        let store = StoreStandIn(StoreFacts(mode: .normal, backlog: 1234))
        let service = try self.service(listener, clock: clock, heartbeat: heartbeat, portal: portal, store: store)

        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await service.run() }
                // READY=1 waits for the portal's first attempt to listen.
                portal.record(.listening)
                #expect(try await listener.message(1) == "READY=1\nSTATUS=normal · sensors 1/2 ok (rain failing) · backlog 1234 · portal :80")
                #expect(try await listener.message(2) == "WATCHDOG=1")

                store.set(mode: .crisis)
                await clock.waitForSleepers(2)
                clock.advance(by: .seconds(10))
                #expect(try await listener.message(3) == "STATUS=crisis · sensors 1/2 ok (rain failing) · backlog 1234 · portal :80")
                await clock.waitForSleepers(2)
                clock.advance(by: .seconds(5))
                #expect(try await listener.message(4) == "WATCHDOG=1")
                await clock.waitForSleepers(2)
                clock.advance(by: .seconds(5))  // a status round with nothing new: nothing sent
                await clock.waitForSleepers(2)
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        #expect(try await listener.message(5) == "STOPPING=1")
        #expect(listener.messages.count == 5)
    }

    @Test("a sensor driver that never returns stops the watchdog pings")
    func hungSampler() async throws {
        let clock = ManualClock()
        let listener = try NotifySocketListener()
        defer { listener.stop() }
        let heartbeat = SamplerHeartbeat<ManualClock.Instant>()
        let sampler = Sampler(
            sensors: [
                ScheduledSensor(id: "climate", interval: .seconds(10), offsets: [:], driver: ScriptedDriver()),
                ScheduledSensor(id: "rain", interval: .seconds(60), offsets: [:], driver: HangingDriver()),
            ],
            clock: clock, logger: self.logger, heartbeat: heartbeat
        ) { _ in }
        let store = StoreStandIn(StoreFacts(mode: .normal, backlog: nil))
        let service = try self.service(listener, clock: clock, heartbeat: heartbeat, store: store, samplerMargin: .seconds(30))

        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await sampler.run() }
                group.addTask { try await service.run() }
                // Asleep between rounds: two sensor loops, the status and the watchdog loop; from t = 60 s the
                // rain loop hangs in its driver.
                while clock.now.offset < .seconds(130) {
                    await clock.waitForSleepers(clock.now.offset < .seconds(60) ? 4 : 3)
                    clock.advance(by: .seconds(5))
                }
                await clock.waitForSleepers(3)
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        let messages = try await listener.waitFor("STOPPING=1") { $0 == "STOPPING=1" }
        #expect(messages.first?.hasPrefix("READY=1\nSTATUS=normal · sensors ") == true)
        #expect(messages.last == "STOPPING=1")
        // The rain round began at t = 60 s; with a 30 s margin it is hung from t = 90 s on. Pings at 0, 15, …, 90 s.
        let hung = try #require(messages.firstIndex { $0.contains("(rain hung)") }, "\(messages)")
        #expect(messages[hung] == "STATUS=normal · sensors 1/2 ok (rain hung) · portal off")
        #expect(messages[..<hung].filter { $0 == "WATCHDOG=1" }.count == 7, "\(messages)")
        #expect(!messages[hung...].contains("WATCHDOG=1"), "\(messages)")
    }

    @Test("a store that stops answering stops the watchdog pings, and does not hold up the shutdown")
    func blockedStore() async throws {
        let clock = ManualClock()
        let listener = try NotifySocketListener(abstract: true)
        defer { listener.stop() }
        let heartbeat = SamplerHeartbeat<ManualClock.Instant>()
        heartbeat.start([("climate", clock.now)])
        heartbeat.beat("climate", outcome: .ok, nextRound: clock.now.advanced(by: .seconds(10)))
        let store = StoreStandIn(StoreFacts(mode: .normal, backlog: 7))
        store.hang(fromRoundTrip: 2)
        let service = try self.service(listener, clock: clock, heartbeat: heartbeat, store: store)

        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await service.run() }
                _ = try await listener.message(2)
                await clock.waitForSleepers(2)
                clock.advance(by: .seconds(10))  // the second round trip hangs from t = 10 s
                await store.hanging.reached()
                // The watchdog loop alone is asleep now: t = 15, 30 s still within the 20 s margin, 45, 60 s not.
                for _ in 0..<4 {
                    await clock.waitForSleepers(1)
                    clock.advance(by: .seconds(15) - .seconds(clock.now.offset.components.seconds % 15))
                }
                await clock.waitForSleepers(1)
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        store.release()
        #expect(try await listener.waitFor("STOPPING=1") { $0 == "STOPPING=1" } == [
            "READY=1\nSTATUS=normal · sensors 1/1 ok · backlog 7 · portal off",
            "WATCHDOG=1", "WATCHDOG=1", "WATCHDOG=1",
            "STATUS=normal · sensors 1/1 ok · backlog 7 · portal off · store not answering",
            "STOPPING=1",
        ])
    }
}
