public import Foundation
public import KiezboxCore
import Synchronization

// sensor.community (formerly luftdaten.info) push API, as spoken by the airRohr firmware
// (opendata-stuttgart/sensors-software) and accepted by opendata-stuttgart/feinstaub-api:
//
//     POST /v1/push-sensor-data/
//     Content-Type: application/json
//     X-Sensor: <the ID registered at devices.sensor.community>
//     X-Pin: <sensor type: 1 PM, 3 BMP280, 7 SHT3x/DHT22/HTU21D, 9 GPS, 11 BME280, 13 DS18B20, 17 SCD30>
//     {"software_version": "...", "sensordatavalues": [{"value_type": "P1", "value": "12.30"}, ...]}
//
// One request per sensor type (X-Pin). Values are strings with two decimals (GPS lat/lon: six); pressure in Pa.
// There is no timestamp: the server stamps a measurement when it arrives. So this uplink is live-only.

/// Which chip a Kiezbox sensor is, as sensor.community knows it: selects the X-Pin and the value_type names.
public enum SensorCommunitySensorKind: String, Sendable, Hashable, Codable, CaseIterable {
    case bme280
    case bmp280
    case sht3x
    case dht22
    case htu21d
    case ds18b20
    case sds011
    /// Plantower PMS1003…PMS7003 ("PMSx003" in airRohr).
    case pms5003
    case sps30
    case scd30
    case gps

    /// The X-Pin header sensor.community selects the registered sensor type by (airRohr `ext_def.h`).
    public var pin: Int {
        switch self {
        case .sds011, .pms5003, .sps30: 1
        case .bmp280: 3
        case .sht3x, .dht22, .htu21d: 7
        case .gps: 9
        case .bme280: 11
        case .ds18b20: 13
        case .scd30: 17
        }
    }

    /// The quantities this chip reports to sensor.community, in airRohr's order, with their value_type names.
    public var valueTypes: [(quantity: Quantity, valueType: String)] {
        switch self {
        case .bme280: [(.temperature, "temperature"), (.pressure, "pressure"), (.relativeHumidity, "humidity")]
        case .bmp280: [(.temperature, "temperature"), (.pressure, "pressure")]
        case .sht3x, .dht22, .htu21d: [(.temperature, "temperature"), (.relativeHumidity, "humidity")]
        case .ds18b20: [(.temperature, "temperature")]
        case .sds011: [(.pm10, "P1"), (.pm2_5, "P2")]
        case .pms5003: [(.pm1, "P0"), (.pm10, "P1"), (.pm2_5, "P2")]
        case .sps30: [(.pm1, "P0"), (.pm2_5, "P2"), (.pm4, "P4"), (.pm10, "P1")]
        case .scd30: [(.co2, "co2_ppm"), (.temperature, "temperature"), (.relativeHumidity, "humidity")]
        case .gps: [(.latitude, "lat"), (.longitude, "lon"), (.altitude, "height")]
        }
    }

    /// The value_type name for `quantity`, or nil when sensor.community takes no such value from this chip.
    public func valueType(for quantity: Quantity) -> String? {
        self.valueTypes.first { $0.quantity == quantity }?.valueType
    }

    /// How a display name reads in messages: "BME280", "SDS011".
    public var displayName: String {
        switch self {
        case .pms5003: "PMS5003"
        case .sht3x: "SHT3x"
        case .gps: "GPS"
        default: self.rawValue.uppercased()
        }
    }
}

/// Settings of the sensor.community uplink; every key has a TOML counterpart (see the integration notes).
public struct SensorCommunityConfiguration: Sendable, Hashable {
    public static let defaultEndpoint = URL(string: "https://api.sensor.community/v1/push-sensor-data/")!

    /// The push URL.
    public var endpoint: URL
    /// The X-Sensor header: the sensor ID exactly as registered at devices.sensor.community ("raspi-<serial>").
    public var sensorUID: String
    /// Sent as `software_version` and in the User-Agent ("kiezbox-0.1").
    public var softwareVersion: String
    /// Kiezbox sensor id ("climate", "pm-balcony") → which chip it is. Sensors not listed are not sent.
    public var sensors: [String: SensorCommunitySensorKind]
    /// Readings older than this (by the box's clock) are not sent: the server would stamp them "now".
    public var liveWindow: Duration
    /// At most one request per sensor per this interval (airRohr sends every 145 s); newer samples win and the
    /// ones in between are skipped. `.zero` sends every measurement time of every sensor.
    public var minimumInterval: Duration
    /// Readings stamped further than this ahead of the box's clock are skipped: a clock that is off cannot
    /// tell whether they are live.
    public var maximumClockLead: Duration
    /// Only readings of these qualities are sent; sensor.community has no way to flag the others.
    public var sendQualities: Set<ReadingQuality>
    /// Time for one request, connect to last byte.
    public var requestTimeout: Duration
    /// The most readings one delivery takes (the relay's batch size for this uplink).
    public var maximumBatch: Int

    public init(
        sensorUID: String,
        sensors: [String: SensorCommunitySensorKind],
        softwareVersion: String = "kiezbox-0.1",
        endpoint: URL = SensorCommunityConfiguration.defaultEndpoint,
        liveWindow: Duration = .seconds(300),
        minimumInterval: Duration = .seconds(145),
        maximumClockLead: Duration = .seconds(60),
        sendQualities: Set<ReadingQuality> = [.good],
        requestTimeout: Duration = .seconds(20),
        maximumBatch: Int = 500
    ) {
        self.endpoint = endpoint
        self.sensorUID = sensorUID
        self.softwareVersion = softwareVersion
        self.sensors = sensors
        self.liveWindow = liveWindow
        self.minimumInterval = minimumInterval
        self.maximumClockLead = maximumClockLead
        self.sendQualities = sendQualities
        self.requestTimeout = requestTimeout
        self.maximumBatch = maximumBatch
    }

    /// Throws ``SensorCommunityError/invalidConfiguration(_:)`` naming the first thing that is wrong.
    public func validate() throws(SensorCommunityError) {
        func invalid(_ text: String) -> SensorCommunityError { .invalidConfiguration(text) }
        guard let scheme = self.endpoint.scheme?.lowercased(), scheme == "https" || scheme == "http",
            self.endpoint.host != nil
        else { throw invalid("endpoint \"\(self.endpoint.absoluteString)\" is not an http(s) URL") }
        guard isHeaderSafeToken(self.sensorUID) else {
            throw invalid(
                "sensor_id \"\(self.sensorUID)\" must be the ID registered at devices.sensor.community, without spaces"
            )
        }
        guard isHeaderSafeToken(self.softwareVersion) else {
            throw invalid("software_version \"\(self.softwareVersion)\" must be one word without spaces")
        }
        guard !self.sensors.isEmpty else { throw invalid("no sensors are listed, so nothing would be sent") }
        var pins: [Int: String] = [:]
        for (sensorID, kind) in self.sensors.sorted(by: { $0.key < $1.key }) {
            if let other = pins[kind.pin] {
                throw invalid(
                    "sensors \"\(other)\" and \"\(sensorID)\" would both be sent on X-Pin \(kind.pin); "
                        + "sensor.community keeps one sensor per pin and device"
                )
            }
            pins[kind.pin] = sensorID
        }
        guard self.liveWindow > .zero else { throw invalid("live_window must be positive") }
        guard self.minimumInterval >= .zero, self.maximumClockLead >= .zero else {
            throw invalid("minimum_interval and maximum_clock_lead must not be negative")
        }
        guard self.requestTimeout > .zero else { throw invalid("request_timeout must be positive") }
        guard self.maximumBatch >= 1 else { throw invalid("maximum_batch must be at least 1") }
    }
}

/// What went wrong talking to sensor.community, in words a resident can act on.
public enum SensorCommunityError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The configuration cannot work; the text says what to change.
    case invalidConfiguration(String)
    /// HTTP 401/403: the server does not know this X-Sensor ID ("Node not found in database.").
    case sensorNotRegistered(sensorUID: String, status: Int, message: String)
    /// HTTP 400 "sensor could not be selected.": the device is known but has no sensor on this X-Pin.
    case pinNotRegistered(sensorUID: String, pin: Int, kind: SensorCommunitySensorKind, message: String)
    /// Another 4xx: the server refused the request itself.
    case rejected(status: Int, pin: Int, message: String)
    /// HTTP 408/429: slow down, try later.
    case rateLimited(status: Int)
    /// HTTP 5xx: the service has trouble.
    case serverError(status: Int, message: String)
    /// No HTTP answer at all.
    case transport(String)
    /// A status that is neither success nor a known refusal (a redirect that was not followed, 1xx).
    case unexpectedStatus(Int, message: String)

    public var description: String {
        switch self {
        case .invalidConfiguration(let text):
            "sensor.community uplink is misconfigured: \(text)."
        case .sensorNotRegistered(let uid, let status, let message):
            "sensor.community does not know the sensor ID \"\(uid)\" (HTTP \(status): \(message)). "
                + "Check sensor_id in the Kiezbox configuration: it must be exactly the ID you registered at "
                + "devices.sensor.community (for a Raspberry Pi \"raspi-\" and the serial number)."
        case .pinNotRegistered(let uid, let pin, let kind, let message):
            "sensor.community refused the \(kind.displayName) data of sensor ID \"\(uid)\" "
                + "(X-Pin \(pin); HTTP 400: \(message)). At devices.sensor.community, add a \(kind.displayName) "
                + "sensor to this device, or correct the sensor's type in the Kiezbox configuration."
        case .rejected(let status, let pin, let message):
            "sensor.community rejected a measurement for X-Pin \(pin) (HTTP \(status): \(message)). "
                + "Check the sensor types in the Kiezbox configuration; if they are right, this is a Kiezbox bug."
        case .rateLimited(let status):
            "sensor.community asks the box to slow down (HTTP \(status)); Kiezbox retries later. "
                + "If this keeps happening, raise minimum_interval."
        case .serverError(let status, let message):
            "sensor.community has trouble right now (HTTP \(status): \(message)); Kiezbox retries later."
        case .transport(let text):
            "Could not reach sensor.community (\(text)). Check the box's internet connection and the endpoint URL."
        case .unexpectedStatus(let status, let message):
            "sensor.community answered HTTP \(status) (\(message)). Check the endpoint URL in the configuration."
        }
    }

    /// Whether the remaining requests of a delivery are pointless after this one (the whole device or the
    /// service is affected), as opposed to this one sensor only.
    var stopsDelivery: Bool {
        switch self {
        case .pinNotRegistered, .rejected: false
        default: true
        }
    }
}

/// Pushes live readings to sensor.community.
///
/// What happens to a reading handed to ``deliver(_:)``:
/// * posted and answered 2xx → done;
/// * its sensor is not listed, its quantity is not one sensor.community takes from that chip (battery voltage,
///   rain…), its quality is not sent, its value is not a finite number → skipped: done, counted;
/// * older than ``SensorCommunityConfiguration/liveWindow`` or too far ahead of the box's clock → skipped:
///   done, counted (the API has no timestamps; the server would file it under "now");
/// * an older sample of a sensor that has a newer one, or inside ``SensorCommunityConfiguration/minimumInterval``
///   of the last one sent → superseded: done, counted;
/// * refused (4xx) or not answered (5xx, network) → not done; it comes again.
///
/// No refusal is acknowledged: every reading this uplink holds on to ages out of the live window within
/// minutes and is then skipped, so a refusal can never block the queue for long, and a fixed registration is
/// picked up with the next fresh reading. Refusals that concern one sensor (400: pin not registered, body
/// refused) do not stop the other sensors' requests; refusals of the whole device (401/403), 429 and 5xx and
/// network failures stop the delivery. When something failed and nothing else was done, the error is thrown
/// (so the relay backs off); otherwise the ids that are done are returned and the error is logged and kept in
/// ``statistics``.
public final class SensorCommunityUplink: Uplink {
    public struct Statistics: Sendable, Hashable {
        /// Requests answered 2xx, and the readings they carried.
        public var requestsAccepted = 0
        public var readingsSent = 0
        /// Requests refused or not answered.
        public var requestsFailed = 0
        public var skippedTooOld = 0
        public var skippedAheadOfClock = 0
        public var skippedUnlistedSensor = 0
        public var skippedUnsupportedQuantity = 0
        public var skippedQuality = 0
        public var skippedInvalidValue = 0
        public var skippedSuperseded = 0
        public var lastSuccess: Date?
        public var lastError: SensorCommunityError?
    }

    public let name = "sensor.community"
    public let configuration: SensorCommunityConfiguration
    public var maximumBatch: Int { self.configuration.maximumBatch }

    private struct State {
        var statistics = Statistics()
        /// Per Kiezbox sensor: the measurement time of the last sample sent.
        var lastSent: [String: Date] = [:]
    }

    private let clock: any KiezboxClock
    private let http: OpenDataHTTPClient
    private let log: @Sendable (String) -> Void
    private let state = Mutex(State())

    /// - Parameters:
    ///   - clock: the box's clock; "live" and "ahead" are judged by its ``KiezboxClock/currentDate()``.
    ///   - log: receives one line for every failure that is not thrown (because other readings were done).
    public init(
        configuration: SensorCommunityConfiguration,
        clock: any KiezboxClock = LiveClock(),
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) throws(SensorCommunityError) {
        try configuration.validate()
        self.configuration = configuration
        self.clock = clock
        self.log = log
        self.http = OpenDataHTTPClient(timeout: configuration.requestTimeout)
    }

    /// Counters since start, and the last error.
    public var statistics: Statistics { self.state.withLock { $0.statistics } }

    /// The last request the platform accepted.
    public var lastContact: Date? { self.statistics.lastSuccess }
    public var reportsContact: Bool { true }

    /// The quantities one sensor measured at one time: one request.
    private struct Sample {
        var sensorID: String
        var kind: SensorCommunitySensorKind
        var measuredAt: Date
        var values: [Quantity: String] = [:]
        var ids: [Int64] = []
    }

    public func deliver(_ batch: [StoredReading]) async throws -> Set<Int64> {
        let config = self.configuration
        let now = self.clock.currentDate()
        let oldest = now.addingTimeInterval(-config.liveWindow.timeInterval)
        let latest = now.addingTimeInterval(config.maximumClockLead.timeInterval)
        var done = Set<Int64>()
        var skipped = Statistics()
        var samples: [Sample] = []
        var sampleIndex: [String: [Date: Int]] = [:]

        for stored in batch {
            let reading = stored.reading
            guard let kind = config.sensors[reading.sensorID] else {
                skipped.skippedUnlistedSensor += 1
                done.insert(stored.id)
                continue
            }
            guard kind.valueType(for: reading.quantity) != nil else {
                skipped.skippedUnsupportedQuantity += 1
                done.insert(stored.id)
                continue
            }
            guard config.sendQualities.contains(reading.quality) else {
                skipped.skippedQuality += 1
                done.insert(stored.id)
                continue
            }
            guard reading.measuredAt >= oldest else {
                skipped.skippedTooOld += 1
                done.insert(stored.id)
                continue
            }
            guard reading.measuredAt <= latest else {
                skipped.skippedAheadOfClock += 1
                done.insert(stored.id)
                continue
            }
            guard let text = Self.format(reading) else {
                skipped.skippedInvalidValue += 1
                done.insert(stored.id)
                continue
            }
            let index: Int
            if let existing = sampleIndex[reading.sensorID]?[reading.measuredAt] {
                index = existing
            } else {
                index = samples.count
                samples.append(Sample(sensorID: reading.sensorID, kind: kind, measuredAt: reading.measuredAt))
                sampleIndex[reading.sensorID, default: [:]][reading.measuredAt] = index
            }
            // The same quantity twice at the same time: the later reading wins, both are done with the request.
            samples[index].values[reading.quantity] = text
            samples[index].ids.append(stored.id)
        }

        let toSend = self.choose(samples, skipped: &skipped, done: &done)
        self.state.withLock { $0.statistics.add(skipped) }

        // A sensor refused once is refused for its other samples too: they wait for the next delivery.
        var refusedSensors = Set<String>()
        return try await UplinkDelivery.round(
            toSend, skipped: done, readingIDs: \.ids, clock: self.clock, log: self.log,
            skip: { refusedSensors.contains($0.sensorID) },
            send: { sample throws(SensorCommunityError) in try await self.send(sample) },
            accepted: { sample, sentAt in
                self.state.withLock { state in
                    state.statistics.countAccepted(at: sentAt)
                    state.statistics.readingsSent += sample.ids.count
                    state.lastSent[sample.sensorID] = max(sample.measuredAt, state.lastSent[sample.sensorID] ?? .distantPast)
                }
            },
            failed: { sample, error in
                self.state.withLock { $0.statistics.countFailed(error) }
                refusedSensors.insert(sample.sensorID)
                return error.stopsDelivery ? .uplink : .request
            }
        )
    }

    /// Which samples get a request, oldest first. With a minimum interval only the newest sample of each sensor
    /// is a candidate, and only when the interval since the last one sent has passed; the others are done.
    private func choose(_ samples: [Sample], skipped: inout Statistics, done: inout Set<Int64>) -> [Sample] {
        let interval = self.configuration.minimumInterval.timeInterval
        guard interval > 0 else {
            return samples.sorted { $0.measuredAt < $1.measuredAt }
        }
        let lastSent = self.state.withLock { $0.lastSent }
        var newest: [String: Sample] = [:]
        for sample in samples {
            if let current = newest[sample.sensorID], current.measuredAt >= sample.measuredAt {
                skipped.skippedSuperseded += sample.ids.count
                done.formUnion(sample.ids)
                continue
            }
            if let current = newest[sample.sensorID] {
                skipped.skippedSuperseded += current.ids.count
                done.formUnion(current.ids)
            }
            newest[sample.sensorID] = sample
        }
        var chosen: [Sample] = []
        for sample in newest.values {
            // A sample older than the last one sent means the clock was set back: start afresh.
            if let last = lastSent[sample.sensorID], sample.measuredAt >= last,
                sample.measuredAt.timeIntervalSince(last) < interval
            {
                skipped.skippedSuperseded += sample.ids.count
                done.formUnion(sample.ids)
                continue
            }
            chosen.append(sample)
        }
        return chosen.sorted { $0.measuredAt < $1.measuredAt }
    }

    /// The value as sensor.community wants it: two decimals, pressure in Pa, GPS coordinates with six.
    private static func format(_ reading: Reading) -> String? {
        switch reading.quantity {
        case .pressure: DecimalText.fixed(reading.value * 100, fractionDigits: 2)
        case .latitude, .longitude: DecimalText.fixed(reading.value, fractionDigits: 6)
        default: DecimalText.fixed(reading.value, fractionDigits: 2)
        }
    }

    private struct Payload: Encodable {
        struct Value: Encodable {
            var valueType: String
            var value: String
            enum CodingKeys: String, CodingKey {
                case valueType = "value_type"
                case value
            }
        }

        var softwareVersion: String
        var sensordatavalues: [Value]
        enum CodingKeys: String, CodingKey {
            case softwareVersion = "software_version"
            case sensordatavalues
        }
    }

    /// The request body for one sample (internal for tests).
    func body(for kind: SensorCommunitySensorKind, values: [Quantity: String], measuredAt: Date) throws -> Data {
        var entries = kind.valueTypes.compactMap { entry in
            values[entry.quantity].map { Payload.Value(valueType: entry.valueType, value: $0) }
        }
        if kind == .gps {
            // airRohr sends the fix time along: "2026-09-21T12:30:00.000", UTC without zone letter.
            entries.append(Payload.Value(valueType: "timestamp", value: String(OpenDataTime.rfc3339(measuredAt).dropLast())))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(Payload(softwareVersion: self.configuration.softwareVersion, sensordatavalues: entries))
    }

    private func send(_ sample: Sample) async throws(SensorCommunityError) {
        let config = self.configuration
        let pin = sample.kind.pin
        let body: Data
        do {
            body = try self.body(for: sample.kind, values: sample.values, measuredAt: sample.measuredAt)
        } catch {
            throw .rejected(status: 0, pin: pin, message: "could not encode the request: \(error)")
        }
        let answer = try await self.http.post(
            config.endpoint,
            headers: [
                ("Content-Type", "application/json"),
                ("X-Sensor", config.sensorUID),
                ("X-Pin", String(pin)),
                ("User-Agent", "\(config.softwareVersion)/\(config.sensorUID)"),
            ],
            body: body,
            transportFailure: SensorCommunityError.transport
        )
        switch answer.statusClass {
        case .accepted:
            return
        case .unauthorized:
            throw .sensorNotRegistered(sensorUID: config.sensorUID, status: answer.status, message: answer.serviceMessage)
        case .slowDown:
            throw .rateLimited(status: answer.status)
        case .refused where answer.status == 400 && answer.serviceMessage.localizedCaseInsensitiveContains("could not be selected"):
            throw .pinNotRegistered(sensorUID: config.sensorUID, pin: pin, kind: sample.kind, message: answer.serviceMessage)
        case .refused:
            throw .rejected(status: answer.status, pin: pin, message: answer.serviceMessage)
        case .serverTrouble:
            throw .serverError(status: answer.status, message: answer.serviceMessage)
        case .unexpected:
            throw .unexpectedStatus(answer.status, message: answer.serviceMessage)
        }
    }
}

extension SensorCommunityUplink.Statistics: UplinkRequestStatistics {
    fileprivate mutating func add(_ skipped: Self) {
        self.skippedTooOld += skipped.skippedTooOld
        self.skippedAheadOfClock += skipped.skippedAheadOfClock
        self.skippedUnlistedSensor += skipped.skippedUnlistedSensor
        self.skippedUnsupportedQuantity += skipped.skippedUnsupportedQuantity
        self.skippedQuality += skipped.skippedQuality
        self.skippedInvalidValue += skipped.skippedInvalidValue
        self.skippedSuperseded += skipped.skippedSuperseded
    }
}
