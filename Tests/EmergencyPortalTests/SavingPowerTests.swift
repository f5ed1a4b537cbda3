import Foundation
import KiezboxCore
import ReadingStore
import Testing

@testable import EmergencyPortal

#if canImport(FoundationXML)
import FoundationXML
#endif

@Suite("Saving power on the portal")
struct SavingPowerTests {
    @Test("the info page says the box is saving power, in every language; not at step 0", arguments: PortalLanguage.allCases)
    func infoPage(language: PortalLanguage) throws {
        var snapshot = InfoPageFixtures.normal()
        snapshot.power = PowerSummary(mainsPresent: false, batteryVolts: 13.1, batteryPercent: 30, shedStep: 2, shedSteps: 4)
        let document = try InfoPageTests.document(InfoPageTests.page(snapshot, language))
        let power = try #require(try InfoPageTests.nodes(document, "//section[@id='power']/p").first?.stringValue)
        let expected = PortalStrings.forLanguage(language).savingPower(2, 4)
        #expect(power.contains(expected), "\(language): \(power)")
        if language == .en { #expect(expected == "Saving power: step 2 of 4") }
        if language == .de { #expect(expected == "Stromsparen: Stufe 2 von 4") }
        snapshot.power.shedStep = 0
        let calm = try #require(try InfoPageTests.nodes(
            try InfoPageTests.document(InfoPageTests.page(snapshot, language)), "//section[@id='power']/p").first?.stringValue)
        #expect(!calm.contains(expected))
    }

    @Test("/metrics carries the load-shedding step from the store")
    func metrics() async throws {
        try await withRunningPortal { portal in
            try await portal.store.setLoadShedRecord(LoadShedRecord(step: 3, steps: 4, since: portal.clock.now, reason: "test"))
            let metrics = try await portal.phone(9).get("/metrics", host: "kiez.box")
            #expect(metrics.status == 200)
            #expect(metrics.text.contains("kiezbox_load_shed_step 3"), "\(metrics.text)")
        }
    }
}
