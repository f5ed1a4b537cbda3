import KiezboxCore
import ReadingStore

extension PortalStrings {
    static let turkish = PortalStrings(
        titleSuffix: "Acil durum bilgisi",
        languageMenu: "Dil",
        asOf: { "Güncelleme: \($0)" },
        openInBrowser: "Tarayıcıda açın:",
        stayConnected: "Anladım, bağlı kal",
        emergencyCall: "Hayati tehlike varsa: 112'yi arayın (telefon çalışıyorsa) ya da en yakın yardım noktasına gidin.",
        crisisHeading: "Acil durum modu",
        crisisText: "Bu Kiezbox'un kendi elektriği var ve internetsiz çalışır. Burada yardım, uyarılar ve komşulardan haberler bulursunuz.",
        normalText: "Normal çalışma: Şu anda kriz yok.",
        maintenanceText: "Bakım: Bu kutu üzerinde çalışılıyor. Bazı bilgiler eksik olabilir.",
        announcementsHeading: "Resmî duyurular",
        severity: {
            switch $0 {
            case .extreme: "Aşırı tehlike"
            case .severe: "Büyük tehlike"
            case .moderate: "Tehlike"
            case .minor: "Bilgi"
            case .unknown: "Duyuru"
            }
        },
        issuedBy: { "Gönderen: \($0)" },
        validUntil: { "son geçerlilik: \($0)" },
        noneRightNow: "Şu anda yok.",
        helpPointsHeading: "Yardım noktaları",
        distanceAway: { "\($0) uzakta" },
        readingsHeading: "Buradaki hava durumu",
        quantity: {
            switch $0 {
            case .temperature: "Sıcaklık"
            case .relativeHumidity: "Nem"
            case .pressure: "Hava basıncı"
            case .pm1: "İnce toz PM1"
            case .pm2_5: "İnce toz PM2,5"
            case .pm4: "İnce toz PM4"
            case .pm10: "İnce toz PM10"
            case .co2: "CO₂"
            case .voltage: "Gerilim"
            case .current: "Akım"
            case .power: "Güç"
            case .batteryLevel: "Akü"
            case .latitude: "Enlem"
            case .longitude: "Boylam"
            case .altitude: "Yükseklik"
            case .rainfall: "Yağmur"
            case .rainIntensity: "Şu anki yağmur"
            case .mainsPresent: "Şebeke elektriği"
            }
        },
        feelsLike: { "hissedilen \($0)" },
        heatWarning: {
            switch $0 {
            case .caution: "Sıcak: Yeterince su için ve öğle güneşinden kaçının."
            case .extremeCaution: "Sıcak hava: Bol su için, gölgede kalın, yorulmayın. Yaşlı komşularınıza göz kulak olun."
            case .danger: "Tehlikeli sıcak: Serin bir yerde kalın ve bol su için. Biri bilincini kaybederse veya şaşkınsa: 112."
            case .extremeDanger: "Hayati tehlike yaratan sıcak: Hemen serin bir yere gidin. Biri bilincini kaybederse veya şaşkınsa: 112."
            }
        },
        frostWarning: "Don: Sıkı giyinin ve yaşlı komşularınıza göz kulak olun. Kapalı alanda asla mangal veya gaz sobası kullanmayın (karbonmonoksit).",
        boxWarning: { hazard, level in
            switch (hazard, level) {
            case (.heat, ...1): "Kiezbox sıcaklık uyarısı – yüksek sıcaklık yükü: Bol su için, öğle sıcağından kaçının, yaşlı komşularınıza bakın."
            case (.heat, _): "Kiezbox sıcaklık uyarısı – aşırı sıcaklık yükü: Serin bir yerde kalın, bol su için. Bilinç bulanıklığı veya bilinç kaybında: 112."
            case (.heavyRain, ...1): "Kiezbox'ta şiddetli yağmur ölçüldü: Bodrumlardan ve alt geçitlerden uzak durun, giderleri açık tutun."
            case (.heavyRain, 2): "Fırtına: Kiezbox'ta çok şiddetli yağmur ölçüldü. Bodrumları, yeraltı otoparklarını ve alt geçitleri hemen terk edin."
            case (.heavyRain, _): "Aşırı fırtına: Kiezbox'ta aşırı şiddetli yağmur ölçüldü. Üst katlara çıkın, bodrumlardan ve su basmış sokaklardan uzak durun. Hayati tehlikede: 112."
            }
        },
        airQuality: "Hava kalitesi",
        airQualityBand: {
            switch $0 {
            case .good: "iyi"
            case .fair: "idare eder"
            case .moderate: "orta"
            case .poor: "kötü"
            case .veryPoor: "çok kötü"
            case .extremelyPoor: "son derece kötü"
            }
        },
        airQualityAdvice: {
            switch $0 {
            case .good, .fair: nil
            case .moderate: "Astım veya kalp sorunu olanlar dışarıda uzun süre yorulmamalı."
            case .poor: "Dışarıda az kalın ve yorulmayın. Pencereleri kapalı tutun."
            case .veryPoor, .extremelyPoor: "İçeride kalın ve pencereleri kapalı tutun."
            }
        },
        ago: {
            switch $0 {
            case .justNow: "az önce"
            case .minutes(let n): "\(n) dk önce"
            case .hours(let n): "\(n) saat önce"
            case .days(let n): "\(n) gün önce"
            }
        },
        measured: { "ölçüm: \($0)" },
        powerHeading: "Elektrik",
        mainsPresent: "Şebeke elektriği: var",
        mainsAbsent: "Şebeke elektriği: yok (elektrik kesintisi)",
        battery: "Kutunun aküsü",
        drawing: "Tüketim",
        powerLeft: { "Kalan enerji: yaklaşık \($0) sa (\($1)–\($2 ?? "?") sa)" },
        savingPower: { "Enerji tasarrufu: kademe \($0)/\($1)" },
        neighboursHeading: "Diğer Kiezbox'lar",
        online: "ulaşılabilir",
        offline: "ulaşılamıyor",
        mode: {
            switch $0 {
            case .crisis: "acil durum modu"
            case .normal: "normal çalışma"
            case .maintenance: "bakım"
            }
        },
        lastHeard: { "son sinyal \($0)" },
        bulletinHeading: "Komşuluk yardımı",
        bulletinPrivacy: "İsim veya telefon numarası gerekmez. Yazdığınız her şeyi komşularınız görür.",
        formTitle: {
            switch $0 {
            case .request: "Yardıma ihtiyacım var"
            case .offer: "Yardım edebilirim"
            case .safe: "Güvendeyim"
            }
        },
        postKind: {
            switch $0 {
            case .request: "Yardım istiyor"
            case .offer: "Yardım ediyor"
            case .safe: "Güvende"
            }
        },
        category: {
            switch $0 {
            case .medical: "Sağlık"
            case .fire: "Yangın"
            case .food: "Yiyecek"
            case .water: "Su"
            case .power: "Elektrik"
            case .other: "Diğer"
            }
        },
        categoryLabel: "Konu nedir?",
        textLabel: {
            switch $0 {
            case .request: "Neye ihtiyacınız var?"
            case .offer: "Ne sunabilirsiniz?"
            case .safe: "Mesaj (örn. kim güvende, nerede)"
            }
        },
        placeLabel: "Nerede? (isteğe bağlı)",
        send: "Gönder",
        postsHeading: "Son ilanlar",
        showAllPosts: { "\($0) ilanın hepsini göster" },
        olderPosts: "Daha eski ilanlar",
        posted: "Teşekkürler! İlanınızı artık komşularınız görebilir.",
        refusal: {
            switch $0 {
            case .tooLong: "Gönderilmedi: Metin çok uzun (en fazla 280 karakter, yer 80)."
            case .empty: "Gönderilmedi: Lütfen bir şey yazın."
            case .rateLimited: "Gönderilmedi: Bu cihazdan çok fazla ilan geldi. Lütfen birkaç dakika sonra tekrar deneyin."
            case .busy: "Gönderilmedi: Pano şu anda yeni ilan kabul etmiyor (aynı anda çok fazla ilan). Lütfen daha sonra tekrar deneyin; acil durumda 112'yi arayın."
            case .badToken: "Gönderilmedi: Sayfa eskimişti. Lütfen tekrar gönderin."
            case .invalid: "Gönderilmedi: Form eksikti. Lütfen tekrar deneyin."
            }
        },
        decimalSeparator: ","
    )
}
