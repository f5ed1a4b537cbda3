import Logging
import MeshRelay
import SensorDrivers

/// Opens the LoRaWAN modem's port and finds its dialect: the configured one, or (`modem = "auto"`) each in turn
/// at its own factory speed until one identifies itself. The daemon and `kiezbox doctor` share it.
struct LoRaWANModemConnector: Sendable {
    let settings: LoRaWANSettings
    let buses: any BusProvider
    let logger: Logger

    /// The driver of the modem that answered, with its identity.
    func connect() async throws -> (modem: any LoRaWANModem, identity: LoRaWANModemIdentity) {
        let kinds = self.settings.modem.map { [$0] } ?? LoRaWANModemKind.allCases
        var failure: any Error = LoRaWANModemError.noAnswer(command: "AT+VER, AT+VER=?", port: self.settings.port)
        for kind in kinds {
            let baudRate = self.settings.baudRate.flatMap(SerialBaudRate.init(rawValue:)) ?? kind.baudRate
            let (port, _) = try self.buses.serialPort(self.settings.port, baudRate: baudRate)
            let logger = self.logger
            // Every line to and from the modem at debug level; the drivers have hidden the AppKey already.
            let modem = LoRaWANModemDetector.modem(kind: kind, port: port) { entry in logger.debug("\(entry)") }
            do {
                let identity = try await modem.identify()
                if identity.kind == kind { return (modem, identity) }
            } catch let error as LoRaWANModemError {
                failure = error
            }
        }
        throw failure
    }
}
