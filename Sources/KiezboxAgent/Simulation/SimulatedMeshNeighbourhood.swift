import Foundation
import KiezboxCore
import MeshRelay
import ServiceLifecycle

/// What a `--simulate` box with a Meshtastic radio hears: its own simulated radio on a simulated LoRa channel,
/// with a Kiezbox 2.0 pilot box a few hundred metres away and a resident's phone on the same channel.
final class SimulatedMeshNeighbourhood: Sendable {
    let channel: SimulatedMeshChannel
    /// The box's own radio: what the configured serial port is connected to.
    let radio: SimulatedMeshtasticRadio
    let pilot: SimulatedPilotBox
    let phone: SimulatedMeshPhone
    /// Where the pilot box stands (north-east of the box).
    let pilotPosition: GeoPosition

    init(near position: GeoPosition) {
        self.channel = SimulatedMeshChannel()
        self.radio = SimulatedMeshtasticRadio(
            .init(nodeNumber: 0x4B1E_5100, longName: "Kiezbox (simulated radio)", shortName: "KBX"), channel: self.channel)
        self.pilot = SimulatedPilotBox(nodeNumber: 0x4B32_0011, boxID: 11, districtID: 2, channel: self.channel)
        self.phone = SimulatedMeshPhone(nodeNumber: 0x5EED_0042, longName: "Nachbarin Telefon", shortName: "NT", channel: self.channel)
        self.pilotPosition = GeoPosition(latitude: position.latitude + 0.003, longitude: position.longitude + 0.004)
    }

    /// The pilot box's status now: the simulated weather's outside temperature, in the pilot's m°C.
    func pilotReport(at date: Date) {
        let celsius = SimulatedWeather.conditions(at: date).celsius
        self.pilot.sendUpdate(unixTime: Int64(date.timeIntervalSince1970), temperatureOutside: Int32((celsius * 1000).rounded()))
    }
}

/// Plays the simulated neighbourhood: the pilot box and the phone introduce themselves, the pilot box gives its
/// position and then its status every ``period``, as the pilot's firmware does.
struct SimulatedMeshNeighbourhoodService<C: KiezboxClock>: Service {
    let neighbourhood: SimulatedMeshNeighbourhood
    let clock: C
    var period: Duration = .seconds(300)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            // The radio hands packets only to a client that finished its handshake: give the bridge a moment.
            while !self.neighbourhood.radio.hasReadyClient {
                do { try await self.clock.sleep(for: .seconds(1)) } catch { return }
            }
            self.neighbourhood.pilot.announce()
            self.neighbourhood.phone.announce()
            let position = self.neighbourhood.pilotPosition
            self.neighbourhood.pilot.sendPosition(latitude: position.latitude, longitude: position.longitude)
            while !Task.isCancelled {
                self.neighbourhood.pilotReport(at: self.clock.currentDate())
                do { try await self.clock.sleep(for: self.period) } catch { break }
            }
        }
    }
}
