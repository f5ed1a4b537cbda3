#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SwiftProtobuf

/// A resident's phone with its Meshtastic radio on a ``SimulatedMeshChannel``: it announces itself (NODEINFO),
/// writes text messages and shares its position, all on channel 0 unless told otherwise.
public final class SimulatedMeshPhone: Sendable {
    public let radio: SimulatedMeshtasticRadio

    public init(nodeNumber: UInt32, longName: String, shortName: String, channel: SimulatedMeshChannel) {
        var configuration = SimulatedMeshtasticRadio.Configuration(nodeNumber: nodeNumber, longName: longName, shortName: shortName)
        configuration.hardwareModel = .tEcho
        configuration.rxRSSI = -104
        self.radio = SimulatedMeshtasticRadio(configuration, channel: channel)
    }

    /// Broadcasts its User (NODEINFO_APP), as the firmware does at start and every few hours.
    @discardableResult
    public func announce(channel: UInt32 = 0) -> UInt32 {
        self.radio.transmit(portnum: .nodeinfoApp, payload: Self.bytes(self.radio.ownUser()), channel: channel)
    }

    /// A text message, to everyone or to one node.
    @discardableResult
    public func sendText(_ text: String, to destination: UInt32 = MeshtasticRadioLink.broadcast, channel: UInt32 = 0) -> UInt32 {
        self.radio.transmit(
            portnum: .textMessageApp, payload: Array(text.utf8), to: destination, channel: channel,
            wantAck: destination != MeshtasticRadioLink.broadcast)
    }

    /// Its position (degrees, metres).
    @discardableResult
    public func sendPosition(latitude: Double, longitude: Double, altitude: Int32? = nil, channel: UInt32 = 0) -> UInt32 {
        self.radio.transmit(portnum: .positionApp, payload: Self.bytes(Self.position(latitude, longitude, altitude)), channel: channel)
    }

    static func position(_ latitude: Double, _ longitude: Double, _ altitude: Int32?) -> Meshtastic_Position {
        .with {
            $0.latitudeI = Int32((latitude * 1e7).rounded())
            $0.longitudeI = Int32((longitude * 1e7).rounded())
            if let altitude { $0.altitude = altitude }
        }
    }

    static func bytes(_ message: some SwiftProtobuf.Message) -> [UInt8] { (try? message.serializedBytes()) ?? [] }
}

/// A Kiezbox 2.0 pilot box: a Meshtastic board that sends its status as a `KiezboxMessage` update on port 258
/// (KIEZBOX_CONTROL_APP), channel 1, and its position. Only what a test needs to see a pilot box on the mesh; the
/// interop codec reads and writes these messages in full.
public final class SimulatedPilotBox: Sendable {
    public let radio: SimulatedMeshtasticRadio
    public let boxID: UInt32
    public let districtID: UInt32
    /// The pilot's channel for Kiezbox traffic.
    public static let channelIndex: UInt32 = 1

    public init(nodeNumber: UInt32, boxID: UInt32, districtID: UInt32, channel: SimulatedMeshChannel) {
        var configuration = SimulatedMeshtasticRadio.Configuration(
            nodeNumber: nodeNumber, longName: "Kiezbox \(districtID)-\(boxID)", shortName: "KB\(boxID % 100)")
        configuration.hardwareModel = .heltecV3
        self.radio = SimulatedMeshtasticRadio(configuration, channel: channel)
        self.boxID = boxID
        self.districtID = districtID
    }

    /// Announces the box (NODEINFO_APP) on the primary channel.
    @discardableResult
    public func announce() -> UInt32 {
        self.radio.transmit(portnum: .nodeinfoApp, payload: SimulatedMeshPhone.bytes(self.radio.ownUser()), channel: 0)
    }

    /// A core status update: `unixTime`, and the outside temperature in m°C (the pilot's ×1000 fixed point).
    @discardableResult
    public func sendUpdate(unixTime: Int64, temperatureOutside milliCelsius: Int32? = nil, mode: Meshtastic_KiezboxMessage.Mode = .normal)
        -> UInt32
    {
        let message = Meshtastic_KiezboxMessage.with {
            $0.update = .with {
                $0.meta = .with {
                    $0.boxID = self.boxID
                    $0.distID = self.districtID
                    $0.devType = .core
                }
                $0.unixTime = unixTime
                $0.core = .with {
                    $0.mode = mode
                    if let milliCelsius { $0.values = .with { $0.tempOut = milliCelsius } }
                }
            }
        }
        return self.radio.transmit(portnum: .kiezboxControlApp, payload: SimulatedMeshPhone.bytes(message), channel: Self.channelIndex)
    }

    /// The box's fixed position, as the pilot's boards broadcast it.
    @discardableResult
    public func sendPosition(latitude: Double, longitude: Double, altitude: Int32? = nil) -> UInt32 {
        self.radio.transmit(
            portnum: .positionApp, payload: SimulatedMeshPhone.bytes(SimulatedMeshPhone.position(latitude, longitude, altitude)), channel: 0)
    }
}
