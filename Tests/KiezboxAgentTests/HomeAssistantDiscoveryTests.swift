import EmergencyPortal
import Foundation
import KiezboxCore
import KiezboxTestSupport
import Logging
import MeshRelay
import ReadingStore
import Testing

@testable import KiezboxAgent

@Suite("Home Assistant configuration")
struct HomeAssistantConfigurationTests {
    /// [box] and [mqtt] take six lines; `[home_assistant]` is line 8, its body starts on line 9.
    static let header = "[box]\nid = \"b\"\ndistrict = \"d\"\n\n[mqtt]\nhost = \"127.0.0.1\"\n\n[home_assistant]\n"

    func parse(_ body: String, header: String = Self.header) throws(ConfigurationError) -> HomeAssistantConfiguration {
        try KiezboxConfiguration.parse(header + body, file: "k.toml").homeAssistant
    }

    @Test("off by default, Home Assistant's own discovery prefix")
    func defaults() throws {
        let absent = try KiezboxConfiguration.parse("[box]\nid = \"b\"\ndistrict = \"d\"\n", file: "k.toml").homeAssistant
        #expect(absent == HomeAssistantConfiguration(enabled: false, discoveryPrefix: "homeassistant"))
        #expect(try self.parse("") == absent)
        #expect(try self.parse("enabled = true\ndiscovery_prefix = \"ha/discovery\"\n")
            == HomeAssistantConfiguration(enabled: true, discoveryPrefix: "ha/discovery"))
        // The embedded default parses and leaves it off.
        #expect(try KiezboxConfiguration.parse(KiezboxConfiguration.embeddedDefault, file: "default").homeAssistant.enabled == false)
    }

    @Test(
        "mistakes name their line and key",
        arguments: [
            ("enabled = \"yes\"\n", 9, "enabled"),
            ("discovery_prefix = \"home/+\"\n", 9, "discovery_prefix"),
            ("enabled = false\ndiscovery_prefix = \"homeassistant/\"\n", 10, "discovery_prefix"),
            ("discovery_prefix = \"\"\n", 9, "discovery_prefix"),
            ("enable = true\n", 9, "enable"),
        ]
    )
    func mistakes(body: String, line: Int, key: String) throws {
        do {
            _ = try self.parse(body)
            Issue.record("accepted: \(body)")
        } catch {
            #expect(error.line == line, "\(error)")
            #expect(error.description.contains(key), "\(error)")
        }
    }

    @Test("switched on without [mqtt]: refused at the line that switches it on")
    func needsMQTT() throws {
        do {
            _ = try self.parse("\nenabled = true\n", header: "[box]\nid = \"b\"\ndistrict = \"d\"\n\n[home_assistant]\n")
            Issue.record("accepted without [mqtt]")
        } catch {
            #expect(error.line == 7, "\(error)")
            #expect(error.description.contains("[mqtt]"), "\(error)")
        }
    }
}

/// A box with the Home Assistant integration on a real mosquitto: the discovery messages are checked against
/// Home Assistant's documented MQTT discovery schema, and switching the integration off deletes them.
@Suite("Home Assistant discovery over MQTT", .timeLimit(.minutes(3)))
struct HomeAssistantDiscoveryTests {
    static let box = BoxIdentity(district: "xhain", boxID: "wrangelkiez-01", name: "Kiezbox Wrangelstraße")

    /// Whether `topic` is a discovery topic as Home Assistant documents it: `<prefix>/<component>/<node_id>/<object_id>/config`.
    func isDiscoveryTopic(_ topic: String) -> Bool {
        topic.wholeMatch(of: #/homeassistant/(sensor|binary_sensor)/[a-zA-Z0-9_-]+/[a-zA-Z0-9_-]+/config/#) != nil
    }

    /// The key a `{{ value_json.<key> }}` template reads, or nil for another template.
    func templateKey(_ template: Any?) -> String? {
        (template as? String)?.wholeMatch(of: #/\{\{ value_json\.([a-z_]+) \}\}/#).map { String($0.1) }
    }

    /// The readings of the test: sensor, quantity, value; and what Home Assistant must be told about each.
    static let readings: [(sensor: String, quantity: Quantity, value: Double, deviceClass: String?, unit: String?)] = [
        ("climate", .temperature, 21.4, "temperature", "°C"),
        ("climate", .relativeHumidity, 48, "humidity", "%"),
        ("climate", .pressure, 1009.2, "atmospheric_pressure", "hPa"),
        ("particulates", .pm1, 3.1, "pm1", "µg/m³"),
        ("particulates", .pm2_5, 7.8, "pm25", "µg/m³"),
        ("particulates", .pm10, 12.5, "pm10", "µg/m³"),
        ("co2", .co2, 612, "carbon_dioxide", "ppm"),
        ("battery", .voltage, 12.9, "voltage", "V"),
        ("battery", .current, 0.42, "current", "A"),
        ("battery", .power, 5.4, "power", "W"),
        ("battery", .batteryLevel, 87, "battery", "%"),
        ("mains", .mainsPresent, 1, "power", nil),
    ]

    func json(_ payload: [UInt8]) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any])
    }

    /// `template` rendered by Jinja2 in the sandbox Home Assistant renders templates in, with `value_json` the
    /// parsed `payload` and `value` the raw text, as Home Assistant gives them to an MQTT entity's templates.
    func renderTemplate(_ template: Any?, payload: [UInt8], in directory: String) async throws -> String {
        let template = try #require(template as? String)
        let script = """
            import json, sys
            from jinja2.sandbox import ImmutableSandboxedEnvironment
            environment = ImmutableSandboxedEnvironment()
            payload = open(sys.argv[2], encoding="utf-8").read()
            sys.stdout.write(environment.from_string(sys.argv[1]).render(value=payload, value_json=json.loads(payload)))
            """
        let payloadPath = directory + "/payload-\(UUID().uuidString).json"
        try Data(payload).write(to: URL(fileURLWithPath: payloadPath))
        defer { try? FileManager.default.removeItem(atPath: payloadPath) }
        let run = try await runProgram(["/usr/bin/python3", "-c", script, template, payloadPath], in: directory)
        #expect(run.status == 0, "\(run.all)")
        return run.output
    }

    /// The retained warnings document of a box with an active extreme-heat warning and an ended rain warning.
    static func warningsDocument(active: Bool, now: Date) -> [UInt8] {
        var book = WarningBook()
        let thresholds = WarningThresholds()
        book.evaluate(WarningObservation(perceivedCelsius: 20, rainOneHour: 16, rainSixHours: 16), thresholds: thresholds, at: now - 3 * 3600)
        book.evaluate(WarningObservation(perceivedCelsius: 20, rainOneHour: 0, rainSixHours: 0), thresholds: thresholds, at: now - 2 * 3600)
        book.evaluate(WarningObservation(perceivedCelsius: 20, rainOneHour: 0, rainSixHours: 0), thresholds: thresholds, at: now - 3600 + 60)
        if active {
            book.evaluate(WarningObservation(perceivedCelsius: 33, rainOneHour: 0, rainSixHours: 0), thresholds: thresholds, at: now - 60)
            book.evaluate(WarningObservation(perceivedCelsius: 39, rainOneHour: 0, rainSixHours: 0), thresholds: thresholds, at: now)
        }
        return Array(WarningFeed.json(book, identity: Self.box, now: now))
    }

    @Test("every entity's config is retained, complete, unique, tied to the box and its status; switched off, all are deleted")
    func discoveryAndRemoval() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-hass-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await MosquittoBroker.with { broker in
            let store = try ReadingStore(directory: directory)
            let now = Date()
            try await store.record(Self.readings.map { Reading(sensorID: $0.sensor, quantity: $0.quantity, value: $0.value, measuredAt: now) }
                + [Reading(sensorID: "position", quantity: .latitude, value: 52.5, measuredAt: now)])
            _ = try await store.flush()
            let uplink = try MQTTUplink(
                configuration: MQTTUplink.Configuration(
                    host: "127.0.0.1", port: broker.port, acknowledgementTimeout: .seconds(10),
                    reconnectDelay: .init(initial: .milliseconds(100), maximum: .milliseconds(500))),
                sender: SenderIdentity(box: Self.box, storeInstance: store.instanceID))
            try await uplink.start()
            // What the warning service keeps retained on the box's warnings topic.
            let warningsDocument = Self.warningsDocument(active: true, now: now)
            try await uplink.waitUntilConnected(timeout: .seconds(30))
            try await uplink.publishRetained(warningsDocument, topic: uplink.topics.warnings)
            let discovery = try HomeAssistantDiscovery(
                discoveryPrefix: "homeassistant", topics: uplink.topics, box: Self.box, softwareVersion: Kiezbox.version)
            let on = HomeAssistantService(
                uplink: uplink, store: store, discovery: discovery, clock: LiveClock(), logger: Logger(label: "hass"),
                interval: .milliseconds(200))
            // and the mode, the weather warning and one binary sensor per hazard; the position has no entity
            let expectedEntities = Self.readings.count + 2 + WarningHazard.allCases.count
            // Watches everything arrive, so that the clients below connect after the box published it all.
            let watcher = try await TestSubscriber.connected(port: broker.port, filter: "#")
            let running = Task { try await on.run() }
            try await watcher.waitForMessages(expectedEntities, timeout: .seconds(30), where: { $0.topic.hasPrefix("homeassistant/") })
            try await watcher.waitForMessages(Self.readings.count, timeout: .seconds(30), where: { $0.topic.contains("/state/") })
            await watcher.stop()

            // A Home Assistant that connects after the box: everything it needs is retained.
            let homeAssistant = try await TestSubscriber.connected(port: broker.port, filter: "homeassistant/#")
            let states = try await TestSubscriber.connected(port: broker.port, filter: "kiezbox/v1/#")
            let configs = try await homeAssistant.waitForMessages(expectedEntities, timeout: .seconds(30))
            #expect(configs.count == expectedEntities, "\(configs.map(\.topic))")

            var uniqueIDs = Set<String>()
            var stateTopics = Set<String>()
            for message in configs {
                #expect(message.retain, "\(message.topic) not retained")
                #expect(message.qos == .atLeastOnce)
                #expect(self.isDiscoveryTopic(message.topic), "\(message.topic)")
                let config = try self.json(message.payload)
                let uniqueID = try #require(config["unique_id"] as? String)
                #expect(uniqueIDs.insert(uniqueID).inserted, "unique_id \(uniqueID) twice")
                #expect((config["name"] as? String)?.isEmpty == false)
                let stateTopic = try #require(config["state_topic"] as? String)
                stateTopics.insert(stateTopic)
                #expect(config["availability_topic"] as? String == uplink.topics.status)
                #expect(config["availability_template"] as? String == "{{ value_json.state }}")
                #expect(config["payload_available"] as? String == "online")
                #expect(config["payload_not_available"] as? String == "offline")
                let device = try #require(config["device"] as? [String: Any])
                #expect(device["identifiers"] as? [String] == [discovery.nodeID])
                #expect(device["name"] as? String == Self.box.name)
                #expect(device["manufacturer"] as? String == "Kiezbox")
                #expect((device["model"] as? String)?.isEmpty == false)
                #expect(device["sw_version"] as? String == Kiezbox.version)
                #expect(config["value_template"] is String)
            }
            // Every state topic has a retained message the value template can read.
            let stateMessages = try await states.waitForMessages(stateTopics.count, where: { stateTopics.contains($0.topic) && $0.retain })
            let stateByTopic = Dictionary(stateMessages.map { ($0.topic, $0.payload) }, uniquingKeysWith: { first, _ in first })
            let status = try self.json(try #require(stateByTopic[uplink.topics.status]))
            #expect(status["state"] as? String == "online")

            let byObject = Dictionary(uniqueKeysWithValues: try configs.map { message in
                (message.topic.split(separator: "/")[3], try self.json(message.payload))
            })
            let mode = try #require(byObject["mode"])
            #expect(mode["device_class"] as? String == "enum")
            #expect(mode["options"] as? [String] == Mode.allCases.map(\.rawValue))
            #expect(mode["state_topic"] as? String == uplink.topics.status)
            let modeKey = try #require(self.templateKey(mode["value_template"]))
            #expect(Mode(rawValue: status[modeKey] as? String ?? "") != nil)
            for reading in Self.readings {
                let config = try #require(byObject[Substring("\(reading.sensor)_\(reading.quantity.rawValue)")], "\(reading)")
                #expect(config["device_class"] as? String == reading.deviceClass, "\(reading)")
                #expect(config["unit_of_measurement"] as? String == reading.unit, "\(reading)")
                #expect(config["state_class"] as? String == (reading.unit == nil ? nil : "measurement"), "\(reading)")
                let stateTopic = try #require(config["state_topic"] as? String)
                let state = try self.json(try #require(stateByTopic[stateTopic], "no state at \(stateTopic)"))
                if let key = self.templateKey(config["value_template"]) {
                    #expect(state[key] as? Double == reading.value, "\(reading)")
                } else {
                    #expect(reading.quantity == .mainsPresent)  // an ON/OFF template over value_json.value
                    #expect(config["payload_on"] as? String == "ON" && config["payload_off"] as? String == "OFF")
                    #expect(state["value"] as? Double == reading.value)
                }
            }
            // The weather warning: the highest active warning's event, its attributes the list; "none" without one.
            let warning = try #require(byObject["weather_warning"], "\(byObject.keys)")
            #expect(warning["state_topic"] as? String == uplink.topics.warnings)
            #expect(warning["json_attributes_topic"] as? String == uplink.topics.warnings)
            #expect(stateByTopic[uplink.topics.warnings] == warningsDocument)
            #expect(try await self.renderTemplate(warning["value_template"], payload: warningsDocument, in: directory) == "Extreme Wärmebelastung")
            let calm = Self.warningsDocument(active: false, now: now)
            #expect(try await self.renderTemplate(warning["value_template"], payload: calm, in: directory) == "none")
            let attributes = try await self.renderTemplate(warning["json_attributes_template"], payload: warningsDocument, in: directory)
            let attributeWarnings = try #require(try self.json(Array(attributes.utf8))["warnings"] as? [[String: Any]], "\(attributes)")
            #expect(attributeWarnings.map { $0["hazard"] as? String } == ["heavy_rain", "heat"])
            // One binary sensor per hazard, on while that hazard's warning is active.
            for (hazard, on) in [(WarningHazard.heat, "ON"), (.heavyRain, "OFF")] {
                let config = try #require(byObject[Substring("\(hazard.rawValue)_warning")], "\(byObject.keys)")
                #expect(config["device_class"] as? String == "safety")
                #expect(config["state_topic"] as? String == uplink.topics.warnings)
                #expect(config["payload_on"] as? String == "ON" && config["payload_off"] as? String == "OFF")
                #expect(try await self.renderTemplate(config["value_template"], payload: warningsDocument, in: directory) == on, "\(hazard)")
                #expect(try await self.renderTemplate(config["value_template"], payload: calm, in: directory) == "OFF", "\(hazard)")
            }
            await states.stop()

            // Switched off: the next run deletes every retained topic it published.
            running.cancel()
            _ = try? await running.value
            let published = try store.homeAssistantTopics()
            let off = HomeAssistantService(
                uplink: uplink, store: store, discovery: nil, clock: LiveClock(), logger: Logger(label: "hass"), interval: .milliseconds(200))
            let switchedOff = Task { try await off.run() }
            let deletions = try await homeAssistant.waitForMessages(
                expectedEntities, timeout: .seconds(30), where: { $0.payload.isEmpty })
            #expect(Set(deletions.map(\.topic)) == Set(configs.map(\.topic)))
            try await eventually("the topics forgotten") { try store.homeAssistantTopics().isEmpty ? true : nil }
            switchedOff.cancel()
            _ = try? await switchedOff.value
            await homeAssistant.stop()

            // A Home Assistant connecting now finds nothing of the box: not a config, not a state.
            let late = try await TestSubscriber.connected(port: broker.port, filter: "#")
            try late.client.publish(topic: "sentinel", payload: [1], qos: .atLeastOnce)
            try await late.waitForMessages(where: { $0.topic == "sentinel" })
            let leftovers = late.messages.filter { published.contains($0.topic) }
            #expect(leftovers.isEmpty, "\(leftovers.map(\.topic))")
            #expect(late.messages.contains { $0.topic.hasPrefix("homeassistant/") } == false)
            await late.stop()
            await uplink.stop()
        }
    }
}

/// The real daemon: `[home_assistant]` switched on publishes the entities soon after the start (its first rounds
/// come before the relay has started the uplink); switched off, the next start deletes them.
@Suite("Home Assistant in the daemon", .serialized, .timeLimit(.minutes(3)))
struct HomeAssistantDaemonTests {
    func configuration(port: Int, enabled: Bool) -> String {
        """
        [box]
        id = "hass-box"
        district = "test-kiez"

        [store]
        flush_interval = "200ms"

        [simulation]
        enabled = true

        [portal]
        enabled = false

        [mqtt]
        host = "127.0.0.1"
        port = \(port)

        [home_assistant]
        enabled = \(enabled)

        [[sensor]]
        id = "roof"
        chip = "bme280"
        address = 0x76
        interval = "1s"
        """
    }

    /// Runs the daemon with `[home_assistant] enabled = <enabled>` until `condition` holds, then stops it with SIGTERM.
    func runDaemon(
        in directory: String, port: Int, enabled: Bool, until what: String, _ condition: () -> Bool
    ) async throws {
        let started = ContinuousClock.now
        try self.configuration(port: port, enabled: enabled).write(toFile: directory + "/k.toml", atomically: true, encoding: .utf8)
        let daemon = try KiezboxProcess(["run", "--config", directory + "/k.toml", "--data-dir", directory + "/data"], in: directory)
        defer { if daemon.process.isRunning { daemon.signal(SIGKILL) } }
        try await waitUntil(what, timeout: .seconds(60)) { condition() }
        print("Home Assistant in the daemon: \(what) \(ContinuousClock.now - started) after the daemon was started")
        daemon.signal(SIGTERM)
        #expect(try await daemon.waitForExit() == 0, "\(daemon.stderr)")
    }

    @Test("switched on, the daemon publishes the box's entities and states; switched off, the next run deletes them")
    func onThenOff() async throws {
        try await MosquittoBroker.with { broker in
            try await withWorkspace { directory in
                let watcher = try await TestSubscriber.connected(port: broker.port, filter: "#")
                let configTopics = ["mode", "weather_warning", "roof_temperature", "roof_relative_humidity", "roof_pressure"].map {
                    "homeassistant/sensor/kiezbox_test-kiez_hass-box/\($0)/config"
                }
                let stateTopics = ["temperature", "relative_humidity", "pressure"].map { "kiezbox/v1/test-kiez/hass-box/state/roof/\($0)" }
                let published = { Set(watcher.messages.filter { !$0.payload.isEmpty }.map(\.topic)) }
                let deleted = { Set(watcher.messages.filter { $0.payload.isEmpty }.map(\.topic)) }
                try await self.runDaemon(in: directory, port: broker.port, enabled: true, until: "the entities and states published") {
                    published().isSuperset(of: configTopics + stateTopics)
                }
                try await self.runDaemon(in: directory, port: broker.port, enabled: false, until: "the entities and states deleted") {
                    deleted().isSuperset(of: configTopics + stateTopics)
                }
                await watcher.stop()
                // A subscriber now finds nothing retained of them.
                let late = try await TestSubscriber.connected(port: broker.port, filter: "#")
                try late.client.publish(topic: "sentinel", payload: [1], qos: .atLeastOnce)
                try await late.waitForMessages(where: { $0.topic == "sentinel" })
                #expect(late.messages.filter { ($0.topic.hasPrefix("homeassistant/") || $0.topic.contains("/state/")) }.isEmpty)
                await late.stop()
            }
        }
    }
}
