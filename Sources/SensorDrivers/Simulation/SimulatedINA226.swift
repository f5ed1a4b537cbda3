import Synchronization

/// An INA226 register map on a simulated I²C bus, modelled on the TI datasheet (SBOS547) rather than on any driver.
///
/// Wire protocol (datasheet §7.5.3): a write message starts with the register pointer; two more bytes (MSB first)
/// write that register; a write of the pointer alone only moves it. Reads return the pointed register, MSB first,
/// without auto-increment.
///
/// | ptr | register | model |
/// |---|---|---|
/// | 00 | configuration | read/write; POR 0x4127; bits 14:12 always read 100; writing bit 15 resets every register |
/// | 01 | shunt voltage | 2.5 µV counts, clipped to ±32767/−32768 |
/// | 02 | bus voltage | 1.25 mV counts, 0…0x7FFF (bit 15 always 0) |
/// | 03 | power | `trunc(|current| · bus / 20000)` |
/// | 04 | current | `trunc(shunt · calibration / 2048)` |
/// | 05 | calibration | read/write; bit 15 always reads 0 |
/// | 06 | mask/enable | bits 15:10, 1, 0 read/write; CVRF (bit 3) set by each conversion and cleared by reading this register or writing the configuration; OVF (bit 2) from the last conversion |
/// | 07 | alert limit | read/write (alert comparisons are not modelled) |
/// | FE | manufacturer id | 0x5449 |
/// | FF | die id | 0x2260 |
///
/// Conversions follow the mode field as on the INA219 model: a configuration write starts one conversion
/// (triggered) or the conversion loop (continuous), taking ``setConversionDuration(reads:)`` read transfers
/// (default 0); in continuous mode every later read sees a fresh conversion. Current and power are computed at the
/// end of a conversion with the calibration in force then, so they read 0 while the calibration is 0.
///
/// ```swift
/// let chip = SimulatedINA226()
/// chip.setLoad(busVolts: 12.8, amps: 1.5, shuntOhms: 0.01)
/// bus.attach(chip, at: 0x40)
/// ```
public final class SimulatedINA226: SimulatedINA2xxChip {
    /// The configuration register after power-on or a reset: 1 sample, 1.1 ms conversions, shunt and bus continuous.
    public static let powerOnConfiguration: UInt16 = 0x4127
    /// The die id register: device 0x226, revision 0.
    public static let dieID: UInt16 = 0x2260

    static let model = SimulatedINA2xxModel(
        powerOnConfiguration: SimulatedINA226.powerOnConfiguration,
        // Bits 14:12 are fixed at 100.
        configurationFixedBits: 0x4000,
        configurationWritableBits: 0x0FFF,
        calibrationMask: 0x7FFF,
        shuntLSB: INA226.shuntVoltageLSB,
        busLSB: INA226.busVoltageLSB,
        shuntBounds: { _ in Int(Int16.min)...Int(Int16.max) },
        busFullScale: { _ in 0x7FFF },
        currentDivisor: 2048,
        powerDivisor: 20000,
        // CVRF (bit 3) and OVF (bit 2) are in mask/enable; reading it clears CVRF.
        flagsRegister: INA226.Register.maskEnable,
        conversionReadyBit: INA226.Register.conversionReady,
        mathOverflowBit: INA226.Register.mathOverflow,
        readyClearedBy: INA226.Register.maskEnable,
        otherRegisters: [
            // The alert functions (15:10), APOL (1) and LEN (0) are writable.
            INA226.Register.maskEnable: 0xFC03,
            INA226.Register.alertLimit: 0xFFFF,
        ],
        idRegisters: [
            INA226.Register.manufacturerID: INA226.manufacturerID,
            INA226.Register.dieID: SimulatedINA226.dieID,
        ]
    )

    public let registers = SimulatedINA2xxRegisters(SimulatedINA226.model)

    /// Creates a chip fresh from power-on, with these inputs.
    ///
    /// - Parameters:
    ///   - busVolts: the voltage at VBUS against ground, V.
    ///   - shuntVolts: the voltage from IN+ to IN−, V.
    public init(busVolts: Double = 0, shuntVolts: Double = 0) {
        self.setElectrical(busVolts: busVolts, shuntVolts: shuntVolts)
    }

    /// Makes the id registers read other values, as a different chip at the address would.
    public func setIDs(manufacturer: UInt16, die: UInt16) {
        self.registers.withState { state in
            state.idRegisters[INA226.Register.manufacturerID] = manufacturer
            state.idRegisters[INA226.Register.dieID] = die
        }
    }
}
