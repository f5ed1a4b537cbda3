/// The current and power scaling of a TI shunt power monitor (INA219, INA226): what the calibration register
/// holds and what one count of the current and power registers is worth.
///
/// The datasheets' recipe (INA219 SBOS448 §8.5.1, INA226 SBOS547 §7.5):
/// 1. `Minimum_LSB = maximum expected current / 2¹⁵`;
/// 2. pick a round current LSB at or above it;
/// 3. `Cal = trunc(k / (Current_LSB · R_shunt))` with k = 0.04096 (INA219) or 0.00512 (INA226);
/// 4. `Power_LSB = 20 · Current_LSB` (INA219) or `25 · Current_LSB` (INA226).
///
/// When no current LSB is given, step 2 takes the smallest value of the 1-2-5 series (…, 100 µA, 200 µA,
/// 500 µA, 1 mA, …) at or above the minimum, within 2.5× of the finest useful resolution. That reproduces the
/// Adafruit INA219 preset (3.2 A → 100 µA) and the Kiezbox INA226 example (10 mΩ, 8 A → 0.5 mA); TI's own example
/// picks 1 mA for 10 A, which an explicit `currentLSB` reproduces. If the shunt is so small that the calibration
/// value would not fit its register, the LSB is raised along the same series until it does.
///
/// The arithmetic is done in integers (nA and nΩ), so decimal inputs such as 0.002 Ω cannot truncate
/// 20480 to 20479 through binary rounding.
public struct ShuntCalibration: Sendable, Hashable {
    /// The shunt resistance, Ω.
    public let shuntOhms: Double
    /// Amperes per count of the current register (the datasheet's Current_LSB).
    public let currentLSB: Double
    /// Watts per count of the power register.
    public let powerLSB: Double
    /// The value for the calibration register (05h), already limited to the bits the chip stores.
    public let register: UInt16

    /// The largest current the current register can hold with this scaling, A.
    public var largestCurrent: Double { Double(Int16.max) * self.currentLSB }

    /// Why a shunt and a current cannot be turned into a calibration.
    enum Problem: Error, Sendable, Hashable {
        case shuntNotPositive
        case maximumCurrentNotPositive
        /// An explicit current LSB below `maximum current / 2¹⁵`: the current register would overflow.
        case currentLSBTooSmall(minimum: Double)
        /// The calibration value for this LSB and shunt does not fit the register (or is zero).
        case calibrationOutOfRange(value: Int64)
    }

    /// The chip-specific constants of the recipe.
    struct ChipConstants: Sendable {
        /// The datasheet's k (0.04096 or 0.00512) times 10¹⁸, so that `k / (LSB · R)` becomes
        /// `kTimes1e18 / (LSB in nA · R in nΩ)`.
        var kTimes1e18: Int64
        /// The largest calibration value the register holds.
        var largestRegister: Int64
        /// The calibration register's writable bits.
        var registerMask: UInt16
        /// Power LSB / current LSB.
        var powerLSBFactor: Double
    }

    /// Applies the recipe.
    ///
    /// - Parameters:
    ///   - shuntOhms: the shunt resistance, Ω.
    ///   - maximumCurrent: the largest current expected through the shunt, A (either direction).
    ///   - currentLSB: a current LSB to use instead of the 1-2-5 choice, A per count.
    static func make(
        shuntOhms: Double,
        maximumCurrent: Double,
        currentLSB: Double?,
        chip: ChipConstants
    ) -> Result<ShuntCalibration, Problem> {
        // 1 MΩ is far beyond any shunt; the bound keeps the nΩ conversion inside Int64.
        guard shuntOhms.isFinite, shuntOhms > 0, shuntOhms < 1e6 else { return .failure(.shuntNotPositive) }
        guard maximumCurrent.isFinite, maximumCurrent > 0, maximumCurrent < 1e6 else {
            return .failure(.maximumCurrentNotPositive)
        }
        let shuntNanoohms = max(1, Int64((shuntOhms * 1e9).rounded()))
        let minimumLSB = maximumCurrent / 32768
        // A relative tolerance, so that e.g. 3.2768 A / 2¹⁵ = 100 µA exactly is not rounded up to 200 µA.
        let minimumNanoamps = minimumLSB * 1e9 * (1 - 1e-9)

        func calibration(lsbNanoamps: Int64) -> Int64 {
            let (product, overflow) = lsbNanoamps.multipliedReportingOverflow(by: shuntNanoohms)
            return overflow ? 0 : chip.kTimes1e18 / product
        }
        func result(lsbNanoamps: Int64, value: Int64) -> ShuntCalibration {
            let lsb = Double(lsbNanoamps) / 1e9
            return ShuntCalibration(
                shuntOhms: shuntOhms,
                currentLSB: lsb,
                powerLSB: lsb * chip.powerLSBFactor,
                register: UInt16(value) & chip.registerMask
            )
        }

        if let currentLSB {
            guard currentLSB.isFinite, currentLSB > 0, currentLSB < 1e3 else {
                return .failure(.currentLSBTooSmall(minimum: minimumLSB))
            }
            let lsbNanoamps = Int64((currentLSB * 1e9).rounded())
            guard lsbNanoamps >= 1, Double(lsbNanoamps) >= minimumNanoamps else {
                return .failure(.currentLSBTooSmall(minimum: minimumLSB))
            }
            let value = calibration(lsbNanoamps: lsbNanoamps)
            guard value >= 1, value <= chip.largestRegister, UInt16(value) & chip.registerMask != 0 else {
                return .failure(.calibrationOutOfRange(value: value))
            }
            return .success(result(lsbNanoamps: lsbNanoamps, value: value))
        }

        var lastValue: Int64 = 0
        for lsbNanoamps in Self.oneTwoFiveSeries where Double(lsbNanoamps) >= minimumNanoamps {
            let value = calibration(lsbNanoamps: lsbNanoamps)
            lastValue = value
            if value > chip.largestRegister { continue }
            guard value >= 1, UInt16(value) & chip.registerMask != 0 else { break }
            return .success(result(lsbNanoamps: lsbNanoamps, value: value))
        }
        return .failure(.calibrationOutOfRange(value: lastValue))
    }

    /// 1 nA, 2 nA, 5 nA, 10 nA, … 500 A: every current LSB the automatic choice considers.
    static let oneTwoFiveSeries: [Int64] = {
        var series: [Int64] = []
        var decade: Int64 = 1
        while decade <= 100_000_000_000 {
            series += [decade, 2 * decade, 5 * decade]
            decade *= 10
        }
        return series
    }()
}
