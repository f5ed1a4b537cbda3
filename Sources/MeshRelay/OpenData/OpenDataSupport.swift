import Foundation
import KiezboxCore
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

// Shared plumbing of the open-data uplinks (sensor.community, openSenseMap): number formatting, timestamps,
// the HTTP exchange and reading a service's error answer. Nothing here is public.

/// Decimal text for values the platforms take as strings.
///
/// Locale-independent (always "." and no grouping), never in exponent notation, rounded half away from zero.
enum DecimalText {
    /// `value` with exactly `fractionDigits` digits after the point ("101325.00", "-3.46"), or nil when the
    /// value is not finite or too large to be a measurement.
    static func fixed(_ value: Double, fractionDigits: Int) -> String? {
        precondition((0...9).contains(fractionDigits))
        guard value.isFinite else { return nil }
        var scale: UInt64 = 1
        for _ in 0..<fractionDigits { scale *= 10 }
        let scaled = (value * Double(scale)).rounded(.toNearestOrAwayFromZero)
        guard abs(scaled) < 9e15 else { return nil }
        let units = Int64(scaled)
        let magnitude = units.magnitude
        var text = units < 0 ? "-" : ""
        text += String(magnitude / scale)
        if fractionDigits > 0 {
            let fraction = String(magnitude % scale)
            text += "." + String(repeating: "0", count: fractionDigits - fraction.count) + fraction
        }
        return text
    }

    /// `value` with at most `maximumFractionDigits` digits after the point and no trailing zeros
    /// ("21.5", "55", "-0.25"), or nil when the value is not finite or too large.
    static func trimmed(_ value: Double, maximumFractionDigits: Int) -> String? {
        guard var text = self.fixed(value, fractionDigits: maximumFractionDigits) else { return nil }
        if text.contains(".") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        return text == "-0" ? "0" : text
    }
}

enum OpenDataTime {
    /// RFC 3339 / ISO 8601 UTC with milliseconds: "2026-09-21T12:30:00.000Z".
    static func rfc3339(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}

/// A header value or identifier that goes into an HTTP header or URL: no control characters, no spaces.
func isHeaderSafeToken(_ text: String) -> Bool {
    !text.isEmpty && text.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F }
}

/// What came back from one POST.
struct HTTPAnswer: Sendable {
    var status: Int
    var body: Data

    /// The service's own words about a refusal, short enough for a log line and a status page.
    ///
    /// Understands Django REST framework answers (sensor.community: `{"detail": "..."}`, `["..."]`,
    /// `{"field": ["..."]}`), restify answers (openSenseMap: `{"code": "...", "message": "..."}`), a JSON string,
    /// and plain text.
    var serviceMessage: String {
        if let json = try? JSONSerialization.jsonObject(with: self.body, options: [.fragmentsAllowed]) {
            if let text = Self.flatten(json), !text.isEmpty { return Self.shortened(text) }
        }
        let text = String(decoding: self.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "no message" : Self.shortened(text)
    }

    /// What the status says, in the classes both open-data services answer with.
    var statusClass: HTTPStatusClass { HTTPStatusClass(status: self.status) }

    private static func flatten(_ json: Any) -> String? {
        switch json {
        case let text as String:
            return text
        case let list as [Any]:
            return list.compactMap { self.flatten($0) }.joined(separator: "; ")
        case let object as [String: Any]:
            for key in ["message", "detail", "error"] {
                if let text = object[key] as? String { return text }
            }
            return object.keys.sorted().compactMap { key in
                self.flatten(object[key] as Any).map { "\(key): \($0)" }
            }.joined(separator: "; ")
        case let number as NSNumber:
            return number.stringValue
        default:
            return nil
        }
    }

    private static func shortened(_ text: String) -> String {
        text.count > 300 ? String(text.prefix(300)) + "…" : text
    }
}

/// How an open-data service answered, by status; each uplink turns the refusals into its own error cases (and
/// looks closer at the ones its service gives special meaning, such as openSenseMap's 404 or 422).
enum HTTPStatusClass: Sendable, Hashable {
    /// 2xx: the request was taken.
    case accepted
    /// 401, 403: the credentials (sensor ID, access token) are not accepted.
    case unauthorized
    /// 408, 429: slow down and try later.
    case slowDown
    /// Another 4xx: the service refused the request itself.
    case refused
    /// 5xx: the service has trouble.
    case serverTrouble
    /// Neither success nor a known refusal (a redirect that was not followed, 1xx).
    case unexpected

    init(status: Int) {
        switch status {
        case 200...299: self = .accepted
        case 401, 403: self = .unauthorized
        case 408, 429: self = .slowDown
        case 400...499: self = .refused
        case 500...599: self = .serverTrouble
        default: self = .unexpected
        }
    }
}

/// The request never got an HTTP answer: DNS, connection refused, TLS, timeout.
struct HTTPTransportFailure: Error, Sendable {
    var description: String
}

/// One URLSession per uplink: ephemeral (no cookies, no cache), bounded timeouts.
final class OpenDataHTTPClient: Sendable {
    private let session: URLSession
    private let timeout: TimeInterval

    init(timeout: Duration) {
        let configuration = URLSessionConfiguration.ephemeral
        let seconds = max(1, timeout.timeInterval)
        configuration.timeoutIntervalForRequest = seconds
        configuration.timeoutIntervalForResource = seconds * 2
        configuration.httpShouldSetCookies = false
        configuration.httpCookieAcceptPolicy = .never
        configuration.urlCache = nil
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        self.session = URLSession(configuration: configuration)
        self.timeout = seconds
    }

    deinit {
        self.session.finishTasksAndInvalidate()
    }

    /// POSTs `body`; returns whatever status came back. Throws ``HTTPTransportFailure`` when no answer came,
    /// and `CancellationError` when the calling task was cancelled.
    func post(_ url: URL, headers: [(name: String, value: String)], body: Data) async throws -> HTTPAnswer {
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: self.timeout)
        request.httpMethod = "POST"
        for header in headers {
            request.setValue(header.value, forHTTPHeaderField: header.name)
        }
        request.httpBody = body
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await self.session.data(for: request)
        } catch {
            if Task.isCancelled { throw CancellationError() }
            if let urlError = error as? URLError {
                throw HTTPTransportFailure(description: Self.describe(urlError))
            }
            throw HTTPTransportFailure(description: String(describing: error))
        }
        guard let http = response as? HTTPURLResponse else {
            throw HTTPTransportFailure(description: "the answer was not HTTP")
        }
        return HTTPAnswer(status: http.statusCode, body: data)
    }

    /// POSTs `body`; returns whatever status came back. When no answer came, throws `transportFailure` made from
    /// what went wrong ("connection refused"), or from "cancelled" when the calling task was cancelled (a delivery
    /// round turns that into `CancellationError`).
    func post<Failure: Error>(
        _ url: URL,
        headers: [(name: String, value: String)],
        body: Data,
        transportFailure: (String) -> Failure
    ) async throws(Failure) -> HTTPAnswer {
        do {
            return try await self.post(url, headers: headers, body: body)
        } catch let failure as HTTPTransportFailure {
            throw transportFailure(failure.description)
        } catch {
            throw transportFailure("cancelled")
        }
    }

    private static func describe(_ error: URLError) -> String {
        switch error.code {
        case .cannotConnectToHost: "connection refused"
        case .cannotFindHost, .dnsLookupFailed: "host name not found (DNS)"
        case .timedOut: "no answer in time"
        case .notConnectedToInternet: "not connected to the internet"
        case .networkConnectionLost: "connection lost"
        case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate,
            .serverCertificateNotYetValid, .serverCertificateHasUnknownRoot:
            "TLS failed (is the box's clock right?)"
        default: "network error \(error.code.rawValue): \(error.localizedDescription)"
        }
    }
}
