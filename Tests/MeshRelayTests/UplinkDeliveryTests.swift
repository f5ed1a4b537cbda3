import Foundation
import KiezboxCore
import Synchronization
import Testing

@testable import MeshRelay

/// A failure as an uplink would throw it, named so the test can tell which one came out.
private struct RoundFailure: Error, Hashable, CustomStringConvertible {
    var name: String
    var description: String { "failure \(self.name)" }
}

/// One request of the round: the readings it carries, and how it turns out when sent.
private struct RoundRequest: Sendable {
    enum Outcome: Sendable { case acknowledged, fails(RoundFailure, UplinkFailureReach) }
    var ids: [Int64]
    var outcome: Outcome
    var cancelsTask = false
}

/// What the round told the uplink, in order.
private final class RoundRecord: Sendable {
    private let events = Mutex<[String]>([])
    var all: [String] { self.events.withLock { $0 } }
    func add(_ event: String) { self.events.withLock { $0.append(event) } }
}

private func runRound(
    _ requests: [RoundRequest], skipped: Set<Int64> = [], nothingDone: RoundFailure? = nil,
    skip: @escaping @Sendable (RoundRequest) -> Bool = { _ in false }, record: RoundRecord, log: LogLines
) async throws -> Set<Int64> {
    try await UplinkDelivery.round(
        requests, skipped: skipped, readingIDs: \.ids, clock: testClock(), log: log.sink, nothingDone: nothingDone,
        skip: skip,
        send: { request throws(RoundFailure) in
            record.add("send \(request.ids)")
            if request.cancelsTask { withUnsafeCurrentTask { $0?.cancel() } }
            if case .fails(let failure, _) = request.outcome { throw failure }
        },
        accepted: { request, sentAt in record.add("accepted \(request.ids) at \(sentAt == testStart)") },
        failed: { request, failure in
            record.add("failed \(request.ids): \(failure.name)")
            guard case .fails(_, let reach) = request.outcome else { return .uplink }
            return reach
        }
    )
}

@Suite("Uplink delivery round")
struct UplinkDeliveryTests {
    @Test("acknowledged requests and skipped readings are done; a failure of one request does not stop the others")
    func doneIDs() async throws {
        let record = RoundRecord()
        let log = LogLines()
        let done = try await runRound(
            [
                RoundRequest(ids: [1, 2], outcome: .acknowledged),
                RoundRequest(ids: [3], outcome: .fails(RoundFailure(name: "A"), .request)),
                RoundRequest(ids: [4, 5], outcome: .acknowledged),
            ],
            skipped: [9], record: record, log: log
        )
        #expect(done == [1, 2, 4, 5, 9])
        #expect(
            record.all == [
                "send [1, 2]", "accepted [1, 2] at true", "send [3]", "failed [3]: A", "send [4, 5]", "accepted [4, 5] at true",
            ]
        )
        // Something was done, so the failure is logged with what was done instead of thrown.
        #expect(log.all == ["failure A (5 other readings were sent or skipped.)"])
    }

    @Test("a failure that reaches the whole uplink stops the round")
    func uplinkFailureStops() async throws {
        let record = RoundRecord()
        let log = LogLines()
        let done = try await runRound(
            [
                RoundRequest(ids: [1], outcome: .acknowledged),
                RoundRequest(ids: [2], outcome: .fails(RoundFailure(name: "A"), .uplink)),
                RoundRequest(ids: [3], outcome: .acknowledged),
            ],
            record: record, log: log
        )
        #expect(done == [1])
        #expect(record.all == ["send [1]", "accepted [1] at true", "send [2]", "failed [2]: A"])
        #expect(log.all == ["failure A (1 other readings were sent or skipped.)"])
    }

    @Test("the first failure is thrown when nothing at all is done")
    func firstFailureThrown() async throws {
        let record = RoundRecord()
        let log = LogLines()
        await #expect(throws: RoundFailure(name: "A")) {
            try await runRound(
                [
                    RoundRequest(ids: [1], outcome: .fails(RoundFailure(name: "A"), .request)),
                    RoundRequest(ids: [2], outcome: .fails(RoundFailure(name: "B"), .request)),
                ],
                record: record, log: log
            )
        }
        #expect(record.all == ["send [1]", "failed [1]: A", "send [2]", "failed [2]: B"])
        #expect(log.all.isEmpty)
    }

    @Test("skipped readings count as done: a failure beside them is logged, not thrown")
    func skippedReadingsAreDone() async throws {
        let log = LogLines()
        let done = try await runRound(
            [RoundRequest(ids: [1], outcome: .fails(RoundFailure(name: "A"), .uplink))], skipped: [7, 8],
            record: RoundRecord(), log: log
        )
        #expect(done == [7, 8])
        #expect(log.all == ["failure A (2 other readings were sent or skipped.)"])
    }

    @Test("requests the uplink skips are neither sent nor done")
    func skippedRequests() async throws {
        let record = RoundRecord()
        let done = try await runRound(
            [RoundRequest(ids: [1], outcome: .acknowledged), RoundRequest(ids: [2], outcome: .acknowledged)],
            skip: { $0.ids == [1] }, record: record, log: LogLines()
        )
        #expect(done == [2])
        #expect(record.all == ["send [2]", "accepted [2] at true"])
    }

    @Test("nothing done and nothing failed throws the uplink's nothing-done failure, if it has one")
    func nothingDone() async throws {
        let held = RoundFailure(name: "held back")
        await #expect(throws: held) {
            try await runRound([], nothingDone: held, record: RoundRecord(), log: LogLines())
        }
        #expect(try await runRound([], record: RoundRecord(), log: LogLines()).isEmpty)
        // Skipped readings are done, so there is nothing to back off from.
        #expect(try await runRound([], skipped: [3], nothingDone: held, record: RoundRecord(), log: LogLines()) == [3])
    }

    @Test("a request that fails because the task was cancelled ends the round with CancellationError")
    func cancellationRethrown() async throws {
        let record = RoundRecord()
        let log = LogLines()
        let round = Task {
            try await runRound(
                [
                    RoundRequest(ids: [1], outcome: .acknowledged),
                    RoundRequest(ids: [2], outcome: .fails(RoundFailure(name: "A"), .request), cancelsTask: true),
                    RoundRequest(ids: [3], outcome: .acknowledged),
                ],
                record: record, log: log
            )
        }
        await #expect(throws: CancellationError.self) { try await round.value }
        // Not counted as the uplink's failure, not logged, and nothing after it is sent.
        #expect(record.all == ["send [1]", "accepted [1] at true", "send [2]"])
        #expect(log.all.isEmpty)
    }

    @Test("a cancelled task sends nothing")
    func cancelledBeforeStart() async throws {
        let record = RoundRecord()
        let round = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await runRound([RoundRequest(ids: [1], outcome: .acknowledged)], record: record, log: LogLines())
        }
        await #expect(throws: CancellationError.self) { try await round.value }
        #expect(record.all.isEmpty)
    }
}
