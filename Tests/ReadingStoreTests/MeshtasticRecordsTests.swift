import Foundation
import Testing

@testable import ReadingStore

@Suite("Meshtastic records in the store")
struct MeshtasticRecordsTests {
    let start = Date(timeIntervalSince1970: 1_790_000_000)

    @Test("a relayed post is stored once per origin and reference, even after it expired and was deleted")
    func relayedPostsAreDeduplicated() async throws {
        try await withTemporaryDirectory { directory in
            let store = try ReadingStore(directory: directory)
            let origin = BulletinOrigin(name: "kb2-d3-b17", reference: "button-2-1790000000")
            let first = try await store.addRelayedBulletinPost(
                kind: .request, category: .fire, text: "Fire", place: "", createdAt: self.start,
                expiresAt: self.start.addingTimeInterval(3600), origin: origin)
            #expect(first?.origin == "kb2-d3-b17")
            let again = try await store.addRelayedBulletinPost(
                kind: .request, category: .fire, text: "Fire", place: "", createdAt: self.start.addingTimeInterval(60),
                expiresAt: self.start.addingTimeInterval(3600), origin: origin)
            #expect(again == nil)
            let open = try store.openBulletinPosts(at: self.start.addingTimeInterval(120))
            #expect(open.map(\.origin) == ["kb2-d3-b17"])
            // The same reference from another origin is another post; a local post has no origin.
            let other = try await store.addRelayedBulletinPost(
                kind: .request, category: .fire, text: "Fire", place: "", createdAt: self.start,
                expiresAt: self.start.addingTimeInterval(3600), origin: BulletinOrigin(name: "kb2-d3-b18", reference: origin.reference))
            #expect(other != nil)
            let local = try await store.addBulletinPost(
                kind: .offer, category: .water, text: "Water", place: "", createdAt: self.start, expiresAt: self.start.addingTimeInterval(3600))
            #expect(local.origin == nil)
            // After expiry the post is deleted, but a late rebroadcast still does not come back.
            let late = self.start.addingTimeInterval(7200)
            #expect(try await store.deleteExpiredBulletinPosts(at: late) == 3)
            let replay = try await store.addRelayedBulletinPost(
                kind: .request, category: .fire, text: "Fire", place: "", createdAt: late, expiresAt: late.addingTimeInterval(3600), origin: origin)
            #expect(replay == nil)
        }
    }

    @Test("the airtime ledger survives reopening and keeps two hours")
    func airtimeLedger() async throws {
        try await withTemporaryDirectory { directory in
            do {
                let store = try ReadingStore(directory: directory)
                try await store.recordMeshtasticAirtime(.init(at: self.start, airtime: .microseconds(641_024), traffic: "status", port: 67, bytes: 50))
                try await store.recordMeshtasticAirtime(
                    .init(at: self.start.addingTimeInterval(30), airtime: .microseconds(1_500_000), traffic: "crisis", port: 256, bytes: 233))
                try store.close()
            }
            let store = try ReadingStore(directory: directory)
            let entries = try store.meshtasticAirtime(since: self.start)
            #expect(entries.map(\.traffic) == ["status", "crisis"])
            #expect(entries[0].airtime == .microseconds(641_024))
            #expect(entries[1].port == 256 && entries[1].bytes == 233)
            try await store.recordMeshtasticAirtime(
                .init(at: self.start.addingTimeInterval(2 * 3600 + 15), airtime: .microseconds(641_024), traffic: "status", port: 67, bytes: 50))
            #expect(try store.meshtasticAirtime(since: .distantPast).count == 2)
        }
    }

    @Test("control messages keep the newest hundred; the link record round-trips and can be cleared")
    func controlsAndLink() async throws {
        try await withTemporaryDirectory { directory in
            let store = try ReadingStore(directory: directory)
            for index in 0..<105 {
                try await store.recordPilotControl(
                    .init(at: self.start.addingTimeInterval(Double(index)), sender: "!0000abcd", description: "set mode \(index)", obeyed: false))
            }
            let newest = try store.pilotControls(limit: 200)
            #expect(newest.count == 100)
            #expect(newest.first?.description == "set mode 104")
            #expect(newest.last?.description == "set mode 5")
            let link = MeshtasticLinkRecord(
                state: "ready", endpoint: "tcp://127.0.0.1:4403", nodeNumber: 0xa1b2_c3d4, firmwareVersion: "2.5.6",
                channels: ["0:LongFast", "1:kiezbox"], nodesKnown: 4, changedAt: self.start)
            try await store.setMeshtasticLink(link)
            #expect(try store.meshtasticLink() == link)
            try await store.setMeshtasticLink(nil)
            #expect(try store.meshtasticLink() == nil)
        }
    }

    @Test("posts from elsewhere fill at most half the bulletin: the residents' own posts still fit after a flood")
    func relayedPostsAreCapped() async throws {
        try await withTemporaryDirectory { directory in
            let store = try ReadingStore(
                directory: directory, configuration: ReadingStoreConfiguration(bulletin: BulletinBudget(maximumPosts: 10, maximumBytes: 1 << 20)))
            var stored = 0
            for index in 0..<20 {
                do {
                    _ = try await store.addRelayedBulletinPost(
                        kind: .request, category: .other, text: "flood \(index)", place: "", createdAt: self.start,
                        expiresAt: self.start.addingTimeInterval(3600), origin: BulletinOrigin(name: "kb2-node-bad00bad", reference: "\(index)"))
                    stored += 1
                } catch let error as ReadingStoreError where error.code == .bulletinFull {
                    continue
                }
            }
            #expect(stored == 5)
            for index in 0..<5 {
                _ = try await store.addBulletinPost(
                    kind: .request, category: .water, text: "resident \(index)", place: "", createdAt: self.start,
                    expiresAt: self.start.addingTimeInterval(3600))
            }
            #expect(try store.openBulletinPosts(at: self.start).count == 10)
        }
    }
}
