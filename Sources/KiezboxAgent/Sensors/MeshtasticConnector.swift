import MeshRelay
import SensorDrivers

/// Opens the `[meshtastic]` radio the same way for the daemon and the doctor: a serial port through the bus
/// provider (so a `--simulate` kit's simulated radio and a real USB radio are opened alike, woken with the wake
/// sequence), or meshtasticd's TCP port.
struct MeshtasticConnector: Sendable {
    let buses: any BusProvider
    var connectTimeout: Duration = .seconds(10)

    func open(_ endpoint: MeshtasticEndpoint) async throws -> any MeshtasticTransport {
        switch endpoint {
        case .serial(let path):
            let (port, _) = try self.buses.serialPort(path, baudRate: .b115200)
            let transport = MeshtasticSerialTransport(port: port) { (port as? LinuxSerialPort)?.close() }
            do {
                try await transport.wake()
            } catch {
                transport.close()
                throw error
            }
            return transport
        case .tcp(let host, let port):
            return try await MeshtasticTCPTransport.connect(host: host, port: port, timeout: self.connectTimeout)
        }
    }

    /// The same, with every failure as the link's transport error (what its reconnect loop expects).
    func connect(_ endpoint: MeshtasticEndpoint) async throws(MeshtasticTransportError) -> any MeshtasticTransport {
        do {
            return try await self.open(endpoint)
        } catch let error as MeshtasticTransportError {
            throw error
        } catch let error as SerialError {
            throw MeshtasticTransportError(error)
        } catch {
            throw MeshtasticTransportError(.closed, endpoint: endpoint.description)
        }
    }
}
