import SensorDrivers
import Testing

@Suite("Shunt calibration (current LSB choice shared by INA219 and INA226)")
struct ShuntCalibrationTests {
    @Test(
        "the automatic LSB is the smallest 1-2-5 value at or above maximum current / 2¹⁵",
        arguments: [
            (amps: 3.2, lsb: 0.0001),  // 97.7 µA → 100 µA (Adafruit)
            (amps: 3.2768, lsb: 0.0001),  // exactly 100 µA stays 100 µA
            (amps: 10.0, lsb: 0.0005),  // 305 µA → 500 µA
            (amps: 1.0, lsb: 0.00005),  // 30.5 µA → 50 µA
            (amps: 0.4, lsb: 0.00002),  // 12.2 µA → 20 µA
        ]
    )
    func automaticLSB(amps: Double, lsb: Double) throws {
        let calibration = try INA219.calibration(shuntOhms: 0.1, maximumCurrent: amps)
        #expect(calibration.currentLSB == lsb)
        // The datasheet divides by 2¹⁵ while the register holds at most 2¹⁵ − 1: within one count of the maximum.
        #expect(calibration.largestCurrent >= amps - calibration.currentLSB)
    }

    @Test("a shunt too small for the register raises the LSB along the series until the calibration fits")
    func tinyShunt() throws {
        // 0.5 mΩ, 1 A: 50 µA would need 204800, 100 µA 102400, 200 µA 51200; 500 µA gives 20480.
        let calibration = try INA226.calibration(shuntOhms: 0.0005, maximumCurrent: 1)
        #expect(calibration.currentLSB == 0.0005)
        #expect(calibration.register == 20480)
    }

    @Test("decimal inputs do not lose a count to binary rounding")
    func exactDecimalArithmetic() throws {
        // In floating point, 0.04096 / (0.001 · 0.002) is not exactly 20480; trunc must still give 20480.
        #expect(try INA219.calibration(shuntOhms: 0.002, maximumCurrent: 10, currentLSB: 0.001).register == 0x5000)
        #expect(try INA226.calibration(shuntOhms: 0.002, maximumCurrent: 10, currentLSB: 0.001).register == 0x0A00)
        #expect(try INA219.calibration(shuntOhms: 0.1, maximumCurrent: 3.2, currentLSB: 0.0001).register == 4096)
    }

    @Test("INA219 calibration bit 0 is not stored: an odd value is written even")
    func ina219EvenCalibration() throws {
        // 0.04096 / (100 µA · 0.3 Ω) = 1365.33 → 1365 → 1364 in the register.
        let calibration = try INA219.calibration(shuntOhms: 0.3, maximumCurrent: 1, currentLSB: 0.0001)
        #expect(calibration.register == 1364)
    }

    @Test("a calibration that cannot fit is refused")
    func outOfRange() {
        // 1 MΩ-class nonsense: the calibration would be 0.
        #expect(throws: INA226Error.Code.self) { try INA226.calibration(shuntOhms: 1000, maximumCurrent: 1000) }
        #expect(throws: INA226Error.Code.shuntNotPositive(ohms: .infinity)) {
            try INA226.calibration(shuntOhms: .infinity, maximumCurrent: 1)
        }
    }
}
