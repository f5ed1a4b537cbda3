import Crypto
import Foundation
import KiezboxCore
import KiezboxTestSupport
import MeshRelay
import ReadingStore
import Synchronization
import Testing

/// The uplink's side of the district bulletin on a real broker: retained, expiring posts under the box's own
/// topics, the district's posts to every other box, and statuses that speak only for their own topic's box.
@Suite("Bulletin over the MQTT uplink", .timeLimit(.minutes(2)))
struct BulletinUplinkTests {
    @Test("a post is retained with its expiry under the box's topics, reaches the other box, not its own; the status carries the key")
    func publishAndReceive() async throws {
        try await MosquittoBroker.with { broker in
            let key = Curve25519.Signing.PrivateKey()
            let encodedKey = key.publicKey.rawRepresentation.base64EncodedString()
            let me = try MQTTUplink(
                configuration: Fixtures.uplinkConfiguration(port: broker.port) { $0.bulletinKey = encodedKey }, sender: Fixtures.sender())
            let neighbour = try MQTTUplink(
                configuration: Fixtures.uplinkConfiguration(port: broker.port), sender: Fixtures.sender(Fixtures.reichenberger))
            let mine = try me.subscribe(toBulletinIn: "xhain")
            let theirs = try neighbour.subscribe(toBulletinIn: "xhain")
            let statuses = try neighbour.subscribe(toDistrict: "xhain")
            let now = Date()
            let post = BulletinPost(id: 9, kind: .offer, category: .power, text: "Strom", place: "", createdAt: now, expiresAt: now.addingTimeInterval(600))
            let envelope = try BulletinMessage(.post, post: post, district: "xhain", box: "wrangelkiez-01").signedEnvelope(with: key)
            try await withStarted(me) {
                try await withStarted(neighbour) {
                    try await me.waitUntilConnected(timeout: .seconds(10))
                    try await neighbour.waitUntilConnected(timeout: .seconds(10))
                    var statusIterator = statuses.makeAsyncIterator()
                    let status = await statusIterator.next()
                    #expect(status?.bulletinKey == encodedKey)
                    try await me.publishBulletin(envelope, postID: "9", expiry: .seconds(600))
                    var iterator = theirs.makeAsyncIterator()
                    let received = await iterator.next()
                    #expect(received?.topic == "kiezbox/v1/xhain/wrangelkiez-01/bulletin/9")
                    #expect(received?.payload == envelope)
                    // A late subscriber gets it from the broker, retained, with the expiry counting down.
                    let late = try await TestSubscriber.connected(port: broker.port, filter: "kiezbox/v1/xhain/+/bulletin/+")
                    let retained = try #require(try await late.waitForMessages(1).first)
                    #expect(retained.retain)
                    #expect((1...600).contains(retained.messageExpiry ?? 0))
                    await late.stop()
                    #expect(try BulletinMessage.verified(
                        retained.payload, key: key.publicKey, district: "xhain", box: "wrangelkiez-01", postID: "9").text == "Strom")
                }
            }
            // The box's own post never came back to it.
            var iterator = mine.makeAsyncIterator()
            #expect(await iterator.next() == nil)
        }
    }

    @Test("a status on one box's topic that names another box is ignored")
    func statusSpeaksOnlyForItsTopic() async throws {
        try await MosquittoBroker.with { broker in
            let me = try MQTTUplink(configuration: Fixtures.uplinkConfiguration(port: broker.port), sender: Fixtures.sender())
            let statuses = try me.subscribe(toDistrict: "xhain")
            let mallory = try await TestSubscriber.connected(port: broker.port, filter: "nothing")
            try await withStarted(me) {
                try await me.waitUntilConnected(timeout: .seconds(10))
                var claim = StatusMessage(state: .online, box: Fixtures.reichenberger, mode: .crisis, bulletinKey: "forged", time: Date())
                for box in ["reichenberger-02", "mallory"] {
                    claim.box = box
                    let done = Mutex(false)
                    _ = try mallory.client.publish(
                        topic: "kiezbox/v1/xhain/mallory/status", payload: Array(JSONEncoder().encode(claim)), qos: .atLeastOnce) { _ in
                        done.withLock { $0 = true }
                    }
                    try await eventually("PUBACK") { done.withLock { $0 } ? true : nil }
                }
                var iterator = statuses.makeAsyncIterator()
                let first = await iterator.next()
                #expect(first?.box == "mallory", "a status claiming another box came through: \(String(describing: first))")
            }
            await mallory.stop()
        }
    }
}
