/// How long a Meshtastic packet is on air, and the EU868 allowance it is charged against.
///
/// Meshtastic's EU_868 region uses sub-band P (869.4–869.65 MHz, 10 % duty cycle, one rolling hour); its default
/// preset LONG_FAST is SF11, 250 kHz, coding rate 4/5, with a 16-symbol preamble (the firmware's
/// `preambleLength`), explicit header and payload CRC. Every packet on air is the firmware's 16-byte packet header
/// (to, from, id, flags, channel hash, next hop, relay node) followed by the encrypted `Data` protobuf, which
/// AES-CTR leaves the same length as the plain one.
public enum MeshtasticAirtime {
    /// The LONG_FAST preset, Meshtastic's default and the Kiezbox 2.0 pilot's.
    public static let longFast = LoRaModulation(
        spreadingFactor: .sf11, bandwidth: .khz250, codingRate: .cr4_5, preambleSymbols: 16)

    /// The firmware's over-the-air packet header, in bytes.
    public static let packetHeaderLength = 16

    /// The band's allowance: 10 % of every rolling hour (sub-band P).
    public static let bandAllowancePerHour: Duration = .seconds(360)

    /// The bytes on air for a `Data` message of `dataLength` serialised bytes.
    public static func bytesOnAir(dataLength: Int) -> Int { Self.packetHeaderLength + dataLength }

    /// Time on air of a packet whose serialised `Data` is `dataLength` bytes, on `modulation`.
    public static func airtime(dataLength: Int, modulation: LoRaModulation = Self.longFast) -> Duration {
        modulation.timeOnAir(phyPayloadLength: Self.bytesOnAir(dataLength: dataLength))
    }
}
