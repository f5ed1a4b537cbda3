import KiezboxCore
import ReadingStore

extension PortalStrings {
    static let english = PortalStrings(
        titleSuffix: "Emergency info",
        languageMenu: "Language",
        asOf: { "As of \($0)" },
        openInBrowser: "Open in your browser:",
        stayConnected: "Got it, stay connected",
        emergencyCall: "If a life is in danger: call 112 (if phones work) or go to the nearest help point.",
        crisisHeading: "Emergency mode",
        crisisText: "This Kiezbox has its own power and works without the internet. Here you find help, warnings and news from your neighbours.",
        normalText: "Normal operation: there is no crisis right now.",
        maintenanceText: "Maintenance: someone is working on this box. Some information may be missing.",
        announcementsHeading: "Official announcements",
        severity: {
            switch $0 {
            case .extreme: "Extreme danger"
            case .severe: "Severe danger"
            case .moderate: "Danger"
            case .minor: "Notice"
            case .unknown: "Announcement"
            }
        },
        issuedBy: { "From: \($0)" },
        validUntil: { "valid until \($0)" },
        noneRightNow: "None right now.",
        helpPointsHeading: "Help points",
        distanceAway: { "\($0) away" },
        readingsHeading: "Weather and air here",
        quantity: {
            switch $0 {
            case .temperature: "Temperature"
            case .relativeHumidity: "Humidity"
            case .pressure: "Air pressure"
            case .pm1: "Fine dust PM1"
            case .pm2_5: "Fine dust PM2.5"
            case .pm4: "Fine dust PM4"
            case .pm10: "Fine dust PM10"
            case .co2: "CO₂"
            case .voltage: "Voltage"
            case .current: "Current"
            case .power: "Power"
            case .batteryLevel: "Battery"
            case .latitude: "Latitude"
            case .longitude: "Longitude"
            case .altitude: "Altitude"
            case .rainfall: "Rain"
            case .rainIntensity: "Rain now"
            case .mainsPresent: "Mains power"
            }
        },
        feelsLike: { "feels like \($0)" },
        heatWarning: {
            switch $0 {
            case .caution: "Warm: drink enough water and avoid the midday sun."
            case .extremeCaution: "Heat: drink a lot, stay in the shade, avoid effort. Check on older neighbours."
            case .danger: "Dangerous heat: stay somewhere cool and drink a lot. If someone is confused or unconscious: 112."
            case .extremeDanger: "Deadly heat: go to a cool place now. If someone is confused or unconscious: 112."
            }
        },
        frostWarning: "Frost: dress warmly and check on older neighbours. Never use a grill or gas heater indoors (carbon monoxide).",
        boxWarning: { hazard, level in
            switch (hazard, level) {
            case (.heat, ...1): "Heat warning from this box – strong heat stress: drink a lot, avoid the midday heat, check on older neighbours."
            case (.heat, _): "Heat warning from this box – extreme heat stress: stay somewhere cool, drink a lot. If someone is confused or unconscious: 112."
            case (.heavyRain, ...1): "Heavy rain measured at this box: keep out of basements and underpasses, keep drains clear."
            case (.heavyRain, 2): "Severe weather: very heavy rain measured at this box. Leave basements, underground car parks and underpasses now."
            case (.heavyRain, _): "Extreme weather: extremely heavy rain measured at this box. Go upstairs, keep away from basements and flooded streets. If lives are in danger: 112."
            }
        },
        airQuality: "Air quality",
        airQualityBand: {
            switch $0 {
            case .good: "good"
            case .fair: "fair"
            case .moderate: "moderate"
            case .poor: "poor"
            case .veryPoor: "very poor"
            case .extremelyPoor: "extremely poor"
            }
        },
        airQualityAdvice: {
            switch $0 {
            case .good, .fair: nil
            case .moderate: "People with asthma or heart problems should avoid long effort outdoors."
            case .poor: "Spend little time outdoors and avoid effort. Keep windows closed."
            case .veryPoor, .extremelyPoor: "Stay indoors and keep windows closed."
            }
        },
        ago: {
            switch $0 {
            case .justNow: "just now"
            case .minutes(let n): "\(n) min ago"
            case .hours(let n): "\(n) h ago"
            case .days(let n): n == 1 ? "1 day ago" : "\(n) days ago"
            }
        },
        measured: { "measured \($0)" },
        powerHeading: "Power",
        mainsPresent: "Mains power: on",
        mainsAbsent: "Mains power: off (power cut)",
        battery: "Box battery",
        drawing: "Using",
        powerLeft: { "Power left: about \($0) h (\($1)–\($2 ?? "?") h)" },
        savingPower: { "Saving power: step \($0) of \($1)" },
        neighboursHeading: "Other Kiezboxes",
        online: "reachable",
        offline: "not reachable",
        mode: {
            switch $0 {
            case .crisis: "emergency mode"
            case .normal: "normal operation"
            case .maintenance: "maintenance"
            }
        },
        lastHeard: { "last heard \($0)" },
        bulletinHeading: "Neighbours helping neighbours",
        bulletinPrivacy: "No name or phone number needed. Everything you write is visible to your neighbours.",
        formTitle: {
            switch $0 {
            case .request: "I need help"
            case .offer: "I can help"
            case .safe: "I am safe"
            }
        },
        postKind: {
            switch $0 {
            case .request: "Needs help"
            case .offer: "Offers help"
            case .safe: "Safe"
            }
        },
        category: {
            switch $0 {
            case .medical: "Medical"
            case .fire: "Fire"
            case .food: "Food"
            case .water: "Water"
            case .power: "Power"
            case .other: "Other"
            }
        },
        categoryLabel: "What is it about?",
        textLabel: {
            switch $0 {
            case .request: "What do you need?"
            case .offer: "What can you offer?"
            case .safe: "Message (e.g. who is safe, where)"
            }
        },
        placeLabel: "Where? (optional)",
        send: "Send",
        postsHeading: "Latest posts",
        showAllPosts: { "Show all \($0) posts" },
        olderPosts: "Older posts",
        posted: "Thank you! Your post is now visible to your neighbours.",
        refusal: {
            switch $0 {
            case .tooLong: "Not sent: the text is too long (at most 280 characters, place 80)."
            case .empty: "Not sent: please write something."
            case .rateLimited: "Not sent: too many posts from this device. Please try again in a few minutes."
            case .busy: "Not sent: the bulletin takes no more posts right now (too many at once). Please try again later; in an emergency call 112."
            case .badToken: "Not sent: the page was out of date. Please send it again."
            case .invalid: "Not sent: the form was incomplete. Please try again."
            }
        },
        decimalSeparator: "."
    )
}
