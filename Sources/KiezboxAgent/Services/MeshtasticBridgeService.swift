import EmergencyPortal
import Foundation
import KiezboxCore
import Logging
import MeshRelay
import ReadingStore
import ServiceLifecycle

/// The box on the Meshtastic LoRa mesh: runs the radio link and handles what arrives and what crisis mode sends.
///
/// Arriving:
/// - Kiezbox 2.0 pilot messages (port 258): updates become readings under the pilot box's own sensor ids and the
///   box a neighbour (positioned from the radio's node database); `Emergency` presses become help requests on the
///   bulletin; control messages are logged and recorded for `kiezbox status`, and obeyed only where configured
///   (they are unauthenticated) and only for the mode.
/// - Other Kiezboxes' traffic (PRIVATE_APP, ``KiezboxMeshCodec``): announcement fragments are reassembled and the
///   whole envelope is verified by the desk with the configured keys, like any other; relayed help requests go on
///   the bulletin under their origin.
///
/// Sent in crisis mode, through the ``MeshtasticTransmitter`` and its crisis share: the current signed announcements
/// that an authority posted here or the district's broker brought (not those that came over LoRa: the mesh floods
/// them already), again every ``announcementRepeat``; and the help requests posted on this box's portal.
/// The box's status goes out through ``MeshtasticUplink``.
struct MeshtasticBridgeService<C: KiezboxClock>: Service {
    let link: MeshtasticRadioLink
    let transmitter: MeshtasticTransmitter
    let settings: MeshtasticSettings
    let store: ReadingStore
    let desk: AnnouncementDesk?
    let identity: BoxIdentity
    let clock: C
    let logger: Logger
    var pilotDecoder = KiezboxPilotDecoder()
    /// How long a pilot's emergency stays on the bulletin (the portal's post lifetime).
    var postLifetime: Duration = .seconds(24 * 3600)
    /// How often crisis traffic is looked for (new posts, the mode) besides new announcements.
    var crisisCheckInterval: Duration = .seconds(30)
    /// How often a current announcement is sent again in crisis mode, for boxes that came up later.
    var announcementRepeat: Duration = .seconds(3600)
    /// How often the link's state is written to the store for `kiezbox status` and `/metrics`.
    var linkRecordInterval: Duration = .seconds(5)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.link.run() }
                group.addTask { await self.receive() }
                group.addTask { await self.recordLink() }
                group.addTask { await self.sendCrisisTraffic() }
            }
        }
        try? await self.store.setMeshtasticLink(self.linkRecord(state: "stopped", reason: "the daemon stopped"))
    }

    // MARK: - Arriving

    private func receive() async {
        var reassembler = AnnouncementReassembler<DateInstant>()
        // Which pilot box each node is, learnt from its updates: an Emergency carries no meta of its own.
        var pilotNames: [UInt32: String] = [:]
        for await packet in self.link.packets {
            guard packet.channel == self.settings.channelIndex || packet.portnum == .privateApp else { continue }
            switch packet.portnum {
            case .kiezboxControlApp: await self.receivePilot(packet, names: &pilotNames)
            case .privateApp: await self.receiveFromBox(packet, reassembler: &reassembler)
            default: continue
            }
        }
    }

    private func receivePilot(_ packet: MeshtasticReceivedPacket, names: inout [UInt32: String]) async {
        let now = self.clock.currentDate()
        let message: KiezboxPilotMessage
        do {
            message = try self.pilotDecoder.decode(
                payload: packet.payload, from: packet.from, packetReceivedAt: packet.rxTime.map { UInt32(clamping: Int64($0.timeIntervalSince1970)) },
                now: now)
        } catch {
            self.logger.notice(
                "Kiezbox 2.0 message not understood", metadata: ["from": "\(MeshtasticNode(number: packet.from).userID)", "error": "\(error)"])
            return
        }
        do {
            switch message {
            case .update(let update):
                if update.box.boxID != nil { names[packet.from] = update.box.name }
                try await self.record(update, now: now)
            case .emergency(let emergency):
                try await self.post(emergency, box: names[packet.from] ?? emergency.box.name, packet: packet)
            case .control(let control):
                try await self.note(control, box: names[packet.from] ?? control.target.name, now: now)
            }
        } catch {
            self.logger.warning("could not store a Kiezbox 2.0 message", metadata: ["error": "\(error)"])
        }
    }

    private func record(_ update: PilotUpdate, now: Date) async throws {
        if self.settings.acceptPilotReadings, !update.readings.isEmpty { try await self.store.record(update.readings) }
        let node = self.link.nodes().first { $0.number == update.box.nodeNumber }
        let position = node.flatMap { node in
            node.latitude.flatMap { latitude in
                node.longitude.map { GeoPosition(latitude: latitude, longitude: $0, altitude: node.altitude.map(Double.init)) }
            }
        }
        let battery = update.readings.first { $0.quantity == .voltage && $0.sensorID.hasSuffix("-battery") }?.value
        let neighbour = NeighbourBox(
            identity: BoxIdentity(
                district: self.identity.district, boxID: update.box.name, name: node?.longName ?? "Kiezbox 2.0 \(update.box.name)",
                position: position),
            online: true, mode: update.mode, batteryVolts: battery, lastSeen: now, path: "meshtastic")
        try await self.store.recordNeighbour(neighbour)
    }

    private func post(_ emergency: PilotEmergency, box: String, packet: MeshtasticReceivedPacket) async throws {
        guard self.settings.pilotEmergenciesToBulletin else {
            self.logger.notice("Kiezbox 2.0 emergency not posted (pilot_emergencies_to_bulletin = false)", metadata: ["box": "\(box)"])
            return
        }
        let request = emergency.helpRequest()
        // A press is named by its button and time; without a time, by the packet (the radio drops mesh repeats).
        let reference = "\(emergency.buttonID)@\(emergency.timeSource == .decoded ? "packet-\(packet.id)" : String(Int64(emergency.pressedAt.timeIntervalSince1970)))"
        let stored = try await self.store.addRelayedBulletinPost(
            kind: request.kind, category: request.category, text: request.text, place: request.place, createdAt: request.createdAt,
            expiresAt: request.createdAt.addingTimeInterval(self.postLifetime.timeInterval),
            origin: BulletinOrigin(name: box, reference: reference))
        if let stored {
            self.logger.notice("Kiezbox 2.0 emergency posted on the bulletin", metadata: ["box": "\(box)", "post": "\(stored.id)"])
        }
    }

    private func note(_ control: PilotControl, box: String, now: Date) async throws {
        let obeyedMode: Mode? =
            switch control.effect {
            case .declareCrisis where self.settings.obeyPilotControl: .crisis
            case .endCrisis where self.settings.obeyPilotControl: .normal
            default: nil
            }
        let sender = "\(control.target.nodeName) (\(box))"
        self.logger.notice(
            "Kiezbox 2.0 control message", metadata: ["from": "\(sender)", "asks": "\(control.description)", "obeyed": "\(obeyedMode != nil)"])
        if let obeyedMode {
            // The configuration trusts the pilot's admin tools: their mode counts as set by hand.
            try await self.store.setModeOverride(obeyedMode == .normal ? nil : obeyedMode)
        }
        try await self.store.recordPilotControl(PilotControlRecord(at: now, sender: sender, description: control.description, obeyed: obeyedMode != nil))
    }

    private func receiveFromBox(_ packet: MeshtasticReceivedPacket, reassembler: inout AnnouncementReassembler<DateInstant>) async {
        let now = self.clock.currentDate()
        let content: KiezboxMeshCodec.Content
        do {
            content = try KiezboxMeshCodec.decode(payload: packet.payload)
        } catch {
            self.logger.debug("PRIVATE_APP packet that is not a Kiezbox's", metadata: ["from": "\(MeshtasticNode(number: packet.from).userID)", "error": "\(error)"])
            return
        }
        switch content {
        case .announcementFragment(let fragment):
            guard let desk = self.desk else { return }
            reassembler.expire(at: DateInstant(now))
            do {
                guard case .assembled(let announcement) = try reassembler.receive(fragment, at: DateInstant(now)) else { return }
                let envelope = announcement.envelopeJSON()
                let outcome = try await desk.accept(envelope, via: .lora, now: now)
                self.logger.notice("announcement over LoRa", metadata: ["from": "\(MeshtasticNode(number: packet.from).userID)", "outcome": "\(outcome)"])
            } catch {
                self.logger.notice(
                    "announcement fragment refused", metadata: ["from": "\(MeshtasticNode(number: packet.from).userID)", "error": "\(error)"])
            }
        case .helpRequest(let request):
            guard self.settings.relayHelpRequests else { return }
            guard request.originDistrict != self.identity.district || request.originBox != self.identity.boxID else { return }
            do {
                let post = request.post
                _ = try await self.store.addRelayedBulletinPost(
                    kind: post.kind, category: post.category, text: post.text, place: post.place, createdAt: post.createdAt,
                    expiresAt: post.expiresAt,
                    origin: BulletinOrigin(name: "\(request.originDistrict)/\(request.originBox)", reference: String(post.id)))
            } catch {
                self.logger.warning("could not store a relayed help request", metadata: ["error": "\(error)"])
            }
        }
    }

    // MARK: - Crisis traffic

    private func sendCrisisTraffic() async {
        // Announcements wake the loop at once; the timer catches mode changes and new posts.
        let arrivals = self.desk?.arrivals()
        let (wakeUps, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        await withDiscardingTaskGroup { group in
            if let arrivals {
                group.addTask {
                    for await _ in arrivals { wake.yield() }
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    wake.yield()
                    do { try await self.clock.sleep(for: self.crisisCheckInterval) } catch { break }
                }
                wake.finish()
            }
            group.addTask {
                var sentAnnouncements: [String: Date] = [:]
                var lastRelayedPost: Int64 = 0
                for await _ in wakeUps {
                    guard (try? self.store.mode()) == .crisis else { continue }
                    if self.settings.relayAnnouncements { await self.sendAnnouncements(&sentAnnouncements) }
                    if self.settings.relayHelpRequests { await self.sendHelpRequests(after: &lastRelayedPost) }
                }
            }
        }
    }

    private func sendAnnouncements(_ sent: inout [String: Date]) async {
        guard let desk = self.desk else { return }
        let now = self.clock.currentDate()
        let current: [AcceptedAnnouncement]
        do { current = try desk.currentAccepted(at: now) } catch { return }
        for accepted in current where accepted.source != .lora {
            let key = "\(accepted.topicName)@\(accepted.announcement.issuedAt.timeIntervalSince1970)"
            if let last = sent[key], now.timeIntervalSince(last) < self.announcementRepeat.timeInterval { continue }
            let payloads: [[UInt8]]
            do {
                payloads = try AnnouncementFragmenter.payloads(for: CompactAnnouncement(envelopeJSON: accepted.envelope))
            } catch {
                self.logger.warning("announcement cannot go over LoRa", metadata: ["id": "\(accepted.announcement.id)", "error": "\(error)"])
                sent[key] = now
                continue
            }
            var complete = true
            for payload in payloads {
                let result = await self.transmitter.broadcast(.privateApp, payload: payload, as: .crisis)
                guard result.wasSent else {
                    self.logger.notice(
                        "announcement fragment not sent; trying again later",
                        metadata: ["id": "\(accepted.announcement.id)", "result": "\(result)"])
                    complete = false
                    break
                }
            }
            guard complete else { return }
            sent[key] = now
            self.logger.notice("announcement sent over LoRa", metadata: ["id": "\(accepted.announcement.id)", "fragments": "\(payloads.count)"])
        }
    }

    private func sendHelpRequests(after lastRelayed: inout Int64) async {
        let now = self.clock.currentDate()
        let posts: [BulletinPost]
        do { posts = try self.store.openBulletinPosts(at: now) } catch { return }
        for post in posts.reversed() where post.id > lastRelayed && post.origin == nil && post.kind == .request {
            let request = MeshHelpRequest(originDistrict: self.identity.district, originBox: self.identity.boxID, post: post)
            guard let (payload, _) = try? request.payload() else { continue }
            let result = await self.transmitter.broadcast(.privateApp, payload: payload, as: .crisis)
            guard result.wasSent else {
                self.logger.notice("help request not sent over LoRa; trying again later", metadata: ["post": "\(post.id)", "result": "\(result)"])
                return
            }
            lastRelayed = post.id
        }
    }

    // MARK: - Link state

    private func recordLink() async {
        var last: MeshtasticLinkRecord?
        while !Task.isCancelled {
            let state = self.link.state
            var record: MeshtasticLinkRecord
            switch state {
            case .connecting: record = self.linkRecord(state: "connecting")
            case .handshaking: record = self.linkRecord(state: "handshaking")
            case .disconnected(let reason): record = self.linkRecord(state: "disconnected", reason: reason)
            case .ready(let info):
                record = self.linkRecord(state: "ready")
                record.nodeNumber = info.myNodeNumber
                record.firmwareVersion = info.firmwareVersion
                record.channels = info.channels.map(\.description)
                record.nodesKnown = self.link.nodes().count
            }
            if let last, last.state == record.state, last.reason == record.reason, last.nodesKnown == record.nodesKnown,
                last.nodeNumber == record.nodeNumber
            {
                record.changedAt = last.changedAt
            }
            if record != last {
                try? await self.store.setMeshtasticLink(record)
                last = record
            }
            do { try await self.clock.sleep(for: self.linkRecordInterval) } catch { return }
        }
    }

    private func linkRecord(state: String, reason: String? = nil) -> MeshtasticLinkRecord {
        MeshtasticLinkRecord(state: state, reason: reason, endpoint: self.link.endpoint.description, changedAt: self.clock.currentDate())
    }
}
