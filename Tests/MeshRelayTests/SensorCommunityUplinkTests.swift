import Foundation
import KiezboxCore
import Testing

@testable import MeshRelay

private let uid = "raspi-00000000a1b2c3d4"

private func makeUplink(
    _ fake: FakeSensorCommunity, sensors: [String: SensorCommunitySensorKind], clock: ManualClock = testClock(),
    minimumInterval: Duration = .seconds(145), log: LogLines = LogLines(), sensorUID: String = uid
) throws -> SensorCommunityUplink {
    try SensorCommunityUplink(
        configuration: SensorCommunityConfiguration(
            sensorUID: sensorUID, sensors: sensors, softwareVersion: "kiezbox-0.1", endpoint: fake.endpoint,
            // A hang guard only: the stand-in answers at once, but on a loaded 2-core machine (other suites, builds)
            // 10 s passed without an answer and the uplink reported "no answer in time".
            minimumInterval: minimumInterval, requestTimeout: .seconds(60)
        ),
        clock: clock, log: log.sink
    )
}

@Suite("sensor.community uplink")
struct SensorCommunityUplinkTests {
    @Test("a BME280 sample is one POST on X-Pin 11 with temperature, pressure in Pa and humidity")
    func bme280OnTheWire() async throws {
        let fake = try FakeSensorCommunity(devices: [uid: [11]])
        defer { fake.stop() }
        let uplink = try makeUplink(fake, sensors: ["climate": .bme280])
        let at = testStart.addingTimeInterval(-20)
        let done = try await uplink.deliver([
            stored(1, "climate", .temperature, 21.5, at: at),
            stored(2, "climate", .pressure, 1013.25, at: at),
            stored(3, "climate", .relativeHumidity, 55.5, at: at),
        ])
        #expect(done == [1, 2, 3])
        let requests = fake.requests
        try #require(requests.count == 1)
        let request = requests[0]
        #expect(request.method == "POST")
        #expect(request.target == "/v1/push-sensor-data/")
        #expect(request.header("Content-Type") == "application/json")
        #expect(request.header("X-Sensor") == uid)
        #expect(request.header("X-Pin") == "11")
        #expect(request.header("User-Agent") == "kiezbox-0.1/\(uid)")
        #expect(
            request.bodyText
                == #"{"sensordatavalues":[{"value":"21.50","value_type":"temperature"},{"value":"101325.00","value_type":"pressure"},{"value":"55.50","value_type":"humidity"}],"software_version":"kiezbox-0.1"}"#
        )
        #expect(
            fake.pushes == [
                FakeSensorCommunity.Push(
                    sensorUID: uid, pin: 11, softwareVersion: "kiezbox-0.1",
                    values: [.init(valueType: "temperature", value: "21.50"), .init(valueType: "pressure", value: "101325.00"),
                             .init(valueType: "humidity", value: "55.50")]
                )
            ]
        )
        let statistics = uplink.statistics
        #expect(statistics.requestsAccepted == 1)
        #expect(statistics.readingsSent == 3)
        #expect(statistics.lastError == nil)
    }

    @Test("an SDS011 sample is one POST on X-Pin 1 with P1 (PM10) and P2 (PM2.5)")
    func sds011OnTheWire() async throws {
        let fake = try FakeSensorCommunity(devices: [uid: [1]])
        defer { fake.stop() }
        let uplink = try makeUplink(fake, sensors: ["pm-balcony": .sds011])
        let at = testStart.addingTimeInterval(-5)
        let done = try await uplink.deliver([
            stored(7, "pm-balcony", .pm2_5, 7.8, at: at),
            stored(8, "pm-balcony", .pm10, 12.3, at: at),
        ])
        #expect(done == [7, 8])
        let request = try #require(fake.requests.first)
        #expect(request.header("X-Pin") == "1")
        #expect(
            request.bodyText
                == #"{"sensordatavalues":[{"value":"12.30","value_type":"P1"},{"value":"7.80","value_type":"P2"}],"software_version":"kiezbox-0.1"}"#
        )
    }

    @Test("an SPS30 sample carries P0, P2, P4 and P1, rounded to two decimals")
    func sps30OnTheWire() async throws {
        let fake = try FakeSensorCommunity(devices: [uid: [1]])
        defer { fake.stop() }
        let uplink = try makeUplink(fake, sensors: ["pm": .sps30])
        let at = testStart.addingTimeInterval(-60)
        let done = try await uplink.deliver([
            stored(1, "pm", .pm1, 3.456, at: at),
            stored(2, "pm", .pm2_5, 5, at: at),
            stored(3, "pm", .pm4, 6.125, at: at),
            stored(4, "pm", .pm10, 7, at: at),
        ])
        #expect(done == [1, 2, 3, 4])
        let request = try #require(fake.requests.first)
        #expect(request.header("X-Pin") == "1")
        #expect(
            request.bodyText
                == #"{"sensordatavalues":[{"value":"3.46","value_type":"P0"},{"value":"5.00","value_type":"P2"},{"value":"6.13","value_type":"P4"},{"value":"7.00","value_type":"P1"}],"software_version":"kiezbox-0.1"}"#
        )
    }

    @Test("a GPS position goes on X-Pin 9 with six-decimal lat/lon, height and the fix time")
    func gpsOnTheWire() async throws {
        let fake = try FakeSensorCommunity(devices: [uid: [9]])
        defer { fake.stop() }
        let uplink = try makeUplink(fake, sensors: ["gps": .gps])
        let at = testStart.addingTimeInterval(-10)
        let done = try await uplink.deliver([
            stored(1, "gps", .latitude, 52.4811, at: at),
            stored(2, "gps", .longitude, 13.4353, at: at),
            stored(3, "gps", .altitude, 42, at: at),
        ])
        #expect(done == [1, 2, 3])
        let request = try #require(fake.requests.first)
        #expect(request.header("X-Pin") == "9")
        #expect(
            request.bodyText
                == #"{"sensordatavalues":[{"value":"52.481100","value_type":"lat"},{"value":"13.435300","value_type":"lon"},{"value":"42.00","value_type":"height"},{"value":"2026-09-21T14:13:10.000","value_type":"timestamp"}],"software_version":"kiezbox-0.1"}"#
        )
    }

    @Test("sensors measured together go out as one request per X-Pin")
    func oneRequestPerPin() async throws {
        let fake = try FakeSensorCommunity(devices: [uid: [1, 11]])
        defer { fake.stop() }
        let uplink = try makeUplink(fake, sensors: ["climate": .bme280, "pm": .sds011])
        let at = testStart.addingTimeInterval(-30)
        let done = try await uplink.deliver([
            stored(1, "climate", .temperature, 18, at: at),
            stored(2, "pm", .pm10, 20, at: at),
            stored(3, "climate", .relativeHumidity, 70, at: at),
            stored(4, "pm", .pm2_5, 10, at: at),
        ])
        #expect(done == [1, 2, 3, 4])
        let pushes = fake.pushes.sorted { $0.pin < $1.pin }
        try #require(pushes.map(\.pin) == [1, 11])
        #expect(pushes[0].values == [.init(valueType: "P1", value: "20.00"), .init(valueType: "P2", value: "10.00")])
        #expect(pushes[1].values == [.init(valueType: "temperature", value: "18.00"), .init(valueType: "humidity", value: "70.00")])
    }

    @Test("without a minimum interval every measurement time gets its own POST, oldest first")
    func everyMeasurementTime() async throws {
        let fake = try FakeSensorCommunity(devices: [uid: [7]])
        defer { fake.stop() }
        let uplink = try makeUplink(fake, sensors: ["climate": .sht3x], minimumInterval: .zero)
        let done = try await uplink.deliver([
            stored(1, "climate", .temperature, 20, at: testStart.addingTimeInterval(-120)),
            stored(2, "climate", .relativeHumidity, 60, at: testStart.addingTimeInterval(-120)),
            stored(3, "climate", .temperature, 21, at: testStart.addingTimeInterval(-60)),
            stored(4, "climate", .relativeHumidity, 61, at: testStart.addingTimeInterval(-60)),
        ])
        #expect(done == [1, 2, 3, 4])
        #expect(fake.pushes.map { $0.value("temperature") } == ["20.00", "21.00"])
        #expect(fake.pushes.map { $0.value("humidity") } == ["60.00", "61.00"])
    }

    @Test("with the minimum interval the newest sample wins and samples inside the interval are skipped")
    func newestSampleAndInterval() async throws {
        let fake = try FakeSensorCommunity(devices: [uid: [7]])
        defer { fake.stop() }
        let clock = testClock()
        let uplink = try makeUplink(fake, sensors: ["climate": .sht3x], clock: clock)
        var done = try await uplink.deliver([
            stored(1, "climate", .temperature, 20, at: testStart.addingTimeInterval(-120)),
            stored(2, "climate", .temperature, 21, at: testStart.addingTimeInterval(-10)),
        ])
        #expect(done == [1, 2])
        #expect(fake.pushes.map { $0.value("temperature") } == ["21.00"])
        #expect(uplink.statistics.skippedSuperseded == 1)

        clock.advance(by: .seconds(60))
        done = try await uplink.deliver([stored(3, "climate", .temperature, 22, at: testStart.addingTimeInterval(50))])
        #expect(done == [3])
        #expect(fake.pushes.count == 1, "60 s after the last sample sent: inside the 145 s interval")
        #expect(uplink.statistics.skippedSuperseded == 2)

        clock.advance(by: .seconds(90))
        done = try await uplink.deliver([stored(4, "climate", .temperature, 23, at: testStart.addingTimeInterval(140))])
        #expect(done == [4])
        #expect(fake.pushes.map { $0.value("temperature") } == ["21.00", "23.00"])
    }

    @Test("readings older than the live window are skipped: done, counted, never posted")
    func oldReadingsAreSkipped() async throws {
        let fake = try FakeSensorCommunity(devices: [uid: [11]])
        defer { fake.stop() }
        let uplink = try makeUplink(fake, sensors: ["climate": .bme280])
        var done = try await uplink.deliver([
            stored(1, "climate", .temperature, 10, at: testStart.addingTimeInterval(-3600)),
            stored(2, "climate", .pressure, 1000, at: testStart.addingTimeInterval(-3600)),
            stored(3, "climate", .temperature, 11, at: testStart.addingTimeInterval(-301)),
        ])
        #expect(done == [1, 2, 3])
        #expect(fake.requests.isEmpty)
        #expect(uplink.statistics.skippedTooOld == 3)

        done = try await uplink.deliver([
            stored(4, "climate", .temperature, 12, at: testStart.addingTimeInterval(-400)),
            stored(5, "climate", .temperature, 13, at: testStart.addingTimeInterval(-30)),
        ])
        #expect(done == [4, 5])
        #expect(fake.pushes.map { $0.value("temperature") } == ["13.00"])
        #expect(uplink.statistics.skippedTooOld == 4)
    }

    @Test("readings stamped more than a minute ahead of the box's clock are skipped")
    func aheadOfClockIsSkipped() async throws {
        let fake = try FakeSensorCommunity(devices: [uid: [13]])
        defer { fake.stop() }
        let uplink = try makeUplink(fake, sensors: ["water": .ds18b20], minimumInterval: .zero)
        let done = try await uplink.deliver([
            stored(1, "water", .temperature, 14, at: testStart.addingTimeInterval(30)),
            stored(2, "water", .temperature, 15, at: testStart.addingTimeInterval(3600)),
        ])
        #expect(done == [1, 2])
        #expect(fake.pushes.map { $0.value("temperature") } == ["14.00"])
        #expect(uplink.statistics.skippedAheadOfClock == 1)
    }

    @Test("quantities the platform does not take, unlisted sensors, flagged and broken values are skipped and counted")
    func unsupportedAreSkipped() async throws {
        let fake = try FakeSensorCommunity(devices: [uid: [11]])
        defer { fake.stop() }
        let uplink = try makeUplink(fake, sensors: ["climate": .bme280])
        let at = testStart.addingTimeInterval(-10)
        var done = try await uplink.deliver([
            stored(1, "climate", .voltage, 3.3, at: at),
            stored(2, "climate", .pm10, 5, at: at),
            stored(3, "battery", .batteryLevel, 80, at: at),
            stored(4, "rain", .rainfall, 0.2, at: at),
            stored(5, "climate", .temperature, 85, at: at, quality: .implausible),
            stored(6, "climate", .pressure, .nan, at: at),
        ])
        #expect(done == [1, 2, 3, 4, 5, 6])
        #expect(fake.requests.isEmpty)
        var statistics = uplink.statistics
        #expect(statistics.skippedUnsupportedQuantity == 2)
        #expect(statistics.skippedUnlistedSensor == 2)
        #expect(statistics.skippedQuality == 1)
        #expect(statistics.skippedInvalidValue == 1)

        done = try await uplink.deliver([
            stored(7, "climate", .temperature, 19, at: at),
            stored(8, "climate", .voltage, 3.3, at: at),
        ])
        #expect(done == [7, 8])
        #expect(fake.pushes.map(\.values) == [[.init(valueType: "temperature", value: "19.00")]])
        statistics = uplink.statistics
        #expect(statistics.skippedUnsupportedQuantity == 3)
        #expect(statistics.readingsSent == 1)
    }

    @Test("an unknown X-Sensor (403) is a typed error and nothing is acknowledged")
    func unknownSensorID() async throws {
        let fake = try FakeSensorCommunity(devices: ["raspi-someone-else": [11]])
        defer { fake.stop() }
        let log = LogLines()
        let uplink = try makeUplink(fake, sensors: ["climate": .bme280], log: log)
        let at = testStart.addingTimeInterval(-10)
        let live = [stored(1, "climate", .temperature, 20, at: at), stored(2, "climate", .pressure, 1010, at: at)]
        let error = await #expect(throws: SensorCommunityError.self) { try await uplink.deliver(live) }
        #expect(error == .sensorNotRegistered(sensorUID: uid, status: 403, message: "Node not found in database."))
        #expect(error?.description.contains("devices.sensor.community") == true)
        #expect(fake.pushes.isEmpty)

        // Mixed with readings it skips, it returns those and logs the refusal instead of throwing.
        let done = try await uplink.deliver([stored(3, "climate", .temperature, 5, at: testStart.addingTimeInterval(-3600))] + live)
        #expect(done == [3])
        #expect(log.all.count == 1)
        #expect(log.all.first?.contains("Node not found in database.") == true)
        #expect(uplink.statistics.requestsFailed == 2)
        #expect(uplink.statistics.lastError == error)
    }

    @Test("a pin the device has no sensor on (400) fails that sensor only; the others still go")
    func pinNotRegistered() async throws {
        let fake = try FakeSensorCommunity(devices: [uid: [11, 7]])
        defer { fake.stop() }
        let log = LogLines()
        let uplink = try makeUplink(fake, sensors: ["climate": .bme280, "pm": .sds011], log: log)
        let at = testStart.addingTimeInterval(-10)
        let done = try await uplink.deliver([
            stored(1, "pm", .pm10, 20, at: at),
            stored(2, "pm", .pm2_5, 10, at: at),
            stored(3, "climate", .temperature, 18, at: at),
        ])
        #expect(done == [3])
        #expect(fake.pushes.map(\.pin) == [11])
        #expect(log.all.count == 1)

        let error = await #expect(throws: SensorCommunityError.self) {
            try await uplink.deliver([stored(1, "pm", .pm10, 20, at: at), stored(2, "pm", .pm2_5, 10, at: at)])
        }
        #expect(
            error == .pinNotRegistered(sensorUID: uid, pin: 1, kind: .sds011, message: "sensor could not be selected.")
        )
        #expect(error?.description.contains("add a SDS011 sensor") == true)
    }

    @Test("a body the service refuses (400) is a typed error naming its message")
    func refusedBody() async throws {
        // One sensor registered (pin 7, SHT3x): the service then ignores X-Pin and refuses BME280 pressure.
        let fake = try FakeSensorCommunity(devices: [uid: [7]])
        defer { fake.stop() }
        let uplink = try makeUplink(fake, sensors: ["climate": .bme280])
        let error = await #expect(throws: SensorCommunityError.self) {
            try await uplink.deliver([stored(1, "climate", .pressure, 1000, at: testStart)])
        }
        guard case .rejected(400, 11, let message) = error else {
            Issue.record("expected .rejected(400, 11, …), got \(String(describing: error))")
            return
        }
        #expect(message.contains("value_type \"pressure\" is not sent on pin 7"))
    }

    @Test("5xx throws so the relay backs off; the same readings succeed later")
    func serverError() async throws {
        let fake = try FakeSensorCommunity(devices: [uid: [11]])
        defer { fake.stop() }
        let uplink = try makeUplink(fake, sensors: ["climate": .bme280])
        let batch = [stored(1, "climate", .temperature, 20, at: testStart)]
        fake.failNext(503)
        let error = await #expect(throws: SensorCommunityError.self) { try await uplink.deliver(batch) }
        #expect(error == .serverError(status: 503, message: "<h1>Server Error (503)</h1>"))
        #expect(fake.pushes.isEmpty)
        #expect(try await uplink.deliver(batch) == [1])
        #expect(fake.pushes.count == 1)
    }

    @Test("a refused connection throws a transport error")
    func connectionRefused() async throws {
        let port = try RefusingPort()
        let uplink = try SensorCommunityUplink(
            configuration: SensorCommunityConfiguration(
                sensorUID: uid, sensors: ["climate": .bme280], endpoint: port.url("/v1/push-sensor-data/"),
                requestTimeout: .seconds(10)
            ),
            clock: testClock()
        )
        let error = await #expect(throws: SensorCommunityError.self) {
            try await uplink.deliver([stored(1, "climate", .temperature, 20, at: testStart)])
        }
        guard case .transport = error else {
            Issue.record("expected .transport, got \(String(describing: error))")
            return
        }
    }

    @Test("configurations that cannot work are refused with a reason")
    func configurationValidation() {
        func attempt(_ configuration: SensorCommunityConfiguration) -> SensorCommunityError? {
            do {
                _ = try SensorCommunityUplink(configuration: configuration)
                return nil
            } catch {
                return error
            }
        }
        let twoOnPinOne = attempt(SensorCommunityConfiguration(sensorUID: uid, sensors: ["a": .sds011, "b": .sps30]))
        #expect(twoOnPinOne == .invalidConfiguration("sensors \"a\" and \"b\" would both be sent on X-Pin 1; sensor.community keeps one sensor per pin and device"))
        #expect(attempt(SensorCommunityConfiguration(sensorUID: "raspi 1", sensors: ["a": .bme280])) != nil)
        #expect(attempt(SensorCommunityConfiguration(sensorUID: "raspi-1\r\nX: y", sensors: ["a": .bme280])) != nil)
        #expect(attempt(SensorCommunityConfiguration(sensorUID: uid, sensors: [:])) != nil)
        #expect(attempt(SensorCommunityConfiguration(sensorUID: uid, sensors: ["a": .bme280], maximumBatch: 0)) != nil)
        #expect(attempt(SensorCommunityConfiguration(sensorUID: uid, sensors: ["a": .bme280, "b": .sds011])) == nil)
    }

    @Test("decimal text is locale-free, rounded half away from zero, never in exponent form")
    func decimalText() {
        #expect(DecimalText.fixed(21.5, fractionDigits: 2) == "21.50")
        #expect(DecimalText.fixed(1013.27 * 100, fractionDigits: 2) == "101327.00")
        #expect(DecimalText.fixed(-3.456, fractionDigits: 2) == "-3.46")
        #expect(DecimalText.fixed(-0.004, fractionDigits: 2) == "0.00")
        #expect(DecimalText.fixed(0.000001, fractionDigits: 2) == "0.00")
        #expect(DecimalText.fixed(52.4811, fractionDigits: 6) == "52.481100")
        #expect(DecimalText.fixed(.infinity, fractionDigits: 2) == nil)
        #expect(DecimalText.fixed(1e300, fractionDigits: 2) == nil)
        #expect(DecimalText.trimmed(21.5, maximumFractionDigits: 6) == "21.5")
        #expect(DecimalText.trimmed(55, maximumFractionDigits: 6) == "55")
        #expect(DecimalText.trimmed(-0.0000001, maximumFractionDigits: 6) == "0")
        #expect(DecimalText.trimmed(0.00001, maximumFractionDigits: 6) == "0.00001")
        #expect(DecimalText.trimmed(.nan, maximumFractionDigits: 6) == nil)
    }
}
