import KiezboxCore
import SensorDrivers
import Synchronization

/// A Seeed Wio-E5 with its factory AT firmware, as lora-and-appliance.md §1.1 describes it: every answer a
/// `+CMD: …` line, joins and uplinks as `Start … Done` with their result after the radio's time, refusals without
/// `Done`, downlinks as `PORT: 8; RX: "12345678"` (upper-case hex) followed by `RXWIN1, RSSI -70, SNR 8`.
///
/// Scripting (failed joins, busy, duty cycle, downlinks, noise) and the record of uplinks are on
/// ``SimulatedATModem/radio``.
/// It runs behind a ``SimulatedSerialPort`` in-process or behind a pseudo-terminal.
public final class SimulatedWioE5: SimulatedATModem, @unchecked Sendable {
    public override init(radio: SimulatedLoRaWANRadio = SimulatedLoRaWANRadio(), firmwareVersion: String = "4.0.11") {
        super.init(radio: radio, firmwareVersion: firmwareVersion)
    }

    override func answer(_ text: String, at time: Duration) -> [SimulatedATReply] {
        guard let command = SimulatedATCommand(text) else { return [] }
        if command.name.isEmpty { return [SimulatedATReply(time: time, lines: ["+AT: OK"])] }
        let name = command.name
        func now(_ texts: String...) -> [SimulatedATReply] {
            [SimulatedATReply(time: time, lines: texts.map { "+\(name): \($0)" })]
        }
        let invalid = now("ERROR(-1)")
        let argument = command.argument
        switch name {
        case "VER":
            return now(self.firmwareVersion)
        case "ID":
            return self.identifier(argument).map { now($0) } ?? invalid
        case "KEY":
            guard let argument, argument.uppercased().hasPrefix("APPKEY,"), let key = Self.quotedHex(argument.dropFirst(7)), key.count == 16 else {
                return invalid
            }
            let echoes = self.radio.state.withLock { state in
                state.setKey(\.appKey, key)
                return state.echoesAppKey
            }
            return echoes ? now("APPKEY \(Hex.encode(key))") : []
        case "DR":
            return self.dataRate(argument, now: now) ?? invalid
        case "MODE", "CLASS", "ADR", "CH":
            let accepted = ["MODE": ["LWOTAA", "LWABP", "TEST"], "CLASS": ["A", "B", "C"], "ADR": ["ON", "OFF"], "CH": ["NUM,0-2"]]
            guard let argument, accepted[name]?.contains(argument.uppercased()) == true else { return invalid }
            if name == "ADR" { self.radio.state.withLock { $0.adr = argument.uppercased() == "ON" } }
            return now(name == "CH" ? "NUM, 0-2" : argument.uppercased())
        case "PORT":
            guard let argument, let port = UInt8(argument), port > 0 else { return invalid }
            self.radio.state.withLock { $0.applicationPort = port }
            return now("\(port)")
        case "LW":
            guard argument?.uppercased() == "LEN" else { return invalid }
            return now("LEN, \(self.radio.state.withLock { $0.maximumPayloadLength })")
        case "JOIN":
            guard argument == nil || argument?.uppercased() == "FORCE" else { return invalid }
            if argument == nil, self.radio.state.withLock({ $0.isJoined(at: time) }) { return now("Joined already") }
            switch self.radio.join(at: time) {
            case .busy:
                return now("LoRaWAN modem is busy")
            case .accepted(let done):
                return now("Start", "NORMAL") + [SimulatedATReply(time: done, lines: ["Network joined", SimulatedLoRaWANRadio.netIDAndDevAddr, "Done"].map { "+JOIN: \($0)" })]
            case .rejected(let done):
                return now("Start", "NORMAL") + [SimulatedATReply(time: done, lines: ["+JOIN: Join failed", "+JOIN: Done"])]
            }
        case "MSGHEX":
            // `AT+MSGHEX` without an argument sends an empty frame.
            guard let payload = argument == nil ? [] : Self.quotedHex(argument ?? "") else { return invalid }
            switch self.radio.uplink(port: nil, payload: payload, at: time, sendsEmptyFrames: false) {
            case .notJoined: return now("Please join network first")
            case .busy: return now("LoRaWAN modem is busy")
            case .dutyCycle(let wait): return now("No band in \(wait.wholeMilliseconds)ms")
            case .noFreeChannel: return now("No free channel")
            case .tooLong(let maximum, _): return now("Length error \(maximum)")
            case .sent(let done, let downlink, _):
                var lines: [String] = []
                if let downlink {
                    lines.append("PORT: \(downlink.port); RX: \"\(Hex.encode(downlink.payload))\"")
                    lines.append("RXWIN\(downlink.window), RSSI \(downlink.rssi), SNR \(downlink.snr)")
                }
                lines.append("Done")
                return now("Start") + [SimulatedATReply(time: done, lines: lines.map { "+MSGHEX: \($0)" })]
            }
        default:
            return now("ERROR(-10)")
        }
    }

    /// `AT+ID=DevEui,"…"` sets, `AT+ID=DevEui` reads; both answer `DevEui, 01:23:…`.
    private func identifier(_ argument: String?) -> String? {
        guard let argument else { return nil }
        let parts = argument.split(separator: ",", maxSplits: 1)
        let key: WritableKeyPath<SimulatedLoRaWANRadio.State, [UInt8]?>
        let name: String
        switch parts.first?.lowercased() {
        case "deveui":
            key = \.devEUI
            name = "DevEui"
        case "appeui":
            key = \.joinEUI
            name = "AppEui"
        default:
            return nil
        }
        let value: [UInt8]? = self.radio.state.withLock { state in
            guard parts.count == 2 else { return state[keyPath: key] ?? Array(repeating: 0, count: 8) }
            guard let value = Self.quotedHex(parts[1]), value.count == 8 else { return nil }
            state.setKey(key, value)
            return value
        }
        return value.map { identifier in "\(name), " + identifier.map { Hex.encode([$0]) }.joined(separator: ":") }
    }

    /// `AT+DR` reads (two lines), `AT+DR=EU868` sets the region, `AT+DR=DR5` the data rate.
    private func dataRate(_ argument: String?, now: (String...) -> [SimulatedATReply]) -> [SimulatedATReply]? {
        guard let argument else {
            let dataRate = self.radio.dataRate
            let spreading = dataRate < 6 ? "SF\(12 - dataRate) BW125K" : dataRate == 6 ? "SF7 BW250K" : "FSK"
            return now("DR\(dataRate)", "EU868 DR\(dataRate)  \(spreading)")
        }
        if argument.uppercased() == "EU868" { return now("EU868") }
        guard argument.uppercased().hasPrefix("DR"), let dataRate = Int(argument.dropFirst(2)), (0...7).contains(dataRate) else { return nil }
        self.radio.setDataRate(dataRate)
        return now("DR\(dataRate)")
    }

    /// Hex in optional double quotes, spaces allowed (`"00 11 22"`).
    static func quotedHex(_ text: some StringProtocol) -> [UInt8]? {
        Hex.decode(String(text.filter { $0 != "\"" && $0 != " " }))
    }
}

extension Duration {
    /// Whole milliseconds, as the modems print waits.
    var wholeMilliseconds: Int64 {
        self.components.seconds * 1000 + self.components.attoseconds / 1_000_000_000_000_000
    }
}
