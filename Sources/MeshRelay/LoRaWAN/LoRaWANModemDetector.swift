import SensorDrivers

extension LoRaWANModemKind {
    /// The line speed the dialect's modem talks at out of the box.
    public var baudRate: SerialBaudRate {
        switch self {
        case .wioE5: WioE5Modem.baudRate
        case .rak3172: RAK3172Modem.baudRate
        }
    }
}

/// Finds out which modem dialect answers on a serial port (configuration `modem = "auto"`, `kiezbox doctor`).
/// The port must be open at the dialect's rate (``LoRaWANModemKind/baudRate``): to search, open the port at each
/// kind's rate in turn, close it between tries, and identify.
public enum LoRaWANModemDetector {
    /// The driver for `kind` on `port`.
    public static func modem(
        kind: LoRaWANModemKind,
        port: any SerialPort,
        timeouts: LoRaWANModemTimeouts = LoRaWANModemTimeouts(),
        log: @escaping LoRaWANModemLog = { _ in }
    ) -> any LoRaWANModem {
        switch kind {
        case .wioE5: WioE5Modem(port: port, timeouts: timeouts, log: log)
        case .rak3172: RAK3172Modem(port: port, timeouts: timeouts, log: log)
        }
    }

    /// Asks the device on `port` who it is in each dialect in turn (`AT+VER`, then `AT+VER=?`) and returns the
    /// first answer that makes sense. A RAK3172 answers the Wio-E5's question with a status line at once, so trying
    /// the Wio-E5 first costs no wait.
    ///
    /// - Throws: ``LoRaWANModemError/noAnswer(command:port:)`` when nothing answered,
    ///   ``LoRaWANModemError/unrecognisedModem(port:answer:)`` when something did but in neither dialect (another
    ///   device, or the wrong baud rate), or the port's ``SerialError``.
    public static func identify(
        port: any SerialPort,
        timeouts: LoRaWANModemTimeouts = LoRaWANModemTimeouts(),
        log: @escaping LoRaWANModemLog = { _ in }
    ) async throws -> LoRaWANModemIdentity {
        var failure = LoRaWANModemError.noAnswer(command: "AT+VER, AT+VER=?", port: port.name)
        for kind in LoRaWANModemKind.allCases {
            do {
                return try await self.modem(kind: kind, port: port, timeouts: timeouts, log: log).identify()
            } catch let error as LoRaWANModemError {
                // Something that answered says more than silence does.
                if case .noAnswer = error { continue }
                failure = error
            }
        }
        throw failure
    }
}
