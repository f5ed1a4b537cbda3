import Foundation
import KiezboxCore

/// The box's own heat and heavy-rain warnings (docs/warnings.md) for machines: one CAP 1.2 alert per message
/// (Alert when a warning starts, Update when its level changes, Cancel when it ends, each referencing the ones
/// before), and a JSON index of the current warnings, served by the portal and retained on MQTT.
public enum WarningFeed {
    /// Where the portal serves the JSON index; each message's CAP alert is at `<path>/<identifier>`.
    public static let path = "/api/v1/warnings"

    /// The CAP identifier of one message: box, hazard and start make the warning unique (also across restarts and
    /// a new store), the message number the message.
    public static func identifier(_ warning: LocalWarning, _ message: WarningMessage, identity: BoxIdentity) -> String {
        CAPText.token(
            "kiezbox-\(identity.district)-\(identity.boxID)-\(warning.hazard.rawValue)-\(CAPText.compactDateTime(warning.startedAt))-\(message.number)"
        )
    }

    /// The warning and message an identifier names, among the warnings the box still keeps.
    public static func message(
        identifier: String, in book: WarningBook, identity: BoxIdentity
    ) -> (warning: LocalWarning, message: WarningMessage)? {
        for warning in book.warnings {
            if let message = warning.messages.first(where: { Self.identifier(warning, $0, identity: identity) == identifier }) {
                return (warning, message)
            }
        }
        return nil
    }

    /// CAP's severity for a level: the German weather service's scale (Moderate for its orange level, Severe for
    /// red "Unwetter", Extreme for dark red); strong heat stress is Moderate, extreme heat stress Severe.
    public static func severity(_ hazard: WarningHazard, level: Int) -> String {
        switch (hazard, level) {
        case (.heat, ...1), (.heavyRain, ...1): "Moderate"
        case (.heat, _), (.heavyRain, 2): "Severe"
        case (.heavyRain, _): "Extreme"
        }
    }

    /// The German weather service's name of the level, for the `event` and headline.
    public static func germanLevel(_ hazard: WarningHazard, level: Int) -> String {
        switch (hazard, level) {
        case (.heat, ...1): "Starke Wärmebelastung"
        case (.heat, _): "Extreme Wärmebelastung"
        case (.heavyRain, ...1): "Starkregen"
        case (.heavyRain, 2): "Heftiger Starkregen"
        case (.heavyRain, _): "Extrem heftiger Starkregen"
        }
    }

    static func englishLevel(_ hazard: WarningHazard, level: Int) -> String {
        switch (hazard, level) {
        case (.heat, ...1): "Strong heat stress"
        case (.heat, _): "Extreme heat stress"
        case (.heavyRain, ...1): "Heavy rain"
        case (.heavyRain, 2): "Very heavy rain"
        case (.heavyRain, _): "Extremely heavy rain"
        }
    }

    /// One message as a CAP 1.2 alert, valid against the OASIS schema. `status` follows the box's mode as in the
    /// situation CAP feed (``CAPFeed/status(for:)``): Kiezbox is no authorised warning sender.
    public static func alert(
        _ warning: LocalWarning, _ message: WarningMessage, identity: BoxIdentity, mode: Mode, sender: String, radiusKilometres: Double = 1
    ) -> Data {
        let element = CAPFeed.element, wrap = CAPFeed.wrap
        let senderToken = CAPText.token(sender)
        var document = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<alert xmlns=\"\(CAPFeed.namespace)\">\n"
        document += element("identifier", identifier(warning, message, identity: identity))
        document += element("sender", senderToken)
        document += element("sent", CAPText.dateTime(message.sent))
        document += element("status", CAPFeed.status(for: mode))
        document += element("msgType", message.kind.rawValue)
        document += element("source", "\(identity.name) (Kiezbox \(identity.district)/\(identity.boxID)): eigene Messung")
        document += element("scope", "Public")
        let earlier = warning.messages.filter { $0.number < message.number }
        if !earlier.isEmpty {
            let references = earlier.map { "\(senderToken),\(identifier(warning, $0, identity: identity)),\(CAPText.dateTime($0.sent))" }
            document += element("references", references.joined(separator: " "))
        }
        let area = wrap("area", CAPFeed.areaContent(identity, radiusKilometres: radiusKilometres))
        document += infos(warning, message, identity: identity, area: area, web: nil).joined()
        document += "</alert>\n"
        return Data(document.utf8)
    }

    /// The `<info>` blocks of one message, German then English; `web` links to more about it (the situation CAP
    /// feed points at the warning's own message there).
    static func infos(_ warning: LocalWarning, _ message: WarningMessage, identity: BoxIdentity, area: String, web: String?) -> [String] {
        let element = CAPFeed.element, parameter = CAPFeed.parameter
        return [false, true].map { english in
            let level = english ? englishLevel(warning.hazard, level: message.level) : germanLevel(warning.hazard, level: message.level)
            var info = element("language", english ? "en-US" : "de-DE")
            info += element("category", "Met")
            let event = switch warning.hazard {
            case .heat: english ? "Heat" : "Hitze"
            case .heavyRain: english ? "Heavy rain" : "Starkregen"
            }
            info += element("event", event)
            info += element("urgency", message.kind == .cancel ? "Past" : "Immediate")
            info += element("severity", message.kind == .cancel ? "Minor" : severity(warning.hazard, level: message.level))
            info += element("certainty", "Observed")
            info += element("effective", CAPText.dateTime(message.sent))
            info += element("onset", CAPText.dateTime(warning.startedAt))
            if let expires = message.expires { info += element("expires", CAPText.dateTime(expires)) }
            info += element("senderName", identity.name)
            let place = english ? "measured at \(identity.name)" : "gemessen an der \(identity.name)"
            let headline = message.kind == .cancel
                ? (english ? "Ended: \(level) (\(place))" : "Aufgehoben: \(level) (\(place))")
                : "\(level) (\(place))"
            info += element("headline", headline)
            info += element("description", description(warning, english: english))
            if let web { info += element("web", web) }
            if let perceived = warning.perceivedCelsius, warning.hazard == .heat {
                info += parameter("perceived_temperature_celsius", CAPText.decimal((perceived * 10).rounded() / 10))
            }
            if warning.hazard == .heavyRain {
                if let oneHour = warning.rainOneHour { info += parameter("rainfall_1h_mm", CAPText.decimal((oneHour * 10).rounded() / 10)) }
                if let sixHours = warning.rainSixHours { info += parameter("rainfall_6h_mm", CAPText.decimal((sixHours * 10).rounded() / 10)) }
            }
            info += parameter("level", String(message.level))
            info += area
            return CAPFeed.wrap("info", info)
        }
    }

    /// The portal path of a message's CAP alert.
    public static func capPath(_ warning: LocalWarning, _ message: WarningMessage, identity: BoxIdentity) -> String {
        "\(path)/\(identifier(warning, message, identity: identity))"
    }

    private static func description(_ warning: LocalWarning, english: Bool) -> String {
        switch warning.hazard {
        case .heat:
            english
                ? "The box's own sensor; perceived temperature in the shade from temperature and humidity (NWS heat index), without sun and wind."
                : "Eigener Sensor der Kiezbox; gefühlte Temperatur im Schatten aus Temperatur und Luftfeuchte (Hitzeindex des NWS), ohne Sonne und Wind."
        case .heavyRain:
            english
                ? "The box's own rain gauge: rainfall over the last hour and the last six hours."
                : "Eigener Regenmesser der Kiezbox: Regenmenge der letzten Stunde und der letzten sechs Stunden."
        }
    }

    /// The JSON index of the warnings the box keeps (active and recently ended), each with its latest message;
    /// the same document goes to MQTT (docs/mqtt.md).
    public static func json(_ book: WarningBook, identity: BoxIdentity, now: Date) -> Data {
        let warnings: [JSONValue] = book.warnings.compactMap { properties($0, identity: identity).map(JSONValue.object) }
        return JSONValue.object([
            "district": .string(identity.district),
            "box": .string(identity.boxID),
            "time": .string(SituationFeed.timestamp(now)),
            "warnings": .array(warnings),
        ]).encoded()
    }

    /// What the JSON index and the situation feed say about one warning: its latest message and where its CAP
    /// alert is; `nil` for a warning without messages (the book never keeps one).
    static func properties(_ warning: LocalWarning, identity: BoxIdentity) -> [String: JSONValue]? {
        guard let message = warning.messages.last else { return nil }
        return [
            "hazard": .string(warning.hazard.rawValue),
            "event": .string(germanLevel(warning.hazard, level: warning.level)),
            "level": .integer(warning.level),
            "severity": .string(severity(warning.hazard, level: warning.level)),
            "active": .bool(warning.isActive),
            "started_at": .string(SituationFeed.timestamp(warning.startedAt)),
            "ended_at": .optional(warning.endedAt) { .string(SituationFeed.timestamp($0)) },
            "perceived_celsius": .optional(warning.perceivedCelsius, JSONValue.number),
            "rain_1h_mm": .optional(warning.rainOneHour, JSONValue.number),
            "rain_6h_mm": .optional(warning.rainSixHours, JSONValue.number),
            "identifier": .string(identifier(warning, message, identity: identity)),
            "msg_type": .string(message.kind.rawValue),
            "sent": .string(SituationFeed.timestamp(message.sent)),
            "expires": .optional(message.expires) { .string(SituationFeed.timestamp($0)) },
            "cap": .string(capPath(warning, message, identity: identity)),
        ]
    }
}
