import Crypto
import Foundation
import KiezboxCore
import Logging
import MeshRelay
import ReadingStore
import ServiceLifecycle
import Synchronization

/// Carries the bulletin between this box and its district over MQTT (docs/mqtt.md, "Bulletin").
///
/// Out: every post typed on this box is signed with the box's key and published retained at
/// `kiezbox/v1/<district>/<box>/bulletin/<post-id>` with the post's expiry as MQTT 5 message expiry, so a box
/// that was away finds it at the broker. A post deleted here before its expiry is replaced there by a signed
/// removal (same topic, retained until the post's expiry), also one deleted while the daemon was stopped (what was
/// published is recorded in the store). Posts that came from elsewhere are not published again: those from the
/// broker are there already, and those from LoRa carry no signature of their origin box, which this box cannot
/// supply without forging it.
///
/// In: a message on another box's bulletin topic is verified against the key that box published in its own
/// retained status (the uplink takes a status only from the status topic of the box it names). Messages that
/// arrive before that key are held here until it comes (at most ``maximumHeld``; beyond that they are dropped,
/// and come again as retained messages after the next reconnect). Forged, unsigned or malformed messages are
/// refused, logged and counted; nothing refused is stored.
struct BulletinRelayService<C: KiezboxClock>: Service {
    let uplink: MQTTUplink
    let store: ReadingStore
    /// The box's private key, raw (the key type itself is not Sendable).
    let signingKey: Data
    let identity: BoxIdentity
    let clock: C
    let logger: Logger
    /// How often the store is looked at for new or deleted posts of this box.
    var publishInterval: Duration = .seconds(1)
    /// How often every open post of this box is published again (a broker without persistence forgets them
    /// when it restarts; an unchanged copy changes nothing).
    var refreshInterval: Duration = .seconds(600)
    static var maximumHeld: Int { 256 }

    private let keys = BulletinKeyring()

    func run() async throws {
        let statuses = try self.uplink.subscribe(toDistrict: self.identity.district)
        let messages = try self.uplink.subscribe(toBulletinIn: self.identity.district)
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.learnKeys(statuses) }
                group.addTask { await self.receive(messages) }
                group.addTask { await self.publishOwnPosts() }
            }
        }
    }

    // MARK: - In

    private func learnKeys(_ statuses: AsyncStream<StatusMessage>) async {
        for await status in statuses {
            guard let encoded = status.bulletinKey else { continue }
            guard let raw = Data(base64Encoded: encoded), (try? Curve25519.Signing.PublicKey(rawRepresentation: raw)) != nil else {
                self.logger.warning("a box published a bulletin key that is not one", metadata: ["box": "\(status.box)"])
                continue
            }
            for message in self.keys.learn(raw, for: status.box) {
                await self.apply(message, key: raw)
            }
        }
    }

    private func receive(_ messages: AsyncStream<MQTTMessage>) async {
        for await message in messages {
            guard let (_, box, _) = MQTTTopics.bulletinTopicComponents(message.topic, prefix: self.uplink.topics.prefix) else { continue }
            switch self.keys.keyOrHold(message, for: box, limit: Self.maximumHeld) {
            case .known(let key): await self.apply(message, key: key)
            case .held: self.logger.debug("bulletin message held until its box's key arrives", metadata: ["topic": "\(message.topic)"])
            case .dropped:
                self.logger.warning("bulletin message dropped: too many held for unknown keys", metadata: ["topic": "\(message.topic)"])
            }
        }
    }

    /// Verifies `message` against `key` (raw, checked when it was learnt) and stores what it says.
    private func apply(_ message: MQTTMessage, key: Data) async {
        guard let (district, box, postID) = MQTTTopics.bulletinTopicComponents(message.topic, prefix: self.uplink.topics.prefix) else { return }
        let verified: BulletinMessage
        do {
            verified = try BulletinMessage.verified(
                message.payload, key: try Curve25519.Signing.PublicKey(rawRepresentation: key), district: district, box: box, postID: postID)
        } catch {
            let refused = self.keys.countRefusal()
            self.logger.warning(
                "bulletin message refused", metadata: ["topic": "\(message.topic)", "reason": "\(error)", "refused_so_far": "\(refused)"])
            return
        }
        let origin = BulletinOrigin(name: "\(district)/\(box)", reference: postID)
        let now = self.clock.currentDate()
        do {
            switch verified.action {
            case .post:
                guard verified.expiryDate > now else { return }
                if let stored = try await self.store.addRelayedBulletinPost(
                    kind: verified.kind, category: verified.category, text: verified.text, place: verified.place,
                    createdAt: verified.createdDate, expiresAt: verified.expiryDate, origin: origin)
                {
                    self.logger.info("bulletin post from the district", metadata: ["origin": "\(origin.name)", "post": "\(stored.id)"])
                }
            case .removal:
                if try await self.store.removeRelayedBulletinPost(origin: origin, rememberUntil: verified.expiryDate) {
                    self.logger.info("bulletin post removed by its origin", metadata: ["origin": "\(origin.name)", "reference": "\(postID)"])
                }
            }
        } catch {
            self.logger.warning("could not store a bulletin message from the district", metadata: ["topic": "\(message.topic)", "error": "\(error)"])
        }
    }

    // MARK: - Out

    private func publishOwnPosts() async {
        // What has been published (or is about to be) and not withdrawn, this run and the runs before (kept in the
        // store): a post that leaves the store before its expiry gets a removal, also when it left while the daemon
        // was stopped. A post is recorded before it is sent, so a daemon killed in between still withdraws it.
        var published: [Int64: BulletinPost] = [:]
        do {
            published = Dictionary(try self.store.publishedBulletinPosts().map { ($0.id, $0) }) { _, last in last }
        } catch {
            self.logger.warning("could not read which bulletin posts were published before", metadata: ["error": "\(error)"])
        }
        var recorded = Set(published.keys)
        // Recorded, but the broker has not acknowledged them yet: sent again next round, oldest first.
        var unsent = Set<Int64>()
        var lastRefresh: Date?
        while !Task.isCancelled {
            let now = self.clock.currentDate()
            if let own = try? self.store.openOwnBulletinPosts(at: now) {
                let refresh = lastRefresh.map { now.timeIntervalSince($0) >= self.refreshInterval.timeInterval } ?? true
                if refresh { lastRefresh = now }
                for post in own where refresh || published[post.id] == nil {
                    published[post.id] = post
                    unsent.insert(post.id)
                }
                await self.record(published, recorded: &recorded)
                for post in own where unsent.contains(post.id) {
                    guard await self.publish(.post, post, now: now) else { break }
                    unsent.remove(post.id)
                }
                let open = Set(own.map(\.id))
                for (id, post) in published where !open.contains(id) {
                    unsent.remove(id)
                    // Expired: the broker and every box drop it by themselves.
                    guard post.expiresAt > now else {
                        published[id] = nil
                        continue
                    }
                    if await self.publish(.removal, post, now: now) { published[id] = nil }
                }
                await self.record(published, recorded: &recorded)
            }
            do { try await self.clock.sleep(for: self.publishInterval) } catch { return }
        }
    }

    /// Keeps `published` in the store when its posts differ from what was `recorded` last.
    private func record(_ published: [Int64: BulletinPost], recorded: inout Set<Int64>) async {
        guard Set(published.keys) != recorded else { return }
        do {
            try await self.store.setPublishedBulletinPosts(Array(published.values))
            recorded = Set(published.keys)
        } catch {
            self.logger.warning("could not record which bulletin posts are published", metadata: ["error": "\(error)"])
        }
    }

    /// Whether the broker acknowledged the message.
    private func publish(_ action: BulletinMessage.Action, _ post: BulletinPost, now: Date) async -> Bool {
        let remaining = post.expiresAt.timeIntervalSince(now)
        guard remaining > 0 else { return true }
        do {
            let message = BulletinMessage(action, post: post, district: self.identity.district, box: self.identity.boxID)
            try await self.uplink.publishBulletin(
                try message.signedEnvelope(with: Curve25519.Signing.PrivateKey(rawRepresentation: self.signingKey)), postID: message.id, expiry: .seconds(max(1, Int64(remaining.rounded(.up)))))
            self.logger.debug("bulletin message published", metadata: ["post": "\(post.id)", "action": "\(action)"])
            return true
        } catch {
            // Not connected: the next round tries again.
            self.logger.debug("bulletin message not published yet", metadata: ["post": "\(post.id)", "error": "\(error)"])
            return false
        }
    }
}

/// The district's bulletin keys as the boxes' statuses announce them, the messages held until their box's key
/// arrives, and the count of refused messages.
final class BulletinKeyring: Sendable {
    enum Lookup {
        /// The box's public key, raw.
        case known(Data)
        case held
        case dropped
    }

    private struct State {
        var keys: [String: Data] = [:]
        var held: [String: [MQTTMessage]] = [:]
        var heldCount = 0
        var refused = 0
    }

    private let state = Mutex(State())

    /// Records `box`'s key and returns the messages held for it (now to be verified).
    func learn(_ key: Data, for box: String) -> [MQTTMessage] {
        self.state.withLock { state in
            state.keys[box] = key
            let held = state.held.removeValue(forKey: box) ?? []
            state.heldCount -= held.count
            return held
        }
    }

    /// `box`'s key; or holds `message` for it (unless `limit` messages are held already).
    func keyOrHold(_ message: MQTTMessage, for box: String, limit: Int) -> Lookup {
        self.state.withLock { state in
            if let key = state.keys[box] { return .known(key) }
            guard state.heldCount < limit else { return .dropped }
            state.held[box, default: []].append(message)
            state.heldCount += 1
            return .held
        }
    }

    /// Counts a refused message; returns the count so far.
    func countRefusal() -> Int {
        self.state.withLock { state in
            state.refused += 1
            return state.refused
        }
    }
}
