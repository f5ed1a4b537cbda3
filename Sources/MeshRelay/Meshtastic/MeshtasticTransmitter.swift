public import Foundation
public import KiezboxCore
public import Logging
public import ReadingStore

/// Everything the box puts on the Meshtastic mesh goes through here, one packet at a time: each is checked
/// against the box's share of the band's duty cycle (``MeshtasticAirtimeBudget``, replayed from the store's
/// ledger so a restart does not reset it), sent through the radio link, and charged to the ledger once the radio
/// took it.
public actor MeshtasticTransmitter {
    /// What became of a packet.
    public enum Result: Sendable, Hashable {
        /// On air (acknowledged, implicitly acknowledged or simply queued by the radio).
        case sent(MeshtasticSendOutcome, airtime: Duration)
        /// Not sent: the box's share is used up; it may try again at `nextAllowed` (nil: never, too large).
        case overBudget(nextAllowed: Date?)
        /// Not sent: the radio refused it (a NAK such as the firmware's own duty-cycle limit).
        case refused(Meshtastic_Routing.Error)
        /// Not sent: no link, the radio did not answer, the payload is too large.
        case failed(MeshtasticSendError)

        public var wasSent: Bool { if case .sent = self { true } else { false } }
    }

    public typealias TrafficClass = MeshtasticAirtimeBudget<DateInstant>.TrafficClass

    private let link: MeshtasticRadioLink
    private let store: ReadingStore
    private let clock: any KiezboxClock
    /// The channel index the box's traffic goes on.
    public nonisolated let channel: UInt32
    /// The part of the band's allowance the box may use.
    public nonisolated let airtimeShare: Double
    private let logger: Logger

    public init(link: MeshtasticRadioLink, store: ReadingStore, channel: UInt32, airtimeShare: Double, clock: any KiezboxClock, logger: Logger) {
        self.link = link
        self.store = store
        self.channel = channel
        self.airtimeShare = airtimeShare
        self.clock = clock
        self.logger = logger
    }

    /// The budget as the ledger has it now.
    public func budget(at now: Date) throws -> MeshtasticAirtimeBudget<DateInstant> {
        let entries = try self.store.meshtasticAirtime(since: now.addingTimeInterval(-MeshtasticAccount.window)).map { entry in
            MeshtasticAirtimeBudget<DateInstant>.Entry(
                airtime: entry.airtime, at: DateInstant(entry.at), trafficClass: TrafficClass(rawValue: entry.traffic) ?? .crisis)
        }
        return MeshtasticAirtimeBudget(airtimeShare: self.airtimeShare, entries: entries)
    }

    /// Returns once the radio link is ready (at once if it is); throws when cancelled.
    public nonisolated func waitUntilLinkReady() async throws {
        _ = try await self.link.waitUntilReady()
    }

    /// Sends `payload` on `port` to everyone on the box's channel, if the share allows it.
    public func broadcast(_ port: Meshtastic_PortNum, payload: [UInt8], as traffic: TrafficClass) async -> Result {
        let now = self.clock.currentDate()
        let dataLength = MeshtasticPayload.dataLength(port: port, payloadLength: payload.count)
        let airtime = MeshtasticAirtime.airtime(dataLength: dataLength)
        do {
            let budget = try self.budget(at: now)
            guard budget.canSend(airtime: airtime, as: traffic, at: DateInstant(now)) else {
                return .overBudget(nextAllowed: budget.nextAllowed(airtime: airtime, as: traffic, notBefore: DateInstant(now))?.date)
            }
        } catch {
            // Without the ledger the share cannot be checked; the radio's firmware still enforces the band's limit.
            self.logger.warning("Meshtastic airtime ledger unreadable", metadata: ["error": "\(error)"])
        }
        let outcome: MeshtasticSendOutcome
        do {
            outcome = try await self.link.send(portnum: port, payload: payload, channel: self.channel, wantAck: true)
        } catch {
            return .failed(error)
        }
        if case .refused(let reason) = outcome { return .refused(reason) }
        do {
            try await self.store.recordMeshtasticAirtime(
                MeshtasticAirtimeEntry(
                    at: now, airtime: airtime, traffic: traffic.rawValue, port: Int(port.rawValue),
                    bytes: MeshtasticAirtime.bytesOnAir(dataLength: dataLength)))
        } catch {
            self.logger.warning("could not record Meshtastic airtime", metadata: ["error": "\(error)"])
        }
        return .sent(outcome, airtime: airtime)
    }
}
