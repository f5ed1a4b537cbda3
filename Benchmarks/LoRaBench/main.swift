// `make bench`, LoRaWAN part: what a full box report costs on air, and how many fit TTN's fair use.
//
//   LoRaBench
//
// Prints the bytes of a full report (eight values) in the compact format and in CayenneLPP, and of a crisis
// summary; each one's time on air at DR5 (SF7) and DR0 (SF12); and how many reports fit 30 s of uplink airtime
// per day (TTN's fair use), with the shortest spacing the 1 % duty cycle allows.

import KiezboxCore
import MeshRelay
import ReadingStore

let fairUse = Duration.seconds(30)
let report = BoxReport(
    values: [
        .temperature: 21.55, .relativeHumidity: 55.5, .pressure: 1013.2, .pm2_5: 12.3, .pm10: 20.1, .co2: 415,
        .voltage: 12.6, .batteryLevel: 87,
    ],
    status: BoxStatus(mode: .normal, mainsPresent: true))
let summary = CrisisSummary(
    status: BoxStatus(mode: .crisis, onBattery: true, helpRequestsOpen: true), batteryLevel: 64, batteryVoltage: 12.31,
    phonesConnected: 37, openHelpRequests: [.medical: 2, .water: 5, .other: 1])

func milliseconds(_ duration: Duration) -> String {
    let microseconds = duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000
    return "\(microseconds / 1000).\(String(microseconds % 1000).leftPadded(to: 3)) ms"
}

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - self.count)) + self }
}

let payloads: [(String, [UInt8])] = [
    ("full report, compact (FPort 10)", report.encode(.compact)),
    ("full report, CayenneLPP (FPort 12)", report.encode(.cayenneLPP)),
    ("crisis summary, compact (FPort 11)", summary.encode(.compact)),
    ("crisis summary, CayenneLPP (FPort 13)", summary.encode(.cayenneLPP)),
]
for (name, bytes) in payloads {
    print("\(name): \(bytes.count) bytes")
    for dataRate in [EU868DataRate.dr5, .dr0] {
        let airtime = uplinkAirtime(applicationPayloadLength: bytes.count, dataRate: dataRate)
        let perDay = Int(fairUse / airtime)
        print(
            "  DR\(dataRate.rawValue) (SF\(dataRate.spreadingFactor.rawValue)/\(dataRate.bandwidth.hertz / 1000) kHz): "
                + "\(milliseconds(airtime)) on air, \(perDay) per day in 30 s (one every \(86_400 / perDay) s), "
                + "1 % duty cycle spacing \(milliseconds(airtime * 100))")
    }
}
