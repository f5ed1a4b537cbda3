import KiezboxCore
import ReadingStore

/// Every text the info page shows, in one language.
///
/// Each language is one memberwise initialisation of this struct (`PortalStrings+German.swift`, …): a text
/// added here and forgotten in a language does not compile, and texts that depend on a value are closures over
/// exhaustive switches, so a new case is a compile error too. Plain words, short sentences: the page is read by
/// people under stress, many in their second language.
public struct PortalStrings: Sendable {
    // Page frame
    /// Appended to the box's name in the window title.
    public let titleSuffix: String
    /// The accessible name of the language switcher.
    public let languageMenu: String
    /// "As of 18:30": when the page was made.
    public let asOf: @Sendable (_ time: String) -> String
    /// Before the portal's plain address, for readers in a phone's captive-portal sheet.
    public let openInBrowser: String
    /// The button that tells the box this phone has seen the page: its sign-in sheet stops coming back.
    public let stayConnected: String
    /// What to do in a life-threatening emergency.
    public let emergencyCall: String

    // Mode
    public let crisisHeading: String
    public let crisisText: String
    public let normalText: String
    public let maintenanceText: String

    // Official announcements
    public let announcementsHeading: String
    public let severity: @Sendable (AnnouncementSeverity) -> String
    public let issuedBy: @Sendable (_ issuer: String) -> String
    public let validUntil: @Sendable (_ time: String) -> String
    /// A section with nothing in it.
    public let noneRightNow: String

    // Help points
    public let helpPointsHeading: String
    /// "1.2 km away".
    public let distanceAway: @Sendable (_ distance: String) -> String

    // Readings and warnings
    public let readingsHeading: String
    public let quantity: @Sendable (Quantity) -> String
    public let feelsLike: @Sendable (_ temperature: String) -> String
    public let heatWarning: @Sendable (HeatRisk) -> String
    public let frostWarning: String
    /// The box's own warning (docs/warnings.md) of a hazard at a level (heat 1–2, heavy rain 1–3), with advice.
    public let boxWarning: @Sendable (WarningHazard, _ level: Int) -> String
    public let airQuality: String
    public let airQualityBand: @Sendable (AirQualityBand) -> String
    /// Advice for bands that ask for it (moderate and worse); nil for good and fair.
    public let airQualityAdvice: @Sendable (AirQualityBand) -> String?
    public let ago: @Sendable (RelativeAge) -> String
    /// "measured 3 min ago", under the readings when they share one age.
    public let measured: @Sendable (_ age: String) -> String

    // Power
    public let powerHeading: String
    public let mainsPresent: String
    public let mainsAbsent: String
    public let battery: String
    public let drawing: String
    /// "Power left: about 31 h (25–38 h)"; the hours already formatted, `high` nil when open upwards.
    public let powerLeft: @Sendable (_ likely: String, _ low: String, _ high: String?) -> String
    /// "Saving power: step 2 of 4" while the box sheds load (docs/power.md, "Load shedding").
    public let savingPower: @Sendable (_ step: Int, _ steps: Int) -> String

    // Neighbouring boxes
    public let neighboursHeading: String
    public let online: String
    public let offline: String
    public let mode: @Sendable (Mode) -> String
    public let lastHeard: @Sendable (_ age: String) -> String

    // Bulletin
    public let bulletinHeading: String
    /// No name or number needed; free text is visible to neighbours.
    public let bulletinPrivacy: String
    public let formTitle: @Sendable (BulletinKind) -> String
    public let postKind: @Sendable (BulletinKind) -> String
    public let category: @Sendable (BulletinCategory) -> String
    public let categoryLabel: String
    public let textLabel: @Sendable (BulletinKind) -> String
    public let placeLabel: String
    public let send: String
    public let postsHeading: String
    public let showAllPosts: @Sendable (_ count: Int) -> String
    /// The link to the next page of `?all=1`.
    public let olderPosts: String
    public let posted: String
    public let refusal: @Sendable (BulletinRefusal) -> String

    // Numbers
    /// "," or "." between the whole and the fraction.
    public let decimalSeparator: String

    /// The texts in `language`.
    public static func forLanguage(_ language: PortalLanguage) -> PortalStrings {
        switch language {
        case .de: .german
        case .en: .english
        case .tr: .turkish
        case .ar: .arabic
        case .uk: .ukrainian
        }
    }
}
