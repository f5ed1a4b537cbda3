import Foundation
import Synchronization

/// openSenseMap's `POST /boxes/:senseBoxId/data` in its JSON-array form, as documented (protocols.md §7.2)
/// and as sensebox/openSenseMap-API answers (restify errors: `{"code": "...", "message": "..."}`):
///
/// * 404 "Box not found" for another box id; 415 for another content type;
/// * 401 "Box access token not valid!" for a wrong or missing Authorization;
/// * 422 for an empty array, more than 2500 measurements ("Too many measurements. Please submit at most 2500
///   measurements at once."), a missing/invalid sensor id or value, a bad timestamp, a createdAt more than one
///   minute after the server's clock ("Timestamp … is too far into the future. in measurement {…}"), a bad
///   location or a location without createdAt;
/// * 400 "Measurement for sensor with id … does not belong to box";
/// * 201 "Measurements saved in box" — all or nothing, like the real service.
///
/// The server's clock is injected, so a test can put it behind or ahead of the box's.
final class FakeOpenSenseMap: Sendable {
    struct Saved: Sendable, Hashable {
        var sensor: String
        var value: String
        var createdAt: String
        var location: [Double]?
    }

    static let limit = 2500

    private struct State {
        /// Planned answers for the next requests: a status to fail with, or nil to answer normally.
        var planned: [Int?] = []
        var saved: [Saved] = []
        var acceptedRequestSizes: [Int] = []
    }

    private final class Shared: Sendable {
        let state = Mutex(State())
        let boxID: String
        let token: String
        let sensorIDs: Set<String>
        let now: @Sendable () -> Date

        init(boxID: String, token: String, sensorIDs: Set<String>, now: @escaping @Sendable () -> Date) {
            self.boxID = boxID
            self.token = token
            self.sensorIDs = sensorIDs
            self.now = now
        }
    }

    private let shared: Shared
    private let server: LoopbackHTTPServer

    init(boxID: String, token: String, sensorIDs: Set<String>, now: @escaping @Sendable () -> Date) throws {
        let shared = Shared(boxID: boxID, token: token, sensorIDs: sensorIDs, now: now)
        self.shared = shared
        self.server = try LoopbackHTTPServer { request in Self.handle(request, shared) }
    }

    /// The base URL to configure (no trailing slash).
    var baseURL: URL { self.server.url("") }
    var saved: [Saved] { self.shared.state.withLock { $0.saved } }
    var acceptedRequestSizes: [Int] { self.shared.state.withLock { $0.acceptedRequestSizes } }
    var requests: [RecordedRequest] { self.server.requests }

    /// The next `times` requests are answered with `status` (a server in trouble).
    func failNext(_ status: Int, times: Int = 1) {
        self.shared.state.withLock { $0.planned += Array(repeating: status, count: times) }
    }

    /// Plans the next answers: a status to fail with, or nil to answer normally.
    func planNext(_ answers: [Int?]) {
        self.shared.state.withLock { $0.planned += answers }
    }

    func stop() { self.server.stop() }

    private static func error(_ status: Int, _ code: String, _ message: String) -> CannedResponse {
        .json(status, object: ["code": code, "message": message])
    }

    private static func handle(_ request: RecordedRequest, _ shared: Shared) -> CannedResponse {
        let planned: Int?? = shared.state.withLock { $0.planned.isEmpty ? nil : $0.planned.removeFirst() }
        if case .some(.some(let status)) = planned {
            return Self.error(status, "InternalServer", "simulated failure \(status)")
        }
        let parts = request.path.split(separator: "/", omittingEmptySubsequences: true)
        guard parts.count == 3, parts[0] == "boxes", parts[2] == "data" else {
            return Self.error(404, "ResourceNotFound", "\(request.path) does not exist")
        }
        guard request.method == "POST" else {
            return Self.error(405, "MethodNotAllowed", "\(request.method) is not allowed")
        }
        guard parts[1] == shared.boxID else { return Self.error(404, "NotFound", "Box not found") }
        let contentType = (request.header("Content-Type") ?? "").lowercased()
        guard contentType == "application/json" || contentType == "application/json; charset=utf-8" else {
            return Self.error(415, "UnsupportedMediaType", "Unsupported content-type.")
        }
        guard request.header("Authorization") == shared.token else {
            return Self.error(401, "Unauthorized", "Box access token not valid!")
        }
        guard let json = try? JSONSerialization.jsonObject(with: request.body) else {
            return Self.error(400, "InvalidContent", "Invalid JSON")
        }
        guard let list = json as? [Any] else {
            return Self.error(422, "UnprocessableEntity", "this fake takes only the JSON array form")
        }
        guard !list.isEmpty else {
            return Self.error(422, "UnprocessableEntity", "Cannot save empty or invalid measurements.")
        }
        guard list.count <= Self.limit else {
            return Self.error(
                422, "UnprocessableEntity", "Too many measurements. Please submit at most 2500 measurements at once."
            )
        }
        let latest = shared.now().addingTimeInterval(60)
        var measurements: [Saved] = []
        for item in list {
            let shown = String(decoding: (try? JSONSerialization.data(withJSONObject: item, options: [.sortedKeys, .fragmentsAllowed])) ?? Data(), as: UTF8.self)
            func invalid(_ text: String) -> CannedResponse {
                Self.error(422, "UnprocessableEntity", "\(text) in measurement \(shown)")
            }
            guard let entry = item as? [String: Any] else { return invalid("Invalid measurement") }
            guard let sensor = entry["sensor"] as? String, !sensor.isEmpty else { return invalid("Missing sensor id") }
            guard let value = entry["value"] as? String, !value.isEmpty else { return invalid("Missing value") }
            guard let number = Double(value), number.isFinite else { return invalid("Invalid value") }
            var createdAtText = ""
            if let createdAt = entry["createdAt"] {
                guard let text = createdAt as? String, let date = Self.parseRFC3339(text) else {
                    return invalid("Invalid RFC 3339 timestamp")
                }
                if date > latest {
                    return invalid("Timestamp \(text) is too far into the future.")
                }
                createdAtText = text
            }
            var location: [Double]?
            if let raw = entry["location"] {
                guard !createdAtText.isEmpty else { return invalid("location requires createdAt") }
                guard let coordinates = raw as? [Double], (2...3).contains(coordinates.count),
                    abs(coordinates[0]) <= 180, abs(coordinates[1]) <= 90
                else { return invalid("missing latitude or longitude in location") }
                location = coordinates
            }
            measurements.append(Saved(sensor: sensor, value: value, createdAt: createdAtText, location: location))
        }
        for measurement in measurements where !shared.sensorIDs.contains(measurement.sensor) {
            return Self.error(
                400, "BadRequest", "Measurement for sensor with id \(measurement.sensor) does not belong to box"
            )
        }
        shared.state.withLock { state in
            state.saved += measurements
            state.acceptedRequestSizes.append(measurements.count)
        }
        return .json(201, object: "Measurements saved in box")
    }

    static func parseRFC3339(_ text: String) -> Date? {
        if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return date }
        return try? Date(text, strategy: Date.ISO8601FormatStyle())
    }
}
