// `make bench`, Meshtastic part: what the box's status costs on the LoRa mesh (ours against a Kiezbox 2.0 pilot
// box's), how many fit the airtime budget, and what a signed announcement costs in fragments.
//
//   MeshtasticBench
//
// Bytes on air are the firmware's 16-byte header plus the serialised Data (portnum + payload); airtime is
// LONG_FAST (SF11, 250 kHz, CR 4/5, 16-symbol preamble). "per hour" is how many such packets fit: the whole
// band (10 % = 360 s), our half (180 s, crisis traffic) and the routine-status part (60 % of it, 108 s).

import Crypto
import EmergencyPortal
import Foundation
import KiezboxCore
import MeshRelay
import ReadingStore
import SwiftProtobuf

let now = Date(timeIntervalSince1970: 1_790_000_000)

// A full kit: BME280, particulates, CO₂, a battery and a solar monitor, three days up.
let status = MeshStatus(
    mode: .normal, temperature: 21.55, relativeHumidity: 55.5, pressure: 1013.2, pm1: 8.1, pm2_5: 12.3, pm10: 20.1, co2: 415,
    batteryVoltage: 12.63, batteryCurrent: -0.42, batteryLevel: 87, solarVoltage: 18.4, solarCurrent: 1.35, solarPower: 24.84,
    mainsPresent: true, uptime: .seconds(3 * 86_400))

// A typical pilot box as its firmware fills the schema: a core update (router on, VE.Direct solar charger and
// battery, inside climate) and a sensor-module update (BME680 and SDS011 on battery).
let pilotCore = Meshtastic_KiezboxMessage.with {
    $0.update = .with {
        $0.meta = .with {
            $0.boxID = 17
            $0.distID = 3
            $0.devType = .core
        }
        $0.unixTime = 1_790_000_000
        $0.core = .with {
            $0.mode = .normal
            $0.router = .with {
                $0.powered = true
                $0.swVersion = "23.05.3"
                $0.model = "GL-MT300N-V2"
            }
            $0.values = .with {
                $0.tempOut = 8_250
                $0.tempIn = 19_500
                $0.humidIn = 48_200
                $0.solarVoltage = 18_420
                $0.solarPower = 23_400
                $0.solarEnergyDay = 120
                $0.solarEnergyTotal = 345_000
                $0.batteryVoltage = 12_870
                $0.batteryCurrent = -1_250
                $0.tempRtc = 21_000
            }
        }
    }
}
let pilotSensor = Meshtastic_KiezboxMessage.with {
    $0.update = .with {
        $0.meta = .with {
            $0.boxID = 17
            $0.distID = 3
            $0.sensID = 1
            $0.devType = .sensor
        }
        $0.unixTime = 1_790_000_000
        $0.sensor = .with {
            $0.values = .with {
                $0.tempMain = 8_100
                $0.humidMain = 71_000
                $0.pressure = 1_013_250
                $0.airQuality = 152_000
                $0.partPm25 = 12_300
                $0.partPm10 = 20_100
                $0.tempRtc = 9_000
                $0.batteryVoltage = 3_700
            }
        }
    }
}

let budget = MeshtasticAirtimeBudget<ContinuousClock.Instant>()
let band = MeshtasticAirtimeBudget<ContinuousClock.Instant>(airtimeShare: 1)

func milliseconds(_ duration: Duration) -> String {
    let microseconds = duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000
    let fraction = String(microseconds % 1000 / 10)
    return "\(microseconds / 1000).\(String(repeating: "0", count: 2 - fraction.count) + fraction) ms"
}

func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
    let padding = String(repeating: " ", count: max(0, width - text.count))
    return right ? padding + text : text + padding
}

func row(_ name: String, port: Meshtastic_PortNum, payload: [UInt8]) {
    let dataLength = MeshtasticPayload.dataLength(port: port, payloadLength: payload.count)
    let airtime = MeshtasticAirtime.airtime(dataLength: dataLength)
    print(
        pad(name, 44) + pad("\(payload.count)", 8, right: true) + pad("\(MeshtasticAirtime.bytesOnAir(dataLength: dataLength))", 8, right: true)
            + pad(milliseconds(airtime), 12, right: true)
            + pad("\(band.messagesPerHour(dataLength: dataLength))", 8, right: true)
            + pad("\(budget.messagesPerHour(dataLength: dataLength, as: .crisis))", 8, right: true)
            + pad("\(budget.messagesPerHour(dataLength: dataLength, as: .routine))", 9, right: true))
}

print("Meshtastic LONG_FAST, EU_868 band P: \(Int(MeshtasticAirtime.bandAllowancePerHour / .seconds(1))) s/h; ours \(Int(budget.limit / .seconds(1))) s/h, routine \(Int(budget.cap(for: .routine) / .seconds(1))) s/h")
print(
    pad("status message", 44) + pad("payload", 8, right: true) + pad("on air", 8, right: true) + pad("airtime", 12, right: true)
        + pad("band/h", 8, right: true) + pad("ours/h", 8, right: true) + pad("status/h", 9, right: true))
var ourTotal = 0
for telemetry in MeshtasticTelemetryEncoder.telemetry(for: status, now: now) {
    let name: String =
        switch telemetry.variant {
        case .environmentMetrics: "ours: telemetry environment (port 67)"
        case .airQualityMetrics: "ours: telemetry air quality (port 67)"
        case .powerMetrics: "ours: telemetry power (port 67)"
        case .deviceMetrics: "ours: telemetry device (port 67)"
        case nil: "ours: telemetry"
        }
    let bytes: [UInt8] = try telemetry.serializedBytes()
    ourTotal += MeshtasticAirtime.bytesOnAir(dataLength: MeshtasticPayload.dataLength(port: .telemetryApp, payloadLength: bytes.count))
    row(name, port: .telemetryApp, payload: bytes)
}
let ours: [UInt8] = try KiezboxPilotUpdateEncoder(boxID: 200, districtID: 7).message(for: status, now: now).serializedBytes()
ourTotal += MeshtasticAirtime.bytesOnAir(dataLength: MeshtasticPayload.dataLength(port: .kiezboxControlApp, payloadLength: ours.count))
row("ours: Kiezbox 2.0 update, core+sensor (258)", port: .kiezboxControlApp, payload: ours)
var pilotTotal = 0
for (name, message) in [("pilot: core update (port 258)", pilotCore), ("pilot: sensor-module update (port 258)", pilotSensor)] {
    let bytes: [UInt8] = try message.serializedBytes()
    pilotTotal += MeshtasticAirtime.bytesOnAir(dataLength: MeshtasticPayload.dataLength(port: .kiezboxControlApp, payloadLength: bytes.count))
    row(name, port: .kiezboxControlApp, payload: bytes)
}
print("a full status round: ours \(ourTotal) bytes on air in 5 packets, the pilot's \(pilotTotal) bytes in 2")

// A typical announcement in three languages, signed as an authority does.
let signer = AnnouncementSigner(keyID: "bezirksamt-fk-2026", privateKey: Curve25519.Signing.PrivateKey())
let announcement = try signer.sign(
    AnnouncementPayload(
        id: "stromausfall-2026-09-21", district: "friedrichshain-kreuzberg", issuedAt: now, expiresAt: now.addingTimeInterval(6 * 3600),
        severity: .severe,
        headline: ["de": "Stromausfall im Wrangelkiez", "en": "Power cut in Wrangelkiez", "tr": "Wrangelkiez'de elektrik kesintisi"],
        body: [
            "de": "Seit 10 Uhr ist der Strom im Wrangelkiez ausgefallen. Die Reparatur dauert voraussichtlich bis 16 Uhr. "
                + "Trinkwasser gibt es an der Emmaus-Kirche, Notrufe über die Kiezbox am Lausitzer Platz.",
            "en": "The power has been out in Wrangelkiez since 10:00. Repairs are expected to last until 16:00. "
                + "Drinking water is available at Emmaus church; emergency calls via the Kiezbox at Lausitzer Platz.",
            "tr": "Wrangelkiez'de saat 10'dan beri elektrik yok. Onarımın saat 16'ya kadar sürmesi bekleniyor. "
                + "İçme suyu Emmaus kilisesinde; acil çağrılar Lausitzer Platz'daki Kiezbox üzerinden.",
        ]))
let compact = try CompactAnnouncement(envelopeJSON: announcement.json())
let fragments = try AnnouncementFragmenter.payloads(for: compact)
let fragmentOnAir = fragments.map { MeshtasticAirtime.bytesOnAir(dataLength: MeshtasticPayload.dataLength(port: .privateApp, payloadLength: $0.count)) }
let fragmentAirtime = fragments.reduce(Duration.zero) {
    $0 + MeshtasticAirtime.airtime(dataLength: MeshtasticPayload.dataLength(port: .privateApp, payloadLength: $1.count))
}
print(
    "announcement (de/en/tr): JSON envelope \(announcement.json().count) bytes, payload \(compact.payload.count), "
        + "compact \(compact.serialized().count); \(fragments.count) fragments, \(fragmentOnAir.reduce(0, +)) bytes on air, "
        + "\(milliseconds(fragmentAirtime)) airtime; \(Int(budget.limit / fragmentAirtime)) such announcements per hour in our share")
let largest = AnnouncementFragmenter.maximumFragmentCount
let largestAirtime = MeshtasticAirtime.airtime(dataLength: MeshtasticPayload.dataLength(port: .privateApp, payloadLength: 228)) * largest
print("largest announcement (16 KiB): \(largest) fragments, about \(milliseconds(largestAirtime)) airtime")
let help = try MeshHelpRequest(
    originDistrict: "friedrichshain-kreuzberg", originBox: "wrangelkiez-01",
    post: BulletinPost(
        id: 4711, kind: .request, category: .medical, text: "Insulin wird gebraucht, Nachbarin 3. OG, bitte klingeln",
        place: "Wrangelstraße 12", createdAt: now, expiresAt: now.addingTimeInterval(86_400))
).payload().bytes
row("relayed help request (port 256)", port: .privateApp, payload: help)
