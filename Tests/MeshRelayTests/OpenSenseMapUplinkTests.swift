import Foundation
import KiezboxCore
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

@testable import MeshRelay

private let boxID = "5f2b3c4d5e6f708192a3b4c5"
private let token = "0c1d2e3f40516273849506a7b8c9d0e1f2031425364758697a8b9cadbecfd0e1"
private let temperatureSensor = "5f2b3c4d5e6f708192a3b4d0"
private let humiditySensor = "5f2b3c4d5e6f708192a3b4d1"
private let pm25Sensor = "5f2b3c4d5e6f708192a3b4d2"

private let sensorMap: [OpenSenseMapSensorKey: String] = [
    OpenSenseMapSensorKey(sensorID: "climate", quantity: .temperature): temperatureSensor,
    OpenSenseMapSensorKey(sensorID: "climate", quantity: .relativeHumidity): humiditySensor,
    OpenSenseMapSensorKey(sensorID: "pm", quantity: .pm2_5): pm25Sensor,
]

private func makeFake(serverClock: @escaping @Sendable () -> Date) throws -> FakeOpenSenseMap {
    try FakeOpenSenseMap(
        boxID: boxID, token: token, sensorIDs: [temperatureSensor, humiditySensor, pm25Sensor], now: serverClock
    )
}

private func makeUplink(
    _ fake: FakeOpenSenseMap, clock: ManualClock, location: GeoPosition? = nil, maximumBatch: Int = 2500,
    box: String = boxID, accessToken: String = token, sensors: [OpenSenseMapSensorKey: String] = sensorMap,
    log: LogLines = LogLines()
) throws -> OpenSenseMapUplink {
    try OpenSenseMapUplink(
        configuration: OpenSenseMapConfiguration(
            senseBoxID: box, accessToken: accessToken, sensors: sensors, location: location, baseURL: fake.baseURL,
            maximumBatch: maximumBatch, requestTimeout: .seconds(10)
        ),
        clock: clock, log: log.sink
    )
}

@Suite("openSenseMap uplink")
struct OpenSenseMapUplinkTests {
    @Test("measurements go as one JSON array with sensor, value, createdAt and location; 201 acknowledges all")
    func measurementsOnTheWire() async throws {
        let clock = testClock()
        let fake = try makeFake { clock.currentDate() }
        defer { fake.stop() }
        let uplink = try makeUplink(fake, clock: clock, location: GeoPosition(latitude: 52.4811, longitude: 13.4353, altitude: 42))
        let done = try await uplink.deliver([
            stored(1, "climate", .temperature, 21.5, at: testStart.addingTimeInterval(-600)),
            stored(2, "climate", .relativeHumidity, 55, at: testStart.addingTimeInterval(-600)),
            stored(3, "pm", .pm2_5, 7.25, at: testStart.addingTimeInterval(-300)),
        ])
        #expect(done == [1, 2, 3])
        let requests = fake.requests
        try #require(requests.count == 1)
        let request = requests[0]
        #expect(request.method == "POST")
        #expect(request.target == "/boxes/\(boxID)/data")
        #expect(request.header("Authorization") == token)
        #expect(request.header("Content-Type") == "application/json")
        #expect(
            request.bodyText
                == "[{\"createdAt\":\"2026-09-21T14:03:20.000Z\",\"location\":[13.4353,52.4811,42],\"sensor\":\"\(temperatureSensor)\",\"value\":\"21.5\"},"
                + "{\"createdAt\":\"2026-09-21T14:03:20.000Z\",\"location\":[13.4353,52.4811,42],\"sensor\":\"\(humiditySensor)\",\"value\":\"55\"},"
                + "{\"createdAt\":\"2026-09-21T14:08:20.000Z\",\"location\":[13.4353,52.4811,42],\"sensor\":\"\(pm25Sensor)\",\"value\":\"7.25\"}]"
        )
        #expect(fake.saved.count == 3)
        let statistics = uplink.statistics
        #expect(statistics.requestsAccepted == 1)
        #expect(statistics.measurementsSent == 3)
    }

    @Test("without a configured location the measurements carry none")
    func noLocation() async throws {
        let clock = testClock()
        let fake = try makeFake { clock.currentDate() }
        defer { fake.stop() }
        let uplink = try makeUplink(fake, clock: clock)
        #expect(try await uplink.deliver([stored(1, "climate", .temperature, -3.25, at: testStart)]) == [1])
        #expect(
            fake.requests.first?.bodyText
                == "[{\"createdAt\":\"2026-09-21T14:13:20.000Z\",\"sensor\":\"\(temperatureSensor)\",\"value\":\"-3.25\"}]"
        )
    }

    @Test("a backlog is backfilled with its measurement times in requests of at most 2500")
    func backlogIsBackfilled() async throws {
        let clock = testClock()
        let fake = try makeFake { clock.currentDate() }
        defer { fake.stop() }
        let uplink = try makeUplink(fake, clock: clock)
        #expect(uplink.maximumBatch == 2500)
        // 5200 minutes (about 3.6 days) of temperatures, one a minute, oldest first, as the store hands them out.
        let backlog: [StoredReading] = (0..<5200).map { (index: Int) -> StoredReading in
            let minutesAgo = Double(5200 - index)
            let value = Double(index % 300) / 10
            return stored(Int64(index + 1), "climate", .temperature, value, at: testStart.addingTimeInterval(-minutesAgo * 60))
        }
        // What the relay does: hand out the oldest readings not yet done, at most maximumBatch at a time.
        var pending = backlog
        var deliveries = 0
        while !pending.isEmpty {
            let batch = Array(pending.prefix(uplink.maximumBatch))
            let done = try await uplink.deliver(batch)
            #expect(done == Set(batch.map { $0.id }))
            pending.removeAll { done.contains($0.id) }
            deliveries += 1
        }
        #expect(deliveries == 3)
        #expect(fake.acceptedRequestSizes == [2500, 2500, 200])
        let saved = fake.saved
        #expect(saved.map(\.createdAt) == backlog.map { rfc3339($0.reading.measuredAt) })
        #expect(saved.map(\.value) == backlog.map { DecimalText.trimmed($0.reading.value, maximumFractionDigits: 6)! })
        #expect(saved.first?.createdAt == "2026-09-17T23:33:20.000Z")
    }

    @Test("a delivery larger than maximumBatch is split into requests of at most maximumBatch")
    func oversizedDeliveryIsSplit() async throws {
        let clock = testClock()
        let fake = try makeFake { clock.currentDate() }
        defer { fake.stop() }
        let batch = (0..<5200).map { stored(Int64($0), "climate", .relativeHumidity, 50, at: testStart.addingTimeInterval(Double(-$0))) }
        let uplink = try makeUplink(fake, clock: clock)
        #expect(try await uplink.deliver(batch).count == 5200)
        #expect(fake.acceptedRequestSizes == [2500, 2500, 200])

        let smaller = try makeUplink(fake, clock: clock, maximumBatch: 1000)
        #expect(try await smaller.deliver(Array(batch.prefix(2600))).count == 2600)
        #expect(fake.acceptedRequestSizes == [2500, 2500, 200, 1000, 1000, 600])
        #expect(smaller.statistics.requestsAccepted == 3)
    }

    @Test("readings more than a minute ahead of the box's clock are held back, logged once, sent when the clock catches up")
    func futureReadingsAreHeldBack() async throws {
        let clock = testClock()
        let fake = try makeFake { clock.currentDate() }
        defer { fake.stop() }
        let log = LogLines()
        let uplink = try makeUplink(fake, clock: clock, log: log)
        let past = stored(1, "climate", .temperature, 20, at: testStart.addingTimeInterval(-60))
        let slightlyAhead = stored(2, "climate", .temperature, 21, at: testStart.addingTimeInterval(30))
        let ahead = stored(3, "climate", .temperature, 22, at: testStart.addingTimeInterval(120))
        let farAhead = stored(4, "climate", .temperature, 23, at: testStart.addingTimeInterval(600))

        var done = try await uplink.deliver([past, slightlyAhead, ahead, farAhead])
        #expect(done == [1, 2])
        #expect(fake.saved.map(\.value) == ["20", "21"])
        #expect(log.all.count == 1)
        #expect(log.all.first?.contains("2 readings are stamped later than the box's clock allows") == true)

        // Only held-back readings: throw so the relay backs off, but do not log again.
        let error = await #expect(throws: OpenSenseMapError.self) { try await uplink.deliver([ahead, farAhead]) }
        #expect(error == .readingsAheadOfClock(count: 2, earliest: ahead.reading.measuredAt, boxTime: testStart))
        #expect(log.all.count == 1)

        clock.advance(by: .seconds(90))
        done = try await uplink.deliver([ahead, farAhead])
        #expect(done == [3])
        #expect(log.all.count == 1)

        clock.advance(by: .seconds(600))
        done = try await uplink.deliver([farAhead])
        #expect(done == [4])
        #expect(fake.saved.map(\.value) == ["20", "21", "22", "23"])

        // A new episode is logged again.
        _ = try? await uplink.deliver([stored(5, "climate", .temperature, 24, at: clock.currentDate().addingTimeInterval(3600))])
        #expect(log.all.count == 2)
        #expect(uplink.statistics.heldBackAheadOfClock == 2 + 2 + 1 + 1)
    }

    @Test("a server clock behind the box's gives 422 'too far into the future': typed, not acknowledged")
    func serverRefusesFutureTimestamp() async throws {
        let clock = testClock()
        let fake = try makeFake { clock.currentDate().addingTimeInterval(-120) }
        defer { fake.stop() }
        let uplink = try makeUplink(fake, clock: clock)
        let error = await #expect(throws: OpenSenseMapError.self) {
            try await uplink.deliver([stored(1, "climate", .temperature, 20, at: testStart.addingTimeInterval(-10))])
        }
        guard case .timestampInFuture(let message) = error else {
            Issue.record("expected .timestampInFuture, got \(String(describing: error))")
            return
        }
        #expect(message.hasPrefix("Timestamp 2026-09-21T14:13:10.000Z is too far into the future. in measurement {"))
        #expect(fake.saved.isEmpty)
    }

    @Test("a wrong access token is 401: typed error about the token, nothing acknowledged")
    func wrongToken() async throws {
        let clock = testClock()
        let fake = try makeFake { clock.currentDate() }
        defer { fake.stop() }
        let uplink = try makeUplink(fake, clock: clock, accessToken: "not-the-token")
        let error = await #expect(throws: OpenSenseMapError.self) {
            try await uplink.deliver([stored(1, "climate", .temperature, 20, at: testStart)])
        }
        #expect(error == .unauthorized(status: 401, message: "Box access token not valid!"))
        #expect(error?.description.contains("access_token") == true)
        #expect(fake.saved.isEmpty)
    }

    @Test("an unknown senseBox id is 404: typed error about the box id")
    func unknownBox() async throws {
        let clock = testClock()
        let fake = try makeFake { clock.currentDate() }
        defer { fake.stop() }
        let uplink = try makeUplink(fake, clock: clock, box: "000000000000000000000000")
        let error = await #expect(throws: OpenSenseMapError.self) {
            try await uplink.deliver([stored(1, "climate", .temperature, 20, at: testStart)])
        }
        #expect(error == .boxNotFound(senseBoxID: "000000000000000000000000", message: "Box not found"))
    }

    @Test("a sensor id that is not the box's is 400: typed error about the mapping, nothing acknowledged")
    func sensorNotInBox() async throws {
        let clock = testClock()
        let fake = try makeFake { clock.currentDate() }
        defer { fake.stop() }
        var sensors = sensorMap
        sensors[OpenSenseMapSensorKey(sensorID: "climate", quantity: .pressure)] = "5f2b3c4d5e6f708192a3b4ff"
        let uplink = try makeUplink(fake, clock: clock, sensors: sensors)
        let error = await #expect(throws: OpenSenseMapError.self) {
            try await uplink.deliver([
                stored(1, "climate", .temperature, 20, at: testStart),
                stored(2, "climate", .pressure, 1012.5, at: testStart),
            ])
        }
        #expect(
            error == .sensorRejected(status: 400, message: "Measurement for sensor with id 5f2b3c4d5e6f708192a3b4ff does not belong to box")
        )
        #expect(fake.saved.isEmpty, "all or nothing")
    }

    @Test("unmapped quantities are skipped: done, counted, never sent")
    func unmappedAreSkipped() async throws {
        let clock = testClock()
        let fake = try makeFake { clock.currentDate() }
        defer { fake.stop() }
        let uplink = try makeUplink(fake, clock: clock)
        let at = testStart.addingTimeInterval(-30)
        var done = try await uplink.deliver([
            stored(1, "power", .voltage, 12.6, at: at),
            stored(2, "power", .batteryLevel, 80, at: at),
            stored(3, "climate", .pressure, 1012, at: at),
            stored(4, "rain", .rainfall, 0.4, at: at),
        ])
        #expect(done == [1, 2, 3, 4])
        #expect(fake.requests.isEmpty)
        #expect(uplink.statistics.skippedUnmapped == 4)

        done = try await uplink.deliver([
            stored(5, "power", .voltage, 12.6, at: at),
            stored(6, "climate", .temperature, 19, at: at),
            stored(7, "climate", .temperature, 99, at: at, quality: .implausible),
            stored(8, "climate", .relativeHumidity, .infinity, at: at),
        ])
        #expect(done == [5, 6, 7, 8])
        #expect(fake.saved.map(\.value) == ["19"])
        let statistics = uplink.statistics
        #expect(statistics.skippedUnmapped == 5)
        #expect(statistics.skippedQuality == 1)
        #expect(statistics.skippedInvalidValue == 1)
    }

    @Test("5xx throws so the relay backs off; the same readings succeed later")
    func serverError() async throws {
        let clock = testClock()
        let fake = try makeFake { clock.currentDate() }
        defer { fake.stop() }
        let uplink = try makeUplink(fake, clock: clock)
        let batch = [stored(1, "climate", .temperature, 20, at: testStart)]
        fake.failNext(502)
        let error = await #expect(throws: OpenSenseMapError.self) { try await uplink.deliver(batch) }
        #expect(error == .serverError(status: 502, message: "simulated failure 502"))
        #expect(try await uplink.deliver(batch) == [1])
    }

    @Test("when a later request fails, the readings of the earlier ones are returned and the failure is logged")
    func partialFailure() async throws {
        let clock = testClock()
        let fake = try makeFake { clock.currentDate() }
        defer { fake.stop() }
        let log = LogLines()
        let uplink = try makeUplink(fake, clock: clock, maximumBatch: 2, log: log)
        let batch = (1...5).map { stored(Int64($0), "climate", .temperature, Double($0), at: testStart.addingTimeInterval(Double($0 - 10))) }
        fake.planNext([nil, 500])
        #expect(try await uplink.deliver(batch) == [1, 2])
        #expect(log.all.count == 1)
        #expect(log.all.first?.contains("HTTP 500") == true)
        #expect(try await uplink.deliver(Array(batch.dropFirst(2))) == [3, 4, 5])
        #expect(fake.saved.map(\.value) == ["1", "2", "3", "4", "5"])
    }

    @Test("a refused connection throws a transport error")
    func connectionRefused() async throws {
        let port = try RefusingPort()
        let uplink = try OpenSenseMapUplink(
            configuration: OpenSenseMapConfiguration(
                senseBoxID: boxID, accessToken: token, sensors: sensorMap, baseURL: port.url(""), requestTimeout: .seconds(10)
            ),
            clock: testClock()
        )
        let error = await #expect(throws: OpenSenseMapError.self) {
            try await uplink.deliver([stored(1, "climate", .temperature, 20, at: testStart)])
        }
        guard case .transport = error else {
            Issue.record("expected .transport, got \(String(describing: error))")
            return
        }
    }

    @Test("configurations that cannot work are refused with a reason")
    func configurationValidation() {
        func attempt(_ configuration: OpenSenseMapConfiguration) -> OpenSenseMapError? {
            do {
                _ = try OpenSenseMapUplink(configuration: configuration)
                return nil
            } catch {
                return error
            }
        }
        #expect(attempt(OpenSenseMapConfiguration(senseBoxID: boxID, accessToken: token, sensors: sensorMap)) == nil)
        #expect(
            attempt(OpenSenseMapConfiguration(senseBoxID: boxID, accessToken: token, sensors: sensorMap, maximumBatch: 2501))
                == .invalidConfiguration("maximum_batch must be between 1 and 2500")
        )
        #expect(attempt(OpenSenseMapConfiguration(senseBoxID: "\(boxID)/../x", accessToken: token, sensors: sensorMap)) != nil)
        #expect(attempt(OpenSenseMapConfiguration(senseBoxID: boxID, accessToken: "a b", sensors: sensorMap)) != nil)
        #expect(attempt(OpenSenseMapConfiguration(senseBoxID: boxID, accessToken: token, sensors: [:])) != nil)
        #expect(
            attempt(OpenSenseMapConfiguration(senseBoxID: boxID, accessToken: token, sensors: sensorMap, location: GeoPosition(latitude: 95, longitude: 13)))
                != nil
        )
    }

    @Test("the fake holds the uplink to the documented limit: 2501 measurements are refused with 422")
    func fakeEnforcesLimit() async throws {
        let clock = testClock()
        let fake = try makeFake { clock.currentDate() }
        defer { fake.stop() }
        let one = ["sensor": temperatureSensor, "value": "1", "createdAt": "2026-09-21T14:00:00.000Z"]
        var request = URLRequest(url: fake.baseURL.appendingPathComponent("boxes/\(boxID)/data"))
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue(token, forHTTPHeaderField: "Authorization")
        request.httpBody = try JSONSerialization.data(withJSONObject: Array(repeating: one, count: 2501))
        let (data, response) = try await URLSession.shared.data(for: request)
        #expect((response as? HTTPURLResponse)?.statusCode == 422)
        let body = try #require(try JSONSerialization.jsonObject(with: data) as? [String: String])
        #expect(body["message"] == "Too many measurements. Please submit at most 2500 measurements at once.")
        #expect(fake.saved.isEmpty)
    }
}
