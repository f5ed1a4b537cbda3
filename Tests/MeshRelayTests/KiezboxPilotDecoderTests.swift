import Foundation
import KiezboxCore
import MeshRelay
import ReadingStore
import SwiftProtobuf
import Testing

/// Protobuf bytes written by hand, so the tests state the wire rather than trust our encoder.
enum Wire {
    static func varint(_ value: UInt64) -> [UInt8] {
        var bytes: [UInt8] = []
        var rest = value
        repeat {
            let low = UInt8(rest & 0x7F)
            rest >>= 7
            bytes.append(rest == 0 ? low : low | 0x80)
        } while rest != 0
        return bytes
    }

    /// A varint field; negative int32 values are sign-extended to 64 bits (10 bytes), as protobuf writes them.
    static func int(_ field: Int, _ value: Int64) -> [UInt8] {
        varint(UInt64(field << 3)) + varint(UInt64(bitPattern: value))
    }

    /// A length-delimited field (message, string, bytes).
    static func nested(_ field: Int, _ body: [UInt8]) -> [UInt8] {
        varint(UInt64(field << 3 | 2)) + varint(UInt64(body.count)) + body
    }
}

@Suite("Kiezbox 2.0 pilot messages decoded into readings, help requests and control notes")
struct KiezboxPilotDecoderTests {
    static let now = Date(timeIntervalSince1970: 1_790_000_000)
    static let node: UInt32 = 0xA1B2_C3D4
    let decoder = KiezboxPilotDecoder()

    /// `update { meta { box_id 17, dist_id 3 [, sens_id] }, unix_time, core { values { … } } | sensor { values { … } } }`.
    static func update(core: [UInt8]? = nil, sensor: [UInt8]? = nil, sensorModule: UInt32? = nil, unixTime: Int64 = 1_789_999_940) -> [UInt8] {
        var meta = Wire.int(1, 17) + Wire.int(2, 3)
        if let sensorModule { meta += Wire.int(3, Int64(sensorModule)) + Wire.int(4, 1) }
        var update = Wire.nested(1, meta) + Wire.int(2, unixTime)
        if let core { update += Wire.nested(3, Wire.nested(3, core)) }
        if let sensor { update += Wire.nested(4, Wire.nested(1, sensor)) }
        return Wire.nested(4, update)
    }

    func decodeUpdate(_ payload: [UInt8], rxTime: UInt32? = nil) throws -> PilotUpdate {
        guard case .update(let update) = try self.decoder.decode(payload: payload, from: Self.node, packetReceivedAt: rxTime, now: Self.now) else {
            Issue.record("not an update")
            throw CancellationError()
        }
        return update
    }

    @Test("every value field: its scaling, its sensor id and quantity; negative values as 10-byte varints")
    func scalingVectors() throws {
        // (field number, wire value, core or sensor, sensor id, quantity, value in Kiezbox units)
        let rows: [(Int, Int64, Bool, String, Quantity, Double)] = [
            (1, -5250, true, "kb2-d3-b17-out", .temperature, -5.25),
            (2, 21_375, true, "kb2-d3-b17-in", .temperature, 21.375),
            (3, 48_500, true, "kb2-d3-b17-in", .relativeHumidity, 48.5),
            (4, 18_420, true, "kb2-d3-b17-solar", .voltage, 18.42),
            (5, 23_400, true, "kb2-d3-b17-solar", .power, 23.4),
            (8, 12_870, true, "kb2-d3-b17-battery", .voltage, 12.87),
            (9, -1_250, true, "kb2-d3-b17-battery", .current, -1.25),
            (1, 19_990, false, "kb2-d3-b17-s2", .temperature, 19.99),
            (2, 61_000, false, "kb2-d3-b17-s2", .relativeHumidity, 61),
            (3, 1_013_250, false, "kb2-d3-b17-s2", .pressure, 1013.25),
            (5, 12_300, false, "kb2-d3-b17-s2", .pm2_5, 12.3),
            (6, 20_100, false, "kb2-d3-b17-s2", .pm10, 20.1),
            (9, 3_700, false, "kb2-d3-b17-s2-battery", .voltage, 3.7),
        ]
        for (field, raw, isCore, sensorID, quantity, value) in rows {
            let values = Wire.int(field, raw)
            if raw < 0 { #expect(values.count == 11, "a negative int32 is a 10-byte varint after its tag") }
            let payload = isCore ? Self.update(core: values) : Self.update(sensor: values, sensorModule: 2)
            let update = try self.decodeUpdate(payload)
            #expect(update.readings.count == 1, "\(field)")
            let reading = try #require(update.readings.first)
            #expect(reading.sensorID == sensorID)
            #expect(reading.quantity == quantity)
            #expect(abs(reading.value - value) < 1e-9, "\(sensorID) \(quantity): \(reading.value) ≠ \(value)")
            #expect(update.skipped.isEmpty && update.implausible.isEmpty)
        }
    }

    @Test("an explicit zero is a real 0 reading; an absent field gives none")
    func explicitZeros() throws {
        // solar_voltage: 0 is `20 00` on the wire; temp_out is absent.
        let zero = try self.decodeUpdate(Self.update(core: [0x20, 0x00]))
        #expect(zero.readings.map(\.sensorID) == ["kb2-d3-b17-solar"])
        #expect(zero.readings.first?.value == 0)
        #expect(zero.readings.first?.quantity == .voltage)
        let empty = try self.decodeUpdate(Self.update(core: []))
        #expect(empty.readings.isEmpty)
        #expect(empty.mode == .maintenance, "Core.mode is implicit: absent is maintenance (0)")
    }

    @Test("values without a Kiezbox quantity are counted as skipped, implausible ones dropped and counted")
    func skippedAndImplausible() throws {
        // solar energy day/total, temp_rtc; a temp_out of 200 °C; a good temp_in.
        let core = Wire.int(6, 1_200) + Wire.int(7, 345_000) + Wire.int(10, 30_000) + Wire.int(1, 200_000) + Wire.int(2, 20_000)
        let update = try self.decodeUpdate(Self.update(core: core))
        #expect(update.skipped == [.solarEnergyDay, .solarEnergyTotal, .coreClockTemperature])
        #expect(update.implausible == [PilotImplausibleValue(field: .tempOut, value: 200)])
        #expect(update.readings.map(\.sensorID) == ["kb2-d3-b17-in"])
        // air_quality, noise, temp_rtc of a sensor module; humidity 140 %.
        let sensor = Wire.int(4, 150_000) + Wire.int(7, 55) + Wire.int(8, 22_000) + Wire.int(2, 140_000)
        let module = try self.decodeUpdate(Self.update(sensor: sensor, sensorModule: 1))
        #expect(module.skipped == [.airQuality, .noise, .sensorClockTemperature])
        #expect(module.implausible.map(\.field) == [.humidMain])
        #expect(module.readings.isEmpty)
    }

    @Test("measured-at: the message's time when sane, else the packet's receive time when sane, else now")
    func timeSanity() throws {
        let sane: Int64 = 1_789_999_000
        let rx: UInt32 = 1_789_999_500
        let cases: [(Int64, UInt32?, Date, PilotTimeSource)] = [
            (sane, rx, Date(timeIntervalSince1970: 1_789_999_000), .message),
            (3_600, rx, Date(timeIntervalSince1970: 1_789_999_500), .packetReceived),  // pilot clock at 1970
            (0, rx, Date(timeIntervalSince1970: 1_789_999_500), .packetReceived),  // absent (implicit 0)
            (1_790_000_000 + 301, rx, Date(timeIntervalSince1970: 1_789_999_500), .packetReceived),  // more than 5 min ahead
            (1_790_000_000 + 299, nil, Date(timeIntervalSince1970: 1_790_000_299), .message),  // within 5 min ahead
            (1_790_000_000 - 86_401, nil, Self.now, .decoded),  // more than a day old
            (3_600, 7_200, Self.now, .decoded),  // radio without time either
            (3_600, 0, Self.now, .decoded),
        ]
        for (unixTime, rxTime, expected, source) in cases {
            let update = try self.decodeUpdate(Self.update(core: Wire.int(2, 20_000), unixTime: unixTime), rxTime: rxTime)
            #expect(update.measuredAt == expected, "unix_time \(unixTime), rx_time \(String(describing: rxTime))")
            #expect(update.timeSource == source, "unix_time \(unixTime), rx_time \(String(describing: rxTime))")
            #expect(update.readings.allSatisfy { $0.measuredAt == expected })
        }
    }

    @Test("mode, router and the fallback name of a box whose update has no meta")
    func modeRouterAndFallbackName() throws {
        // core { mode emergency, router { powered, model "GL-AR300M" } } without meta.
        let core = Wire.int(1, 2) + Wire.nested(2, Wire.int(1, 1) + Wire.nested(3, Array("GL-AR300M".utf8)))
            + Wire.nested(3, Wire.int(1, 15_000))
        let payload = Wire.nested(4, Wire.int(2, 1_789_999_940) + Wire.nested(3, core))
        let update = try self.decodeUpdate(payload)
        #expect(update.mode == .crisis)
        #expect(update.router == PilotRouterStatus(powered: true, model: "GL-AR300M", softwareVersion: nil))
        #expect(update.box.name == "kb2-node-a1b2c3d4")
        #expect(update.box.nodeName == "!a1b2c3d4")
        #expect(update.readings.map(\.sensorID) == ["kb2-node-a1b2c3d4-out"])
    }

    @Test("every sensor id keeps to the sensor-id rule (lowercase, digits, '-', at most 64), even with the largest ids")
    func sensorIDsAreTopicSafe() {
        let boxes = [
            PilotBoxAddress(districtID: UInt32.max, boxID: UInt32.max, nodeNumber: 0xFFFF_FFFF),
            PilotBoxAddress(nodeNumber: 0), PilotBoxAddress(districtID: 0, boxID: 0, nodeNumber: 1),
        ]
        let parts: [PilotSensorPart] = [.outdoor, .inside, .solar, .battery, .sensorModule(.max), .sensorModuleBattery(.max)]
        for box in boxes {
            for part in parts {
                let id = box.sensorID(part)
                #expect((1...64).contains(id.count) && id.first != "-", "\(id)")
                #expect(id.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" }, "\(id)")
            }
        }
    }

    @Test("an emergency without a type on the wire is medical; each type becomes a help request of its category")
    func emergencies() throws {
        // distress {} : type medical (0) is never written, so it is absent.
        guard case .emergency(let bare) = try self.decoder.decode(payload: [0x32, 0x00], from: Self.node, now: Self.now) else {
            Issue.record("not an emergency")
            return
        }
        #expect(bare.type == .medical)
        #expect(bare.buttonID == 0 && bare.message == nil && bare.timeSource == .decoded)
        let request = bare.helpRequest()
        #expect(request.kind == .request && request.category == .medical)
        #expect(request.text.contains("Emergency button") && request.text.contains("Notruf"))
        #expect(request.place.contains("kb2-node-a1b2c3d4"))

        let expected: [(Int64, PilotEmergencyType, BulletinCategory)] = [
            (1, .fire, .fire), (2, .crime, .other), (3, .sick, .medical), (4, .help, .other),
        ]
        for (raw, type, category) in expected {
            let message = "Bitte schnell kommen, Hinterhof links ".repeated(10)
            let payload = Wire.nested(
                6, Wire.int(1, raw) + Wire.int(2, 2) + Wire.int(3, 1_789_999_990) + Wire.nested(4, Array(message.utf8)))
            guard case .emergency(let emergency) = try self.decoder.decode(payload: payload, from: Self.node, now: Self.now) else {
                Issue.record("not an emergency")
                return
            }
            #expect(emergency.type == type)
            #expect(emergency.buttonID == 2 && emergency.pressedAt == Date(timeIntervalSince1970: 1_789_999_990))
            #expect(emergency.message == message)
            let help = emergency.helpRequest()
            #expect(help.category == category)
            #expect(help.text.count == PilotEmergency.maximumHelpTextCharacters && help.text.hasSuffix("…"))
            #expect(help.text.contains("Bitte schnell kommen"))
            #expect(help.createdAt == emergency.pressedAt)
        }
        #expect(throws: KiezboxPilotDecodingError.unknownEnumValue(field: "distress.type", value: 9)) {
            try self.decoder.decode(payload: Wire.nested(6, Wire.int(1, 9)), from: Self.node, now: Self.now)
        }
    }

    @Test("control messages: what they set, one line for the log, and only a mode change would mean anything here")
    func controls() throws {
        let meta = Wire.nested(1, Wire.int(1, 17) + Wire.int(2, 3) + Wire.int(4, 0))
        let cases: [([UInt8], PilotControlSetting, String, PilotControlEffect)] = [
            (Wire.int(2, 2), .mode(.crisis), "control from !a1b2c3d4 for kb2-d3-b17 (core): mode = emergency (crisis)", .declareCrisis),
            (Wire.int(2, 1), .mode(.normal), "control from !a1b2c3d4 for kb2-d3-b17 (core): mode = normal", .endCrisis),
            ([0x10, 0x00], .mode(.maintenance), "control from !a1b2c3d4 for kb2-d3-b17 (core): mode = maintenance",
             .notApplicable("maintenance mode is set by a resident at the box, not over the radio")),
            ([0x20, 0x00], .routerPower(false), "control from !a1b2c3d4 for kb2-d3-b17 (core): router_power = off",
             .notApplicable("router_power = off concerns the Kiezbox 2.0 hardware")),
            (Wire.int(8, 60_000), .statusInterval(60_000), "control from !a1b2c3d4 for kb2-d3-b17 (core): status_interval = 60000",
             .notApplicable("status_interval = 60000 concerns the Kiezbox 2.0 hardware")),
            (Wire.int(12, 4), .buttonID(4), "control from !a1b2c3d4 for kb2-d3-b17 (core): button_id = 4",
             .notApplicable("button_id = 4 concerns the Kiezbox 2.0 hardware")),
        ]
        for (set, setting, description, effect) in cases {
            guard case .control(let control) = try self.decoder.decode(payload: Wire.nested(5, meta + set), from: Self.node, now: Self.now) else {
                Issue.record("not a control")
                return
            }
            #expect(control.setting == setting)
            #expect(control.description == description)
            #expect(control.effect == effect)
            #expect(control.isAddressed(toDistrictID: 3, boxID: 17))
            #expect(!control.isAddressed(toDistrictID: 3, boxID: 18))
        }
        // Without meta it addresses any box.
        guard case .control(let broadcast) = try self.decoder.decode(payload: Wire.nested(5, Wire.int(3, 1_790_000_000)), from: 1, now: Self.now) else {
            Issue.record("not a control")
            return
        }
        #expect(broadcast.description.hasPrefix("control from !00000001 for any box: unix_time = 1790000000"))
        #expect(broadcast.isAddressed(toDistrictID: 9, boxID: 9))
    }

    @Test("typed errors: nothing set, several set, an empty control, unknown enum values, garbage")
    func errors() {
        let cases: [([UInt8], KiezboxPilotDecodingError)] = [
            ([], .noContent),
            ([0x22, 0x00, 0x32, 0x00], .severalContents(["update", "distress"])),
            ([0x2A, 0x00], .controlWithoutSetting),
            (Wire.nested(5, Wire.int(2, 7)), .unknownEnumValue(field: "control.mode", value: 7)),
            (Wire.nested(5, Wire.int(11, 9)), .unknownEnumValue(field: "dev_type", value: 9)),
            (Wire.nested(4, Wire.nested(3, Wire.int(1, 5))), .unknownEnumValue(field: "core.mode", value: 5)),
            (Wire.nested(4, Wire.nested(1, Wire.int(4, 8))), .unknownEnumValue(field: "dev_type", value: 8)),
        ]
        for (payload, error) in cases {
            #expect(throws: error, "\(payload)") { try self.decoder.decode(payload: payload, from: Self.node, now: Self.now) }
        }
        for garbage: [UInt8] in [[0x22, 0x05, 0x01], [0xFF], [0x32, 0x02, 0x22, 0x01, 0xFF], [0x07]] {
            let error = #expect(throws: KiezboxPilotDecodingError.self) {
                try self.decoder.decode(payload: garbage, from: Self.node, now: Self.now)
            }
            guard case .malformed? = error else {
                Issue.record("\(garbage): \(String(describing: error))")
                continue
            }
        }
    }
}

extension String {
    func repeated(_ count: Int) -> String { String(repeating: self, count: count) }
}
