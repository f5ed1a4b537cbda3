/// LoRa spreading factors (chirps of 2^SF chips per symbol).
public enum LoRaSpreadingFactor: Int, Sendable, Hashable, CaseIterable {
    case sf7 = 7, sf8, sf9, sf10, sf11, sf12
}

/// LoRa channel bandwidths.
public enum LoRaBandwidth: Int, Sendable, Hashable, CaseIterable {
    case khz125 = 125_000
    case khz250 = 250_000
    case khz500 = 500_000

    public var hertz: Int { self.rawValue }
}

/// LoRa forward-error-correction coding rates; the raw value is the datasheet's `CR` (1…4).
public enum LoRaCodingRate: Int, Sendable, Hashable, CaseIterable {
    case cr4_5 = 1, cr4_6, cr4_7, cr4_8
}

/// Whether the radio uses low-data-rate optimisation (the datasheet's `DE`).
public enum LowDataRateOptimization: Sendable, Hashable {
    /// On exactly when the symbol lasts longer than 16 ms, as the SX127x datasheet mandates (SF11 and SF12 at
    /// 125 kHz, SF12 at 250 kHz); what LoRaWAN modems do.
    case automatic
    case on
    case off
}

/// The parameters of one LoRa frame that decide how long it is on air.
public struct LoRaModulation: Sendable, Hashable {
    public var spreadingFactor: LoRaSpreadingFactor
    public var bandwidth: LoRaBandwidth
    public var codingRate: LoRaCodingRate
    /// Programmed preamble symbols (LoRaWAN: 8); the radio adds 4.25 of its own.
    public var preambleSymbols: Int
    /// Explicit header (LoRaWAN: yes); implicit saves the header's symbols.
    public var explicitHeader: Bool
    /// Payload CRC (LoRaWAN: on for uplinks, off for downlinks).
    public var payloadCRC: Bool
    public var lowDataRateOptimization: LowDataRateOptimization

    public init(
        spreadingFactor: LoRaSpreadingFactor, bandwidth: LoRaBandwidth = .khz125, codingRate: LoRaCodingRate = .cr4_5,
        preambleSymbols: Int = 8, explicitHeader: Bool = true, payloadCRC: Bool = true,
        lowDataRateOptimization: LowDataRateOptimization = .automatic
    ) {
        self.spreadingFactor = spreadingFactor
        self.bandwidth = bandwidth
        self.codingRate = codingRate
        self.preambleSymbols = preambleSymbols
        self.explicitHeader = explicitHeader
        self.payloadCRC = payloadCRC
        self.lowDataRateOptimization = lowDataRateOptimization
    }

    /// One symbol, 2^SF / BW, in whole microseconds (exact for every SF and bandwidth here: at least 256 µs and
    /// a multiple of 4 µs).
    public var symbolMicroseconds: Int64 { (Int64(1) << self.spreadingFactor.rawValue) * 1_000_000 / Int64(self.bandwidth.hertz) }

    /// Whether low-data-rate optimisation is in effect for this frame.
    public var usesLowDataRateOptimization: Bool {
        switch self.lowDataRateOptimization {
        case .automatic: self.symbolMicroseconds > 16_000
        case .on: true
        case .off: false
        }
    }

    /// Symbols after the preamble (header and payload), per Semtech's formula (SX1276 datasheet §4.1.1.7):
    /// 8 + max(ceil((8·PL − 4·SF + 28 + 16·CRC − 20·IH) / (4·(SF − 2·DE))) · (CR + 4), 0).
    public func payloadSymbols(phyPayloadLength: Int) -> Int {
        precondition(phyPayloadLength >= 0, "a payload length is not negative")
        let sf = self.spreadingFactor.rawValue
        let numerator = 8 * phyPayloadLength - 4 * sf + 28 + (self.payloadCRC ? 16 : 0) - (self.explicitHeader ? 0 : 20)
        let denominator = 4 * (sf - (self.usesLowDataRateOptimization ? 2 : 0))
        // Ceiling division that is right for negative numerators too (they clamp to 0 below).
        let blocks = numerator > 0 ? (numerator + denominator - 1) / denominator : 0
        return 8 + blocks * (self.codingRate.rawValue + 4)
    }

    /// Time on air of a frame whose PHY payload is `phyPayloadLength` bytes, exact to the microsecond.
    public func timeOnAir(phyPayloadLength: Int) -> Duration {
        let symbol = self.symbolMicroseconds
        // (preamble + 4.25) symbols = (4·preamble + 17) quarter symbols; a symbol is a multiple of 4 µs.
        let preamble = Int64(4 * self.preambleSymbols + 17) * symbol / 4
        let payload = Int64(self.payloadSymbols(phyPayloadLength: phyPayloadLength)) * symbol
        return .microseconds(preamble + payload)
    }
}

/// The EU863-870 LoRaWAN data rates a Class A device uses (DR7, FSK, is left out: the modems here do not use it).
public enum EU868DataRate: Int, Sendable, Hashable, CaseIterable, Comparable {
    case dr0 = 0, dr1, dr2, dr3, dr4, dr5, dr6

    public var spreadingFactor: LoRaSpreadingFactor {
        switch self {
        case .dr0: .sf12
        case .dr1: .sf11
        case .dr2: .sf10
        case .dr3: .sf9
        case .dr4: .sf8
        case .dr5, .dr6: .sf7
        }
    }

    public var bandwidth: LoRaBandwidth { self == .dr6 ? .khz250 : .khz125 }

    /// The largest application payload (FRMPayload with no FOpts) at this data rate: 51, 51, 51, 115, 222, 222,
    /// 222 bytes. These are the repeater-compatible limits of the LoRaWAN regional parameters (RP002-1.0.3, as
    /// The Things Stack applies them); LoRaMac-node inside the modems allows 242 at DR4 and above, but a network
    /// server that assumes a repeater on the path may drop anything larger than 222, so 222 is the safe limit.
    /// Pending MAC commands (FOpts) reduce the real limit further; the modem's own answer is final.
    public var maximumApplicationPayloadLength: Int {
        switch self {
        case .dr0, .dr1, .dr2: 51
        case .dr3: 115
        case .dr4, .dr5, .dr6: 222
        }
    }

    /// A LoRaWAN uplink's modulation at this data rate: CR 4/5, 8 preamble symbols, explicit header, CRC on.
    public var uplinkModulation: LoRaModulation {
        LoRaModulation(spreadingFactor: self.spreadingFactor, bandwidth: self.bandwidth)
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Bytes LoRaWAN adds to an application payload without MAC commands: MHDR 1, DevAddr 4, FCtrl 1, FCnt 2,
/// FPort 1, MIC 4.
public let loRaWANFrameOverhead = 13

/// Time on air of an unconfirmed LoRaWAN uplink carrying `applicationPayloadLength` bytes (no FOpts) at
/// `dataRate`: PHY payload = application payload + 13 bytes, CR 4/5, preamble 8, explicit header, CRC on.
public func uplinkAirtime(applicationPayloadLength: Int, dataRate: EU868DataRate) -> Duration {
    dataRate.uplinkModulation.timeOnAir(phyPayloadLength: applicationPayloadLength + loRaWANFrameOverhead)
}
