import Testing

@testable import MeshRelay

/// Time on air against the verified vectors of protocols.md §5 (The Things Stack's toa_test.go, Semtech's
/// AN1200.13 calculator, hand-computed cases).
@Suite("LoRa time on air")
struct LoRaAirtimeTests {
    struct Vector: Sendable, CustomTestStringConvertible {
        var modulation: LoRaModulation
        var phyPayloadLength: Int
        var payloadSymbols: Int
        var microseconds: Int64
        var testDescription: String {
            let m = self.modulation
            return "SF\(m.spreadingFactor.rawValue) BW\(m.bandwidth.hertz / 1000) CR4/\(m.codingRate.rawValue + 4) PL\(self.phyPayloadLength)"
                + (m.explicitHeader ? "" : " implicit") + (m.payloadCRC ? "" : " no CRC") + " LDRO \(m.lowDataRateOptimization)"
        }
    }

    static func lora(
        _ sf: LoRaSpreadingFactor, _ bandwidth: LoRaBandwidth = .khz125, _ codingRate: LoRaCodingRate = .cr4_5,
        explicitHeader: Bool = true, crc: Bool = true, ldro: LowDataRateOptimization = .automatic
    ) -> LoRaModulation {
        LoRaModulation(
            spreadingFactor: sf, bandwidth: bandwidth, codingRate: codingRate, explicitHeader: explicitHeader, payloadCRC: crc,
            lowDataRateOptimization: ldro)
    }

    static let vectors: [Vector] = [
        Vector(modulation: lora(.sf7), phyPayloadLength: 10, payloadSymbols: 28, microseconds: 41_216),
        Vector(modulation: lora(.sf8), phyPayloadLength: 10, payloadSymbols: 23, microseconds: 72_192),
        Vector(modulation: lora(.sf9), phyPayloadLength: 10, payloadSymbols: 23, microseconds: 144_384),
        Vector(modulation: lora(.sf10), phyPayloadLength: 10, payloadSymbols: 23, microseconds: 288_768),
        Vector(modulation: lora(.sf11), phyPayloadLength: 10, payloadSymbols: 23, microseconds: 577_536),
        Vector(modulation: lora(.sf12), phyPayloadLength: 10, payloadSymbols: 18, microseconds: 991_232),
        Vector(modulation: lora(.sf7, .khz250), phyPayloadLength: 10, payloadSymbols: 28, microseconds: 20_608),
        Vector(modulation: lora(.sf7, .khz500), phyPayloadLength: 10, payloadSymbols: 28, microseconds: 10_304),
        Vector(modulation: lora(.sf7, .khz125, .cr4_6), phyPayloadLength: 10, payloadSymbols: 32, microseconds: 45_312),
        Vector(modulation: lora(.sf7, .khz125, .cr4_7), phyPayloadLength: 10, payloadSymbols: 36, microseconds: 49_408),
        Vector(modulation: lora(.sf7, .khz125, .cr4_8), phyPayloadLength: 10, payloadSymbols: 40, microseconds: 53_504),
        Vector(modulation: lora(.sf7), phyPayloadLength: 13, payloadSymbols: 33, microseconds: 46_336),
        Vector(modulation: lora(.sf7), phyPayloadLength: 14, payloadSymbols: 33, microseconds: 46_336),
        Vector(modulation: lora(.sf7), phyPayloadLength: 15, payloadSymbols: 33, microseconds: 46_336),
        Vector(modulation: lora(.sf7), phyPayloadLength: 16, payloadSymbols: 38, microseconds: 51_456),
        Vector(modulation: lora(.sf7), phyPayloadLength: 19, payloadSymbols: 38, microseconds: 51_456),
        Vector(modulation: lora(.sf9, ldro: .off), phyPayloadLength: 13, payloadSymbols: 28, microseconds: 164_864),
        Vector(modulation: lora(.sf12), phyPayloadLength: 51, payloadSymbols: 63, microseconds: 2_465_792),
        Vector(modulation: lora(.sf12, crc: false), phyPayloadLength: 12, payloadSymbols: 18, microseconds: 991_232),
        Vector(modulation: lora(.sf7, explicitHeader: false), phyPayloadLength: 10, payloadSymbols: 23, microseconds: 36_096),
        Vector(modulation: lora(.sf11, ldro: .off), phyPayloadLength: 10, payloadSymbols: 18, microseconds: 495_616),
    ]

    @Test("the verified vectors, exact to the microsecond", arguments: vectors)
    func vector(_ vector: Vector) {
        #expect(vector.modulation.payloadSymbols(phyPayloadLength: vector.phyPayloadLength) == vector.payloadSymbols)
        #expect(vector.modulation.timeOnAir(phyPayloadLength: vector.phyPayloadLength) == .microseconds(vector.microseconds))
    }

    @Test("low-data-rate optimisation is automatic exactly where the symbol exceeds 16 ms, and can be forced")
    func lowDataRateOptimization() {
        let automatic = LoRaSpreadingFactor.allCases.flatMap { sf in
            LoRaBandwidth.allCases.filter { LoRaModulation(spreadingFactor: sf, bandwidth: $0).usesLowDataRateOptimization }
                .map { "SF\(sf.rawValue)/\($0.hertz / 1000)" }
        }
        #expect(automatic == ["SF11/125", "SF12/125", "SF12/250"])
        // SF9 PL10 forced on: ceil(88 / (4·(9 − 2))) = 4 blocks, 28 symbols; off: ceil(88 / 36) = 3 blocks, 23.
        #expect(Self.lora(.sf9, ldro: .on).payloadSymbols(phyPayloadLength: 10) == 28)
        #expect(Self.lora(.sf9).payloadSymbols(phyPayloadLength: 10) == 23)
    }

    /// protocols.md §5 "LoRaWAN uplink ToA by app payload" (PHY = app + 13).
    @Test("uplink airtime per EU868 data rate and application payload length", arguments: EU868DataRate.allCases)
    func uplinkTable(_ dataRate: EU868DataRate) {
        let table: [EU868DataRate: [Int64]] = [
            .dr0: [1_155_072, 1_482_752, 1_482_752, 1_974_272, 2_793_472],
            .dr1: [659_456, 823_296, 823_296, 1_069_056, 1_560_576],
            .dr2: [288_768, 370_688, 411_648, 493_568, 698_368],
            .dr3: [164_864, 205_824, 205_824, 267_264, 390_144],
            .dr4: [82_432, 113_152, 113_152, 143_872, 215_552],
            .dr5: [46_336, 61_696, 61_696, 82_176, 118_016],
            .dr6: [23_168, 30_848, 30_848, 41_088, 59_008],
        ]
        let lengths = [1, 11, 12, 24, 51]
        let computed = lengths.map { uplinkAirtime(applicationPayloadLength: $0, dataRate: dataRate) }
        #expect(computed == table[dataRate]!.map { Duration.microseconds($0) })
    }

    @Test("EU868 data rates: SF/BW and the repeater-compatible payload limits")
    func dataRates() {
        #expect(EU868DataRate.allCases.map(\.spreadingFactor.rawValue) == [12, 11, 10, 9, 8, 7, 7])
        #expect(EU868DataRate.allCases.map(\.bandwidth) == [.khz125, .khz125, .khz125, .khz125, .khz125, .khz125, .khz250])
        #expect(EU868DataRate.allCases.map(\.maximumApplicationPayloadLength) == [51, 51, 51, 115, 222, 222, 222])
    }
}
