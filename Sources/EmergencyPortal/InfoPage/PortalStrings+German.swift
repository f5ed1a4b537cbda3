import KiezboxCore
import ReadingStore

extension PortalStrings {
    static let german = PortalStrings(
        titleSuffix: "Notfall-Info",
        languageMenu: "Sprache",
        asOf: { "Stand: \($0)" },
        openInBrowser: "Im Browser öffnen:",
        stayConnected: "Verstanden, ich bleibe im WLAN",
        emergencyCall: "Bei Lebensgefahr: 112 anrufen (wenn das Telefon geht) oder zur nächsten Hilfestelle gehen.",
        crisisHeading: "Notbetrieb",
        crisisText: "Diese Kiezbox hat eigenen Strom und funktioniert ohne Internet. Hier finden Sie Hilfe, Warnungen und Nachrichten aus der Nachbarschaft.",
        normalText: "Normalbetrieb: Zurzeit gibt es keine Krise.",
        maintenanceText: "Wartung: An dieser Box wird gerade gearbeitet. Angaben können fehlen.",
        announcementsHeading: "Amtliche Meldungen",
        severity: {
            switch $0 {
            case .extreme: "Extreme Gefahr"
            case .severe: "Große Gefahr"
            case .moderate: "Gefahr"
            case .minor: "Hinweis"
            case .unknown: "Meldung"
            }
        },
        issuedBy: { "Von: \($0)" },
        validUntil: { "gilt bis \($0)" },
        noneRightNow: "Zurzeit keine.",
        helpPointsHeading: "Hilfestellen",
        distanceAway: { "\($0) entfernt" },
        readingsHeading: "Wetter und Luft hier",
        quantity: {
            switch $0 {
            case .temperature: "Temperatur"
            case .relativeHumidity: "Luftfeuchte"
            case .pressure: "Luftdruck"
            case .pm1: "Feinstaub PM1"
            case .pm2_5: "Feinstaub PM2,5"
            case .pm4: "Feinstaub PM4"
            case .pm10: "Feinstaub PM10"
            case .co2: "CO₂"
            case .voltage: "Spannung"
            case .current: "Strom"
            case .power: "Leistung"
            case .batteryLevel: "Akku"
            case .latitude: "Breite"
            case .longitude: "Länge"
            case .altitude: "Höhe"
            case .rainfall: "Regen"
            case .rainIntensity: "Regen jetzt"
            case .mainsPresent: "Netzstrom"
            }
        },
        feelsLike: { "gefühlt \($0)" },
        heatWarning: {
            switch $0 {
            case .caution: "Wärme: Trinken Sie genug Wasser und meiden Sie die Mittagssonne."
            case .extremeCaution: "Hitze: Viel trinken, im Schatten bleiben, nicht anstrengen. Sehen Sie nach älteren Nachbarn."
            case .danger: "Gefährliche Hitze: Bleiben Sie im Kühlen und trinken Sie viel. Bei Verwirrtheit oder Bewusstlosigkeit: 112."
            case .extremeDanger: "Lebensgefährliche Hitze: Gehen Sie sofort an einen kühlen Ort. Bei Verwirrtheit oder Bewusstlosigkeit: 112."
            }
        },
        frostWarning: "Frost: Ziehen Sie sich warm an und sehen Sie nach älteren Nachbarn. Nie Grill oder Gasofen drinnen benutzen (Kohlenmonoxid).",
        boxWarning: { hazard, level in
            switch (hazard, level) {
            case (.heat, ...1): "Hitzewarnung der Kiezbox – starke Wärmebelastung: Viel trinken, Mittagshitze meiden, nach älteren Nachbarn sehen."
            case (.heat, _): "Hitzewarnung der Kiezbox – extreme Wärmebelastung: Im Kühlen bleiben, viel trinken. Bei Verwirrtheit oder Bewusstlosigkeit: 112."
            case (.heavyRain, ...1): "Starkregen an der Kiezbox gemessen: Keller und Unterführungen meiden, Abflüsse frei halten."
            case (.heavyRain, 2): "Unwetter: heftiger Starkregen an der Kiezbox gemessen. Keller, Tiefgaragen und Unterführungen sofort verlassen."
            case (.heavyRain, _): "Extremes Unwetter: extrem heftiger Starkregen an der Kiezbox gemessen. Gehen Sie nach oben, meiden Sie Keller und Straßen mit Wasser. In Lebensgefahr: 112."
            }
        },
        airQuality: "Luftqualität",
        airQualityBand: {
            switch $0 {
            case .good: "gut"
            case .fair: "ordentlich"
            case .moderate: "mäßig"
            case .poor: "schlecht"
            case .veryPoor: "sehr schlecht"
            case .extremelyPoor: "extrem schlecht"
            }
        },
        airQualityAdvice: {
            switch $0 {
            case .good, .fair: nil
            case .moderate: "Wer Asthma oder Herzprobleme hat, sollte sich draußen nicht lange anstrengen."
            case .poor: "Bleiben Sie draußen nicht lange und strengen Sie sich nicht an. Fenster zu."
            case .veryPoor, .extremelyPoor: "Bleiben Sie drinnen und halten Sie Fenster geschlossen."
            }
        },
        ago: {
            switch $0 {
            case .justNow: "gerade eben"
            case .minutes(let n): "vor \(n) Min."
            case .hours(let n): "vor \(n) Std."
            case .days(let n): n == 1 ? "vor 1 Tag" : "vor \(n) Tagen"
            }
        },
        measured: { "gemessen \($0)" },
        powerHeading: "Strom",
        mainsPresent: "Netzstrom: da",
        mainsAbsent: "Netzstrom: weg (Stromausfall)",
        battery: "Akku der Box",
        drawing: "Verbrauch",
        powerLeft: { "Strom reicht noch etwa \($0) h (\($1)–\($2 ?? "?") h)" },
        savingPower: { "Stromsparen: Stufe \($0) von \($1)" },
        neighboursHeading: "Andere Kiezboxen",
        online: "erreichbar",
        offline: "nicht erreichbar",
        mode: {
            switch $0 {
            case .crisis: "Notbetrieb"
            case .normal: "Normalbetrieb"
            case .maintenance: "Wartung"
            }
        },
        lastHeard: { "zuletzt \($0)" },
        bulletinHeading: "Nachbarschaftshilfe",
        bulletinPrivacy: "Kein Name und keine Telefonnummer nötig. Alles, was Sie schreiben, sehen Ihre Nachbarn.",
        formTitle: {
            switch $0 {
            case .request: "Ich brauche Hilfe"
            case .offer: "Ich kann helfen"
            case .safe: "Ich bin in Sicherheit"
            }
        },
        postKind: {
            switch $0 {
            case .request: "Braucht Hilfe"
            case .offer: "Bietet Hilfe"
            case .safe: "In Sicherheit"
            }
        },
        category: {
            switch $0 {
            case .medical: "Medizin"
            case .fire: "Feuer"
            case .food: "Essen"
            case .water: "Wasser"
            case .power: "Strom"
            case .other: "Anderes"
            }
        },
        categoryLabel: "Worum geht es?",
        textLabel: {
            switch $0 {
            case .request: "Was brauchen Sie?"
            case .offer: "Was bieten Sie an?"
            case .safe: "Nachricht (z. B. wer ist in Sicherheit, wo)"
            }
        },
        placeLabel: "Wo? (freiwillig)",
        send: "Senden",
        postsHeading: "Aktuelle Einträge",
        showAllPosts: { "Alle \($0) Einträge zeigen" },
        olderPosts: "Ältere Einträge",
        posted: "Danke! Ihr Eintrag ist jetzt für die Nachbarn sichtbar.",
        refusal: {
            switch $0 {
            case .tooLong: "Nicht gesendet: Der Text ist zu lang (höchstens 280 Zeichen, Ort 80)."
            case .empty: "Nicht gesendet: Bitte schreiben Sie etwas."
            case .rateLimited: "Nicht gesendet: Zu viele Einträge von diesem Gerät. Bitte in ein paar Minuten noch einmal."
            case .busy: "Nicht gesendet: Das Schwarze Brett nimmt gerade keine Einträge an (zu viele auf einmal). Bitte später noch einmal; im Notfall 112 anrufen."
            case .badToken: "Nicht gesendet: Die Seite war veraltet. Bitte noch einmal senden."
            case .invalid: "Nicht gesendet: Das Formular war unvollständig. Bitte noch einmal."
            }
        },
        decimalSeparator: ","
    )
}
