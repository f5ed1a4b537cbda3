import Foundation
import SwiftProtobuf

extension SimulatedPilotBox {
    /// An emergency button press, as the pilot's firmware sends it.
    @discardableResult
    public func sendEmergency(type: Meshtastic_KiezboxMessage.EmergencyType, button: Int32, unixTime: Int64) -> UInt32 {
        let message = Meshtastic_KiezboxMessage.with {
            $0.distress = .with {
                $0.type = type
                $0.buttonID = button
                $0.unixTime = unixTime
            }
        }
        return self.radio.transmit(portnum: .kiezboxControlApp, payload: Array((try? message.serializedData()) ?? Data()), channel: Self.channelIndex)
    }

    /// A control message from the pilot's admin tools, setting the mode of every box.
    @discardableResult
    public func sendControl(mode: Meshtastic_KiezboxMessage.Mode) -> UInt32 {
        let message = Meshtastic_KiezboxMessage.with {
            $0.control = .with { $0.mode = mode }
        }
        return self.radio.transmit(portnum: .kiezboxControlApp, payload: Array((try? message.serializedData()) ?? Data()), channel: Self.channelIndex)
    }
}
