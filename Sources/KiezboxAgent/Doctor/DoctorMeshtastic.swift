import KiezboxCore
import Logging
import MeshRelay
import SensorDrivers
import Synchronization

extension Doctor {
    /// What Meshtastic findings show in the sensor column: the configuration table that describes the radio.
    static let meshtasticFindingName = "meshtastic"

    /// Connects to the `[meshtastic]` radio (serial or TCP), does the `want_config` handshake and reports who the radio
    /// is and whether the configured channel is there. Nothing goes on air: the handshake and its heartbeat are
    /// between the host and the radio only.
    func examineMeshtasticRadio(_ settings: MeshtasticSettings) async -> DoctorFinding {
        let place = settings.endpoint.description
        let transport: any MeshtasticTransport
        do {
            transport = try await MeshtasticConnector(buses: self.buses, connectTimeout: self.answerTimeout).open(settings.endpoint)
        } catch {
            return DoctorFinding(
                status: .missing, sensor: Self.meshtasticFindingName, chip: "Meshtastic radio", place: place, detail: "\(error)",
                fix: Self.meshtasticAccessFix(error, settings.endpoint))
        }
        var options = MeshtasticLinkOptions()
        options.handshakeTimeout = self.answerTimeout
        options.initialReconnectDelay = self.answerTimeout
        options.readPollInterval = .milliseconds(100)
        let handedOut = Mutex(false)
        let link = MeshtasticRadioLink(
            endpoint: settings.endpoint, clock: LiveClock(), logger: Logger(label: "kiezbox.doctor") { _ in SwiftLogNoOpLogHandler() },
            options: options
        ) { () async throws(MeshtasticTransportError) -> any MeshtasticTransport in
            // One connection only: the doctor looks once.
            guard !handedOut.withLock({ $0 }) else { throw MeshtasticTransportError(.closed, endpoint: place) }
            handedOut.withLock { $0 = true }
            return transport
        }
        let running = Task { await link.run() }
        let info = try? await withTimeout(self.answerTimeout) { try await link.waitUntilReady() }
        running.cancel()
        await running.value
        transport.close()
        guard let info else { return Self.meshtasticSilent(link.statistics, settings) }
        return Self.meshtasticFound(info, settings)
    }

    private static func meshtasticAccessFix(_ error: any Error, _ endpoint: MeshtasticEndpoint) -> String {
        let code: MeshtasticTransportError.Code? =
            if let serial = error as? SerialError { MeshtasticTransportError(serial).code } else {
                (error as? MeshtasticTransportError)?.code
            }
        switch code {
        case .noSuchPort?:
            return "plug the radio in (USB) and check port = \"\(endpoint)\"; `ls -l /dev/serial/by-id/` names it (CP210x, CH340 or the board's own USB)"
        case .busy?:
            return "stop the daemon first (sudo systemctl stop kiezbox), and any other Meshtastic client (the python CLI, meshtasticd on the same port)"
        case .permissionDenied?:
            return "add the user to the dialout group (sudo adduser kiezbox dialout), then restart the service"
        case .connectionRefused?:
            return "meshtasticd is not running or listens elsewhere: sudo systemctl start meshtasticd; check host = \"\(endpoint)\" (its API port is 4403)"
        case .connectTimedOut?, .unknownHost?:
            return "check host = \"\(endpoint)\": the address must reach meshtasticd or the radio's Wi-Fi API on port 4403"
        default:
            return "check the radio's cable or network and that it runs Meshtastic firmware"
        }
    }

    private static func meshtasticSilent(_ statistics: MeshtasticLinkStatistics, _ settings: MeshtasticSettings) -> DoctorFinding {
        let place = settings.endpoint.description
        if statistics.framesIn == 0 {
            let heard = statistics.skippedBytes > 0 ? "\(statistics.skippedBytes) bytes, no Meshtastic frame" : "nothing"
            return DoctorFinding(
                status: .missing, sensor: Self.meshtasticFindingName, chip: "Meshtastic radio", place: place,
                detail: "no answer to want_config: heard \(heard)",
                fix: "check that \(place) is the Meshtastic radio (another device may be on it; `ls -l /dev/serial/by-id/`), that it runs "
                    + "Meshtastic firmware with the serial API on (the serial module in another mode takes the port) at 115200 baud")
        }
        return DoctorFinding(
            status: .wrong, sensor: Self.meshtasticFindingName, chip: "Meshtastic radio", place: place,
            detail: "\(statistics.framesIn) Meshtastic frames but no config_complete_id for our request",
            fix: "the firmware is too old for this client API: update it (flasher.meshtastic.org), then run kiezbox doctor again")
    }

    private static func meshtasticFound(_ info: MeshtasticRadioInfo, _ settings: MeshtasticSettings) -> DoctorFinding {
        var detail = "node \(info.userID)"
        if let name = info.longName, !name.isEmpty { detail += " \"\(name)\"" }
        detail += ", firmware \(info.firmwareVersion ?? "unknown"), \(info.hardwareModelName ?? "hardware model unknown")"
        detail += ", channels " + info.channels.map(\.description).joined(separator: ", ")
        var status = DoctorFinding.Status.found
        var fix: String?
        if let channel = info.channel(at: settings.channelIndex) {
            if let expected = settings.channelName, channel.name != expected {
                detail += "; channel \(settings.channelIndex) is named \"\(channel.name)\", not \"\(expected)\""
                fix = "name channel \(settings.channelIndex) \"\(expected)\" with the pilot's key on the radio (Meshtastic app: "
                    + "Channels), or set channel_name = \"\(channel.name)\" in [meshtastic] if that is the Kiezbox channel"
            } else {
                detail += "; channel \(settings.channelIndex) is there"
            }
        } else {
            status = .wrong
            detail += "; no channel \(settings.channelIndex)"
            fix = "add channel \(settings.channelIndex)\(settings.channelName.map { " \"\($0)\"" } ?? "") with the pilot's key as a "
                + "secondary channel on the radio (Meshtastic app: Channels), or set channel = … in [meshtastic] to the right index"
        }
        return DoctorFinding(
            status: status, sensor: Self.meshtasticFindingName, chip: info.hardwareModelName ?? "Meshtastic radio",
            place: settings.endpoint.description, detail: detail, fix: fix)
    }
}
