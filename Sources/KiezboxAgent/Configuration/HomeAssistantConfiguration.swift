import MeshRelay

/// `[home_assistant]`: MQTT discovery messages so that Home Assistant shows the box's sensors and mode without
/// configuration (docs/mqtt.md, "Home Assistant"). Off by default; switched off after being on, the box deletes
/// what it published.
struct HomeAssistantConfiguration: Sendable, Hashable {
    var enabled = false
    /// The topic prefix Home Assistant's MQTT integration listens on for discovery (its default).
    var discoveryPrefix = "homeassistant"

    static func parse(_ root: TOMLTableReader, mqttConfigured: Bool) throws(ConfigurationError) -> HomeAssistantConfiguration {
        var configuration = HomeAssistantConfiguration()
        guard let table = try root.table("home_assistant") else { return configuration }
        try table.rejectUnknownKeys(["enabled", "discovery_prefix"])
        configuration.enabled = try table.bool("enabled") ?? false
        if let prefix = try table.string("discovery_prefix") {
            guard HomeAssistantDiscovery.isValidDiscoveryPrefix(prefix) else {
                throw table.error(
                    "discovery_prefix", "'\(prefix)' is not an MQTT topic prefix (no '+', '#', no leading or trailing '/'); Home Assistant's default is \"homeassistant\"")
            }
            configuration.discoveryPrefix = prefix
        }
        if configuration.enabled, !mqttConfigured {
            throw table.error("enabled", "Home Assistant discovery goes over MQTT; configure the broker in [mqtt] first")
        }
        return configuration
    }
}
