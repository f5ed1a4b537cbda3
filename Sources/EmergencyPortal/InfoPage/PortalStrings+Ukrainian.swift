import KiezboxCore
import ReadingStore

extension PortalStrings {
    static let ukrainian = PortalStrings(
        titleSuffix: "Екстрена інформація",
        languageMenu: "Мова",
        asOf: { "Станом на \($0)" },
        openInBrowser: "Відкрити в браузері:",
        stayConnected: "Зрозуміло, залишаюся",
        emergencyCall: "Якщо є загроза життю: телефонуйте 112 (якщо зв’язок працює) або йдіть до найближчого пункту допомоги.",
        crisisHeading: "Аварійний режим",
        crisisText: "Ця Kiezbox має власне живлення і працює без інтернету. Тут ви знайдете допомогу, попередження та новини від сусідів.",
        normalText: "Звичайний режим: зараз кризи немає.",
        maintenanceText: "Обслуговування: зараз цей пристрій налаштовують. Деяких даних може бракувати.",
        announcementsHeading: "Офіційні повідомлення",
        severity: {
            switch $0 {
            case .extreme: "Надзвичайна небезпека"
            case .severe: "Велика небезпека"
            case .moderate: "Небезпека"
            case .minor: "До відома"
            case .unknown: "Повідомлення"
            }
        },
        issuedBy: { "Від: \($0)" },
        validUntil: { "діє до \($0)" },
        noneRightNow: "Наразі немає.",
        helpPointsHeading: "Пункти допомоги",
        distanceAway: { "за \($0)" },
        readingsHeading: "Погода й повітря тут",
        quantity: {
            switch $0 {
            case .temperature: "Температура"
            case .relativeHumidity: "Вологість"
            case .pressure: "Атмосферний тиск"
            case .pm1: "Дрібний пил PM1"
            case .pm2_5: "Дрібний пил PM2,5"
            case .pm4: "Дрібний пил PM4"
            case .pm10: "Дрібний пил PM10"
            case .co2: "CO₂"
            case .voltage: "Напруга"
            case .current: "Струм"
            case .power: "Потужність"
            case .batteryLevel: "Акумулятор"
            case .latitude: "Широта"
            case .longitude: "Довгота"
            case .altitude: "Висота"
            case .rainfall: "Дощ"
            case .rainIntensity: "Дощ зараз"
            case .mainsPresent: "Електромережа"
            }
        },
        feelsLike: { "відчувається як \($0)" },
        heatWarning: {
            switch $0 {
            case .caution: "Тепло: пийте достатньо води й уникайте полуденного сонця."
            case .extremeCaution: "Спека: пийте багато, тримайтеся в тіні, не перенапружуйтеся. Перевірте літніх сусідів."
            case .danger: "Небезпечна спека: залишайтеся в прохолоді й пийте багато. Якщо людина сплутана чи непритомна: 112."
            case .extremeDanger: "Смертельно небезпечна спека: негайно йдіть у прохолодне місце. Якщо людина сплутана чи непритомна: 112."
            }
        },
        frostWarning: "Мороз: вдягайтеся тепло й перевірте літніх сусідів. Ніколи не користуйтеся грилем чи газовим обігрівачем у приміщенні (чадний газ).",
        boxWarning: { hazard, level in
            switch (hazard, level) {
            case (.heat, ...1): "Попередження про спеку від Kiezbox – сильне теплове навантаження: пийте багато, уникайте полуденної спеки, навідайте літніх сусідів."
            case (.heat, _): "Попередження про спеку від Kiezbox – екстремальне теплове навантаження: залишайтеся в прохолоді, пийте багато. При сплутаності або непритомності: 112."
            case (.heavyRain, ...1): "Kiezbox виміряв сильну зливу: уникайте підвалів і підземних переходів, тримайте стоки вільними."
            case (.heavyRain, 2): "Негода: Kiezbox виміряв дуже сильну зливу. Негайно покиньте підвали, підземні паркінги та переходи."
            case (.heavyRain, _): "Надзвичайна негода: Kiezbox виміряв надзвичайно сильну зливу. Підніміться вище, тримайтеся подалі від підвалів і затоплених вулиць. При загрозі життю: 112."
            }
        },
        airQuality: "Якість повітря",
        airQualityBand: {
            switch $0 {
            case .good: "добра"
            case .fair: "задовільна"
            case .moderate: "помірна"
            case .poor: "погана"
            case .veryPoor: "дуже погана"
            case .extremelyPoor: "надзвичайно погана"
            }
        },
        airQualityAdvice: {
            switch $0 {
            case .good, .fair: nil
            case .moderate: "Людям з астмою чи хворим серцем не варто довго напружуватися надворі."
            case .poor: "Менше бувайте надворі й не перенапружуйтеся. Тримайте вікна зачиненими."
            case .veryPoor, .extremelyPoor: "Залишайтеся вдома й тримайте вікна зачиненими."
            }
        },
        ago: {
            switch $0 {
            case .justNow: "щойно"
            case .minutes(let n): PluralRules.ukrainian(n, one: "хвилину", few: "хвилини", many: "хвилин") + " тому"
            case .hours(let n): PluralRules.ukrainian(n, one: "годину", few: "години", many: "годин") + " тому"
            case .days(let n): PluralRules.ukrainian(n, one: "день", few: "дні", many: "днів") + " тому"
            }
        },
        measured: { "виміряно \($0)" },
        powerHeading: "Живлення",
        mainsPresent: "Електромережа: є",
        mainsAbsent: "Електромережа: немає (знеструмлення)",
        battery: "Акумулятор пристрою",
        drawing: "Споживання",
        powerLeft: { "Заряду вистачить приблизно на \($0) год (\($1)–\($2 ?? "?") год)" },
        savingPower: { "Економія енергії: рівень \($0) з \($1)" },
        neighboursHeading: "Інші Kiezbox",
        online: "на зв’язку",
        offline: "немає зв’язку",
        mode: {
            switch $0 {
            case .crisis: "аварійний режим"
            case .normal: "звичайний режим"
            case .maintenance: "обслуговування"
            }
        },
        lastHeard: { "востаннє \($0)" },
        bulletinHeading: "Сусідська допомога",
        bulletinPrivacy: "Ім’я та номер телефону не потрібні. Усе, що ви напишете, бачать ваші сусіди.",
        formTitle: {
            switch $0 {
            case .request: "Мені потрібна допомога"
            case .offer: "Я можу допомогти"
            case .safe: "Я в безпеці"
            }
        },
        postKind: {
            switch $0 {
            case .request: "Потрібна допомога"
            case .offer: "Пропонує допомогу"
            case .safe: "У безпеці"
            }
        },
        category: {
            switch $0 {
            case .medical: "Медицина"
            case .fire: "Пожежа"
            case .food: "Їжа"
            case .water: "Вода"
            case .power: "Електрика"
            case .other: "Інше"
            }
        },
        categoryLabel: "Про що йдеться?",
        textLabel: {
            switch $0 {
            case .request: "Що вам потрібно?"
            case .offer: "Що ви можете запропонувати?"
            case .safe: "Повідомлення (напр., хто в безпеці, де)"
            }
        },
        placeLabel: "Де? (необов’язково)",
        send: "Надіслати",
        postsHeading: "Останні дописи",
        showAllPosts: { "Показати всі дописи (\($0))" },
        olderPosts: "Старіші дописи",
        posted: "Дякуємо! Ваш допис тепер бачать сусіди.",
        refusal: {
            switch $0 {
            case .tooLong: "Не надіслано: текст задовгий (не більше 280 символів, місце — 80)."
            case .empty: "Не надіслано: будь ласка, напишіть щось."
            case .rateLimited: "Не надіслано: забагато дописів із цього пристрою. Спробуйте ще раз за кілька хвилин."
            case .busy: "Не надіслано: дошка зараз не приймає дописів (забагато одночасно). Спробуйте пізніше; у надзвичайній ситуації телефонуйте 112."
            case .badToken: "Не надіслано: сторінка застаріла. Будь ласка, надішліть ще раз."
            case .invalid: "Не надіслано: форма неповна. Спробуйте ще раз."
            }
        },
        decimalSeparator: ","
    )
}
