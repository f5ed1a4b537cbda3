import Foundation
import MeshRelay
import SwiftProtobuf
import Testing

/// Kiezbox 2.0 messages built by our encoder from the documented schema (kiezbox2-protocol.md) and decoded back,
/// checked against the documented wire details byte by byte: the tag byte of every field, fixed32 node numbers and
/// packet ids, 10-byte varints for negative int32, explicit zeros for `optional` fields and none for implicit ones.
@Suite("Kiezbox 2.0 message wire format")
struct KiezboxMessageWireTests {
    typealias Kiezbox = Meshtastic_KiezboxMessage

    private static func bytes(_ message: some SwiftProtobuf.Message) throws -> [UInt8] { try message.serializedBytes() }

    @Test("every field's tag byte is the one in the field table; explicit-presence zeros are on the wire")
    func tagBytes() throws {
        // (field, bytes our encoder makes, bytes the table implies). Explicit-presence fields are set to 0, false or
        // "" to show that the zero is sent; implicit ones are set to 1 (a zero would not appear, see below).
        let rows: [(String, [UInt8], [UInt8])] = [
            ("KiezboxMessage.update", try Self.bytes(Kiezbox.with { $0.update = .init() }), [0x22, 0x00]),
            ("KiezboxMessage.control", try Self.bytes(Kiezbox.with { $0.control = .init() }), [0x2A, 0x00]),
            ("KiezboxMessage.distress", try Self.bytes(Kiezbox.with { $0.distress = .init() }), [0x32, 0x00]),
            ("Meta.box_id", try Self.bytes(Kiezbox.Meta.with { $0.boxID = 0 }), [0x08, 0x00]),
            ("Meta.dist_id", try Self.bytes(Kiezbox.Meta.with { $0.distID = 0 }), [0x10, 0x00]),
            ("Meta.sens_id", try Self.bytes(Kiezbox.Meta.with { $0.sensID = 0 }), [0x18, 0x00]),
            ("Meta.dev_type", try Self.bytes(Kiezbox.Meta.with { $0.devType = .core }), [0x20, 0x00]),
            ("Request.meta", try Self.bytes(Kiezbox.Request.with { $0.meta = .init() }), [0x0A, 0x00]),
            ("Request.type", try Self.bytes(Kiezbox.Request.with { $0.type = .update }), [0x10, 0x00]),
            ("Control.meta", try Self.bytes(Kiezbox.Control.with { $0.meta = .init() }), [0x0A, 0x00]),
            ("Control.mode", try Self.bytes(Kiezbox.Control.with { $0.mode = .maintenance }), [0x10, 0x00]),
            ("Control.unix_time", try Self.bytes(Kiezbox.Control.with { $0.unixTime = 0 }), [0x18, 0x00]),
            ("Control.router_power", try Self.bytes(Kiezbox.Control.with { $0.routerPower = false }), [0x20, 0x00]),
            ("Control.box_id", try Self.bytes(Kiezbox.Control.with { $0.boxID = 0 }), [0x28, 0x00]),
            ("Control.dist_id", try Self.bytes(Kiezbox.Control.with { $0.distID = 0 }), [0x30, 0x00]),
            ("Control.sens_id", try Self.bytes(Kiezbox.Control.with { $0.sensID = 0 }), [0x38, 0x00]),
            ("Control.status_interval", try Self.bytes(Kiezbox.Control.with { $0.statusInterval = 0 }), [0x40, 0x00]),
            ("Control.sds_warmup_time", try Self.bytes(Kiezbox.Control.with { $0.sdsWarmupTime = 0 }), [0x48, 0x00]),
            ("Control.enabled", try Self.bytes(Kiezbox.Control.with { $0.enabled = false }), [0x50, 0x00]),
            ("Control.dev_type", try Self.bytes(Kiezbox.Control.with { $0.devType = .core }), [0x58, 0x00]),
            ("Control.button_id", try Self.bytes(Kiezbox.Control.with { $0.buttonID = 0 }), [0x60, 0x00]),
            ("Update.meta", try Self.bytes(Kiezbox.Update.with { $0.meta = .init() }), [0x0A, 0x00]),
            ("Update.unix_time", try Self.bytes(Kiezbox.Update.with { $0.unixTime = 1 }), [0x10, 0x01]),
            ("Update.core", try Self.bytes(Kiezbox.Update.with { $0.core = .init() }), [0x1A, 0x00]),
            ("Update.sensor", try Self.bytes(Kiezbox.Update.with { $0.sensor = .init() }), [0x22, 0x00]),
            ("Update.arrival_time", try Self.bytes(Kiezbox.Update.with { $0.arrivalTime = 0 }), [0x28, 0x00]),
            ("Core.mode", try Self.bytes(Kiezbox.Core.with { $0.mode = .normal }), [0x08, 0x01]),
            ("Core.router", try Self.bytes(Kiezbox.Core.with { $0.router = .init() }), [0x12, 0x00]),
            ("Core.values", try Self.bytes(Kiezbox.Core.with { $0.values = .init() }), [0x1A, 0x00]),
            ("Router.powered", try Self.bytes(Kiezbox.Router.with { $0.powered = true }), [0x08, 0x01]),
            ("Router.sw_version", try Self.bytes(Kiezbox.Router.with { $0.swVersion = "" }), [0x12, 0x00]),
            ("Router.model", try Self.bytes(Kiezbox.Router.with { $0.model = "" }), [0x1A, 0x00]),
            ("CoreValues.temp_out", try Self.bytes(Kiezbox.CoreValues.with { $0.tempOut = 0 }), [0x08, 0x00]),
            ("CoreValues.temp_in", try Self.bytes(Kiezbox.CoreValues.with { $0.tempIn = 0 }), [0x10, 0x00]),
            ("CoreValues.humid_in", try Self.bytes(Kiezbox.CoreValues.with { $0.humidIn = 0 }), [0x18, 0x00]),
            ("CoreValues.solar_voltage", try Self.bytes(Kiezbox.CoreValues.with { $0.solarVoltage = 0 }), [0x20, 0x00]),
            ("CoreValues.solar_power", try Self.bytes(Kiezbox.CoreValues.with { $0.solarPower = 0 }), [0x28, 0x00]),
            ("CoreValues.solar_energy_day", try Self.bytes(Kiezbox.CoreValues.with { $0.solarEnergyDay = 0 }), [0x30, 0x00]),
            ("CoreValues.solar_energy_total", try Self.bytes(Kiezbox.CoreValues.with { $0.solarEnergyTotal = 0 }), [0x38, 0x00]),
            ("CoreValues.battery_voltage", try Self.bytes(Kiezbox.CoreValues.with { $0.batteryVoltage = 0 }), [0x40, 0x00]),
            ("CoreValues.battery_current", try Self.bytes(Kiezbox.CoreValues.with { $0.batteryCurrent = 0 }), [0x48, 0x00]),
            ("CoreValues.temp_rtc", try Self.bytes(Kiezbox.CoreValues.with { $0.tempRtc = 0 }), [0x50, 0x00]),
            ("Sensor.values", try Self.bytes(Kiezbox.Sensor.with { $0.values = .init() }), [0x0A, 0x00]),
            ("SensorValues.temp_main", try Self.bytes(Kiezbox.SensorValues.with { $0.tempMain = 0 }), [0x08, 0x00]),
            ("SensorValues.humid_main", try Self.bytes(Kiezbox.SensorValues.with { $0.humidMain = 0 }), [0x10, 0x00]),
            ("SensorValues.pressure", try Self.bytes(Kiezbox.SensorValues.with { $0.pressure = 0 }), [0x18, 0x00]),
            ("SensorValues.air_quality", try Self.bytes(Kiezbox.SensorValues.with { $0.airQuality = 0 }), [0x20, 0x00]),
            ("SensorValues.part_pm25", try Self.bytes(Kiezbox.SensorValues.with { $0.partPm25 = 0 }), [0x28, 0x00]),
            ("SensorValues.part_pm10", try Self.bytes(Kiezbox.SensorValues.with { $0.partPm10 = 0 }), [0x30, 0x00]),
            ("SensorValues.noise", try Self.bytes(Kiezbox.SensorValues.with { $0.noise = 0 }), [0x38, 0x00]),
            ("SensorValues.temp_rtc", try Self.bytes(Kiezbox.SensorValues.with { $0.tempRtc = 0 }), [0x40, 0x00]),
            ("SensorValues.battery_voltage", try Self.bytes(Kiezbox.SensorValues.with { $0.batteryVoltage = 0 }), [0x48, 0x00]),
            ("Emergency.type", try Self.bytes(Kiezbox.Emergency.with { $0.type = .fire }), [0x08, 0x01]),
            ("Emergency.button_id", try Self.bytes(Kiezbox.Emergency.with { $0.buttonID = 1 }), [0x10, 0x01]),
            ("Emergency.unix_time", try Self.bytes(Kiezbox.Emergency.with { $0.unixTime = 1 }), [0x18, 0x01]),
            ("Emergency.message", try Self.bytes(Kiezbox.Emergency.with { $0.message = "" }), [0x22, 0x00]),
        ]
        for (field, encoded, expected) in rows {
            #expect(encoded == expected, "\(field)")
        }
        #expect(rows.count == 56)
    }

    @Test("implicit fields at 0, false or \"\" are not on the wire, and decode to their defaults")
    func implicitZeros() throws {
        #expect(try Self.bytes(Kiezbox.Router.with { $0.powered = false }) == [])
        #expect(try Self.bytes(Kiezbox.Emergency.with { $0.type = .medical; $0.buttonID = 0; $0.unixTime = 0 }) == [])
        #expect(try Self.bytes(Kiezbox.Update.with { $0.unixTime = 0 }) == [])
        #expect(try Self.bytes(Kiezbox.Core.with { $0.mode = .maintenance }) == [])
        // A pilot box's emergency button with type medical: only the button id and the time are sent.
        let distress = try Kiezbox(serializedBytes: [0x32, 0x04, 0x10, 0x02, 0x18, 0x05] as [UInt8])
        #expect(distress.hasDistress && !distress.hasUpdate && !distress.hasControl)
        #expect(distress.distress.type == .medical)
        #expect(distress.distress.buttonID == 2)
        #expect(!distress.distress.hasMessage)
        // Presence survives decoding: `20 00` is a measured 0 mV, an absent field is no measurement.
        let measuredZero = try Kiezbox.CoreValues(serializedBytes: [0x20, 0x00] as [UInt8])
        #expect(measuredZero.hasSolarVoltage && measuredZero.solarVoltage == 0)
        #expect(!measuredZero.hasBatteryVoltage)
        let router = try Kiezbox.Router(serializedBytes: [UInt8]())
        #expect(router.powered == false && !router.hasModel)
    }

    @Test("negative int32 values are 10-byte varints (no zigzag), and decode back")
    func negativeVarints() throws {
        // −1.5 °C outside, as the firmware sends it: −1500 m°C.
        let values = Kiezbox.CoreValues.with { $0.tempOut = -1500 }
        let encoded = try Self.bytes(values)
        #expect(encoded == [0x08, 0xA4, 0xF4, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
        #expect(encoded.count == 1 + 10)
        #expect(try Kiezbox.CoreValues(serializedBytes: encoded).tempOut == -1500)
        // A discharging battery: −2.5 A as −2500 mA.
        #expect(try Self.bytes(Kiezbox.CoreValues.with { $0.batteryCurrent = -2500 }).count == 11)
        // MeshPacket.rx_rssi is a plain int32 too.
        let rssi = try Self.bytes(Meshtastic_MeshPacket.with { $0.rxRssi = -90 })
        #expect(rssi == [0x60, 0xA6, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
    }

    /// A pilot box's status, as its firmware fills it (values × 1000, pressure Pa × 10).
    static let pilotUpdate = Kiezbox.with {
        $0.update = .with {
            $0.meta = .with {
                $0.boxID = 7
                $0.distID = 3
                $0.devType = .core
            }
            $0.unixTime = 1_765_000_000
            $0.core = .with {
                $0.mode = .normal
                $0.router = .with {
                    $0.powered = true
                    $0.model = "GL-MT300N-V2"
                }
                $0.values = .with {
                    $0.tempOut = -1500
                    $0.humidIn = 45_500
                    $0.solarVoltage = 0
                    $0.batteryVoltage = 12_840
                    $0.batteryCurrent = -350
                }
            }
        }
    }

    @Test("the gateway's control envelope: fixed32 node numbers and packet id, port 258 as 82 02, byte for byte")
    func controlEnvelope() throws {
        let payload = try Self.bytes(Self.pilotUpdate)
        #expect(payload.count <= 233)
        let toRadio = Meshtastic_ToRadio.with {
            $0.packet = .with {
                $0.from = 0x1234_5678
                $0.to = 0xFFFF_FFFF
                $0.channel = 1
                $0.hopLimit = 3
                $0.id = 0xDEAD_BEEF
                $0.decoded = .with {
                    $0.portnum = .kiezboxControlApp
                    $0.payload = Data(payload)
                }
            }
        }
        let data: [UInt8] = [0x08, 0x82, 0x02, 0x12, UInt8(payload.count)] + payload
        let packet: [UInt8] =
            [0x0D, 0x78, 0x56, 0x34, 0x12]  // from, fixed32 little-endian
            + [0x15, 0xFF, 0xFF, 0xFF, 0xFF]  // to = broadcast
            + [0x18, 0x01]  // channel index 1, as the pilot's gateway hard-codes
            + [0x22, UInt8(data.count)] + data  // decoded
            + [0x35, 0xEF, 0xBE, 0xAD, 0xDE]  // id, fixed32 little-endian
            + [0x48, 0x03]  // hop_limit
        let expected: [UInt8] = [0x0A, UInt8(packet.count)] + packet
        #expect(try Self.bytes(toRadio) == expected)

        // The same bytes framed and decoded on the radio side; the payload decodes to the documented values.
        let frame = try MeshtasticFrame<Meshtastic_ToRadio>.decode(MeshtasticFraming.frame(toRadio))
        #expect(frame.message == toRadio)
        let decoded = try Kiezbox(serializedBytes: frame.message.packet.decoded.payload)
        #expect(decoded == Self.pilotUpdate)
        let values = decoded.update.core.values
        #expect(Double(values.tempOut) / 1000 == -1.5)
        #expect(Double(values.batteryVoltage) / 1000 == 12.84)
        #expect(values.hasSolarVoltage && values.solarVoltage == 0)
        #expect(!values.hasTempIn)
        #expect(decoded.update.core.router.powered)
    }

    @Test("a received pilot packet: rx_time fixed32 and a 10-byte rx_rssi from the radio, decoded from hand-built bytes")
    func receivedPacket() throws {
        let payload = try Self.bytes(Kiezbox.with { $0.distress = .with { $0.type = .fire; $0.buttonID = 1; $0.message = "Rauch im Hof" } })
        let data: [UInt8] = [0x08, 0x82, 0x02, 0x12, UInt8(payload.count)] + payload
        let packet: [UInt8] =
            [0x0D, 0x00, 0xEE, 0xFE, 0x7E] + [0x15, 0xFF, 0xFF, 0xFF, 0xFF] + [0x18, 0x01]
            + [0x22, UInt8(data.count)] + data
            + [0x35, 0x01, 0x00, 0x00, 0x00]
            + [0x3D, 0x40, 0xC3, 0x33, 0x69]  // rx_time 1 765 000 000 = 0x6933C340
            + [0x45, 0x00, 0x00, 0x20, 0x41]  // rx_snr 10.0
            + [0x48, 0x02]
            + [0x60, 0xA6, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]  // rx_rssi −90
            + [0x78, 0x03]  // hop_start
        let fromRadio: [UInt8] = [0x12, UInt8(packet.count)] + packet
        let frame = try MeshtasticFrame<Meshtastic_FromRadio>.decode(MeshtasticFraming.frame(payload: fromRadio))
        let received = frame.message.packet
        #expect(received.from == 0x7EFE_EE00)
        #expect(received.to == 0xFFFF_FFFF)
        #expect(received.id == 1)
        #expect(received.hasRxTime && received.rxTime == 1_765_000_000)
        #expect(received.rxSnr == 10)
        #expect(received.hasRxRssi && received.rxRssi == -90)
        #expect(received.hopLimit == 2 && received.hopStart == 3)
        #expect(received.decoded.portnum == .kiezboxControlApp)
        let message = try Kiezbox(serializedBytes: received.decoded.payload)
        #expect(message.distress.type == .fire)
        #expect(message.distress.message == "Rauch im Hof")
        // Our encoder writes the same packet bytes back.
        #expect(try Self.bytes(frame.message) == fromRadio)
    }

    @Test("standard telemetry: presence is on the wire, so 0 °C is sent; floats are fixed 4 bytes")
    func telemetry() throws {
        let telemetry = Meshtastic_Telemetry.with {
            $0.time = 1_765_000_000
            $0.environmentMetrics = .with {
                $0.temperature = 0
                $0.relativeHumidity = 45.5
            }
        }
        let encoded = try Self.bytes(telemetry)
        // time fixed32 (0x0D), then environment_metrics (0x1A) with temperature 0.0 (0x0D 00000000) and
        // relative_humidity 45.5 (0x15 0x42360000 little-endian).
        #expect(encoded == [0x0D, 0x40, 0xC3, 0x33, 0x69, 0x1A, 0x0A, 0x0D, 0x00, 0x00, 0x00, 0x00, 0x15, 0x00, 0x00, 0x36, 0x42])
        let decoded = try Meshtastic_Telemetry(serializedBytes: encoded)
        #expect(decoded.environmentMetrics.hasTemperature && !decoded.environmentMetrics.hasBarometricPressure)
    }
}
