import Foundation
import KiezboxCore
import Logging
import MeshRelay
import ReadingStore

/// Boxes, readings and configurations shared by the MQTT tests.
enum Fixtures {
    static let wrangelkiez = BoxIdentity(
        district: "xhain", boxID: "wrangelkiez-01", name: "Kiezbox Wrangelstraße",
        position: GeoPosition(latitude: 52.5003, longitude: 13.4365, altitude: 36))
    static let reichenberger = BoxIdentity(
        district: "xhain", boxID: "reichenberger-02", name: "Kiezbox Reichenberger Straße",
        position: GeoPosition(latitude: 52.4960, longitude: 13.4296))
    static let weddingBox = BoxIdentity(district: "wedding", boxID: "leopold-01", name: "Kiezbox Leopoldplatz")

    static func sender(_ box: BoxIdentity = wrangelkiez) -> SenderIdentity {
        SenderIdentity(box: box, storeInstance: "3f2c9a1e-store")
    }

    static func readings(_ ids: ClosedRange<Int64>) -> [StoredReading] {
        ids.map { id in
            StoredReading(
                id: id,
                reading: Reading(
                    sensorID: "climate", quantity: id % 2 == 0 ? .temperature : .relativeHumidity,
                    value: 20 + Double(id) / 10, measuredAt: Date(timeIntervalSince1970: 1_790_000_000 + Double(id)),
                    quality: id % 7 == 0 ? .degraded : .good))
        }
    }

    /// Short reconnect delays and timeouts: a test must not wait for production back-offs.
    static func uplinkConfiguration(port: Int, _ change: (inout MQTTUplink.Configuration) -> Void = { _ in })
        -> MQTTUplink.Configuration
    {
        var configuration = MQTTUplink.Configuration(
            host: "127.0.0.1", port: port, acknowledgementTimeout: .seconds(5),
            reconnectDelay: .init(initial: .milliseconds(100), maximum: .milliseconds(500)))
        change(&configuration)
        return configuration
    }

    /// A relay feeding `uplink` from `store` as fast as it can, retrying quickly: tests of what arrives, not of pacing.
    static func unpacedRelay(_ uplink: MQTTUplink, store: ReadingStore, batchSize: Int, label: String) -> RelayService<LiveClock> {
        RelayService(
            uplinks: [uplink], store: store, clock: LiveClock(),
            configuration: RelayConfiguration(
                batchSize: batchSize, idlePoll: .milliseconds(100), initialBackoff: .milliseconds(100), maximumBackoff: .seconds(1),
                maximumBackfillRate: 0),
            logger: Logger(label: label))
    }

    static func statusMessages(_ messages: [MQTTMessage]) -> [StatusMessage] {
        messages.compactMap { try? JSONDecoder().decode(StatusMessage.self, from: Data($0.payload)) }
    }
}

/// Starts `uplink`, runs `body` and stops the uplink whatever happens.
@discardableResult
func withStarted<T: Sendable>(_ uplink: MQTTUplink, _ body: () async throws -> T) async throws -> T {
    // Through the protocol, as the relay calls it: proves MQTTUplink's start() is the Uplink requirement's witness.
    let asUplink: any Uplink = uplink
    try await asUplink.start()
    do {
        let result = try await body()
        await uplink.stop()
        return result
    } catch {
        await uplink.stop()
        throw error
    }
}
