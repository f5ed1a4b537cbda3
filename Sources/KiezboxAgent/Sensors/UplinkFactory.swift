import Foundation
import KiezboxCore
import Logging
import MeshRelay
import SensorDrivers

/// Builds the configured uplinks.
struct UplinkFactory {
    let configuration: KiezboxConfiguration
    let logger: Logger
    /// The portal's HTTPS side, for the MQTT status.
    var portalHTTPS: StatusMessage.PortalHTTPS? = nil
    /// The box's bulletin key (public, raw, base64), for the MQTT status.
    var bulletinKey: String? = nil

    /// The configured uplinks, and the MQTT one separately: the neighbourhood view rides on it.
    func makeUplinks(sender: SenderIdentity) throws -> (all: [any Uplink], mqtt: MQTTUplink?) {
        var uplinks: [any Uplink] = []
        let uplinkSettings = self.configuration.uplinks
        var mqtt: MQTTUplink?
        if let settings = uplinkSettings.mqtt {
            let tls = settings.caFile.map { caFile in
                MosquittoClient.TLS(
                    caFile: caFile,
                    clientCertificate: settings.certificateFile.flatMap { certificate in
                        settings.keyFile.map { MosquittoClient.ClientCertificate(certificateFile: certificate, privateKeyFile: $0) }
                    }
                )
            }
            var mqttConfiguration = MQTTUplink.Configuration(
                host: settings.host, port: settings.port, clientID: settings.clientID,
                credentials: settings.username.map { MosquittoClient.Credentials(username: $0, password: settings.password) },
                tls: tls, keepAlive: settings.keepAlive, topicPrefix: settings.topicPrefix
            )
            mqttConfiguration.portalHTTPS = self.portalHTTPS
            mqttConfiguration.bulletinKey = self.bulletinKey
            let uplink = try MQTTUplink(configuration: mqttConfiguration, sender: sender, logger: self.logger)
            uplinks.append(uplink)
            mqtt = uplink
        }
        if let community = uplinkSettings.sensorCommunity {
            guard let endpoint = URL(string: community.endpoint) else {
                throw DaemonError(description: "sensor_community.endpoint '\(community.endpoint)' is not a URL")
            }
            let logger = self.logger
            uplinks.append(try SensorCommunityUplink(
                configuration: SensorCommunityConfiguration(
                    sensorUID: community.sensorID, sensors: self.sensorCommunityKinds(), endpoint: endpoint,
                    liveWindow: community.liveWindow
                ),
                log: { logger.notice("sensor.community: \($0)") }
            ))
        }
        if let osem = uplinkSettings.openSenseMap {
            guard let base = URL(string: osem.endpoint) else {
                throw DaemonError(description: "opensensemap.endpoint '\(osem.endpoint)' is not a URL")
            }
            let sensors = Dictionary(uniqueKeysWithValues: osem.sensorIDs.map { key, id in
                (OpenSenseMapSensorKey(sensorID: key.sensor, quantity: key.quantity), id)
            })
            let logger = self.logger
            uplinks.append(try OpenSenseMapUplink(
                configuration: OpenSenseMapConfiguration(
                    senseBoxID: osem.boxID, accessToken: osem.accessToken ?? "", sensors: sensors,
                    location: self.configuration.identity.position, baseURL: base
                ),
                log: { logger.notice("openSenseMap: \($0)") }
            ))
        }
        return (uplinks, mqtt)
    }

    /// sensor.community tells sensor types apart by X-Pin: the kind follows from each configured chip.
    private func sensorCommunityKinds() -> [String: SensorCommunitySensorKind] {
        var kinds: [String: SensorCommunitySensorKind] = [:]
        for sensor in self.configuration.sensors {
            let kind: SensorCommunitySensorKind? =
                switch sensor.chip {
                case .bme280: .bme280
                case .sht3x: .sht3x
                case .sds011: .sds011
                case .pms5003: .pms5003
                case .sps30, .sps30UART: .sps30
                case .scd30: .scd30
                case .gps, .gpsd: .gps
                default: nil
                }
            if let kind { kinds[sensor.id] = kind }
        }
        return kinds
    }
}
