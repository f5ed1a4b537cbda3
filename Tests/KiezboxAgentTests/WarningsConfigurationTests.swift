import Foundation
import KiezboxCore
import Testing

@testable import KiezboxAgent

@Suite("[warnings] configuration")
struct WarningsConfigurationTests {
    static let head = """
        [box]
        id = "wrangelkiez-01"
        district = "friedrichshain-kreuzberg"

        """

    @Test("defaults are the DWD levels; every threshold and duration can be set")
    func valid() throws {
        let defaults = try KiezboxConfiguration.parse(Self.head, file: "k.toml").warnings
        #expect(defaults.enabled)
        #expect(defaults.thresholds == WarningThresholds())
        #expect(defaults.thresholds.heatStrong == 32 && defaults.thresholds.heatExtreme == 38)
        #expect(defaults.thresholds.rainSevere == RainThreshold(oneHour: 25, sixHours: 35))
        let custom = try KiezboxConfiguration.parse(
            Self.head + """
                [warnings]
                interval = "30s"
                heat_strong = 30
                heat_extreme = 36
                rain_heavy_1h = 10
                rain_extreme_6h = 80
                calm_after = "2h"
                cancel_kept = "30m"
                expires_after = "6h"
                """, file: "k.toml"
        ).warnings
        #expect(custom.interval == .seconds(30))
        #expect(custom.thresholds.heatStrong == 30 && custom.thresholds.heatExtreme == 36)
        #expect(custom.thresholds.rainHeavy == RainThreshold(oneHour: 10, sixHours: 20))
        #expect(custom.thresholds.rainExtreme == RainThreshold(oneHour: 40, sixHours: 80))
        #expect(custom.thresholds.calmAfter == 7200 && custom.thresholds.cancelKept == 1800)
        #expect(custom.thresholds.expiresAfter == 6 * 3600)
        #expect(defaults.thresholds.expiresAfter == 24 * 3600)
        #expect(try !KiezboxConfiguration.parse(Self.head + "[warnings]\nenabled = false\n", file: "k.toml").warnings.enabled)
    }

    @Test(
        "levels that do not rise, unknown keys and wrong types are refused with their key",
        arguments: [
            ("heat_strong = 40\n", "heat_extreme"),
            ("rain_severe_1h = 12\n", "rain_severe_1h"),
            ("rain_extreme_6h = 30\n", "rain_extreme_1h"),
            ("rain_heavy = 15\n", "rain_heavy"),
            ("calm_after = 60\n", "calm_after"),
            ("expires_after = \"5m\"\n", "expires_after"),
        ])
    func mistakes(_ line: String, key: String) throws {
        do {
            _ = try KiezboxConfiguration.parse(Self.head + "[warnings]\n" + line, file: "k.toml")
            Issue.record("accepted \(line)")
        } catch {
            #expect(error.key.hasSuffix(key), "\(error)")
        }
    }
}
