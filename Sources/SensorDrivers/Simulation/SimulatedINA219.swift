import Synchronization

/// An INA219 register map on a simulated I²C bus, modelled on the TI datasheet (SBOS448) rather than on any driver.
///
/// Wire protocol (datasheet §8.5.6): a write message starts with the register pointer; two more bytes (MSB first)
/// write that register; a write of the pointer alone only moves it. Reads return the pointed register, MSB first,
/// without auto-increment. Six registers:
///
/// | ptr | register | model |
/// |---|---|---|
/// | 00 | configuration | read/write; POR 0x399F; writing bit 15 resets every register, the bit clears itself |
/// | 01 | shunt voltage | 10 µV counts, clipped to the PGA range (±4000 × 2^PG) |
/// | 02 | bus voltage | count of 4 mV in bits 15:3 (clipped to 16 V or 32 V by BRNG), CNVR bit 1, OVF bit 0 |
/// | 03 | power | `trunc(|current| · bus / 5000)`; reading it clears CNVR |
/// | 04 | current | `trunc(shunt · calibration / 4096)` |
/// | 05 | calibration | read/write; bit 0 always reads 0 |
///
/// Conversions follow the mode field: a configuration write clears CNVR and starts one conversion (triggered
/// modes) or the conversion loop (continuous modes); power-down and ADC-off convert nothing. A conversion takes
/// ``setConversionDuration(reads:)`` read transfers (default 0: done by the next read); in continuous mode every
/// later read then sees a fresh conversion, as a driver polling every second would. Current and power are
/// computed at the end of a conversion with the calibration in force then, so they read 0 while the calibration
/// is 0 (after power-on); OVF is set when either does not fit its register. The analog inputs come from
/// ``setElectrical(busVolts:shuntVolts:)`` or ``setLoad(busVolts:amps:shuntOhms:)``. The ADCs are modelled at
/// 12-bit resolution whatever BADC/SADC say.
///
/// ```swift
/// let chip = SimulatedINA219()
/// chip.setLoad(busVolts: 12.6, amps: 1.2, shuntOhms: 0.1)
/// bus.attach(chip, at: 0x40)
/// ```
public final class SimulatedINA219: SimulatedINA2xxChip {
    /// The configuration register after power-on or a reset: 32 V, PGA /8, 12 bit, shunt and bus continuous.
    public static let powerOnConfiguration: UInt16 = 0x399F

    static let model = SimulatedINA2xxModel(
        powerOnConfiguration: SimulatedINA219.powerOnConfiguration,
        // FS0 is a void bit: it always reads 0.
        calibrationMask: 0xFFFE,
        shuntLSB: INA219.shuntVoltageLSB,
        busLSB: INA219.busVoltageLSB,
        // The PGA range (±4000 × 2^PG counts of 10 µV).
        shuntBounds: { configuration in
            let range = Int(INA219.ShuntRange(rawValue: configuration >> 11 & 0b11)?.fullScaleCount ?? 32000)
            return -range...range
        },
        // BRNG: 32 V or 16 V in counts of 4 mV.
        busFullScale: { configuration in configuration & 0x2000 != 0 ? 8000 : 4000 },
        currentDivisor: 4096,
        powerDivisor: 5000,
        busShift: 3,
        // CNVR (bit 1) and OVF (bit 0) sit below the bus count; reading the power register clears CNVR
        // (datasheet §8.6.3.2).
        flagsRegister: INA2xxRegister.busVoltage,
        conversionReadyBit: INA219.Register.conversionReady,
        mathOverflowBit: INA219.Register.mathOverflow,
        readyClearedBy: INA2xxRegister.power
    )

    public let registers = SimulatedINA2xxRegisters(SimulatedINA219.model)

    /// Creates a chip fresh from power-on, with these inputs.
    ///
    /// - Parameters:
    ///   - busVolts: the voltage at IN− against ground, V.
    ///   - shuntVolts: the voltage from IN+ to IN−, V.
    public init(busVolts: Double = 0, shuntVolts: Double = 0) {
        self.setElectrical(busVolts: busVolts, shuntVolts: shuntVolts)
    }
}
