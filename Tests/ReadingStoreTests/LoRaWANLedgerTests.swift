import Foundation
import Testing

@testable import ReadingStore

@Suite("LoRaWAN airtime ledger")
struct LoRaWANLedgerTests {
    let start = Date(timeIntervalSince1970: 1_790_000_000)

    @Test("entries survive reopening the store; withdrawn ones and those past 48 h are gone")
    func survivesRestart() async throws {
        try await withTemporaryDirectory { directory in
            do {
                let store = try ReadingStore(directory: directory)
                _ = try await store.recordLoRaWANAirtime(.init(kind: .join, at: self.start, airtime: .microseconds(1_155_072), dataRate: 0, payloadLength: 0))
                let refused = try await store.recordLoRaWANAirtime(
                    .init(kind: .uplink, at: self.start.addingTimeInterval(10), airtime: .microseconds(61_696), dataRate: 5, payloadLength: 12))
                try await store.withdrawLoRaWANAirtime(id: refused)
                _ = try await store.recordLoRaWANAirtime(
                    .init(kind: .uplink, at: self.start.addingTimeInterval(20), airtime: .microseconds(61_696), dataRate: 5, payloadLength: 12))
                _ = try await store.recordLoRaWANAirtime(.init(kind: .downlink, at: self.start.addingTimeInterval(21), airtime: .zero, dataRate: 5, payloadLength: 3))
                try store.close()
            }
            let store = try ReadingStore(directory: directory)
            let entries = try store.loRaWANAirtime(since: self.start)
            #expect(entries.map(\.kind) == [.join, .uplink, .downlink])
            #expect(entries[0].airtime == .microseconds(1_155_072))
            #expect(entries[1].at == self.start.addingTimeInterval(20))
            #expect(entries[1].payloadLength == 12)
            // Two days later the next entry prunes everything older than 48 hours.
            _ = try await store.recordLoRaWANAirtime(
                .init(kind: .uplink, at: self.start.addingTimeInterval(48 * 3600 + 30), airtime: .microseconds(46_336), dataRate: 5, payloadLength: 1))
            #expect(try store.loRaWANAirtime(since: .distantPast).count == 1)
        }
    }
}
