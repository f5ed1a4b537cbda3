import Foundation
import KiezboxCore
import ReadingStore
import Testing

@testable import EmergencyPortal

#if canImport(FoundationXML)
import FoundationXML
#endif

@Suite("Power left on the portal")
struct PowerLeftTests {
    static let hoursLeft = HoursLeft(likely: 31.2, low: 24.6, high: 38.4)

    static func record(at: Date, hoursLeft: HoursLeft? = Self.hoursLeft) -> BatteryRecord {
        BatteryRecord(
            state: .init(stateOfCharge: 0.5, stateOfChargeUncertainty: 0.04),
            estimate: PowerEstimate(
                stateOfCharge: 0.5, stateOfChargeLow: 0.46, stateOfChargeHigh: 0.54, remainingAmpHours: 50,
                averageDrawAmps: 2, hoursLeft: hoursLeft, solarWatts: nil, lastAnchor: .restedVoltage, lastAnchorAt: at
            ),
            at: at
        )
    }

    @Test("the info page says how long the power lasts, in every language", arguments: PortalLanguage.allCases)
    func infoPage(language: PortalLanguage) throws {
        var snapshot = InfoPageFixtures.normal()
        snapshot.power = PowerSummary(mainsPresent: false, batteryVolts: 13.1, batteryPercent: 62, hoursLeft: Self.hoursLeft)
        let document = try InfoPageTests.document(InfoPageTests.page(snapshot, language))
        let power = try #require(try InfoPageTests.nodes(document, "//section[@id='power']/p").first?.stringValue)
        let expected = PortalStrings.forLanguage(language).powerLeft("31", "25", "38")
        #expect(power.contains(expected), "\(language): \(power)")
        if language == .en { #expect(expected == "Power left: about 31 h (25–38 h)") }
        if language == .de { #expect(expected == "Strom reicht noch etwa 31 h (25–38 h)") }
    }

    @Test("a fresh power-model record gives the charge and hours left; a stale one is ignored for the voltage curve")
    func summaryFromRecord() {
        let now = Date(timeIntervalSince1970: 1_790_000_000)
        let latest = [StoredReading(id: 1, reading: Reading(sensorID: "battery", quantity: .voltage, value: 12.4, measuredAt: now))]
        let fresh = PowerSummary(latest: latest, battery: .leadAcid12V, model: Self.record(at: now - 60), now: now)
        #expect(fresh.batteryPercent == 50)
        #expect(fresh.hoursLeft == Self.hoursLeft)
        let stale = PowerSummary(latest: latest, battery: .leadAcid12V, model: Self.record(at: now - 3600), now: now)
        #expect(stale.hoursLeft == nil)
        #expect(abs((stale.batteryPercent ?? 0) - 70) < 1e-9)
    }

    @Test("/metrics carries the state of charge and hours left")
    func metrics() async throws {
        try await withRunningPortal { portal in
            try await portal.store.setBatteryRecord(Self.record(at: portal.clock.now))
            let metrics = try await portal.phone(9).get("/metrics", host: "kiez.box")
            #expect(metrics.status == 200)
            #expect(metrics.text.contains("kiezbox_battery_state_of_charge 0.5"), "\(metrics.text)")
            #expect(metrics.text.contains("kiezbox_battery_hours_left 31.2"))
            #expect(metrics.text.contains("kiezbox_battery_hours_left_low 24.6"))
            #expect(metrics.text.contains("kiezbox_battery_hours_left_high 38.4"))
        }
    }
}
