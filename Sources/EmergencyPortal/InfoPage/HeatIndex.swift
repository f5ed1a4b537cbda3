/// How dangerous the heat is for a body, from the apparent temperature.
public enum HeatRisk: Int, Sendable, Hashable, CaseIterable, Comparable {
    case caution = 1, extremeCaution, danger, extremeDanger

    /// The class of the US National Weather Service heat index chart (NOAA): 27 °C (80 °F) caution, 32 °C (90 °F)
    /// extreme caution, 41 °C (105 °F) danger, 54 °C (130 °F) extreme danger; below 27 °C, none.
    public init?(heatIndexCelsius: Double) {
        switch heatIndexCelsius {
        case 54...: self = .extremeDanger
        case 41..<54: self = .danger
        case 32..<41: self = .extremeCaution
        case 27..<32: self = .caution
        default: return nil
        }
    }

    public static func < (lhs: HeatRisk, rhs: HeatRisk) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The heat index ("feels like") in °C from air temperature and relative humidity, as the US National Weather
/// Service computes it (NWS Technical Attachment SR 90-23, Rothfusz 1990, and the NWS heat index equation page):
/// Steadman's simple formula first; where that gives 80 °F or more, the Rothfusz regression with its two
/// adjustments for very dry and for humid-but-mild air. Below about 27 °C heat is no danger and the simple
/// formula stays close to the air temperature.
public func heatIndexCelsius(temperatureCelsius: Double, relativeHumidity: Double) -> Double {
    let t = temperatureCelsius * 9 / 5 + 32
    let rh = min(max(relativeHumidity, 0), 100)
    let simple = 0.5 * (t + 61 + (t - 68) * 1.2 + rh * 0.094)
    var index: Double
    if (simple + t) / 2 < 80 {
        index = simple
    } else {
        index = -42.379 + 2.04901523 * t + 10.14333127 * rh - 0.22475541 * t * rh - 0.00683783 * t * t
            - 0.05481717 * rh * rh + 0.00122874 * t * t * rh + 0.00085282 * t * rh * rh - 0.00000199 * t * t * rh * rh
        if rh < 13, (80...112).contains(t) {
            index -= (13 - rh) / 4 * ((17 - abs(t - 95)) / 17).squareRoot()
        } else if rh > 85, (80...87).contains(t) {
            index += (rh - 85) / 10 * ((87 - t) / 5)
        }
    }
    return (index - 32) * 5 / 9
}
