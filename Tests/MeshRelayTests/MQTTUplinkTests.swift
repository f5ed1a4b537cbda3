import KiezboxTestSupport
import Foundation
import KiezboxCore
import MeshRelay
import Testing

/// MQTTUplink against a real mosquitto 2.0 started by each test on 127.0.0.1.
@Suite("MQTT uplink", .timeLimit(.minutes(1)))
struct MQTTUplinkTests {
    @Test("a batch is delivered and exactly its ids come back acknowledged")
    func deliversBatch() async throws {
        try await MosquittoBroker.with { broker in
            let uplink = try MQTTUplink(configuration: Fixtures.uplinkConfiguration(port: broker.port), sender: Fixtures.sender())
            #expect(uplink.name == "mqtt")
            #expect(uplink.maximumBatch == 5 * 100 * 20)
            try await withStarted(uplink) {
                try await uplink.waitUntilConnected(timeout: .seconds(10))
                let batch = Fixtures.readings(1...250)  // three messages: 100 + 100 + 50
                let acknowledged = try await uplink.deliver(batch)
                #expect(acknowledged == Set(batch.map(\.id)))
                #expect(uplink.unacknowledgedMessageCount == 0)
                #expect(try await uplink.deliver([]) == [])
            }
        }
    }

    @Test("a subscriber receives the exact JSON, every observation with its stable id")
    func subscriberReceivesExactJSON() async throws {
        try await MosquittoBroker.with { broker in
            let sender = Fixtures.sender()
            let subscriber = try await TestSubscriber.connected(
                port: broker.port, filter: "kiezbox/v1/xhain/wrangelkiez-01/readings")
            let uplink = try MQTTUplink(configuration: Fixtures.uplinkConfiguration(port: broker.port), sender: sender)
            let batch = Fixtures.readings(41...43)
            try await withStarted(uplink) {
                try await uplink.waitUntilConnected(timeout: .seconds(10))
                #expect(try await uplink.deliver(batch) == [41, 42, 43])
            }
            let message = try #require(try await subscriber.waitForMessages(1).first)
            await subscriber.stop()

            let expected = try MQTTUplink.makeEncoder().encode(ReadingsMessage(batch, from: sender))
            #expect(message.payload == Array(expected))
            #expect(message.qos == .atLeastOnce)
            #expect(message.retain == false)
            let json = String(decoding: message.payload, as: UTF8.self)
            #expect(json.hasPrefix(#"{"box":"wrangelkiez-01","district":"xhain","observations":[{"id":"3f2c9a1e-store:41","#))
            #expect(json.contains(#""phenomenonTime":"2026-09-21T"#))
            #expect(json.contains(#""unitOfMeasurement":{"definition":"https://ucum.org/ucum#Cel","name":"temperature","symbol":"°C"}"#))
            let decoded = try JSONDecoder().decode(ReadingsMessage.self, from: Data(message.payload))
            #expect(decoded.version == 1)
            #expect(decoded.observations.map(\.id) == ["3f2c9a1e-store:41", "3f2c9a1e-store:42", "3f2c9a1e-store:43"])
            #expect(decoded.observations.map(\.result) == batch.map(\.reading.value))
        }
    }

    @Test("with the broker down nothing is lost; after it is back the same readings go through")
    func brokerOutage() async throws {
        try await MosquittoBroker.with { broker in
            let uplink = try MQTTUplink(configuration: Fixtures.uplinkConfiguration(port: broker.port), sender: Fixtures.sender())
            try await withStarted(uplink) {
                try await uplink.waitUntilConnected(timeout: .seconds(10))
                #expect(try await uplink.deliver(Fixtures.readings(1...10)) == Set(1...10))

                await broker.stop()
                try await eventually("the uplink noticing the broker is gone") {
                    uplink.connectionState.isConnected ? nil : true
                }
                let waiting = Fixtures.readings(11...30)
                let error = await #expect(throws: MQTTUplinkError.self) { try await uplink.deliver(waiting) }
                guard case .notConnected(.network?)? = error else {
                    Issue.record("expected notConnected(.network), got \(String(describing: error))")
                    return
                }
                #expect(uplink.unacknowledgedMessageCount == 0)  // nothing was handed to libmosquitto

                try await broker.start()  // same port, empty broker
                let subscriber = try await TestSubscriber.connected(
                    port: broker.port, filter: "kiezbox/v1/xhain/wrangelkiez-01/readings")
                try await uplink.waitUntilConnected(timeout: .seconds(15))
                #expect(try await uplink.deliver(waiting) == Set(11...30))
                let received = try await subscriber.waitForMessages(1)
                await subscriber.stop()
                let ids = try received.flatMap { try JSONDecoder().decode(ReadingsMessage.self, from: Data($0.payload)).observations.map(\.id) }
                #expect(ids == (11...30).map { "3f2c9a1e-store:\($0)" })
            }
        }
    }

    @Test("in-flight limit; pending messages are waited for, late PUBACKs returned later, nothing published twice")
    func lateAcknowledgements() async throws {
        try await MosquittoBroker.with { broker in
            let subscriber = try await TestSubscriber.connected(
                port: broker.port, filter: "kiezbox/v1/xhain/wrangelkiez-01/readings")
            let configuration = Fixtures.uplinkConfiguration(port: broker.port) {
                $0.readingsPerMessage = 1
                $0.maximumInFlight = 3
                $0.acknowledgementTimeout = .milliseconds(500)
            }
            let uplink = try MQTTUplink(configuration: configuration, sender: Fixtures.sender())
            try await withStarted(uplink) {
                try await uplink.waitUntilConnected(timeout: .seconds(10))
                broker.pause()  // the TCP connection stays up, nothing is acknowledged
                await #expect(throws: MQTTUplinkError.acknowledgementTimeout(.milliseconds(500))) {
                    try await uplink.deliver(Fixtures.readings(1...2))
                }
                #expect(uplink.unacknowledgedMessageCount == 2)

                // Offered again with more: 1 and 2 are still queued in libmosquitto, so they are waited for, not
                // published again; of 3…5 only 3 fits into the in-flight limit.
                let batch = Fixtures.readings(1...5)
                await #expect(throws: MQTTUplinkError.acknowledgementTimeout(.milliseconds(500))) {
                    try await uplink.deliver(batch)
                }
                #expect(uplink.unacknowledgedMessageCount == 3)

                broker.resume()
                try await eventually("the late PUBACKs") { uplink.unacknowledgedMessageCount == 0 ? true : nil }
                // 1…3 come back from the late PUBACKs without being published again; 4 and 5 are published now.
                #expect(try await uplink.deliver(batch) == Set(1...5))
            }
            let received = try await subscriber.waitForMessages(5)
            await subscriber.stop()
            let ids = try received.flatMap { try JSONDecoder().decode(ReadingsMessage.self, from: Data($0.payload)).observations.map(\.id) }
            #expect(ids.sorted() == (1...5).map { "3f2c9a1e-store:\($0)" })  // each exactly once
        }
    }

    @Test("status: retained online after connecting, offline after a clean stop")
    func statusOnlineAndCleanOffline() async throws {
        try await MosquittoBroker.with { broker in
            let topic = "kiezbox/v1/xhain/wrangelkiez-01/status"
            let subscriber = try await TestSubscriber.connected(port: broker.port, filter: topic)
            let uplink = try MQTTUplink(
                configuration: Fixtures.uplinkConfiguration(port: broker.port) { $0.initialMode = .crisis },
                sender: Fixtures.sender())
            try await uplink.start()
            try await uplink.waitUntilConnected(timeout: .seconds(10))
            let online = try #require(Fixtures.statusMessages(try await subscriber.waitForMessages(1)).first)
            #expect(online.state == .online)
            #expect(online.box == "wrangelkiez-01")
            #expect(online.district == "xhain")
            #expect(online.name == "Kiezbox Wrangelstraße")
            #expect(online.position == Fixtures.wrangelkiez.position)
            #expect(online.mode == .crisis)
            #expect(online.version == 1)
            #expect(try Date(online.time, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) > .distantPast)
            #expect(subscriber.messages.first?.retain == false)  // live delivery to an existing subscriber

            await uplink.stop()
            let offline = try await subscriber.waitForMessages(1) { message in
                Fixtures.statusMessages([message]).first?.state == .offline
            }
            #expect(offline.count == 1)
            await subscriber.stop()
            // A clean DISCONNECT: the broker discards the Last Will instead of publishing a second offline.
            try await eventually("the broker logging the DISCONNECT") {
                broker.log.contains("Received DISCONNECT from kiezbox-xhain-wrangelkiez-01") ? true : nil
            }

            // A newcomer gets the retained offline status.
            let newcomer = try await TestSubscriber.connected(port: broker.port, filter: topic)
            let retained = try #require(try await newcomer.waitForMessages(1).first)
            await newcomer.stop()
            #expect(retained.retain)
            #expect(Fixtures.statusMessages([retained]).first?.state == .offline)
        }
    }

    @Test("Last Will: offline when the connection dies without DISCONNECT, online again after reconnecting")
    func lastWill() async throws {
        try await MosquittoBroker.with { broker in
            let subscriber = try await TestSubscriber.connected(
                port: broker.port, filter: "kiezbox/v1/xhain/wrangelkiez-01/status")
            let uplink = try MQTTUplink(configuration: Fixtures.uplinkConfiguration(port: broker.port), sender: Fixtures.sender())
            try await withStarted(uplink) {
                try await uplink.waitUntilConnected(timeout: .seconds(10))
                try await subscriber.waitForMessages(1)
                uplink.severConnection()  // like a power cut: no DISCONNECT
                try await eventually("the Last Will and the reconnect") { () -> [StatusMessage]? in
                    let states = Fixtures.statusMessages(subscriber.messages)
                    return states.map(\.state) == [.online, .offline, .online] ? states : nil
                }
            }
            await subscriber.stop()
            #expect(broker.log.contains("Will message specified"))
        }
    }

    @Test("username and password; a wrong password is a clear refusal, and the box keeps retrying")
    func credentials() async throws {
        try await MosquittoBroker.with(.init(users: [("wrangelkiez-01", "s3cret kiez")])) { broker in
            let good = try MQTTUplink(
                configuration: Fixtures.uplinkConfiguration(port: broker.port) {
                    $0.credentials = .init(username: "wrangelkiez-01", password: "s3cret kiez")
                },
                sender: Fixtures.sender())
            try await withStarted(good) {
                try await good.waitUntilConnected(timeout: .seconds(10))
                #expect(try await good.deliver(Fixtures.readings(1...3)) == [1, 2, 3])
            }

            let bad = try MQTTUplink(
                configuration: Fixtures.uplinkConfiguration(port: broker.port) {
                    $0.clientID = "kiezbox-wrong-password"
                    $0.credentials = .init(username: "wrangelkiez-01", password: "guessed")
                },
                sender: Fixtures.sender())
            try await withStarted(bad) {
                let error = await #expect(throws: MQTTUplinkError.self) { try await bad.waitUntilConnected(timeout: .seconds(10)) }
                guard case .notConnected(.refused(let refusal)?)? = error else {
                    Issue.record("expected a refusal, got \(String(describing: error))")
                    return
                }
                #expect(refusal.isAuthenticationFailure)
                #expect(refusal == .notAuthorized)  // mosquitto 2.0 answers 0x87 (MQTT 5) / 5 (MQTT 3.1.1)
                #expect("\(error!)".contains("Not authorized"))
                let deliverError = await #expect(throws: MQTTUplinkError.self) { try await bad.deliver(Fixtures.readings(1...3)) }
                #expect(deliverError == .notConnected(.refused(.notAuthorized)))
                // MQTT 5 refusals end libmosquitto's own loop_forever; ours keeps trying with its back-off.
                try await eventually("a second attempt") {
                    broker.log.components(separatedBy: "Sending CONNACK to").count > 2 ? true : nil
                }
            }
        }
    }

    @Test("TLS with the CA file; a wrong CA or a missing client certificate fails with a clear error")
    func tls() async throws {
        let pki = try TestCertificates.make()
        defer { pki.remove() }
        let serverTLS = ["cafile \(pki.caCertificate)", "certfile \(pki.serverCertificate)", "keyfile \(pki.serverKey)"]
        try await MosquittoBroker.with(.init(listener: serverTLS)) { broker in
            let trusting = try MQTTUplink(
                configuration: Fixtures.uplinkConfiguration(port: broker.port) { $0.tls = .init(caFile: pki.caCertificate) },
                sender: Fixtures.sender())
            try await withStarted(trusting) {
                try await trusting.waitUntilConnected(timeout: .seconds(10))
                #expect(try await trusting.deliver(Fixtures.readings(1...3)) == [1, 2, 3])
            }

            let misled = try MQTTUplink(
                configuration: Fixtures.uplinkConfiguration(port: broker.port) {
                    $0.clientID = "kiezbox-wrong-ca"
                    $0.tls = .init(caFile: pki.otherCACertificate)
                },
                sender: Fixtures.sender())
            try await withStarted(misled) {
                let error = await #expect(throws: MQTTUplinkError.self) { try await misled.waitUntilConnected(timeout: .seconds(10)) }
                guard case .notConnected(.tls(let reason)?)? = error else {
                    Issue.record("expected a TLS failure, got \(String(describing: error))")
                    return
                }
                #expect(reason.contains("certificate verify failed"))
            }
        }

        // Mutual TLS: the broker requires a client certificate signed by the CA.
        try await MosquittoBroker.with(.init(listener: serverTLS + ["require_certificate true"])) { broker in
            let withCertificate = try MQTTUplink(
                configuration: Fixtures.uplinkConfiguration(port: broker.port) {
                    $0.tls = .init(
                        caFile: pki.caCertificate,
                        clientCertificate: .init(certificateFile: pki.clientCertificate, privateKeyFile: pki.clientKey))
                },
                sender: Fixtures.sender())
            try await withStarted(withCertificate) {
                try await withCertificate.waitUntilConnected(timeout: .seconds(10))
                #expect(try await withCertificate.deliver(Fixtures.readings(1...1)) == [1])
            }
            let without = try MQTTUplink(
                configuration: Fixtures.uplinkConfiguration(port: broker.port) {
                    $0.clientID = "kiezbox-no-client-certificate"
                    $0.tls = .init(caFile: pki.caCertificate)
                },
                sender: Fixtures.sender())
            try await withStarted(without) {
                let error = await #expect(throws: MQTTUplinkError.self) { try await without.waitUntilConnected(timeout: .seconds(10)) }
                guard case .notConnected(.tls(let reason)?)? = error else {
                    Issue.record("expected a TLS failure, got \(String(describing: error))")
                    return
                }
                #expect(reason.contains("certificate required"))
            }
        }
    }

    @Test("a missing CA file is a configuration error at once")
    func missingCAFile() throws {
        #expect(throws: MQTTUplinkError.self) {
            _ = try MQTTUplink(
                configuration: Fixtures.uplinkConfiguration(port: 1883) { $0.tls = .init(caFile: "/nonexistent/ca.crt") },
                sender: Fixtures.sender())
        }
    }

    @Test("MQTT 5 against mosquitto 2: protocol level 5 in the broker log, message expiry on the readings")
    func mqtt5() async throws {
        try await MosquittoBroker.with { broker in
            let subscriber = try await TestSubscriber.connected(
                port: broker.port, filter: "kiezbox/v1/xhain/wrangelkiez-01/readings", protocolVersion: .v5)
            let uplink = try MQTTUplink(
                configuration: Fixtures.uplinkConfiguration(port: broker.port) { $0.readingsExpiry = .seconds(3600) },
                sender: Fixtures.sender())
            try await withStarted(uplink) {
                try await uplink.waitUntilConnected(timeout: .seconds(10))
                #expect(uplink.connectionState == .connected(.init(protocolVersion: .v5, sessionPresent: false)))
                #expect(try await uplink.deliver(Fixtures.readings(1...2)) == [1, 2])
            }
            let message = try #require(try await subscriber.waitForMessages(1).first)
            await subscriber.stop()
            // The Message Expiry Interval only exists in MQTT 5; the broker forwards the remaining lifetime.
            let expiry = try #require(message.messageExpiry)
            #expect((3500...3600).contains(expiry))
            #expect(broker.log.contains("as kiezbox-xhain-wrangelkiez-01 (p5, c1, k30)"))  // p5: MQTT 5
        }
    }

    @Test("MQTT 3.1.1 when configured: protocol level 4, no MQTT 5 properties")
    func mqtt311() async throws {
        try await MosquittoBroker.with { broker in
            let subscriber = try await TestSubscriber.connected(
                port: broker.port, filter: "kiezbox/v1/xhain/wrangelkiez-01/readings", protocolVersion: .v5)
            let uplink = try MQTTUplink(
                configuration: Fixtures.uplinkConfiguration(port: broker.port) {
                    $0.protocolVersion = .v311
                    $0.readingsExpiry = .seconds(3600)
                },
                sender: Fixtures.sender())
            try await withStarted(uplink) {
                try await uplink.waitUntilConnected(timeout: .seconds(10))
                #expect(uplink.connectionState == .connected(.init(protocolVersion: .v311, sessionPresent: false)))
                #expect(try await uplink.deliver(Fixtures.readings(1...2)) == [1, 2])
            }
            let message = try #require(try await subscriber.waitForMessages(1).first)
            await subscriber.stop()
            #expect(message.messageExpiry == nil)
            #expect(broker.log.contains("as kiezbox-xhain-wrangelkiez-01 (p2, c1, k30)"))  // mosquitto logs 3.1.1 as p2
        }
    }

    @Test("neighbours' statuses arrive decoded, the box's own and other districts' do not")
    func neighbourStatuses() async throws {
        try await MosquittoBroker.with { broker in
            let me = try MQTTUplink(configuration: Fixtures.uplinkConfiguration(port: broker.port), sender: Fixtures.sender())
            let neighbour = try MQTTUplink(
                configuration: Fixtures.uplinkConfiguration(port: broker.port), sender: Fixtures.sender(Fixtures.reichenberger))
            let elsewhere = try MQTTUplink(
                configuration: Fixtures.uplinkConfiguration(port: broker.port), sender: Fixtures.sender(Fixtures.weddingBox))
            let statuses = try me.subscribe(toDistrict: "xhain")
            let wedding = try me.subscribe(toDistrict: "wedding")
            try await withStarted(me) {
                try await me.waitUntilConnected(timeout: .seconds(10))
                try await withStarted(elsewhere) {
                    try await elsewhere.waitUntilConnected(timeout: .seconds(10))
                    try await withStarted(neighbour) {
                        try await neighbour.waitUntilConnected(timeout: .seconds(10))
                        try await me.publishStatus(.maintenance)  // my own change: not in my stream
                        try await neighbour.publishStatus(.crisis)

                        var iterator = statuses.makeAsyncIterator()
                        var seen: [StatusMessage] = []
                        while seen.last?.mode != .crisis, let status = await iterator.next() {
                            seen.append(status)
                        }
                        #expect(seen.allSatisfy { $0.box == "reichenberger-02" && $0.district == "xhain" })
                        #expect(seen.map(\.state) == Array(repeating: .online, count: seen.count))
                        #expect(seen.last?.name == "Kiezbox Reichenberger Straße")
                        #expect(seen.last?.position == Fixtures.reichenberger.position)

                        var weddingIterator = wedding.makeAsyncIterator()
                        let weddingStatus = await weddingIterator.next()
                        #expect(weddingStatus?.box == "leopold-01")
                    }
                    // The neighbour's clean stop reaches me as offline (after, possibly, the online it publishes
                    // on CONNACK, which may overtake the crisis status: same mode, it is read under one lock).
                    var iterator = statuses.makeAsyncIterator()
                    var rest: [StatusMessage] = []
                    while rest.last?.state != .offline, let status = await iterator.next() {
                        rest.append(status)
                    }
                    #expect(rest.allSatisfy { $0.box == "reichenberger-02" })
                    #expect(rest.map(\.mode).allSatisfy { $0 == .crisis })
                    #expect(rest.last?.state == .offline)
                }
            }
            // Stopping finishes the streams.
            var iterator = statuses.makeAsyncIterator()
            #expect(await iterator.next() == nil)
        }
    }

    @Test("the status carries the power model's estimate: state of charge, hours left and their ranges")
    func statusCarriesPower() async throws {
        try await MosquittoBroker.with { broker in
            let uplink = try MQTTUplink(configuration: Fixtures.uplinkConfiguration(port: broker.port), sender: Fixtures.sender())
            let subscriber = try await TestSubscriber.connected(port: broker.port, filter: uplink.topics.status)
            let estimate = PowerEstimate(
                stateOfCharge: 0.6213, stateOfChargeLow: 0.5831, stateOfChargeHigh: 0.6594, remainingAmpHours: 62,
                averageDrawAmps: 2, hoursLeft: HoursLeft(likely: 31.24, low: 24.61, high: nil), solarWatts: nil,
                lastAnchor: nil, lastAnchorAt: nil)
            let estimatedAt = Date(timeIntervalSince1970: 1_790_000_000)
            try await withStarted(uplink) {
                try await uplink.waitUntilConnected(timeout: .seconds(10))
                try await uplink.publishStatus(.crisis, batteryVolts: 12.9, power: StatusMessage.Power(estimate, at: estimatedAt))
                let message = try #require(try await subscriber.waitForMessages(where: {
                    String(decoding: $0.payload, as: UTF8.self).contains("\"crisis\"")
                }).last)
                let json = try #require(try JSONSerialization.jsonObject(with: Data(message.payload)) as? [String: Any])
                let power = try #require(json["power"] as? [String: Any], "\(json)")
                #expect(power["stateOfChargePercent"] as? Double == 62.1)
                #expect(power["stateOfChargeLowPercent"] as? Double == 58.3)
                #expect(power["stateOfChargeHighPercent"] as? Double == 65.9)
                #expect(power["hoursLeft"] as? Double == 31.2)
                #expect(power["hoursLeftLow"] as? Double == 24.6)
                #expect(power["hoursLeftHigh"] == nil)  // open upwards: absent
                #expect(power["estimatedAt"] as? String == "2026-09-21T14:13:20.000Z")
                let decoded = try JSONDecoder().decode(StatusMessage.self, from: Data(message.payload))
                #expect(decoded.power?.hoursLeft == 31.2)
                // Without an estimate the key is absent, not null.
                try await uplink.publishStatus(.normal)
                let plain = try #require(try await subscriber.waitForMessages(where: {
                    String(decoding: $0.payload, as: UTF8.self).contains("\"normal\"")
                }).last)
                #expect(!String(decoding: plain.payload, as: UTF8.self).contains("power"))
            }
            await subscriber.stop()
        }
    }

    @Test("deliver and status before start and after stop are typed errors")
    func lifecycleErrors() async throws {
        let uplink = try MQTTUplink(configuration: Fixtures.uplinkConfiguration(port: 1), sender: Fixtures.sender())
        await #expect(throws: MQTTUplinkError.notStarted) { try await uplink.deliver(Fixtures.readings(1...1)) }
        await #expect(throws: MQTTUplinkError.notStarted) { try await uplink.publishStatus(.normal) }
        try await uplink.start()
        // Port 1 on 127.0.0.1: nobody listens; deliver fails at once and publishes nothing.
        try await eventually("a failed attempt") { () -> Bool? in
            if case .disconnected(.network?) = uplink.connectionState { return true }
            return nil
        }
        let error = await #expect(throws: MQTTUplinkError.self) { try await uplink.deliver(Fixtures.readings(1...1)) }
        guard case .notConnected(.network(let cause)?)? = error else {
            Issue.record("expected notConnected(.network), got \(String(describing: error))")
            return
        }
        #expect(cause.message == "Connection refused")
        await uplink.stop()
        await #expect(throws: MQTTUplinkError.stopped) { try await uplink.deliver(Fixtures.readings(1...1)) }
        #expect(uplink.connectionState == .stopped)
    }

    @Test("topic segments are validated")
    func topics() throws {
        let topics = try MQTTTopics(prefix: "kiezbox/v1", district: "xhain", box: "wrangelkiez-01")
        #expect(topics.readings == "kiezbox/v1/xhain/wrangelkiez-01/readings")
        #expect(topics.status == "kiezbox/v1/xhain/wrangelkiez-01/status")
        #expect(topics.announcements == "kiezbox/v1/xhain/wrangelkiez-01/announcements")
        #expect(topics.commands == "kiezbox/v1/xhain/wrangelkiez-01/commands")
        #expect(try MQTTTopics.statusFilter(prefix: "kiezbox/v1", district: "xhain") == "kiezbox/v1/xhain/+/status")
        for bad in ["", "a/b", "+", "kiez#1"] {
            #expect(throws: MQTTUplinkError.invalidTopicSegment(bad)) {
                _ = try MQTTTopics(prefix: "kiezbox/v1", district: bad, box: "x")
            }
        }
        let box = BoxIdentity(district: "x/y", boxID: "b", name: "n")
        #expect(throws: MQTTUplinkError.invalidTopicSegment("x/y")) {
            _ = try MQTTUplink(configuration: .init(host: "127.0.0.1"), sender: SenderIdentity(box: box, storeInstance: "s"))
        }
        let components = try #require(MQTTTopics.statusTopicComponents("kiezbox/v1/xhain/b1/status", prefix: "kiezbox/v1"))
        #expect(components.district == "xhain")
        #expect(components.box == "b1")
        #expect(MQTTTopics.statusTopicComponents("kiezbox/v1/xhain/b1/readings", prefix: "kiezbox/v1") == nil)
        #expect(MQTTTopics.statusTopicComponents("other/xhain/b1/status", prefix: "kiezbox/v1") == nil)
    }
}
