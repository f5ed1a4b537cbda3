import KiezboxCore
import ReadingStore

extension PortalStrings {
    static let arabic = PortalStrings(
        titleSuffix: "معلومات الطوارئ",
        languageMenu: "اللغة",
        asOf: { "آخر تحديث: \($0)" },
        openInBrowser: "افتح الصفحة في المتصفح:",
        stayConnected: "فهمت، أبقى متصلاً",
        emergencyCall: "إذا كانت حياة أحد في خطر: اتصل بالرقم 112 (إذا كان الهاتف يعمل) أو اذهب إلى أقرب نقطة مساعدة.",
        crisisHeading: "وضع الطوارئ",
        crisisText: "هذا الجهاز (Kiezbox) لديه كهرباء خاصة به ويعمل بدون إنترنت. هنا تجد المساعدة والتحذيرات وأخبار الجيران.",
        normalText: "تشغيل عادي: لا توجد أزمة حاليًا.",
        maintenanceText: "صيانة: يجري العمل على هذا الجهاز الآن. قد تكون بعض المعلومات ناقصة.",
        announcementsHeading: "إعلانات رسمية",
        severity: {
            switch $0 {
            case .extreme: "خطر شديد جدًا"
            case .severe: "خطر كبير"
            case .moderate: "خطر"
            case .minor: "تنبيه"
            case .unknown: "إعلان"
            }
        },
        issuedBy: { "من: \($0)" },
        validUntil: { "ساري حتى \($0)" },
        noneRightNow: "لا شيء حاليًا.",
        helpPointsHeading: "نقاط المساعدة",
        distanceAway: { "على بعد \($0)" },
        readingsHeading: "الطقس والهواء هنا",
        quantity: {
            switch $0 {
            case .temperature: "درجة الحرارة"
            case .relativeHumidity: "الرطوبة"
            case .pressure: "ضغط الهواء"
            case .pm1: "الغبار الدقيق PM1"
            case .pm2_5: "الغبار الدقيق PM2.5"
            case .pm4: "الغبار الدقيق PM4"
            case .pm10: "الغبار الدقيق PM10"
            case .co2: "ثاني أكسيد الكربون"
            case .voltage: "الجهد"
            case .current: "التيار"
            case .power: "القدرة"
            case .batteryLevel: "البطارية"
            case .latitude: "خط العرض"
            case .longitude: "خط الطول"
            case .altitude: "الارتفاع"
            case .rainfall: "المطر"
            case .rainIntensity: "المطر الآن"
            case .mainsPresent: "كهرباء الشبكة"
            }
        },
        feelsLike: { "الحرارة المحسوسة \($0)" },
        heatWarning: {
            switch $0 {
            case .caution: "حرارة: اشرب ما يكفي من الماء وتجنب شمس الظهيرة."
            case .extremeCaution: "حر شديد: اشرب كثيرًا وابقَ في الظل ولا تُجهد نفسك. اطمئن على الجيران المسنين."
            case .danger: "حر خطير: ابقَ في مكان بارد واشرب كثيرًا. إذا فقد أحد وعيه أو بدا مشوشًا: 112."
            case .extremeDanger: "حر يهدد الحياة: اذهب فورًا إلى مكان بارد. إذا فقد أحد وعيه أو بدا مشوشًا: 112."
            }
        },
        frostWarning: "صقيع: البس ملابس دافئة واطمئن على الجيران المسنين. لا تستخدم أبدًا الشواية أو مدفأة الغاز داخل البيت (أول أكسيد الكربون).",
        boxWarning: { hazard, level in
            switch (hazard, level) {
            case (.heat, ...1): "تحذير من الحر من هذا الصندوق – إجهاد حراري شديد: اشرب كثيرًا، تجنّب حر الظهيرة، واطمئن على الجيران المسنين."
            case (.heat, _): "تحذير من الحر من هذا الصندوق – إجهاد حراري بالغ: ابقَ في مكان بارد واشرب كثيرًا. عند الارتباك أو فقدان الوعي: 112."
            case (.heavyRain, ...1): "أمطار غزيرة قاسها هذا الصندوق: ابتعد عن الأقبية والأنفاق، وأبقِ المصارف مفتوحة."
            case (.heavyRain, 2): "طقس عنيف: أمطار غزيرة جدًا قاسها هذا الصندوق. غادر الأقبية ومواقف السيارات تحت الأرض والأنفاق فورًا."
            case (.heavyRain, _): "طقس عنيف للغاية: أمطار غزيرة بشكل استثنائي قاسها هذا الصندوق. اصعد إلى الطوابق العليا وابتعد عن الأقبية والشوارع المغمورة. عند الخطر على الحياة: 112."
            }
        },
        airQuality: "جودة الهواء",
        airQualityBand: {
            switch $0 {
            case .good: "جيدة"
            case .fair: "مقبولة"
            case .moderate: "متوسطة"
            case .poor: "سيئة"
            case .veryPoor: "سيئة جدًا"
            case .extremelyPoor: "سيئة للغاية"
            }
        },
        airQualityAdvice: {
            switch $0 {
            case .good, .fair: nil
            case .moderate: "من لديه ربو أو مشاكل في القلب: تجنب المجهود الطويل في الخارج."
            case .poor: "قلّل البقاء في الخارج وتجنب المجهود. أبقِ النوافذ مغلقة."
            case .veryPoor, .extremelyPoor: "ابقَ في الداخل وأبقِ النوافذ مغلقة."
            }
        },
        ago: {
            switch $0 {
            case .justNow: "الآن"
            case .minutes(let n):
                "منذ " + PluralRules.arabic(n, one: "دقيقة", two: "دقيقتين", few: "دقائق", many: "دقيقة", hundreds: "دقيقة")
            case .hours(let n):
                "منذ " + PluralRules.arabic(n, one: "ساعة", two: "ساعتين", few: "ساعات", many: "ساعة", hundreds: "ساعة")
            case .days(let n):
                "منذ " + PluralRules.arabic(n, one: "يوم", two: "يومين", few: "أيام", many: "يومًا", hundreds: "يوم")
            }
        },
        measured: { "القياس: \($0)" },
        powerHeading: "الكهرباء",
        mainsPresent: "كهرباء الشبكة: موجودة",
        mainsAbsent: "كهرباء الشبكة: مقطوعة (انقطاع الكهرباء)",
        battery: "بطارية الجهاز",
        drawing: "الاستهلاك",
        powerLeft: { "الطاقة المتبقية: حوالي \($0) ساعة (\($1)–\($2 ?? "?") ساعة)" },
        savingPower: { "توفير الطاقة: المرحلة \($0) من \($1)" },
        neighboursHeading: "أجهزة Kiezbox أخرى",
        online: "متصل",
        offline: "غير متصل",
        mode: {
            switch $0 {
            case .crisis: "وضع الطوارئ"
            case .normal: "تشغيل عادي"
            case .maintenance: "صيانة"
            }
        },
        lastHeard: { "آخر اتصال \($0)" },
        bulletinHeading: "مساعدة الجيران",
        bulletinPrivacy: "لا حاجة لاسم أو رقم هاتف. كل ما تكتبه يراه جيرانك.",
        formTitle: {
            switch $0 {
            case .request: "أحتاج إلى مساعدة"
            case .offer: "أستطيع المساعدة"
            case .safe: "أنا بأمان"
            }
        },
        postKind: {
            switch $0 {
            case .request: "يحتاج إلى مساعدة"
            case .offer: "يعرض المساعدة"
            case .safe: "بأمان"
            }
        },
        category: {
            switch $0 {
            case .medical: "طبي"
            case .fire: "حريق"
            case .food: "طعام"
            case .water: "ماء"
            case .power: "كهرباء"
            case .other: "أخرى"
            }
        },
        categoryLabel: "ما الموضوع؟",
        textLabel: {
            switch $0 {
            case .request: "ماذا تحتاج؟"
            case .offer: "ماذا يمكنك أن تقدم؟"
            case .safe: "رسالة (مثلًا: من بأمان، وأين)"
            }
        },
        placeLabel: "أين؟ (اختياري)",
        send: "إرسال",
        postsHeading: "أحدث المنشورات",
        showAllPosts: { "عرض كل المنشورات (\($0))" },
        olderPosts: "منشورات أقدم",
        posted: "شكرًا! منشورك الآن ظاهر لجيرانك.",
        refusal: {
            switch $0 {
            case .tooLong: "لم يُرسل: النص طويل جدًا (280 حرفًا كحد أقصى، والمكان 80)."
            case .empty: "لم يُرسل: الرجاء كتابة شيء."
            case .rateLimited: "لم يُرسل: منشورات كثيرة من هذا الجهاز. حاول مرة أخرى بعد بضع دقائق."
            case .busy: "لم يُرسل: لوحة الإعلانات لا تقبل منشورات جديدة الآن (كثيرة جدًا في وقت واحد). حاول لاحقًا؛ في حالة الطوارئ اتصل بالرقم 112."
            case .badToken: "لم يُرسل: الصفحة قديمة. الرجاء الإرسال مرة أخرى."
            case .invalid: "لم يُرسل: النموذج غير مكتمل. حاول مرة أخرى."
            }
        },
        decimalSeparator: "."
    )
}
