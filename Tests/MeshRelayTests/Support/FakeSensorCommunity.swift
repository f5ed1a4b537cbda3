import Foundation
import Synchronization

/// sensor.community's push API as documented (protocols.md §7.1) and as opendata-stuttgart/feinstaub-api
/// answers: `POST /v1/push-sensor-data/`, JSON, `X-Sensor` a registered device, `X-Pin` one of its sensors.
///
/// Answers like the real service: 201 with the saved object; 403 `{"detail": "Node not found in database."}`
/// for an unknown X-Sensor; 400 `["sensor could not be selected."]` when a device with several sensors has
/// none on the X-Pin (with a single sensor the real service ignores X-Pin, and so does this one); 400 with
/// field errors for a bad body; 415 for another content type. Stricter than the real service on purpose, to
/// hold the uplink to the documented contract: value_type names must belong to the pin's sensor type, values
/// must be strings with two decimals (six for GPS lat/lon), software_version must be there.
final class FakeSensorCommunity: Sendable {
    struct Value: Sendable, Hashable {
        var valueType: String
        var value: String
    }

    /// An accepted push.
    struct Push: Sendable, Hashable {
        var sensorUID: String
        var pin: Int
        var softwareVersion: String
        var values: [Value]

        func value(_ valueType: String) -> String? { self.values.first { $0.valueType == valueType }?.value }
    }

    static let path = "/v1/push-sensor-data/"

    /// value_type names per X-Pin (airRohr names without the sensor prefix).
    static let valueTypesByPin: [Int: Set<String>] = [
        1: ["P0", "P1", "P2", "P4", "N05", "N1", "N25", "N4", "N10", "TS"],
        3: ["temperature", "pressure"],
        7: ["temperature", "humidity"],
        9: ["lat", "lon", "height", "timestamp"],
        11: ["temperature", "pressure", "humidity"],
        13: ["temperature"],
        17: ["co2_ppm", "temperature", "humidity"],
    ]

    private struct State {
        var devices: [String: Set<Int>]
        var failures: [Int] = []
        var pushes: [Push] = []
        var nextID = 1
    }

    /// The state, in a class of its own so the server's handler can share it.
    private final class Shared: Sendable {
        let state: Mutex<State>
        init(_ state: State) { self.state = Mutex(state) }
    }

    private let shared: Shared
    private let server: LoopbackHTTPServer

    /// - Parameter devices: registered X-Sensor IDs and the pins of their sensors.
    init(devices: [String: Set<Int>]) throws {
        let shared = Shared(State(devices: devices))
        self.shared = shared
        self.server = try LoopbackHTTPServer { request in Self.handle(request, state: shared.state) }
    }

    var endpoint: URL { self.server.url(Self.path) }
    var pushes: [Push] { self.shared.state.withLock { $0.pushes } }
    var requests: [RecordedRequest] { self.server.requests }

    /// The next `times` requests are answered with `status` (a server in trouble).
    func failNext(_ status: Int, times: Int = 1) {
        self.shared.state.withLock { $0.failures += Array(repeating: status, count: times) }
    }

    func stop() { self.server.stop() }

    private static func handle(_ request: RecordedRequest, state: borrowing Mutex<State>) -> CannedResponse {
        if let status = state.withLock({ $0.failures.isEmpty ? nil : $0.failures.removeFirst() }) {
            return .text(status, "<h1>Server Error (\(status))</h1>")
        }
        guard request.path == Self.path else { return .text(404, "Not Found") }
        guard request.method == "POST" else {
            return .json(405, object: ["detail": "Method \"\(request.method)\" not allowed."])
        }
        let contentType = request.header("Content-Type") ?? ""
        guard contentType.lowercased().hasPrefix("application/json") else {
            return .json(415, object: ["detail": "Unsupported media type \"\(contentType)\" in request."])
        }
        guard let uid = request.header("X-Sensor") else {
            return .json(403, object: ["detail": "Authentication credentials were not provided."])
        }
        guard let pins = state.withLock({ $0.devices[uid] }) else {
            return .json(403, object: ["detail": "Node not found in database."])
        }
        guard let object = (try? JSONSerialization.jsonObject(with: request.body)) as? [String: Any] else {
            return .json(400, object: ["detail": "JSON parse error - expected an object"])
        }
        guard let list = object["sensordatavalues"] as? [Any] else {
            return .json(400, object: ["sensordatavalues": ["This field is required."]])
        }
        guard !list.isEmpty else { return .json(400, object: ["sensordatavalues was empty. Nothing to save."]) }
        guard let software = object["software_version"] as? String, !software.isEmpty else {
            return .json(400, object: ["software_version": ["This field is required."]])
        }
        let pinText = request.header("X-Pin") ?? "-"
        let pin = Int(pinText)
        let selected: Int? = pins.count == 1 ? pins.first : pin.flatMap { pins.contains($0) ? $0 : nil }
        guard let selected else { return .json(400, object: ["sensor could not be selected."]) }
        var values: [Value] = []
        for item in list {
            guard let entry = item as? [String: Any], let valueType = entry["value_type"] as? String,
                let value = entry["value"] as? String
            else {
                return .json(400, object: ["sensordatavalues": ["value_type and value must be strings"]])
            }
            guard Self.valueTypesByPin[selected]?.contains(valueType) == true else {
                return .json(400, object: ["sensordatavalues": ["value_type \"\(valueType)\" is not sent on pin \(selected)"]])
            }
            let digits = valueType == "lat" || valueType == "lon" ? 6 : 2
            guard valueType == "timestamp" || Self.isDecimal(value, fractionDigits: digits) else {
                return .json(400, object: ["sensordatavalues": ["value \"\(value)\" of \(valueType) is not a number with \(digits) decimals"]])
            }
            values.append(Value(valueType: valueType, value: value))
        }
        let id = state.withLock { state -> Int in
            state.pushes.append(Push(sensorUID: uid, pin: selected, softwareVersion: software, values: values))
            state.nextID += 1
            return state.nextID
        }
        return .json(
            201,
            object: [
                "sensor": id, "sampling_rate": NSNull(), "timestamp": "2026-09-21T12:00:00Z", "software_version": software,
                "sensordatavalues": values.map { ["value_type": $0.valueType, "value": $0.value] },
            ]
        )
    }

    static func isDecimal(_ text: String, fractionDigits: Int) -> Bool {
        var rest = Substring(text)
        if rest.hasPrefix("-") { rest = rest.dropFirst() }
        let parts = rest.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].count == fractionDigits else { return false }
        return (parts[0] + parts[1]).allSatisfy { $0.isASCII && $0.isNumber }
    }
}
