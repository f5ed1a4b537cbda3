import KiezboxCore
import SensorDrivers
import Synchronization

/// A RAK3172 with RUI3 AT firmware, as lora-and-appliance.md §1.2 and §10 describe it: `:`-separated arguments,
/// get replies `AT+X=<value>` then `OK`, statuses `OK`/`AT_…` each on a line of its own, and join and uplink
/// results as later events (`+EVT:JOINED`, `+EVT:JOIN_FAILED_RX_TIMEOUT`, `+EVT:TX_DONE` then
/// `+EVT:RX_1:-70:8:UNICAST:2:48656c6c6f` with lower-case hex). A duty-cycle refusal prints
/// `Restricted_Wait_<ms>_ms` before `AT_BUSY_ERROR`; an oversized payload gets `AT_PARAM_ERROR` and an empty frame
/// on air anyway (with its own `+EVT:TX_DONE`); a confirmed downlink is answered by an empty uplink.
///
/// Scripting (failed joins, busy, duty cycle, downlinks, noise) and the record of uplinks are on ``radio``. "No
/// free channel" has no string of its own in RUI3; it comes out as `AT_BUSY_ERROR`.
public final class SimulatedRAK3172: SimulatedATModem, @unchecked Sendable {
    public override init(radio: SimulatedLoRaWANRadio = SimulatedLoRaWANRadio(), firmwareVersion: String = "RUI_4.0.6_RAK3172-E") {
        super.init(radio: radio, firmwareVersion: firmwareVersion)
    }

    override func answer(_ text: String, at time: Duration) -> [SimulatedATReply] {
        func now(_ lines: String...) -> [SimulatedATReply] {
            [SimulatedATReply(time: time, lines: lines)]
        }
        guard let command = SimulatedATCommand(text) else { return now("AT_ERROR") }
        let name = command.name
        let ok = now("OK")
        let parameterError = now("AT_PARAM_ERROR")
        guard let argument = command.argument else {
            switch name {
            case "": return ok
            case "JOIN": return self.join(at: time)
            // Get-only commands run without `=?` (unverified against RUI3: a parameter error is what its parser gives
            // a command it cannot run).
            default: return parameterError
            }
        }
        if argument == "?" {
            guard let value = self.value(of: name, at: time) else { return now("AT_COMMAND_NOT_FOUND") }
            return now("AT+\(name)=\(value)", "OK")
        }
        switch name {
        case "NWM", "NJM", "CFM":
            return ["0", "1"].contains(argument) || (name == "NWM" && argument == "2") ? ok : parameterError
        case "BAND":
            guard let band = Int(argument), (0...12).contains(band) else { return parameterError }
            return band == 4 ? ok : now("AT_UNSUPPORTED_BAND")
        case "CLASS":
            return ["A", "B", "C"].contains(argument.uppercased()) ? ok : parameterError
        case "ADR":
            guard argument == "0" || argument == "1" else { return parameterError }
            self.radio.state.withLock { $0.adr = argument == "1" }
            return ok
        case "DR":
            guard let dataRate = Int(argument), (0...7).contains(dataRate) else { return parameterError }
            self.radio.setDataRate(dataRate)
            return ok
        case "DEVEUI", "APPEUI", "APPKEY":
            let key: WritableKeyPath<SimulatedLoRaWANRadio.State, [UInt8]?> = name == "DEVEUI" ? \.devEUI : name == "APPEUI" ? \.joinEUI : \.appKey
            guard let value = Hex.decode(argument), value.count == (name == "APPKEY" ? 16 : 8) else { return parameterError }
            self.radio.state.withLock { $0.setKey(key, value) }
            return ok
        case "JOIN":
            // `AT+JOIN=1:0:8:0`: join, auto-join, interval, attempts; the simulation makes one attempt.
            return self.join(at: time)
        case "SEND":
            return self.send(argument, at: time) ?? parameterError
        default:
            return now("AT_COMMAND_NOT_FOUND")
        }
    }

    private func value(of name: String, at time: Duration) -> String? {
        self.radio.state.withLock { state in
            switch name {
            case "VER": self.firmwareVersion
            case "NJS": state.isJoined(at: time) ? "1" : "0"
            case "DR": "\(state.dataRate)"
            case "ADR": state.adr ? "1" : "0"
            case "NWM", "NJM": "1"
            case "BAND": "4"
            case "CLASS": "A"
            case "DEVEUI": state.devEUI.map { Hex.encode($0) } ?? "0000000000000000"
            case "APPEUI": state.joinEUI.map { Hex.encode($0) } ?? "0000000000000000"
            case "APPKEY": state.appKey.map { Hex.encode($0) } ?? String(repeating: "0", count: 32)
            // The last downlink is re-read in upper case (§10).
            case "RECV": state.lastDownlink.map { "\($0.port):\(Hex.encode($0.payload))" } ?? "0:"
            default: nil
            }
        }
    }

    private func join(at time: Duration) -> [SimulatedATReply] {
        switch self.radio.join(at: time) {
        case .busy: [SimulatedATReply(time: time, lines: ["AT_BUSY_ERROR"])]
        case .accepted(let done): [SimulatedATReply(time: time, lines: ["OK"]), SimulatedATReply(time: done, lines: ["+EVT:JOINED"])]
        case .rejected(let done):
            [SimulatedATReply(time: time, lines: ["OK"]), SimulatedATReply(time: done, lines: ["+EVT:JOIN_FAILED_RX_TIMEOUT"])]
        }
    }

    /// `AT+SEND=<port>:<hex>`; nil for a malformed one.
    private func send(_ argument: String, at time: Duration) -> [SimulatedATReply]? {
        let parts = argument.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, let port = UInt8(parts[0]), (1...223).contains(port), (2...500).contains(parts[1].count),
            let payload = Hex.decode(parts[1])
        else { return nil }
        func at(_ time: Duration, _ lines: String...) -> SimulatedATReply {
            SimulatedATReply(time: time, lines: lines)
        }
        switch self.radio.uplink(port: port, payload: payload, at: time, sendsEmptyFrames: true) {
        case .notJoined: return [at(time, "AT_NO_NETWORK_JOINED")]
        case .busy, .noFreeChannel: return [at(time, "AT_BUSY_ERROR")]
        case .dutyCycle(let wait): return [at(time, "Restricted_Wait_\(wait.wholeMilliseconds)_ms", "AT_BUSY_ERROR")]
        case .tooLong(_, let emptyFrameDone):
            return [at(time, "AT_PARAM_ERROR")] + (emptyFrameDone.map { [at($0, "+EVT:TX_DONE")] } ?? [])
        case .sent(let done, let downlink, let emptyFrameDone):
            var lines = ["+EVT:TX_DONE"]
            if let downlink {
                let hex = Hex.encode(downlink.payload).lowercased()
                lines.append("+EVT:RX_\(downlink.window):\(downlink.rssi):\(downlink.snr):UNICAST:\(downlink.port):\(hex)")
            }
            return [at(time, "OK"), SimulatedATReply(time: done, lines: lines)] + (emptyFrameDone.map { [at($0, "+EVT:TX_DONE")] } ?? [])
        }
    }
}
