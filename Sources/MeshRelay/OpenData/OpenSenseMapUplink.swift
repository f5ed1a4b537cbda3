public import Foundation
public import KiezboxCore
import Synchronization

// openSenseMap ingest API (sensebox/openSenseMap-API, measurementsController.js and decoding/validators.js):
//
//     POST /boxes/:senseBoxId/data
//     Authorization: <the box's access token>
//     Content-Type: application/json
//     [{"sensor": "<sensor id>", "value": "21.5", "createdAt": "2026-09-21T12:30:00.000Z", "location": [lng, lat, height]}, ...]
//
// → 201 "Measurements saved in box". At most 2500 measurements per request; a createdAt more than one minute
// after the server's clock is refused (422 "Timestamp ... is too far into the future."). The request is
// all-or-nothing: one bad measurement refuses all of them. Because every measurement carries its own
// createdAt, a backlog is backfilled with its real times.

/// A Kiezbox sensor's quantity: what one openSenseMap sensor (a "phenomenon" of the senseBox) receives.
public struct OpenSenseMapSensorKey: Sendable, Hashable, Codable {
    public var sensorID: String
    public var quantity: Quantity

    public init(sensorID: String, quantity: Quantity) {
        self.sensorID = sensorID
        self.quantity = quantity
    }
}

/// Settings of the openSenseMap uplink; every key has a TOML counterpart (see the integration notes).
public struct OpenSenseMapConfiguration: Sendable, Hashable {
    public static let defaultBaseURL = URL(string: "https://api.opensensemap.org")!
    /// The most measurements the API takes in one request.
    public static let measurementLimit = 2500

    public var baseURL: URL
    /// The senseBox id (24 hexadecimal characters, shown on the box's page and in its registration mail).
    public var senseBoxID: String
    /// The box's access token (openSenseMap → box → edit → security). Empty only for old boxes that have
    /// authentication switched off.
    public var accessToken: String
    /// (Kiezbox sensor id, quantity) → openSenseMap sensor id. Readings not listed are not sent.
    public var sensors: [OpenSenseMapSensorKey: String]
    /// When set, every measurement carries this location ([lng, lat, height]); otherwise the box's registered
    /// location applies.
    public var location: GeoPosition?
    /// Measurements per request, and so the relay's batch size for this uplink: 1…2500.
    public var maximumBatch: Int
    /// Readings stamped further than this ahead of the box's clock are held back (the API refuses
    /// createdAt more than a minute in its future).
    public var maximumClockLead: Duration
    /// Only readings of these qualities are sent; openSenseMap has no way to flag the others.
    public var sendQualities: Set<ReadingQuality>
    /// Time for one request, connect to last byte.
    public var requestTimeout: Duration

    public init(
        senseBoxID: String,
        accessToken: String,
        sensors: [OpenSenseMapSensorKey: String],
        location: GeoPosition? = nil,
        baseURL: URL = OpenSenseMapConfiguration.defaultBaseURL,
        maximumBatch: Int = OpenSenseMapConfiguration.measurementLimit,
        maximumClockLead: Duration = .seconds(60),
        sendQualities: Set<ReadingQuality> = [.good],
        requestTimeout: Duration = .seconds(30)
    ) {
        self.baseURL = baseURL
        self.senseBoxID = senseBoxID
        self.accessToken = accessToken
        self.sensors = sensors
        self.location = location
        self.maximumBatch = maximumBatch
        self.maximumClockLead = maximumClockLead
        self.sendQualities = sendQualities
        self.requestTimeout = requestTimeout
    }

    /// `<base>/boxes/<senseBoxID>/data`
    public var dataURL: URL {
        self.baseURL.appendingPathComponent("boxes").appendingPathComponent(self.senseBoxID).appendingPathComponent("data")
    }

    /// Throws ``OpenSenseMapError/invalidConfiguration(_:)`` naming the first thing that is wrong.
    public func validate() throws(OpenSenseMapError) {
        func invalid(_ text: String) -> OpenSenseMapError { .invalidConfiguration(text) }
        guard let scheme = self.baseURL.scheme?.lowercased(), scheme == "https" || scheme == "http",
            self.baseURL.host != nil
        else { throw invalid("base_url \"\(self.baseURL.absoluteString)\" is not an http(s) URL") }
        let isLetterOrDigit: (Unicode.Scalar) -> Bool = { $0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil) }
        guard !self.senseBoxID.isEmpty, self.senseBoxID.unicodeScalars.allSatisfy(isLetterOrDigit) else {
            throw invalid("box_id \"\(self.senseBoxID)\" must be the senseBox id (letters and digits only)")
        }
        guard self.accessToken.isEmpty || isHeaderSafeToken(self.accessToken) else {
            throw invalid("access_token must be the token exactly as openSenseMap shows it, without spaces")
        }
        guard !self.sensors.isEmpty else { throw invalid("no sensors are listed, so nothing would be sent") }
        for (key, sensor) in self.sensors.sorted(by: { ($0.key.sensorID, $0.key.quantity.rawValue) < ($1.key.sensorID, $1.key.quantity.rawValue) }) {
            guard isHeaderSafeToken(sensor) else {
                throw invalid("the openSenseMap sensor id for \(key.sensorID)/\(key.quantity.rawValue) is empty or has spaces")
            }
        }
        if let location = self.location, !location.isValid || !(location.altitude?.isFinite ?? true) {
            throw invalid("location \(location.latitude), \(location.longitude) is not on the earth")
        }
        guard (1...Self.measurementLimit).contains(self.maximumBatch) else {
            throw invalid("maximum_batch must be between 1 and \(Self.measurementLimit)")
        }
        guard self.maximumClockLead >= .zero else { throw invalid("maximum_clock_lead must not be negative") }
        guard self.requestTimeout > .zero else { throw invalid("request_timeout must be positive") }
    }
}

/// What went wrong talking to openSenseMap, in words a resident can act on.
public enum OpenSenseMapError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The configuration cannot work; the text says what to change.
    case invalidConfiguration(String)
    /// HTTP 401/403: the access token does not match the box.
    case unauthorized(status: Int, message: String)
    /// HTTP 404: there is no box with this id.
    case boxNotFound(senseBoxID: String, message: String)
    /// HTTP 400/422 about a sensor id: a configured sensor id is not one of this box's sensors.
    case sensorRejected(status: Int, message: String)
    /// HTTP 422 "too far into the future": the server's clock is behind a createdAt we sent.
    case timestampInFuture(message: String)
    /// Every reading offered was stamped further ahead of the box's clock than allowed; they are held back.
    case readingsAheadOfClock(count: Int, earliest: Date, boxTime: Date)
    /// HTTP 413, or 422 "Too many measurements": the request was too big.
    case tooLarge(status: Int, message: String)
    /// Another 4xx: the server refused the request.
    case rejected(status: Int, message: String)
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
            "openSenseMap uplink is misconfigured: \(text)."
        case .unauthorized(let status, let message):
            "openSenseMap refused the box's access token (HTTP \(status): \(message)). Copy the token again from "
                + "openSenseMap (your box → edit → security) into access_token; it changes when you generate a new one."
        case .boxNotFound(let box, let message):
            "openSenseMap has no senseBox \"\(box)\" (HTTP 404: \(message)). Check box_id: it is the id in the "
                + "address of your box's page on opensensemap.org."
        case .sensorRejected(let status, let message):
            "openSenseMap refused a sensor id (HTTP \(status): \(message)). Check the sensor ids in the "
                + "configuration against the sensors of your box on opensensemap.org (box → edit → sensors)."
        case .timestampInFuture(let message):
            "openSenseMap says a measurement time is in the future (HTTP 422: \(message)). The box's clock runs "
                + "ahead; check that it synchronises its time (NTP). Kiezbox retries later."
        case .readingsAheadOfClock(let count, let earliest, let boxTime):
            "\(count) readings are stamped later than the box's clock allows (earliest \(OpenDataTime.rfc3339(earliest)), "
                + "box time \(OpenDataTime.rfc3339(boxTime))). They are kept and sent once the clock has caught up; "
                + "check that the box synchronises its time (NTP)."
        case .tooLarge(let status, let message):
            "openSenseMap found a request too big (HTTP \(status): \(message)). Lower maximum_batch."
        case .rejected(let status, let message):
            "openSenseMap refused the measurements (HTTP \(status): \(message)). Check the configuration; "
                + "if it is right, this is a Kiezbox bug."
        case .rateLimited(let status):
            "openSenseMap asks the box to slow down (HTTP \(status)); Kiezbox retries later."
        case .serverError(let status, let message):
            "openSenseMap has trouble right now (HTTP \(status): \(message)); Kiezbox retries later."
        case .transport(let text):
            "Could not reach openSenseMap (\(text)). Check the box's internet connection and base_url."
        case .unexpectedStatus(let status, let message):
            "openSenseMap answered HTTP \(status) (\(message)). Check base_url in the configuration."
        }
    }
}

/// Backfills readings to an openSenseMap senseBox, each with its measurement time.
///
/// What happens to a reading handed to ``deliver(_:)``:
/// * in a request answered 2xx (201) → done;
/// * not listed in ``OpenSenseMapConfiguration/sensors`` (battery voltage, a sensor the box does not have),
///   of a quality not sent, or not a finite number → skipped: done, counted;
/// * stamped more than ``OpenSenseMapConfiguration/maximumClockLead`` ahead of the box's clock → held back:
///   not done, counted, logged once per episode (see ``deliver(_:)``);
/// * in a request refused (4xx) or not answered (5xx, network) → not done; it comes again.
///
/// No refusal is acknowledged. Every refusal this API gives for a well-formed request is either a setting the
/// resident can fix (token 401/403, box id 404, sensor id 400/422) or passes by itself (422 future timestamp,
/// 429, 5xx); acknowledging would throw away exactly the backlog that openSenseMap, unlike sensor.community, can
/// still take once the setting is fixed. The uplink's own checks keep out what would be refused for ever
/// (non-finite values, a location off the earth, more than 2500 measurements), so nothing can block the queue
/// for ever; the store's size limit bounds what waits meanwhile.
public final class OpenSenseMapUplink: Uplink {
    public struct Statistics: Sendable, Hashable {
        /// Requests answered 2xx, and the measurements they carried.
        public var requestsAccepted = 0
        public var measurementsSent = 0
        /// Requests refused or not answered.
        public var requestsFailed = 0
        public var skippedUnmapped = 0
        public var skippedQuality = 0
        public var skippedInvalidValue = 0
        /// Readings held back because they were ahead of the box's clock (each time they were offered).
        public var heldBackAheadOfClock = 0
        public var lastSuccess: Date?
        public var lastError: OpenSenseMapError?
    }

    public let name = "opensensemap"
    public let configuration: OpenSenseMapConfiguration
    public var maximumBatch: Int { self.configuration.maximumBatch }

    private struct State {
        var statistics = Statistics()
        /// Whether the current run of held-back readings has been logged.
        var aheadOfClockLogged = false
    }

    private let clock: any KiezboxClock
    private let http: OpenDataHTTPClient
    private let log: @Sendable (String) -> Void
    private let state = Mutex(State())

    /// - Parameters:
    ///   - clock: the box's clock; "ahead" is judged by its ``KiezboxClock/currentDate()``.
    ///   - log: receives a line when readings are first held back, and for every failure that is not thrown
    ///     (because other readings were done).
    public init(
        configuration: OpenSenseMapConfiguration,
        clock: any KiezboxClock = LiveClock(),
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) throws(OpenSenseMapError) {
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

    /// One element of the JSON array.
    struct Measurement: Encodable, Sendable {
        var sensor: String
        var value: String
        var createdAt: String
        var location: [Double]?
    }

    /// Delivers `batch` in requests of at most ``maximumBatch`` measurements, oldest first.
    ///
    /// Readings stamped more than ``OpenSenseMapConfiguration/maximumClockLead`` after the box's clock are held
    /// back, never sent. The usual cause is the clock, not the reading: a Raspberry Pi has no real-time clock,
    /// so after a blackout it boots with the time fake-hwclock saved last (minutes to hours behind) until NTP
    /// answers over a working uplink. Readings buffered before the blackout then look "in the future". Sending
    /// them would not help — the API refuses a createdAt more than a minute past its own clock, and with it the
    /// whole request — and dropping them would lose good data. Held back, they go out once the clock has caught
    /// up. The first time readings are held back it is logged; when every reading offered is held back the
    /// delivery throws ``OpenSenseMapError/readingsAheadOfClock(count:earliest:boxTime:)`` so the relay backs
    /// off instead of asking again at once.
    public func deliver(_ batch: [StoredReading]) async throws -> Set<Int64> {
        let config = self.configuration
        let now = self.clock.currentDate()
        let latest = now.addingTimeInterval(config.maximumClockLead.timeInterval)
        let location = config.location.map { position in
            [position.longitude, position.latitude] + (position.altitude.map { [$0] } ?? [])
        }
        var done = Set<Int64>()
        var skipped = Statistics()
        var heldBack: [Date] = []
        var measurements: [(id: Int64, measurement: Measurement)] = []

        for stored in batch {
            let reading = stored.reading
            let key = OpenSenseMapSensorKey(sensorID: reading.sensorID, quantity: reading.quantity)
            guard let sensor = config.sensors[key] else {
                skipped.skippedUnmapped += 1
                done.insert(stored.id)
                continue
            }
            guard config.sendQualities.contains(reading.quality) else {
                skipped.skippedQuality += 1
                done.insert(stored.id)
                continue
            }
            guard let value = DecimalText.trimmed(reading.value, maximumFractionDigits: 6) else {
                skipped.skippedInvalidValue += 1
                done.insert(stored.id)
                continue
            }
            guard reading.measuredAt <= latest else {
                heldBack.append(reading.measuredAt)
                continue
            }
            measurements.append(
                (stored.id, Measurement(sensor: sensor, value: value, createdAt: OpenDataTime.rfc3339(reading.measuredAt), location: location))
            )
        }
        skipped.heldBackAheadOfClock = heldBack.count

        let logHeldBack = self.state.withLock { state -> Bool in
            state.statistics.skippedUnmapped += skipped.skippedUnmapped
            state.statistics.skippedQuality += skipped.skippedQuality
            state.statistics.skippedInvalidValue += skipped.skippedInvalidValue
            state.statistics.heldBackAheadOfClock += skipped.heldBackAheadOfClock
            if heldBack.isEmpty {
                state.aheadOfClockLogged = false
                return false
            }
            defer { state.aheadOfClockLogged = true }
            return !state.aheadOfClockLogged
        }
        let aheadOfClock = heldBack.min().map {
            OpenSenseMapError.readingsAheadOfClock(count: heldBack.count, earliest: $0, boxTime: now)
        }
        if logHeldBack, let aheadOfClock { self.log(aheadOfClock.description) }

        let requests = stride(from: 0, to: measurements.count, by: config.maximumBatch).map { start in
            measurements[start..<min(start + config.maximumBatch, measurements.count)]
        }
        return try await UplinkDelivery.round(
            requests, skipped: done, readingIDs: { $0.map(\.id) }, clock: self.clock, log: self.log,
            nothingDone: aheadOfClock,
            send: { chunk throws(OpenSenseMapError) in try await self.send(chunk.map(\.measurement)) },
            accepted: { chunk, sentAt in
                self.state.withLock { state in
                    state.statistics.countAccepted(at: sentAt)
                    state.statistics.measurementsSent += chunk.count
                }
            },
            failed: { _, error in
                self.state.withLock { $0.statistics.countFailed(error) }
                // The request is all-or-nothing and the next chunk would meet the same refusal.
                return .uplink
            }
        )
    }

    /// The request body (internal for tests).
    static func body(_ measurements: [Measurement]) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(measurements)
    }

    private func send(_ measurements: [Measurement]) async throws(OpenSenseMapError) {
        let config = self.configuration
        let body: Data
        do {
            body = try Self.body(measurements)
        } catch {
            throw .rejected(status: 0, message: "could not encode the request: \(error)")
        }
        var headers: [(name: String, value: String)] = [("Content-Type", "application/json")]
        if !config.accessToken.isEmpty { headers.append(("Authorization", config.accessToken)) }
        let answer = try await self.http.post(
            config.dataURL, headers: headers, body: body, transportFailure: OpenSenseMapError.transport
        )
        let message = { answer.serviceMessage }
        switch answer.statusClass {
        case .accepted:
            return
        case .unauthorized:
            throw .unauthorized(status: answer.status, message: message())
        case .slowDown:
            throw .rateLimited(status: answer.status)
        case .refused where answer.status == 404:
            throw .boxNotFound(senseBoxID: config.senseBoxID, message: message())
        case .refused where answer.status == 413:
            throw .tooLarge(status: 413, message: message())
        case .refused where answer.status == 400 || answer.status == 422:
            let text = message()
            if text.localizedCaseInsensitiveContains("future") {
                throw .timestampInFuture(message: text)
            } else if text.localizedCaseInsensitiveContains("too many measurements") {
                throw .tooLarge(status: answer.status, message: text)
            } else if text.localizedCaseInsensitiveContains("sensor") {
                throw .sensorRejected(status: answer.status, message: text)
            }
            throw .rejected(status: answer.status, message: text)
        case .refused:
            throw .rejected(status: answer.status, message: message())
        case .serverTrouble:
            throw .serverError(status: answer.status, message: message())
        case .unexpected:
            throw .unexpectedStatus(answer.status, message: message())
        }
    }
}

extension OpenSenseMapUplink.Statistics: UplinkRequestStatistics {}
