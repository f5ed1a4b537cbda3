#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import KiezboxCore
import SwiftProtobuf
import Synchronization

/// The shared air of simulated Meshtastic radios: what one radio transmits reaches every other radio that has the
/// same channel index enabled, with the receive fields a real radio adds (`rx_time`, `rx_rssi`, `rx_snr`,
/// `hop_start`), and costs the sender LONG_FAST airtime (``MeshtasticAirtime``) against a rolling-hour duty cycle.
///
/// The duty cycle is the firmware's rule: a radio whose transmissions in the last hour already exceed the limit
/// refuses to send (EU_868 band P: 10 %, 360 s an hour). Tests lower ``dutyCycleLimit`` to reach it in a few packets.
/// Time is the injected clock's, so a `ManualClock` moves the rolling hour.
public final class SimulatedMeshChannel: Sendable {
    /// One packet on air.
    public struct Transmission: Sendable, Hashable {
        /// The sending radio's node number.
        public var sender: UInt32
        public var packet: Meshtastic_MeshPacket
        public var airtime: Duration
        /// When, on the channel's clock (since the channel was made).
        public var at: Duration
        /// The radios that heard it.
        public var receivers: [UInt32]
    }

    /// What a radio may transmit per rolling hour.
    public let dutyCycleLimit: Duration
    public let modulation: LoRaModulation
    private let timeline: LinkTimeline
    private let state = Mutex(State())

    private struct State {
        var radios: [WeakRadio] = []
        var transmissions: [Transmission] = []
        /// Per sender: when it transmitted and for how long, the last hour's worth.
        var airtimeLog: [UInt32: [(at: Duration, airtime: Duration)]] = [:]
    }

    private struct WeakRadio {
        weak var radio: SimulatedMeshtasticRadio?
    }

    /// - Parameters:
    ///   - dutyCycleLimit: airtime per radio and rolling hour (band P: 360 s).
    ///   - clock: the channel's time: the rolling hour and the receivers' `rx_time`.
    public init(
        dutyCycleLimit: Duration = MeshtasticAirtime.bandAllowancePerHour, modulation: LoRaModulation = MeshtasticAirtime.longFast,
        clock: some KiezboxClock = LiveClock()
    ) {
        self.dutyCycleLimit = dutyCycleLimit
        self.modulation = modulation
        self.timeline = LinkTimeline(clock)
    }

    /// Every packet sent so far, in order.
    public var transmissions: [Transmission] { self.state.withLock { $0.transmissions } }

    /// The sender's airtime in the last hour.
    public func airtimeUsed(by sender: UInt32) -> Duration {
        let now = self.timeline.now()
        return self.state.withLock { state in
            (state.airtimeLog[sender] ?? []).filter { $0.at > now - .seconds(3600) }.reduce(.zero) { $0 + $1.airtime }
        }
    }

    func join(_ radio: SimulatedMeshtasticRadio) {
        self.state.withLock { state in
            state.radios.removeAll { $0.radio == nil || $0.radio === radio }
            state.radios.append(WeakRadio(radio: radio))
        }
    }

    /// The radio on the channel with `nodeNumber`, if any.
    func radio(_ nodeNumber: UInt32) -> SimulatedMeshtasticRadio? {
        self.state.withLock { $0.radios.compactMap(\.radio).first { $0.nodeNumber == nodeNumber } }
    }

    var date: Date { self.timeline.date() }

    /// What became of a transmission.
    enum Result {
        case transmitted(receivers: [UInt32])
        /// Refused: the sender's last hour is over the limit; it may send again in this many minutes.
        case dutyCycleLimited(minutes: Int)
    }

    /// Puts `packet` (from `sender`, `from` already set) on air.
    func transmit(_ packet: Meshtastic_MeshPacket, by sender: SimulatedMeshtasticRadio) -> Result {
        let dataLength: Int =
            switch packet.payloadVariant {
            case .decoded(let data): (try? data.serializedBytes() as [UInt8])?.count ?? 0
            case .encrypted(let bytes): bytes.count
            case nil: 0
            }
        let airtime = MeshtasticAirtime.airtime(dataLength: dataLength, modulation: self.modulation)
        let now = self.timeline.now()
        let hourAgo = now - .seconds(3600)
        let admitted = self.state.withLock { state -> (receivers: [SimulatedMeshtasticRadio], minutes: Int?) in
            var log = (state.airtimeLog[sender.nodeNumber] ?? []).filter { $0.at > hourAgo }
            let used = log.reduce(Duration.zero) { $0 + $1.airtime }
            if used > self.dutyCycleLimit {
                // Until enough of the hour's airtime has rolled out for the rest to be within the limit.
                var remaining = used
                var until = now
                for entry in log where remaining > self.dutyCycleLimit {
                    remaining -= entry.airtime
                    until = entry.at + .seconds(3600)
                }
                let seconds = Double((until - now).components.seconds)
                return ([], max(1, Int((seconds / 60).rounded(.up))))
            }
            log.append((now, airtime))
            state.airtimeLog[sender.nodeNumber] = log
            let receivers = state.radios.compactMap(\.radio).filter { $0 !== sender && $0.hasChannel(packet.channel) }
            state.transmissions.append(
                Transmission(sender: sender.nodeNumber, packet: packet, airtime: airtime, at: now, receivers: receivers.map(\.nodeNumber)))
            return (receivers, nil)
        }
        if let minutes = admitted.minutes { return .dutyCycleLimited(minutes: minutes) }
        var received = packet
        received.rxTime = UInt32(clamping: Int(self.timeline.date().timeIntervalSince1970))
        received.hopStart = packet.hopLimit
        received.wantAck = packet.wantAck
        for receiver in admitted.receivers {
            var copy = received
            copy.rxRssi = receiver.configuration.rxRSSI
            copy.rxSnr = receiver.configuration.rxSNR
            receiver.hear(copy)
        }
        return .transmitted(receivers: admitted.receivers.map { $0.nodeNumber })
    }
}
