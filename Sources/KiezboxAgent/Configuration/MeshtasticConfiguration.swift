import MeshRelay

/// `[meshtastic]`: a Meshtastic radio on USB (`port`) or `meshtasticd` over TCP (`host`), joining the LoRa mesh of the
/// Kiezbox 2.0 pilot boxes and residents' phones.
public struct MeshtasticSettings: Sendable, Hashable {
    /// The radio: exactly one of `port` and `host` in the file.
    public var endpoint: MeshtasticEndpoint
    /// The channel index Kiezbox traffic uses (the pilot's boxes use 1).
    public var channelIndex: UInt32
    /// The name that channel should have on the radio; the doctor warns when it differs. Nil: not checked.
    public var channelName: String?
    /// Standard Meshtastic telemetry (environment, air quality, power), so every Meshtastic app shows the box.
    public var sendTelemetry: Bool
    /// `KiezboxMessage` updates on port 258, so the pilot's gateways store the box's status.
    public var sendPilotUpdates: Bool
    /// How often the box's own status goes out.
    public var statusInterval: Duration
    /// The box and district numbers in the pilot's `Meta` (0…255; required with `send_pilot_updates`).
    public var pilotBoxID: UInt32?
    public var pilotDistrictID: UInt32?
    /// Pilot boxes' updates become readings in the store.
    public var acceptPilotReadings: Bool
    /// Pilot boxes' `Emergency` messages become help requests on the bulletin.
    public var pilotEmergenciesToBulletin: Bool
    /// Control messages from the pilot's admin tools are applied (they are unauthenticated: off by default).
    public var obeyPilotControl: Bool
    /// Signed announcements go out on (and come in from) the mesh in crisis mode.
    public var relayAnnouncements: Bool
    /// Neighbours' help requests are relayed.
    public var relayHelpRequests: Bool
    /// The share (0 < x ≤ 1) of the band's 10 % hourly allowance the box may use; the firmware's own telemetry
    /// stays below half of it.
    public var airtimeShare: Double

    /// The radio's serial port, when it is on USB.
    var serialPath: String? { if case .serial(let path) = self.endpoint { path } else { nil } }

    static let keys = [
        "port", "host", "channel", "channel_name", "send_telemetry", "send_pilot_updates", "status_interval", "pilot_box_id",
        "pilot_district_id", "accept_pilot_readings", "pilot_emergencies_to_bulletin", "obey_pilot_control", "relay_announcements",
        "relay_help_requests", "airtime_share",
    ]

    static func parse(_ table: TOMLTableReader) throws(ConfigurationError) -> MeshtasticSettings {
        try table.rejectUnknownKeys(Self.keys)
        let endpoint = try Self.endpoint(table)
        let sendPilotUpdates = try table.bool("send_pilot_updates") ?? true
        let boxID = try table.int("pilot_box_id", in: 0...255).map(UInt32.init)
        let districtID = try table.int("pilot_district_id", in: 0...255).map(UInt32.init)
        if sendPilotUpdates {
            for (key, value) in [("pilot_box_id", boxID), ("pilot_district_id", districtID)] where value == nil {
                throw table.error(
                    key, "missing; send_pilot_updates needs pilot_box_id and pilot_district_id (0 to 255, as the pilot's gateway "
                        + "knows the box), or set send_pilot_updates = false")
            }
        }
        let share = try table.double("airtime_share", in: 0...1) ?? 0.5
        guard share > 0 else {
            throw table.error("airtime_share", "must be above 0 (a fraction of the band's 10 % per hour, e.g. 0.5)")
        }
        let channelName = try table.string("channel_name")
        if let channelName, channelName.utf8.count > 11 {
            throw table.error("channel_name", "at most 11 bytes (Meshtastic's limit for channel names)")
        }
        return MeshtasticSettings(
            endpoint: endpoint, channelIndex: UInt32(try table.int("channel", in: 0...7) ?? 1), channelName: channelName,
            sendTelemetry: try table.bool("send_telemetry") ?? true, sendPilotUpdates: sendPilotUpdates,
            statusInterval: try table.duration("status_interval", atLeast: .seconds(60)) ?? .seconds(1800),
            pilotBoxID: boxID, pilotDistrictID: districtID,
            acceptPilotReadings: try table.bool("accept_pilot_readings") ?? true,
            pilotEmergenciesToBulletin: try table.bool("pilot_emergencies_to_bulletin") ?? true,
            obeyPilotControl: try table.bool("obey_pilot_control") ?? false,
            relayAnnouncements: try table.bool("relay_announcements") ?? true,
            relayHelpRequests: try table.bool("relay_help_requests") ?? true,
            airtimeShare: share
        )
    }

    /// `port = "/dev/ttyUSB0"` or `host = "127.0.0.1:4403"` (the port defaults to 4403; IPv6 in brackets).
    private static func endpoint(_ table: TOMLTableReader) throws(ConfigurationError) -> MeshtasticEndpoint {
        let port = try table.string("port")
        let host = try table.string("host")
        switch (port, host) {
        case (let path?, nil):
            guard path.hasPrefix("/") else { throw table.error("port", "expected a device path such as \"/dev/ttyUSB0\"") }
            return .serial(path: path)
        case (nil, let address?):
            return try Self.tcp(address, table)
        case (_?, _?):
            throw table.error("host", "give either port (a radio on USB) or host (meshtasticd over TCP), not both")
        case (nil, nil):
            throw table.error(nil, "missing port or host: port = \"/dev/ttyUSB0\" for a radio on USB, host = \"127.0.0.1:4403\" for meshtasticd")
        }
    }

    private static func tcp(_ address: String, _ table: TOMLTableReader) throws(ConfigurationError) -> MeshtasticEndpoint {
        var name = Substring(address)
        var portText: Substring?
        if name.hasPrefix("[") {
            guard let close = name.firstIndex(of: "]") else { throw table.error("host", "unclosed '[' in \"\(address)\"") }
            let rest = name[name.index(after: close)...]
            name = name[name.index(after: name.startIndex)..<close]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { throw table.error("host", "expected \"[address]:port\", found \"\(address)\"") }
                portText = rest.dropFirst()
            }
        } else if let colon = name.lastIndex(of: ":") {
            guard name.firstIndex(of: ":") == colon else {
                throw table.error("host", "write an IPv6 address in brackets, e.g. \"[::1]:4403\"")
            }
            portText = name[name.index(after: colon)...]
            name = name[..<colon]
        }
        guard !name.isEmpty, !name.contains(where: \.isWhitespace) else { throw table.error("host", "expected a host name or address") }
        guard let portText else { return .tcp(host: String(name), port: MeshtasticFraming.tcpPort) }
        guard let port = Int(portText), (1...65535).contains(port) else {
            throw table.error("host", "port '\(portText)' is not a number from 1 to 65535")
        }
        return .tcp(host: String(name), port: port)
    }
}
