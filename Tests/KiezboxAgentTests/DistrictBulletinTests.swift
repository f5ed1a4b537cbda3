import Crypto
import Foundation
import KiezboxCore
import KiezboxTestSupport
import MeshRelay
import ReadingStore
import Synchronization
import Testing

@testable import KiezboxAgent

@Suite("The box's bulletin key")
struct BoxBulletinKeyTests {
    @Test("created on the first start with mode 0600, the same key after a restart, a broken file refused")
    func keyFile() throws {
        let directory = try temporaryDirectory("bulletin-key")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/" + BoxBulletinKey.fileName
        let first = try BoxBulletinKey.loadOrCreate(in: directory)
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
        #expect(mode == 0o600)
        #expect(try BoxBulletinKey.loadOrCreate(in: directory).rawRepresentation == first.rawRepresentation)
        // Loosened by hand: private again, same key.
        chmod(path, 0o644)
        #expect(try BoxBulletinKey.loadOrCreate(in: directory).rawRepresentation == first.rawRepresentation)
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600)
        // Not a key: an error that says so, and the file is left as it is.
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: BoxBulletinKey.Failure.self) { try BoxBulletinKey.loadOrCreate(in: directory) }
        #expect(FileManager.default.contents(atPath: path) == Data("garbage".utf8))
    }

    @Test("the shipped ACL template has one rule set per box, the district substituted")
    func aclTemplate() throws {
        let acl = try DistrictBulletinTests.acl(district: "xhain")
        #expect(!acl.contains("DISTRICT"))
        #expect(acl.contains("pattern readwrite kiezbox/v1/xhain/%u/#"))
        #expect(acl.contains("pattern read kiezbox/v1/xhain/#"))
        // Nothing lets a box write the district at large.
        #expect(!acl.split(separator: "\n").contains { $0.hasPrefix("pattern") && $0.contains("write kiezbox/v1/xhain/#") })
    }
}

/// Three real kiezbox daemons and a fourth, hostile client on a real mosquitto configured with the shipped
/// ACL template (packaging/mosquitto): the district's bulletin reaches every box, signed by its origin box.
@Suite("The district's bulletin over MQTT", .serialized, .timeLimit(.minutes(5)))
struct DistrictBulletinTests {
    static let district = "bulletin-kiez"
    static let packageRoot = URL(filePath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let boxes = ["box-a", "box-b", "box-c"]
    static let password = "secret-of-"

    static func acl(district: String) throws -> String {
        try String(contentsOf: packageRoot.appending(path: "packaging/mosquitto/kiezbox-district.acl"), encoding: .utf8)
            .replacingOccurrences(of: "DISTRICT", with: district)
    }

    func configuration(box: String, port: Int) -> String {
        """
        [box]
        id = "\(box)"
        district = "\(Self.district)"
        name = "Kiezbox \(box)"
        latitude = 52.50
        longitude = 13.43

        [store]
        flush_interval = "200ms"

        [simulation]
        enabled = true

        [portal]
        enabled = false

        [mqtt]
        host = "127.0.0.1"
        port = \(port)
        username = "\(box)"
        password = "\(Self.password)\(box)"
        keepalive = "5s"

        [relay]
        max_backoff = "2s"

        [[sensor]]
        id = "climate"
        chip = "bme280"
        interval = "5s"
        """
    }

    func openPosts(_ box: String, in directory: String) -> [BulletinPost] {
        (try? ReadingStore(directory: "\(directory)/\(box)", readOnly: true).openBulletinPosts(at: Date())) ?? []
    }

    func refusals(_ daemon: KiezboxProcess) -> Int {
        daemon.stderr.split(separator: "\n").count { $0.contains("bulletin message refused") }
    }

    func start(_ box: String, in directory: String) throws -> KiezboxProcess {
        try KiezboxProcess(["run", "--config", "\(directory)/\(box).toml", "--data-dir", "\(directory)/\(box)"], in: directory)
    }

    /// Publishes and waits for the broker's answer.
    func publish(_ client: MosquittoClient, _ topic: String, _ payload: [UInt8], retain: Bool = true) async throws -> MQTTPublishOutcome {
        let outcome = Mutex<MQTTPublishOutcome?>(nil)
        _ = try client.publish(topic: topic, payload: payload, qos: .atLeastOnce, retain: retain) { result in outcome.withLock { $0 = result } }
        return try await eventually("the broker's answer to \(topic)") { outcome.withLock { $0 } }
    }

    @Test("a post on A reaches B and C signed by A; forgeries are refused; expiry and removal reach every box; a box that was away catches up")
    func district() async throws {
        let directory = try temporaryDirectory("district-bulletin")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let aclPath = directory + "/kiezbox.acl"
        try Self.acl(district: Self.district).write(toFile: aclPath, atomically: true, encoding: .utf8)
        let logins = (Self.boxes + ["box-d", "observer"]).map { (user: $0, password: Self.password + $0) }
        try await MosquittoBroker.with(MosquittoBroker.Options(listener: ["acl_file \(aclPath)"], users: logins)) { broker in
            let root = "kiezbox/v1/\(Self.district)"
            let observer = try await TestSubscriber.connected(
                port: broker.port, filter: "\(root)/#", credentials: .init(username: "observer", password: Self.password + "observer"))
            var daemons: [String: KiezboxProcess] = [:]
            defer { for daemon in daemons.values where daemon.process.isRunning { daemon.signal(SIGKILL) } }
            do {
                try await self.run(broker: broker, observer: observer, directory: directory, root: root, daemons: &daemons)
            } catch {
                // What the boxes and the broker said explains a timeout.
                for (box, daemon) in daemons.sorted(by: { $0.key < $1.key }) { print("--- \(box):\n\(daemon.stderr.suffix(4000))") }
                print("--- broker:\n\(broker.log.suffix(4000))")
                throw error
            }
            await observer.stop()
        }
    }

    /// A crisis bulletin can hold thousands of posts (5,000 by default); the relay once looked only at the newest
    /// 500 open posts, so this box's older posts never reached the district (and one that had would have been
    /// withdrawn as if deleted).
    @Test("every open post of the box reaches the broker, also beyond the newest 500, and none is withdrawn")
    func manyPosts() async throws {
        let directory = try temporaryDirectory("district-bulletin-many")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let count = 520
        do {
            let store = try ReadingStore(directory: "\(directory)/box-a")
            let now = Date()
            for index in 0..<count {
                _ = try await store.addBulletinPost(
                    kind: .offer, category: .food, text: "Suppe \(index)", place: "Hof", createdAt: now.addingTimeInterval(Double(index - count)),
                    expiresAt: now.addingTimeInterval(3600))
            }
        }
        let logins = ["box-a", "observer"].map { (user: $0, password: Self.password + $0) }
        try await MosquittoBroker.with(MosquittoBroker.Options(users: logins)) { broker in
            let observer = try await TestSubscriber.connected(
                port: broker.port, filter: "kiezbox/v1/\(Self.district)/box-a/bulletin/+",
                credentials: .init(username: "observer", password: Self.password + "observer"))
            try self.configuration(box: "box-a", port: broker.port).write(toFile: "\(directory)/box-a.toml", atomically: true, encoding: .utf8)
            let daemon = try self.start("box-a", in: directory)
            defer { if daemon.process.isRunning { daemon.signal(SIGKILL) } }
            // The messages by action, each verified against the box's own key (made by the daemon at its start).
            func actions() -> [String: Set<String>] {
                guard let key = try? BoxBulletinKey.loadOrCreate(in: "\(directory)/box-a").publicKey else { return [:] }
                var actions: [String: Set<String>] = [:]
                for message in observer.messages {
                    let postID = String(message.topic.split(separator: "/").last ?? "")
                    let verified = try? BulletinMessage.verified(message.payload, key: key, district: Self.district, box: "box-a", postID: postID)
                    actions[verified?.action.rawValue ?? "unverified", default: []].insert(message.topic)
                }
                return actions
            }
            do {
                try await eventually("all \(count) posts at the broker", timeout: .seconds(120)) {
                    (actions()["post"]?.count ?? 0) >= count ? true : nil
                }
                // The published list is recorded after the round that sent them: by then any removal went out too.
                try await eventually("the published posts recorded", timeout: .seconds(60)) {
                    ((try? ReadingStore(directory: "\(directory)/box-a", readOnly: true).publishedBulletinPosts().count) ?? 0) >= count ? true : nil
                }
            } catch {
                print("--- box-a:\n\(daemon.stderr.suffix(4000))\nposts at the broker: \(actions().mapValues(\.count))")
                throw error
            }
            #expect(actions()["removal"] == nil)
            #expect(actions()["unverified"] == nil)
            await observer.stop()
        }
    }

    /// Runs `kiezbox bulletin <arguments>` on `box`'s data and returns what it printed; a failure fails the test.
    func bulletinCommand(_ arguments: [String], box: String, in directory: String) throws -> String {
        let run = try runKiezbox(["bulletin"] + arguments + ["--config", "\(directory)/\(box).toml", "--data-dir", "\(directory)/\(box)"], in: directory)
        #expect(run.status == 0, "kiezbox bulletin \(arguments) on \(box): \(run.stderr)")
        return run.stdout
    }

    @Test("moderation: `kiezbox bulletin remove` on the origin withdraws a post everywhere, also when the daemon was stopped; on another box it hides the post there only")
    func moderation() async throws {
        let directory = try temporaryDirectory("bulletin-moderation")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let boxes = ["box-a", "box-b"]
        try await MosquittoBroker.with(MosquittoBroker.Options(users: boxes.map { (user: $0, password: Self.password + $0) })) { broker in
            var daemons: [String: KiezboxProcess] = [:]
            defer { for daemon in daemons.values where daemon.process.isRunning { daemon.signal(SIGKILL) } }
            do {
                for box in boxes {
                    try self.configuration(box: box, port: broker.port).write(toFile: "\(directory)/\(box).toml", atomically: true, encoding: .utf8)
                    daemons[box] = try self.start(box, in: directory)
                }
                // B has A's status (with its key) once A runs: A's daemon has made its store by then.
                try await waitUntil("B to see A") {
                    ((try? ReadingStore(directory: "\(directory)/box-b", readOnly: true).neighbours()) ?? []).contains { $0.identity.boxID == "box-a" }
                }
                let storeA = try ReadingStore(directory: "\(directory)/box-a")
                var posts: [BulletinPost] = []
                for (kind, text) in [(BulletinKind.request, "Kerzen gesucht"), (.offer, "Decken übrig"), (.request, "Radio gesucht")] {
                    posts.append(
                        try await storeA.addBulletinPost(
                            kind: kind, category: .other, text: text, place: "", createdAt: Date(), expiresAt: Date().addingTimeInterval(3600)))
                }
                try await waitUntil("A's three posts on B") { self.openPosts("box-b", in: directory).count == 3 }

                // The list names each post's id, kind, origin and expiry.
                let listA = try self.bulletinCommand(["list"], box: "box-a", in: directory)
                #expect(listA.split(separator: "\n").contains { $0.hasPrefix("\(posts[0].id)\trequest/other\tthis box\texpires ") && $0.hasSuffix("Kerzen gesucht") })
                let listB = try self.bulletinCommand(["list"], box: "box-b", in: directory)
                #expect(listB.split(separator: "\n").filter { $0.contains("\t\(Self.district)/box-a\t") }.count == 3, "\(listB)")

                // Removed on A, its origin: gone on B.
                let removed = try self.bulletinCommand(["remove", String(posts[0].id), "--reason", "Spam"], box: "box-a", in: directory)
                #expect(removed.contains("removed (reason: Spam)"), "\(removed)")
                try await waitUntil("the removal on B") { !self.openPosts("box-b", in: directory).contains { $0.text == "Kerzen gesucht" } }

                // Removed on B, where it was relayed: hidden there only, and it says so.
                let onB = try #require(self.openPosts("box-b", in: directory).first { $0.text == "Decken übrig" })
                let hidden = try self.bulletinCommand(["remove", String(onB.id)], box: "box-b", in: directory)
                #expect(hidden.contains("hidden on this box only"), "\(hidden)")
                #expect(self.openPosts("box-a", in: directory).contains { $0.text == "Decken übrig" })
                let missing = try runKiezbox(["bulletin", "remove", "999999", "--config", "\(directory)/box-b.toml", "--data-dir", "\(directory)/box-b"], in: directory)
                #expect(missing.status != 0 && missing.stderr.contains("no post 999999"), "\(missing)")

                // Removed on A while its daemon is stopped: withdrawn at its next start. That start publishes A's
                // open posts again before the removal, so B has seen the hidden post's copy again by the time
                // the removal arrives, and the copy must not have brought it back.
                daemons["box-a"]!.signal(SIGKILL)
                _ = try await daemons["box-a"]!.waitForExit()
                _ = try self.bulletinCommand(["remove", String(posts[2].id)], box: "box-a", in: directory)
                daemons["box-a"] = try self.start("box-a", in: directory)
                try await waitUntil("the removal made while A was stopped on B") {
                    !self.openPosts("box-b", in: directory).contains { $0.text == "Radio gesucht" }
                }
                #expect(!self.openPosts("box-b", in: directory).contains { $0.text == "Decken übrig" }, "the hidden post came back")
                #expect(self.openPosts("box-a", in: directory).map(\.text) == ["Decken übrig"])
            } catch {
                for (box, daemon) in daemons.sorted(by: { $0.key < $1.key }) { print("--- \(box):\n\(daemon.stderr.suffix(4000))") }
                throw error
            }
        }
    }

    func run(
        broker: MosquittoBroker, observer: TestSubscriber, directory: String, root: String, daemons: inout [String: KiezboxProcess]
    ) async throws {
        do {
            for box in Self.boxes {
                try self.configuration(box: box, port: broker.port).write(toFile: "\(directory)/\(box).toml", atomically: true, encoding: .utf8)
                daemons[box] = try self.start(box, in: directory)
            }

            // Every box publishes its bulletin key in its retained status, and keeps the key private on disk.
            var keys: [String: String] = [:]
            for box in Self.boxes {
                let status = try await observer.waitForMessages(where: { $0.topic == "\(root)/\(box)/status" && !$0.payload.isEmpty }).last!
                let decoded = try JSONDecoder().decode(StatusMessage.self, from: Data(status.payload))
                let key: String = try #require(decoded.bulletinKey)
                keys[box] = key
                let mode = try FileManager.default.attributesOfItem(atPath: "\(directory)/\(box)/bulletin-key")[.posixPermissions] as? Int
                #expect(mode == 0o600)
            }
            for box in ["box-b", "box-c"] {
                try await waitUntil("\(box) to see A") {
                    ((try? ReadingStore(directory: "\(directory)/\(box)", readOnly: true).neighbours()) ?? []).contains { $0.identity.boxID == "box-a" }
                }
            }

            // The fourth client, logged in as box D.
            let intruder = try await TestSubscriber.connected(
                port: broker.port, filter: "\(root)/box-d/#", credentials: .init(username: "box-d", password: Self.password + "box-d"))
            let intruderKey = Curve25519.Signing.PrivateKey()
            let now = Date()
            let forgedPost = BulletinPost(
                id: 666, kind: .request, category: .medical, text: "forged", place: "", createdAt: now, expiresAt: now.addingTimeInterval(600))
            let claimingA = try BulletinMessage(.post, post: forgedPost, district: Self.district, box: "box-a").signedEnvelope(with: intruderKey)
            // 1. Under A's topic: the broker's ACL refuses it, and nothing is retained there.
            let underA = try await self.publish(intruder.client, "\(root)/box-a/bulletin/666", claimingA)
            #expect(underA != .acknowledged, "the ACL let box D publish under box A's topic")
            #expect(broker.log.contains("Denied PUBLISH from"))
            // 2. Under its own topics: a status that claims to be A's (with D's key), and posts the boxes refuse:
            // one claiming A, one with a signature that is not D's, one unsigned.
            var forgedStatus = StatusMessage(
                state: .online, box: BoxIdentity(district: Self.district, boxID: "box-a", name: "A"), mode: .normal,
                bulletinKey: intruderKey.publicKey.rawRepresentation.base64EncodedString(), time: now)
            #expect(try await self.publish(intruder.client, "\(root)/box-d/status", Array(JSONEncoder().encode(forgedStatus))) == .acknowledged)
            forgedStatus.box = "box-d"
            #expect(try await self.publish(intruder.client, "\(root)/box-d/status", Array(JSONEncoder().encode(forgedStatus))) == .acknowledged)
            var ownPost = forgedPost
            ownPost.id = 667
            let badSignature = try BulletinMessage(.post, post: ownPost, district: Self.district, box: "box-d")
                .signedEnvelope(with: Curve25519.Signing.PrivateKey())
            let unsigned = try BulletinMessage(.post, post: ownPost, district: Self.district, box: "box-d").canonicalBytes()
            for (topic, payload) in [
                ("\(root)/box-d/bulletin/666", claimingA), ("\(root)/box-d/bulletin/667", badSignature), ("\(root)/box-d/bulletin/668", unsigned),
            ] {
                #expect(try await self.publish(intruder.client, topic, payload) == .acknowledged)
            }
            for box in ["box-b", "box-c"] {
                try await waitUntil("\(box) to refuse the three forgeries") { self.refusals(daemons[box]!) >= 3 }
            }

            // A genuine post on A (as its portal stores it) reaches B and C with A as origin.
            let storeA = try ReadingStore(directory: "\(directory)/box-a")
            let shortLived = try await storeA.addBulletinPost(
                kind: .request, category: .water, text: "Wasser für zwei", place: "Wrangelstr. 1", createdAt: Date(),
                expiresAt: Date().addingTimeInterval(25))
            let started = ContinuousClock.now
            for box in ["box-b", "box-c"] {
                try await waitUntil("A's post on \(box)") {
                    self.openPosts(box, in: directory).contains { $0.text == "Wasser für zwei" && $0.origin == "\(Self.district)/box-a" }
                }
            }
            print("A's post on B and C after \(ContinuousClock.now - started)")
            for box in ["box-b", "box-c"] {
                let posts = self.openPosts(box, in: directory)
                #expect(!posts.contains { $0.text == "forged" }, "\(box) shows a forged post")
                #expect(posts.count == 1, "\(box): \(posts)")
            }

            // C is away (killed, as in a power cut) while A posts again; after its restart it has the post.
            daemons["box-c"]!.signal(SIGKILL)
            _ = try await daemons["box-c"]!.waitForExit()
            let later = try await storeA.addBulletinPost(
                kind: .offer, category: .food, text: "Suppe im Hof", place: "", createdAt: Date(), expiresAt: Date().addingTimeInterval(3600))
            try await waitUntil("A's second post on B") { self.openPosts("box-b", in: directory).contains { $0.text == "Suppe im Hof" } }
            #expect(!self.openPosts("box-c", in: directory).contains { $0.text == "Suppe im Hof" })
            let onlineStatusesOfC = { observer.messages.compactMap { message -> StatusMessage? in
                guard message.topic == "\(root)/box-c/status" else { return nil }
                return (try? JSONDecoder().decode(StatusMessage.self, from: Data(message.payload))).flatMap { $0.state == .online ? $0 : nil }
            } }
            let onlineBefore = onlineStatusesOfC().count
            daemons["box-c"] = try self.start("box-c", in: directory)
            try await waitUntil("C to catch up") { self.openPosts("box-c", in: directory).contains { $0.text == "Suppe im Hof" } }
            // The restarted box signs with the key it had.
            try await waitUntil("C's status after its restart") { onlineStatusesOfC().count > onlineBefore }
            #expect(onlineStatusesOfC().last?.bulletinKey == keys["box-c"])

            // Removal by the origin (moderation on A): gone on B and C.
            #expect(try await storeA.deleteBulletinPost(id: later.id))
            for box in ["box-b", "box-c"] {
                try await waitUntil("the removal on \(box)") { !self.openPosts(box, in: directory).contains { $0.text == "Suppe im Hof" } }
            }

            // Expiry: the short-lived post is gone everywhere, also from the broker (a late subscriber gets nothing).
            try await waitUntil("the first post to expire") { shortLived.expiresAt < Date() }
            for box in Self.boxes {
                #expect(!self.openPosts(box, in: directory).contains { $0.text == "Wasser für zwei" })
            }
            // The broker counts expiry in whole seconds (the box rounds the remaining lifetime up): ask late
            // subscribers until one gets no copy. The retained messages come right after the SUBACK, before
            // anything published after it.
            try await eventually("the broker to drop the expired post") { () -> Bool? in
                let late = try await TestSubscriber.connected(
                    port: broker.port, filter: "\(root)/#", credentials: .init(username: "observer", password: Self.password + "observer"))
                _ = try await self.publish(observer.client, "\(root)/observer/sentinel", [1], retain: false)
                try await late.waitForMessages(where: { $0.topic == "\(root)/observer/sentinel" })
                await late.stop()
                return late.messages.contains { $0.topic == "\(root)/box-a/bulletin/\(shortLived.id)" && !$0.payload.isEmpty } ? nil : true
            }
            // Refusals are counted, and the forged post never reached any box.
            for box in Self.boxes {
                #expect(!self.openPosts(box, in: directory).contains { $0.text == "forged" })
            }
            await intruder.stop()
        }
    }
}
