import Foundation
import KiezboxCore
import ReadingStore
import Testing

@testable import EmergencyPortal

@Suite("Info page languages")
struct LanguageTests {
    @Test(
        "Accept-Language negotiation (RFC 9110 q-values, region subtags, wildcard)",
        arguments: [
            (nil, nil, PortalLanguage.de),
            ("", nil, .de),
            ("tr-TR,tr;q=0.9,en;q=0.8", nil, .tr),
            ("en-US,en;q=0.9,de;q=0.8", nil, .en),
            ("fr;q=1, ar-EG;q=0.9", nil, .ar),
            ("fr-FR, *;q=0.5", nil, .de),
            ("*", nil, .de),
            ("fr, uk;q=0.3, en;q=0.2", nil, .uk),
            ("en;q=0, tr", nil, .tr),
            ("de;q=0.5, en;q=0.5", nil, .de),
            ("en;q=0.5, de;q=0.5", nil, .en),
            ("UK-ua", nil, .uk),
            ("zh-Hant-TW, uk-UA;q=0.1", nil, .uk),
            ("en;q=0.001, ar;q=0.002", nil, .ar),
            ("de-DE-1996, en;q=0.5", nil, .de),
            // An explicit choice wins; an unknown or garbage one is ignored.
            ("en-US,en;q=0.9", "ar", .ar),
            ("en", "AR", .ar),
            ("en", "uk-UA", .uk),
            ("tr", "xx", .tr),
            ("tr", "", .tr),
            ("tr", "<script>", .tr),
        ] as [(String?, String?, PortalLanguage)]
    )
    func negotiation(header: String?, requested: String?, expected: PortalLanguage) {
        #expect(PortalLanguage.negotiate(acceptLanguage: header, requested: requested) == expected)
    }

    @Test(
        "Garbage headers never crash and skip only the bad entries",
        arguments: [
            (";;;,,,=q", PortalLanguage.de),
            ("en;q=abc, tr", .tr),
            ("en;q=1.5, tr;q=0.1", .tr),
            ("en;q=-1, tr;q=0.1", .tr),
            ("en;q=0.1234, tr;q=0.1", .tr),
            ("e n, tr", .tr),
            ("toolonglanguage, ar", .ar),
            ("en-, uk", .uk),
            ("\u{0}\u{7F}ü, uk", .uk),
            ("q=0.5", .de),
            (String(repeating: "xx-YY;q=0.5,", count: 10_000) + "tr", .de),
            (String(repeating: "a", count: 100_000), .de),
        ] as [(String, PortalLanguage)]
    )
    func garbage(header: String, expected: PortalLanguage) {
        #expect(PortalLanguage.negotiate(acceptLanguage: header, requested: nil) == expected)
    }

    @Test("Only Arabic is right to left")
    func rightToLeft() {
        #expect(PortalLanguage.allCases.filter(\.isRightToLeft) == [.ar])
    }

    @Test("Native names are unique and each in its own script")
    func nativeNames() {
        #expect(Set(PortalLanguage.allCases.map(\.nativeName)).count == PortalLanguage.allCases.count)
        #expect(PortalLanguage.ar.nativeName.unicodeScalars.allSatisfy { (0x0600...0x06FF).contains($0.value) })
        #expect(PortalLanguage.uk.nativeName.unicodeScalars.allSatisfy { (0x0400...0x04FF).contains($0.value) })
    }

    @Test("Every language has every text, and none is left in English", arguments: [PortalLanguage.de, .tr, .ar, .uk])
    func everyTextTranslated(language: PortalLanguage) {
        let texts = Self.allTexts(PortalStrings.forLanguage(language))
        let english = Self.allTexts(PortalStrings.forLanguage(.en))
        #expect(texts.count == english.count)
        for (key, text) in texts {
            #expect(!text.trimmingCharacters(in: .whitespaces).isEmpty, "\(language) \(key) is empty")
            // Symbols are the same everywhere; every sentence must be translated.
            if text.count > 4 {
                #expect(text != english[key], "\(language) \(key) is the English text")
            }
        }
        let letters = texts.values.joined().unicodeScalars.filter { $0.properties.isAlphabetic }
        let script: ClosedRange<UInt32>? =
            switch language {
            case .ar: 0x0600...0x06FF
            case .uk: 0x0400...0x04FF
            default: nil
            }
        if let script {
            // Arabic and Ukrainian texts are in their script; Latin letters only in names like "Kiezbox", "PM2.5".
            let inScript = letters.filter { script.contains($0.value) }.count
            #expect(Double(inScript) / Double(letters.count) > 0.9)
        }
    }

    @Test("Ukrainian and Arabic count their nouns correctly")
    func plurals() {
        let uk = PortalStrings.forLanguage(.uk).ago
        #expect(uk(.minutes(1)) == "1 хвилину тому")
        #expect(uk(.minutes(3)) == "3 хвилини тому")
        #expect(uk(.minutes(5)) == "5 хвилин тому")
        #expect(uk(.minutes(11)) == "11 хвилин тому")
        #expect(uk(.minutes(21)) == "21 хвилину тому")
        #expect(uk(.minutes(22)) == "22 хвилини тому")
        #expect(uk(.hours(12)) == "12 годин тому")
        #expect(uk(.days(2)) == "2 дні тому")
        let ar = PortalStrings.forLanguage(.ar).ago
        #expect(ar(.minutes(1)) == "منذ دقيقة")
        #expect(ar(.minutes(2)) == "منذ دقيقتين")
        #expect(ar(.minutes(3)) == "منذ 3 دقائق")
        #expect(ar(.minutes(11)) == "منذ 11 دقيقة")
        #expect(ar(.days(15)) == "منذ 15 يومًا")
    }

    /// Every text of a language, keyed by name: the plain ones by reflection, the ones that depend on a value
    /// called with every case.
    static func allTexts(_ strings: PortalStrings) -> [String: String] {
        var texts: [String: String] = [:]
        for child in Mirror(reflecting: strings).children {
            if let label = child.label, let text = child.value as? String, label != "decimalSeparator" {
                texts[label] = text
            }
        }
        texts["asOf"] = strings.asOf("18:30")
        texts["issuedBy"] = strings.issuedBy("Bezirksamt")
        texts["validUntil"] = strings.validUntil("18:30")
        texts["distanceAway"] = strings.distanceAway("1 km")
        texts["feelsLike"] = strings.feelsLike("35 °C")
        texts["lastHeard"] = strings.lastHeard("x")
        texts["measured"] = strings.measured("x")
        texts["showAllPosts"] = strings.showAllPosts(23)
        for severity in AnnouncementSeverity.allCases { texts["severity.\(severity)"] = strings.severity(severity) }
        for quantity in Quantity.allCases { texts["quantity.\(quantity)"] = strings.quantity(quantity) }
        for risk in HeatRisk.allCases { texts["heat.\(risk)"] = strings.heatWarning(risk) }
        for band in AirQualityBand.allCases {
            texts["air.\(band)"] = strings.airQualityBand(band)
            if let advice = strings.airQualityAdvice(band) { texts["advice.\(band)"] = advice }
        }
        for age in [RelativeAge.justNow, .minutes(5), .hours(5), .days(1), .days(5)] { texts["ago.\(age)"] = strings.ago(age) }
        for mode in Mode.allCases { texts["mode.\(mode)"] = strings.mode(mode) }
        for kind in BulletinKind.allCases {
            texts["form.\(kind)"] = strings.formTitle(kind)
            texts["post.\(kind)"] = strings.postKind(kind)
            texts["text.\(kind)"] = strings.textLabel(kind)
        }
        for category in BulletinCategory.allCases { texts["category.\(category)"] = strings.category(category) }
        for refusal in BulletinRefusal.allCases { texts["refusal.\(refusal)"] = strings.refusal(refusal) }
        return texts
    }
}
