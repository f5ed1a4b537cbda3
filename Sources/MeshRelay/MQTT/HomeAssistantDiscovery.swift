import Foundation
public import KiezboxCore

/// One retained MQTT message of the Home Assistant integration: a discovery config, or an entity's state.
public struct HomeAssistantMessage: Sendable, Hashable {
    public var topic: String
    public var payload: [UInt8]

    public init(topic: String, payload: [UInt8]) {
        self.topic = topic
        self.payload = payload
    }
}

/// Builds the Home Assistant MQTT discovery messages of one box (docs/mqtt.md, "Home Assistant").
///
/// Every entity belongs to one Home Assistant device, the box. Its availability is the box's retained status
/// topic (`online`, or `offline` as the Last Will), read through `availability_template`. A reading's entity
/// reads a small retained state message per sensor and quantity (``stateMessage(for:)``), because the readings
/// topic carries batches of many sensors, backlog included, which a `value_template` cannot pick the newest
/// value of one quantity from. The mode entity reads the status topic itself, the warning entities the box's
/// retained warnings document (docs/warnings.md) through templates.
public struct HomeAssistantDiscovery: Sendable, Hashable {
    /// Where Home Assistant listens for discovery configs ("homeassistant").
    public let discoveryPrefix: String
    public let topics: MQTTTopics
    public let box: BoxIdentity
    /// The box's software release, shown in the device block.
    public let softwareVersion: String

    public init(discoveryPrefix: String, topics: MQTTTopics, box: BoxIdentity, softwareVersion: String) throws(MQTTUplinkError) {
        guard Self.isValidDiscoveryPrefix(discoveryPrefix) else { throw .invalidTopicSegment(discoveryPrefix) }
        self.discoveryPrefix = discoveryPrefix
        self.topics = topics
        self.box = box
        self.softwareVersion = softwareVersion
    }

    /// Whether `prefix` can be a discovery prefix: not empty, no wildcard, no leading or trailing `/`.
    public static func isValidDiscoveryPrefix(_ prefix: String) -> Bool {
        MQTTTopics.isPublishable(prefix) && !prefix.hasPrefix("/") && !prefix.hasSuffix("/")
    }

    /// The payload that deletes a retained message, and with it a discovered entity.
    public static let removal: [UInt8] = []

    /// Home Assistant's node id for the box: `kiezbox_<district>_<box>`, reduced to `[a-zA-Z0-9_-]`.
    public var nodeID: String { Self.identifier("kiezbox_\(self.topics.district)_\(self.topics.box)") }

    /// The state topic of one sensor's quantity: `<prefix>/<district>/<box>/state/<sensor>/<quantity>`.
    public func stateTopic(sensor: String, quantity: Quantity) -> String {
        "\(self.topics.prefix)/\(self.topics.district)/\(self.topics.box)/state/\(Self.identifier(sensor))/\(quantity.rawValue)"
    }

    /// The discovery config of the box's mode: an enum sensor read from the status topic.
    public func modeConfig() -> HomeAssistantMessage {
        let config = EntityConfig(
            name: "Mode", uniqueID: "\(self.nodeID)_mode", stateTopic: self.topics.status,
            valueTemplate: "{{ value_json.mode }}", deviceClass: "enum", options: Mode.allCases.map(\.rawValue),
            jsonAttributesTopic: nil, availability: self.availability, device: self.device)
        return self.message(component: "sensor", objectID: "mode", config: config)
    }

    /// The discovery config of the box's own weather warnings: a sensor whose state is the event of the highest
    /// active warning ("Extreme Wärmebelastung") or `none`, with the warnings document's list as its attributes,
    /// read from the retained warnings topic.
    public func warningConfig() -> HomeAssistantMessage {
        var config = EntityConfig(
            name: "Weather warning", uniqueID: "\(self.nodeID)_weather_warning", stateTopic: self.topics.warnings,
            valueTemplate: "{% set active = value_json.warnings | selectattr('active') | sort(attribute='level', reverse=true) | list %}"
                + "{{ active[0].event if active else 'none' }}",
            deviceClass: nil, options: nil, jsonAttributesTopic: self.topics.warnings, availability: self.availability, device: self.device)
        config.jsonAttributesTemplate = "{{ {'warnings': value_json.warnings} | tojson }}"
        config.icon = "mdi:weather-sunny-alert"
        return self.message(component: "sensor", objectID: "weather_warning", config: config)
    }

    /// One binary sensor per hazard, on while the box warns of it: for automations ("close the shutters").
    /// Device class `safety`: on means unsafe.
    public func hazardConfigs() -> [HomeAssistantMessage] {
        WarningHazard.allCases.map { hazard in
            let objectID = "\(hazard.rawValue)_warning"
            var config = EntityConfig(
                name: hazard == .heat ? "Heat warning" : "Heavy rain warning", uniqueID: "\(self.nodeID)_\(objectID)",
                stateTopic: self.topics.warnings,
                valueTemplate: "{{ 'ON' if value_json.warnings | selectattr('hazard', 'eq', '\(hazard.rawValue)') | selectattr('active') | list "
                    + "else 'OFF' }}",
                deviceClass: "safety", options: nil, jsonAttributesTopic: nil, availability: self.availability, device: self.device)
            config.payloadOn = "ON"
            config.payloadOff = "OFF"
            return self.message(component: "binary_sensor", objectID: objectID, config: config)
        }
    }

    /// The discovery config of one sensor's quantity, or `nil` for a quantity Home Assistant has no entity for
    /// here (the position: latitude, longitude, altitude).
    public func readingConfig(sensor: String, quantity: Quantity) -> HomeAssistantMessage? {
        guard let kind = Self.entityKind(quantity) else { return nil }
        let objectID = Self.identifier("\(sensor)_\(quantity.rawValue)")
        let stateTopic = self.stateTopic(sensor: sensor, quantity: quantity)
        var config = EntityConfig(
            name: "\(kind.name) (\(sensor))", uniqueID: "\(self.nodeID)_\(objectID)", stateTopic: stateTopic,
            valueTemplate: "{{ value_json.value }}", deviceClass: kind.deviceClass, options: nil,
            jsonAttributesTopic: stateTopic, availability: self.availability, device: self.device)
        switch kind.component {
        case "binary_sensor":
            config.valueTemplate = "{{ 'ON' if value_json.value > 0 else 'OFF' }}"
            config.payloadOn = "ON"
            config.payloadOff = "OFF"
        default:
            config.unitOfMeasurement = quantity.unit.symbol
            config.stateClass = "measurement"
        }
        return self.message(component: kind.component, objectID: objectID, config: config)
    }

    /// The retained state message of a reading's entity: `{"quality", "time", "value", "version"}`; `nil` for
    /// a value that is not a finite number (Home Assistant could not show it as a number).
    public func stateMessage(for reading: Reading) -> HomeAssistantMessage? {
        guard reading.value.isFinite, Self.entityKind(reading.quantity) != nil else { return nil }
        let state = ReadingState(
            quality: reading.quality.description,
            time: reading.measuredAt.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)),
            value: reading.value, version: 1)
        return HomeAssistantMessage(
            topic: self.stateTopic(sensor: reading.sensorID, quantity: reading.quantity),
            payload: (try? Array(MQTTUplink.makeEncoder().encode(state))) ?? [])
    }

    // MARK: - Payloads

    /// The keys Home Assistant's MQTT sensor and binary sensor read; absent keys are left out.
    struct EntityConfig: Encodable {
        var name: String
        var uniqueID: String
        var stateTopic: String
        var valueTemplate: String
        var deviceClass: String?
        var options: [String]?
        var jsonAttributesTopic: String?
        var jsonAttributesTemplate: String?
        var icon: String?
        var availability: Availability
        var device: Device
        var unitOfMeasurement: String?
        var stateClass: String?
        var payloadOn: String?
        var payloadOff: String?
        var origin: Origin?

        enum CodingKeys: String, CodingKey {
            case name, options, device, origin, icon
            case uniqueID = "unique_id", stateTopic = "state_topic", valueTemplate = "value_template"
            case deviceClass = "device_class", jsonAttributesTopic = "json_attributes_topic"
            case jsonAttributesTemplate = "json_attributes_template"
            case unitOfMeasurement = "unit_of_measurement", stateClass = "state_class"
            case payloadOn = "payload_on", payloadOff = "payload_off"
            case availabilityTopic = "availability_topic", availabilityTemplate = "availability_template"
            case payloadAvailable = "payload_available", payloadNotAvailable = "payload_not_available"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(self.name, forKey: .name)
            try container.encode(self.uniqueID, forKey: .uniqueID)
            try container.encode(self.stateTopic, forKey: .stateTopic)
            try container.encode(self.valueTemplate, forKey: .valueTemplate)
            try container.encodeIfPresent(self.deviceClass, forKey: .deviceClass)
            try container.encodeIfPresent(self.options, forKey: .options)
            try container.encodeIfPresent(self.jsonAttributesTopic, forKey: .jsonAttributesTopic)
            try container.encodeIfPresent(self.jsonAttributesTemplate, forKey: .jsonAttributesTemplate)
            try container.encodeIfPresent(self.icon, forKey: .icon)
            try container.encodeIfPresent(self.unitOfMeasurement, forKey: .unitOfMeasurement)
            try container.encodeIfPresent(self.stateClass, forKey: .stateClass)
            try container.encodeIfPresent(self.payloadOn, forKey: .payloadOn)
            try container.encodeIfPresent(self.payloadOff, forKey: .payloadOff)
            try container.encode(self.availability.topic, forKey: .availabilityTopic)
            try container.encode(self.availability.template, forKey: .availabilityTemplate)
            try container.encode(self.availability.available, forKey: .payloadAvailable)
            try container.encode(self.availability.notAvailable, forKey: .payloadNotAvailable)
            try container.encode(self.device, forKey: .device)
            try container.encodeIfPresent(self.origin, forKey: .origin)
        }
    }

    struct Availability {
        var topic: String
        var template = "{{ value_json.state }}"
        var available = StatusMessage.State.online.rawValue
        var notAvailable = StatusMessage.State.offline.rawValue
    }

    struct Device: Encodable {
        var identifiers: [String]
        var name: String
        var manufacturer: String
        var model: String
        var swVersion: String

        enum CodingKeys: String, CodingKey {
            case identifiers, name, manufacturer, model
            case swVersion = "sw_version"
        }
    }

    /// Who published the discovery message (Home Assistant logs it).
    struct Origin: Encodable {
        var name = "Kiezbox"
        var swVersion: String

        enum CodingKeys: String, CodingKey {
            case name
            case swVersion = "sw_version"
        }
    }

    struct ReadingState: Encodable {
        var quality: String
        var time: String
        var value: Double
        var version: Int
    }

    private var availability: Availability { Availability(topic: self.topics.status) }

    private var device: Device {
        Device(
            identifiers: [self.nodeID], name: self.box.name.isEmpty ? self.topics.box : self.box.name,
            manufacturer: "Kiezbox", model: "Kiezbox", swVersion: self.softwareVersion)
    }

    private func message(component: String, objectID: String, config: EntityConfig) -> HomeAssistantMessage {
        var config = config
        config.origin = Origin(swVersion: self.softwareVersion)
        // Strings and finite numbers only: encoding cannot fail.
        let payload = (try? Array(MQTTUplink.makeEncoder().encode(config))) ?? []
        return HomeAssistantMessage(
            topic: "\(self.discoveryPrefix)/\(component)/\(self.nodeID)/\(objectID)/config", payload: payload)
    }

    /// What Home Assistant makes of a quantity: component, device class (Home Assistant's names) and entity name.
    static func entityKind(_ quantity: Quantity) -> (component: String, deviceClass: String?, name: String)? {
        switch quantity {
        case .temperature: ("sensor", "temperature", "Temperature")
        case .relativeHumidity: ("sensor", "humidity", "Humidity")
        case .pressure: ("sensor", "atmospheric_pressure", "Pressure")
        case .pm1: ("sensor", "pm1", "PM1")
        case .pm2_5: ("sensor", "pm25", "PM2.5")
        case .pm4: ("sensor", nil, "PM4")  // Home Assistant has no device class for PM4
        case .pm10: ("sensor", "pm10", "PM10")
        case .co2: ("sensor", "carbon_dioxide", "CO₂")
        case .voltage: ("sensor", "voltage", "Voltage")
        case .current: ("sensor", "current", "Current")
        case .power: ("sensor", "power", "Power")
        case .batteryLevel: ("sensor", "battery", "Battery")
        case .rainfall: ("sensor", "precipitation", "Rainfall")
        case .rainIntensity: ("sensor", "precipitation_intensity", "Rain intensity")
        case .mainsPresent: ("binary_sensor", "power", "Mains power")
        case .latitude, .longitude, .altitude: nil
        }
    }

    /// `text` with every character outside `[a-zA-Z0-9_-]` replaced by `_`: what Home Assistant accepts in a
    /// node id and an object id.
    static func identifier(_ text: String) -> String {
        String(text.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") ? $0 : "_" })
    }
}
