import Logging
import MeshRelay
import SensorDrivers

extension Doctor {
    /// What LoRaWAN modem findings show in the sensor column: the configuration table that describes the modem.
    static let loRaWANFindingName = "lorawan"

    /// Finds the `[lorawan]` modem the way the daemon does (``LoRaWANModemConnector``) and asks who it is and, where
    /// the dialect can tell, whether it has joined. It never joins: a join costs airtime from the daily allowance.
    func examineLoRaWANModem(_ settings: LoRaWANSettings) async -> DoctorFinding {
        let configured = settings.modem?.description ?? "LoRaWAN modem"
        do {
            let (identity, joined) = try await self.askModem(settings)
            return Self.modemFound(identity, joined: joined, place: settings.port)
        } catch let error as LoRaWANModemError {
            // The configured dialect did not answer as expected: the other one may be there.
            if let expected = settings.modem, let finding = await self.otherDialect(than: expected, settings) { return finding }
            return Self.modemFailed(error, configured: configured, settings: settings)
        } catch let error as SerialError {
            let fix =
                switch error.code {
                case .noSuchPort: DeviceAccessCheck.DeviceKind.serial.missingFix
                case .busy: "stop the daemon first (sudo systemctl stop kiezbox): the port is opened by one program at a time"
                case .permissionDenied: "add the user to the dialout group (sudo adduser kiezbox dialout), then restart the service"
                case .closed, .io: Self.wrongDeviceFix(settings)
                }
            return DoctorFinding(
                status: .missing, sensor: Self.loRaWANFindingName, chip: configured, place: settings.port, detail: "\(error)", fix: fix)
        } catch {
            return DoctorFinding(
                status: .missing, sensor: Self.loRaWANFindingName, chip: configured, place: settings.port, detail: "\(error)",
                fix: Self.modemWiringFix)
        }
    }

    /// The modem's identity and join state (nil where the dialect cannot tell without a join).
    private func askModem(_ settings: LoRaWANSettings) async throws -> (LoRaWANModemIdentity, joined: Bool?) {
        // The connector logs every line at debug level; the doctor's table says what matters.
        let connector = LoRaWANModemConnector(
            settings: settings, buses: self.buses, logger: Logger(label: "kiezbox.doctor") { _ in SwiftLogNoOpLogHandler() })
        return try await withTimeout(self.answerTimeout) {
            let (modem, identity) = try await connector.connect()
            switch identity.kind {
            case .rak3172:
                return (identity, try await modem.isJoined())
            case .wioE5:
                // Its firmware has no query for the join state; only a join (`+JOIN: Joined already`) would show it.
                return (identity, nil)
            }
        }
    }

    /// Another dialect answering on the port, named with the setting to change.
    private func otherDialect(than expected: LoRaWANModemKind, _ settings: LoRaWANSettings) async -> DoctorFinding? {
        for kind in LoRaWANModemKind.allCases where kind != expected {
            var probe = settings
            probe.modem = kind
            guard let (identity, _) = try? await self.askModem(probe) else { continue }
            return DoctorFinding(
                status: .wrong, sensor: Self.loRaWANFindingName, chip: identity.kind.description, place: settings.port,
                detail: "a \(identity.kind) (firmware \(identity.firmwareVersion)) answers, not a \(expected) as configured",
                fix: "set modem = \"\(identity.kind.rawValue)\" (or \"auto\") in [lorawan]"
            )
        }
        return nil
    }

    private static func modemFound(_ identity: LoRaWANModemIdentity, joined: Bool?, place: String) -> DoctorFinding {
        var detail = "\(identity.kind) firmware \(identity.firmwareVersion)"
        var fix: String?
        switch joined {
        case true?:
            detail += ", joined"
        case false?:
            detail += ", not joined yet"
            fix = "kiezbox run joins when it starts (the doctor does not: a join costs airtime); if it never joins, check "
                + "DevEUI, JoinEUI and AppKey against the device in the TTN console and that a gateway is in reach"
        case nil:
            detail += "; it cannot tell whether it has joined until a join, which the doctor does not try (a join costs airtime)"
        }
        return DoctorFinding(
            status: .found, sensor: Self.loRaWANFindingName, chip: identity.kind.description, place: place, detail: detail, fix: fix)
    }

    private static func modemFailed(_ error: LoRaWANModemError, configured: String, settings: LoRaWANSettings) -> DoctorFinding {
        switch error {
        case .noAnswer(let command, _):
            return DoctorFinding(
                status: .missing, sensor: Self.loRaWANFindingName, chip: configured, place: settings.port,
                detail: "no answer to \(command)", fix: Self.modemWiringFix)
        case .unrecognisedModem(_, let answer):
            return DoctorFinding(
                status: .wrong, sensor: Self.loRaWANFindingName, chip: configured, place: settings.port,
                detail: "answers \"\(answer)\", neither a Wio-E5 nor a RAK3172", fix: Self.wrongDeviceFix(settings))
        default:
            return DoctorFinding(
                status: .wrong, sensor: Self.loRaWANFindingName, chip: configured, place: settings.port, detail: "\(error)",
                fix: Self.wrongDeviceFix(settings))
        }
    }

    private static let modemWiringFix =
        "check the wiring: the modem's TX to the Pi's RX (GPIO15, pin 10) and its RX to the Pi's TX (GPIO14, pin 8), GND to GND; "
        + "its supply is 3.3 V (pin 1 or 17, never 5 V); the baud rate: Wio-E5 9600, RAK3172 115200 out of the box "
        + "(set baud_rate if it was changed); on USB, `ls -l /dev/serial/by-id/` names the adapter"

    private static func wrongDeviceFix(_ settings: LoRaWANSettings) -> String {
        "check that port = \"\(settings.port)\" is the modem's (`ls -l /dev/serial/by-id/` names USB adapters; another device may be on it) "
            + "and the baud rate (Wio-E5 9600, RAK3172 115200 out of the box; set baud_rate if it was changed)"
    }
}
