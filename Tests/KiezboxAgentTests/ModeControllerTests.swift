import Crypto
import EmergencyPortal
import Foundation
import KiezboxCore
import Logging
import ReadingStore
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

@testable import KiezboxAgent

@Suite("Mode: blackout, declared crisis, by hand")
struct ModeControllerTests {
    @Test("the policy: a short dip is no crisis; a blackout is; leaving waits for mains to stay on; hand and authority win")
    func policy() {
        let policy = ModePolicy(crisisAfterMainsLoss: 120, normalAfterMainsReturn: 600)
        #expect(policy.decide(current: .normal, ModeInputs(mainsPresentFor: 50)).mode == .normal)
        #expect(policy.decide(current: .normal, ModeInputs(mainsLostFor: 119)).mode == .normal)
        #expect(policy.decide(current: .normal, ModeInputs(mainsLostFor: 120)).mode == .crisis)
        #expect(policy.decide(current: .crisis, ModeInputs(mainsLostFor: 5)).mode == .crisis)
        #expect(policy.decide(current: .crisis, ModeInputs(mainsPresentFor: 599)).mode == .crisis)
        #expect(policy.decide(current: .crisis, ModeInputs(mainsPresentFor: 600)).mode == .normal)
        // No mains input at all (not wired, or its readings are stale): a crisis only ends without a reason to stay.
        #expect(policy.decide(current: .crisis, ModeInputs()).mode == .normal)
        #expect(policy.decide(current: .normal, ModeInputs(declaredBy: "Bezirksamt", mainsPresentFor: 9999)).mode == .crisis)
        #expect(policy.decide(current: .crisis, ModeInputs(override: .maintenance, declaredBy: "Bezirksamt")).mode == .maintenance)
        #expect(policy.decide(current: .maintenance, ModeInputs()).mode == .normal)
    }

    /// Runs the controller on a manual clock with a store the test writes mains readings into.
    func withController(
        desk: ((ReadingStore) -> AnnouncementDesk)? = nil, stateFile: ModeStateFile? = nil,
        _ body: (ReadingStore, ManualClock, AnnouncementDesk?) async throws -> Void
    ) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-mode-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try ReadingStore(directory: directory)
        let clock = ManualClock()
        let announcementDesk = desk?(store)
        let controller = ModeController(
            store: store, desk: announcementDesk, clock: clock, policy: ModePolicy(crisisAfterMainsLoss: 120, normalAfterMainsReturn: 600),
            hooks: ModeHooks(), logger: Logger(label: "test"), stateFile: stateFile
        )
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await controller.run() }
                await clock.waitForSleepers(1)
                try await body(store, clock, announcementDesk)
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
    }

    /// Records a mains reading now and lets the controller take `seconds` of 10 s steps.
    func mains(_ present: Bool, for seconds: Int, store: ReadingStore, clock: ManualClock) async throws {
        for _ in 0..<(seconds / 10) {
            try await store.record([Reading(sensorID: "mains", quantity: .mainsPresent, value: present ? 1 : 0, measuredAt: clock.currentDate())])
            _ = try await store.flush()
            clock.advance(by: .seconds(10))
            await clock.waitForSleepers(1)
        }
    }

    @Test("a blackout switches to crisis after two minutes; mains back for ten minutes switches back")
    func blackout() async throws {
        try await self.withController { store, clock, _ in
            try await self.mains(true, for: 60, store: store, clock: clock)
            #expect(try store.mode() == .normal)
            try await self.mains(false, for: 60, store: store, clock: clock)
            #expect(try store.mode() == .normal)
            try await self.mains(false, for: 80, store: store, clock: clock)
            #expect(try store.mode() == .crisis)
            try await self.mains(true, for: 300, store: store, clock: clock)
            #expect(try store.mode() == .crisis)
            try await self.mains(true, for: 320, store: store, clock: clock)
            #expect(try store.mode() == .normal)
        }
    }

    @Test("set by hand holds until auto; an authority's signed crisis declaration switches a box with mains on")
    func handAndAuthority() async throws {
        let signer = AnnouncementSigner(keyID: "ba", privateKey: Curve25519.Signing.PrivateKey())
        let key = AnnouncementKey(keyID: "ba", issuer: "Bezirksamt", publicKey: signer.privateKey.publicKey)
        try await self.withController(desk: { AnnouncementDesk(keys: [key], district: "demo-kiez", store: $0, logger: Logger(label: "test")) }) {
            store, clock, desk in
            try await store.setModeOverride(.maintenance)
            try await self.mains(true, for: 20, store: store, clock: clock)
            #expect(try store.mode() == .maintenance)
            try await store.setModeOverride(nil)
            try await self.mains(true, for: 20, store: store, clock: clock)
            #expect(try store.mode() == .normal)

            let now = clock.currentDate()
            let declaration = AnnouncementPayload(
                id: "katastrophenfall", issuedAt: now, expiresAt: now.addingTimeInterval(3600), severity: .extreme,
                headline: ["de": "Katastrophenfall ausgerufen"], body: [:], crisis: true
            )
            let outcome = try await #require(desk).accept(try signer.sign(declaration).json(), via: .api, now: now)
            guard case .accepted = outcome else { Issue.record("not accepted: \(outcome)"); return }
            try await self.mains(true, for: 20, store: store, clock: clock)
            #expect(try store.mode() == .crisis)
            // When the declaration expires and mains has been on all along, the crisis ends after the hold time.
            clock.advance(by: .seconds(3600))
            await clock.waitForSleepers(1)
            try await self.mains(true, for: 610, store: store, clock: clock)
            #expect(try store.mode() == .normal)
        }
    }

    /// What the mode file holds, and the file's inode (a new one on every replacement).
    func modeFile(_ path: String) throws -> (contents: String, inode: UInt64) {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        let inode = try #require(attributes[.systemFileNumber] as? NSNumber).uint64Value
        return (try String(contentsOfFile: path, encoding: .utf8), inode)
    }

    /// Runs the controller with its mode file at `relativePath` in a temporary directory.
    func withModeFile(
        at relativePath: String, _ body: (ReadingStore, ManualClock, _ directory: String, _ path: String) async throws -> Void
    ) async throws {
        let directory = try temporaryDirectory("kiezbox-mode-file")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/" + relativePath
        try await self.withController(stateFile: ModeStateFile(path: path)) { store, clock, _ in
            try await body(store, clock, directory, path)
        }
    }

    @Test("the mode file: written on start, replaced in one step on every change, left alone while the mode holds")
    func modeFileFollowsTheMode() async throws {
        try await self.withModeFile(at: "mode") { store, clock, directory, path in
            // The first round ran before the controller first slept.
            let started = try self.modeFile(path)
            #expect(started.contents == "normal\n")
            let permissions = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber
            #expect(permissions?.intValue == 0o644)

            // Unchanged mode, no new file: kiezbox-mode.path fires only on real changes.
            let reader = try #require(FileHandle(forReadingAtPath: path))
            defer { try? reader.close() }
            try await self.mains(true, for: 60, store: store, clock: clock)
            #expect(try self.modeFile(path) == started)

            try await self.mains(false, for: 140, store: store, clock: clock)
            let crisis = try self.modeFile(path)
            #expect(crisis.contents == "crisis\n")
            // A new file renamed over the old one: a reader that opened the old one still reads it whole.
            #expect(crisis.inode != started.inode)
            #expect(String(decoding: try reader.readToEnd() ?? Data(), as: UTF8.self) == "normal\n")
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["mode"], "no temporary file is left")

            try await self.mains(true, for: 610, store: store, clock: clock)
            #expect(try self.modeFile(path).contents == "normal\n")
            try await store.setModeOverride(.maintenance)
            try await self.mains(true, for: 10, store: store, clock: clock)
            #expect(try self.modeFile(path).contents == "maintenance\n")
        }
    }

    @Test("a mode file that cannot be written yet is written as soon as it can be")
    func modeFileRetried() async throws {
        try await self.withModeFile(at: "run/mode") { store, clock, directory, path in
            #expect(!FileManager.default.fileExists(atPath: path))
            try FileManager.default.createDirectory(atPath: directory + "/run", withIntermediateDirectories: false)
            try await self.mains(true, for: 10, store: store, clock: clock)
            #expect(try self.modeFile(path).contents == "normal\n")
        }
    }

    @Test("writing the mode file into a missing directory says which file and why")
    func modeFileError() {
        #expect {
            try ModeStateFile(path: "/nonexistent-kiezbox/mode").write(.crisis)
        } throws: { error in
            "\(error)".contains("/nonexistent-kiezbox/.mode.tmp") && "\(error)".contains("No such file or directory")
        }
    }
}
