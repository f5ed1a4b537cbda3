import Foundation
import KiezboxCore
import SensorDrivers

/// Compares the kit on the buses with the configuration and says, per sensor, what was found and how to fix
/// what was not: the engine of `kiezbox doctor`.
struct Doctor {
    let configuration: KiezboxConfiguration
    let buses: any BusProvider
    /// Simulated buses have no device nodes, groups or data directory to check.
    let simulated: Bool
    /// How long a serial, GPIO or network sensor may take to answer.
    var answerTimeout: Duration = .seconds(15)

    func examine() async -> [DoctorFinding] {
        var findings: [DoctorFinding] = []
        if !self.simulated { findings += self.systemChecks() }
        findings += await self.examineI2C()
        findings += await self.examineOthers()
        if let loRaWAN = self.configuration.uplinks.loRaWAN { findings.append(await self.examineLoRaWANModem(loRaWAN)) }
        if let meshtastic = self.configuration.uplinks.meshtastic { findings.append(await self.examineMeshtasticRadio(meshtastic)) }
        if !self.simulated { findings += self.unconfiguredSerialDevices() }
        return findings
    }

    /// Serial devices on the box that no sensor (nor the LoRaWAN modem or the Meshtastic radio) uses: a sensor on the wrong
    /// port shows up here.
    private func unconfiguredSerialDevices() -> [DoctorFinding] {
        let sensorPorts = self.configuration.sensors.compactMap { sensor -> String? in
            guard case .serial(let port, _) = sensor.connection else { return nil }
            return port
        }
        let radioPorts = [self.configuration.uplinks.loRaWAN?.port, self.configuration.uplinks.meshtastic?.serialPath].compactMap { $0 }
        let configured = Set((sensorPorts + radioPorts).map {
            URL(fileURLWithPath: $0).resolvingSymlinksInPath().path
        })
        let candidates = ((try? FileManager.default.contentsOfDirectory(atPath: "/dev")) ?? [])
            .filter { $0.hasPrefix("ttyUSB") || $0.hasPrefix("ttyACM") }
            .map { "/dev/" + $0 }
        return candidates.sorted().filter { !configured.contains(URL(fileURLWithPath: $0).resolvingSymlinksInPath().path) }.map {
            DoctorFinding(
                status: .unexpected, place: $0, detail: "a USB serial device no sensor uses",
                fix: "if a particulate sensor, GPS, the LoRaWAN modem or the Meshtastic radio is on it, set its port = \"\($0)\" (or its /dev/serial/by-id/ name)"
            )
        }
    }

    // MARK: System

    private func systemChecks() -> [DoctorFinding] {
        var findings = [checkDataDirectory(self.configuration.dataDirectory)]
        var seen: Set<String> = []
        for sensor in self.configuration.sensors {
            switch sensor.connection {
            case .i2c(let bus, _) where seen.insert(bus).inserted:
                findings.append(DeviceAccessCheck.check(bus, kind: .i2c))
            case .serial(let port, _) where seen.insert(port).inserted:
                findings.append(DeviceAccessCheck.check(port, kind: .serial, sensor: sensor.id))
            case .gpio(let chip, _) where seen.insert(chip).inserted && !chip.hasPrefix("pinctrl"):
                let path = chip.hasPrefix("/dev/") ? chip : "/dev/" + (chip.allSatisfy(\.isNumber) ? "gpiochip" + chip : chip)
                findings.append(DeviceAccessCheck.check(path, kind: .gpio))
            default:
                continue
            }
        }
        if let modem = self.configuration.uplinks.loRaWAN, seen.insert(modem.port).inserted {
            findings.append(DeviceAccessCheck.check(modem.port, kind: .serial, sensor: Self.loRaWANFindingName))
        }
        if let radio = self.configuration.uplinks.meshtastic?.serialPath, seen.insert(radio).inserted {
            findings.append(DeviceAccessCheck.check(radio, kind: .serial, sensor: Self.meshtasticFindingName))
        }
        return findings
    }

    // MARK: I²C

    private func examineI2C() async -> [DoctorFinding] {
        var findings: [DoctorFinding] = []
        var sensorsByBus: [String: [(SensorConfiguration, UInt8)]] = [:]
        var busOrder: [String] = []
        for sensor in self.configuration.sensors {
            guard case .i2c(let bus, let address) = sensor.connection else { continue }
            if sensorsByBus[bus] == nil { busOrder.append(bus) }
            sensorsByBus[bus, default: []].append((sensor, address))
        }
        for busName in busOrder {
            let sensors = sensorsByBus[busName] ?? []
            let bus: any I2CBus
            do {
                bus = try self.buses.i2cBus(busName)
            } catch {
                for (sensor, address) in sensors {
                    findings.append(DoctorFinding(
                        status: .missing, sensor: sensor.id, chip: sensor.chip.description, place: "\(busName) \(hex(address))",
                        detail: "\(error)", fix: DeviceAccessCheck.DeviceKind.i2c.missingFix
                    ))
                }
                continue
            }
            let answering = bus.scan()
            var identities: [UInt8: I2CChipIdentity?] = [:]
            for address in answering {
                identities[address] = await I2CChipIdentifier.identify(bus.device(at: address), pause: self.buses.pause)
            }
            for (sensor, address) in sensors {
                findings.append(self.i2cFinding(sensor, address: address, bus: busName, answering: answering, identities: identities))
            }
            let configured = Set(sensors.map(\.1))
            for address in answering where !configured.contains(address) {
                let identity = identities[address] ?? nil
                let fix =
                    if let model = identity?.model {
                        "not in the configuration: add a [[sensor]] with chip = \"\(model.rawValue)\", bus = \"\(busName)\", address = \(hex(address))"
                    } else {
                        "a device Kiezbox has no driver for; harmless unless it holds the bus"
                    }
                findings.append(DoctorFinding(
                    status: .unexpected, chip: identity?.name ?? "unknown", place: "\(busName) \(hex(address))",
                    detail: identity.map { "answers: \($0.evidence)" } ?? "answers at \(hex(address)), not identified", fix: fix
                ))
            }
        }
        return findings
    }

    private func i2cFinding(
        _ sensor: SensorConfiguration, address: UInt8, bus: String, answering: [UInt8], identities: [UInt8: I2CChipIdentity?]
    ) -> DoctorFinding {
        let place = "\(bus) \(hex(address))"
        guard answering.contains(address) else {
            // The same chip strapped to its other address is the most common wiring slip.
            if let other = sensor.chip.i2cAddresses.first(where: { $0 != address && answering.contains($0) && identities[$0]??.model == sensor.chip }) {
                return DoctorFinding(
                    status: .missing, sensor: sensor.id, chip: sensor.chip.description, place: place,
                    detail: "nothing at \(hex(address)), but a \(sensor.chip) answers at \(hex(other))",
                    fix: "set address = \(hex(other)) for sensor '\(sensor.id)', or move the chip's address jumper"
                )
            }
            return DoctorFinding(
                status: .missing, sensor: sensor.id, chip: sensor.chip.description, place: place,
                detail: "no device answers at \(hex(address))",
                fix: "check the wiring: 3.3 V (pin 1), GND (pin 6), SDA to GPIO2 (pin 3), SCL to GPIO3 (pin 5); "
                    + "the address jumper (\(addressList(sensor.chip.i2cAddresses))); `i2cdetect -y 1` lists what answers"
            )
        }
        guard let identity = identities[address] ?? nil else {
            return DoctorFinding(
                status: .wrong, sensor: sensor.id, chip: sensor.chip.description, place: place,
                detail: "a device answers at \(hex(address)) but does not identify as a \(sensor.chip)",
                fix: "check which board is at \(hex(address)); another chip may share the address"
            )
        }
        guard identity.model == sensor.chip else {
            let fix =
                identity.model.map { "configure chip = \"\($0.rawValue)\" for sensor '\(sensor.id)', or fit a \(sensor.chip)" }
                ?? "\(identity.name) is not supported; fit a \(sensor.chip)"
            return DoctorFinding(
                status: .wrong, sensor: sensor.id, chip: sensor.chip.description, place: place,
                detail: "found a \(identity.name) (\(identity.evidence)), not a \(sensor.chip)", fix: fix
            )
        }
        // A BMP280 sold as a BME280 works, without humidity: say so.
        let fix = identity.name == "BMP280" ? "this board has no humidity sensor; buy a BME280 (chip id 0x60) for humidity" : nil
        return DoctorFinding(status: .found, sensor: sensor.id, chip: identity.name, place: place, detail: identity.evidence, fix: fix)
    }

    // MARK: Serial, GPIO, network

    private func examineOthers() async -> [DoctorFinding] {
        let sensors = self.configuration.sensors.filter { if case .i2c = $0.connection { false } else { true } }
        let factory = SensorFactory(buses: self.buses, quickCheck: true)
        return await withTaskGroup(of: (Int, DoctorFinding).self) { group in
            for (index, sensor) in sensors.enumerated() {
                group.addTask { (index, await self.examine(sensor, factory: factory)) }
            }
            var findings: [(Int, DoctorFinding)] = []
            for await finding in group { findings.append(finding) }
            return findings.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    private func examine(_ sensor: SensorConfiguration, factory: SensorFactory) async -> DoctorFinding {
        let place = "\(sensor.connection)"
        if case .gpio(let chipName, let line) = sensor.connection {
            return await self.examineLine(sensor, chipName: chipName, line: line, place: place)
        }
        do {
            let driver = try factory.makeDriver(for: sensor)
            let values = try await withTimeout(self.answerTimeout) { try await driver.measure() }
            let summary = values.prefix(3).map { "\($0.quantity.rawValue) \(formatValue($0.value, quantity: $0.quantity)) \($0.quantity.unit.symbol)" }
            let warmsUp: Set<ChipModel> = [.sds011, .pms5003, .sps30UART]
            return DoctorFinding(
                status: .found, sensor: sensor.id, chip: sensor.chip.description, place: place,
                detail: "answers: " + summary.joined(separator: ", ") + (warmsUp.contains(sensor.chip) ? " (quick check, fan not warmed up)" : "")
            )
        } catch {
            return DoctorFinding(
                status: .missing, sensor: sensor.id, chip: sensor.chip.description, place: place, detail: "\(error)",
                fix: self.fix(for: sensor)
            )
        }
    }

    private func examineLine(_ sensor: SensorConfiguration, chipName: String, line: UInt32, place: String) async -> DoctorFinding {
        do {
            let chip = try self.buses.gpioChip(chipName)
            let bias: GPIOBias = sensor.chip == .rainGauge ? .pullUp : .asIs
            let input = try chip.requestInput(line: line, bias: bias, consumer: "kiezbox doctor")
            let high = try await input.read()
            let detail: String
            var fix: String?
            switch sensor.chip {
            case .rainGauge:
                detail = high ? "line idle high (switch open), as expected" : "line held low"
                if !high { fix = "the reed switch is closed or the line is shorted to ground; tip the bucket and check again" }
            case .mainsFail:
                let present = sensor.options.activeLow == true ? !high : high
                detail = "line \(high ? "high" : "low"): mains \(present ? "present" : "absent")"
            default:
                detail = "line \(high ? "high" : "low")"
            }
            return DoctorFinding(status: .found, sensor: sensor.id, chip: sensor.chip.description, place: place, detail: detail, fix: fix)
        } catch {
            return DoctorFinding(
                status: .missing, sensor: sensor.id, chip: sensor.chip.description, place: place, detail: "\(error)",
                fix: DeviceAccessCheck.DeviceKind.gpio.missingFix
            )
        }
    }

    private func fix(for sensor: SensorConfiguration) -> String {
        switch sensor.chip.interface {
        case .serial:
            "check the sensor's supply (5 V for SDS011/PMS5003), that its TX goes to the Pi's RX and RX to TX, "
                + "and the port; `ls -l /dev/serial/by-id/` lists USB adapters"
        case .network:
            "install and start gpsd (sudo apt install gpsd; DEVICES=\"/dev/serial0\" in /etc/default/gpsd), or use chip = \"gps\""
        default:
            "check the wiring and the configuration"
        }
    }
}

/// What `operation` returns, or a timeout error after `limit`.
func withTimeout<T: Sendable>(_ limit: Duration, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw DaemonError(description: "no answer within \(format(limit))")
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw CancellationError() }
        return first
    }
}
