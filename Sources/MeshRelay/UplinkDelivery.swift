import Foundation
import KiezboxCore

// The part of ``Uplink/deliver(_:)`` that every request-sending uplink shares (sensor.community, openSenseMap, a
// LoRaWAN modem): the uplink picks what to send and turns it into requests (HTTP posts, radio frames), marking the
// readings it deliberately skips as done; the round sends the requests, interprets each outcome and reports what
// was acknowledged. What a request is, how it is sent and what its failures mean stay with the uplink.

/// How far a failed request reaches, and so whether the rest of a delivery round is worth trying.
enum UplinkFailureReach: Sendable, Hashable {
    /// Only this request (one sensor's registration, one malformed body): the round goes on with the others.
    case request
    /// Every request (credentials, the service, the network, the modem): the round stops.
    case uplink
}

/// The counters every request-sending uplink keeps in its statistics, updated the same way.
protocol UplinkRequestStatistics {
    associatedtype Failure: Error
    /// Requests the other side acknowledged (HTTP 2xx, LoRaWAN TX done).
    var requestsAccepted: Int { get set }
    /// Requests refused or not answered.
    var requestsFailed: Int { get set }
    var lastSuccess: Date? { get set }
    var lastError: Failure? { get set }
}

extension UplinkRequestStatistics {
    mutating func countAccepted(at date: Date) {
        self.requestsAccepted += 1
        self.lastSuccess = date
    }

    mutating func countFailed(_ failure: Failure) {
        self.requestsFailed += 1
        self.lastError = failure
    }
}

enum UplinkDelivery {
    /// Sends `requests` in order and returns the ids the uplink is done with: `skipped` (readings the uplink
    /// deliberately never sends) and the readings of every acknowledged request.
    ///
    /// * Before each request the task's cancellation is checked; a request that fails because the task was
    ///   cancelled ends the round with `CancellationError`, never with the uplink's failure.
    /// * An acknowledged request adds its `readingIDs` to the result, and `accepted` is told (with the clock's
    ///   time) so the uplink can count it.
    /// * A failed request is handed to `failed`, which counts it and says how far it reaches: ``UplinkFailureReach/uplink``
    ///   stops the round, ``UplinkFailureReach/request`` goes on with the next request. Requests for which `skip`
    ///   says so (e.g. a sensor refused earlier in this round) are passed over and not done.
    /// * At the end, the first failure is thrown when nothing at all is done, so the relay backs off and offers the
    ///   same readings again later; otherwise the done ids are returned (the cursor moves on over them) and the
    ///   failure is logged. When no request failed and nothing is done, `nothingDone` is thrown if given (e.g.
    ///   every reading was held back), for the same back-off.
    ///
    /// - Throws: the first `Failure`, `nothingDone`, or `CancellationError`.
    static func round<Request, Failure: Error & CustomStringConvertible>(
        _ requests: some Sequence<Request>,
        skipped: Set<Int64>,
        readingIDs: (Request) -> [Int64],
        clock: any KiezboxClock,
        log: (String) -> Void,
        nothingDone: Failure? = nil,
        skip: (Request) -> Bool = { _ in false },
        send: (Request) async throws(Failure) -> Void,
        accepted: (Request, _ sentAt: Date) -> Void,
        failed: (Request, Failure) -> UplinkFailureReach
    ) async throws -> Set<Int64> {
        var done = skipped
        var firstFailure: Failure?
        for request in requests where !skip(request) {
            try Task.checkCancellation()
            do throws(Failure) {
                try await send(request)
                done.formUnion(readingIDs(request))
                accepted(request, clock.currentDate())
            } catch {
                if Task.isCancelled { throw CancellationError() }
                firstFailure = firstFailure ?? error
                if failed(request, error) == .uplink { break }
            }
        }
        if let firstFailure {
            if done.isEmpty { throw firstFailure }
            log("\(firstFailure) (\(done.count) other readings were sent or skipped.)")
        } else if done.isEmpty, let nothingDone {
            throw nothingDone
        }
        return done
    }
}
