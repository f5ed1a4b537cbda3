import Foundation
import KiezboxCore
import MeshRelay
import SensorDrivers
import ServiceLifecycle
import Synchronization

/// One simulated chip and where it sits: read from a fixture file, or made up from the configuration.
struct SimulatedChipSpec: Sendable, Hashable {
    var chip: ChipModel
    var place: SensorConnection
    /// BME280: the chip id to answer with (0x58 plays a BMP280).
    var chipID: UInt8?
    /// Values to hold instead of following the simulated weather.
    var fixed: FixedValues = FixedValues()
    var faults: Set<SimulatedFault> = []

    /// Values a fixture pins; anything left nil follows the simulated weather.
    struct FixedValues: Sendable, Hashable {
        var celsius: Double?
        var percentRH: Double?
        var hectopascal: Double?
        var co2PPM: Double?
        var pm2_5: Double?
        var batteryVolts: Double?
        var batteryAmps: Double?
        var rainMillimetresPerHour: Double?
        var mainsPresent: Bool?
        /// Mains-fail: a file whose content ("1" present, "0" lost) the line follows while the daemon runs, so a
        /// test or a benchmark can cut the simulated mains (``SimulatedMainsSwitchService``).
        var mainsFile: String?
    }
}

/// Faults a fixture can give a simulated chip, as real wiring produces them.
enum SimulatedFault: String, Sendable, Hashable, CaseIterable {
    /// The chip does not acknowledge anything (unpowered, a broken wire).
    case nack
    /// The whole bus times out (SDA held low).
    case stuckBus = "stuck-bus"
    /// Every answer has a CRC error (Sensirion chips: noise on long wires).
    case badCRC = "bad-crc"
    /// Noise bytes before every frame (serial sensors), or garbage answers (Sensirion chips).
    case garbage
}

/// The simulated hardware behind `kiezbox run --simulate`: simulated buses with datasheet-faithful simulated
/// chips on them, served to the production drivers through the same bus protocols as the Linux devices.
///
/// Simulated chips answer as soon as they are asked, so the drivers' waits (conversion times, fan warm-ups)
/// are shortened by ``timeScale``; everything a driver sends and receives is unchanged.
final class SimulatedKit: BusProvider {
    private let i2cBuses: [String: SimulatedI2CBus]
    private let gpioChips: [String: SimulatedGPIOChip]
    private let serialPorts: [String: SimulatedSerialPort]
    private let worldUpdates: [@Sendable (SimulatedWeather.Conditions, Date) -> Void]
    let specs: [SimulatedChipSpec]
    let timeScale: Double
    /// Which day the simulated weather plays.
    let scenario: SimulatedWeather.Scenario
    /// The simulated LoRaWAN modem's radio (its record of frames, its scripting), when the kit has one.
    let loRaWANRadio: SimulatedLoRaWANRadio?
    /// The simulated Meshtastic radio's neighbourhood (the LoRa channel, a Kiezbox 2.0 pilot box, a phone), when
    /// `[meshtastic]` names a serial port.
    let meshtasticNeighbourhood: SimulatedMeshNeighbourhood?
    /// Mains-fail lines that follow a file (the fixture's `mains_file`).
    let mainsSwitches: [SimulatedMainsSwitch]

    /// - Parameters:
    ///   - specs: the chips and where they sit.
    ///   - position: where a simulated GPS receiver believes it is.
    ///   - timeScale: how much faster than real time the drivers' waits run.
    ///   - loRaWANModem: where a simulated LoRaWAN modem of which dialect sits (`[lorawan] port` and `modem`).
    init(
        specs: [SimulatedChipSpec], position: GeoPosition = SimulatedKit.defaultPosition, timeScale: Double = 100,
        loRaWANModem: (path: String, kind: LoRaWANModemKind)? = nil, meshtasticPort: String? = nil,
        scenario: SimulatedWeather.Scenario = .ordinary
    ) {
        self.scenario = scenario
        var i2cBuses: [String: SimulatedI2CBus] = [:]
        var gpioChips: [String: SimulatedGPIOChip] = [:]
        var serialPorts: [String: SimulatedSerialPort] = [:]
        var updates: [@Sendable (SimulatedWeather.Conditions, Date) -> Void] = []
        var mainsSwitches: [SimulatedMainsSwitch] = []
        func i2cBus(_ name: String) -> SimulatedI2CBus {
            if let bus = i2cBuses[name] { return bus }
            let bus = SimulatedI2CBus(name: "sim:" + name)
            i2cBuses[name] = bus
            return bus
        }
        func gpioChip(_ name: String) -> SimulatedGPIOChip {
            if let chip = gpioChips[name] { return chip }
            // Edge timestamps on the monotonic clock, the time base the GPIO drivers use on Linux too.
            let chip = SimulatedGPIOChip(name: "sim:" + name, lineCount: 58, timeBase: monotonicNow)
            gpioChips[name] = chip
            return chip
        }
        for spec in specs {
            switch spec.place {
            case .i2c(let busName, let address):
                let bus = i2cBus(busName)
                if spec.faults.contains(.stuckBus) { bus.setFault(.stuck) }
                guard let (chip, update) = Self.makeI2CChip(spec) else { continue }
                bus.attach(chip, at: address)
                updates.append(update)
            case .gpio(let chipName, let line):
                updates.append(Self.makeGPIODevice(spec, chip: gpioChip(chipName), line: line))
                if let path = spec.fixed.mainsFile {
                    mainsSwitches.append(SimulatedMainsSwitch(path: path, chip: gpioChip(chipName), line: line))
                }
            case .serial(let path, _):
                guard let (device, update) = Self.makeSerialDevice(spec, position: position) else { continue }
                serialPorts[path] = SimulatedSerialPort(name: "sim:" + path, device: device)
                updates.append(update)
            case .network:
                continue
            }
        }
        if let modem = loRaWANModem {
            // Any keys join (a box's first run in the demo), results come at once in the port's own time.
            let radio = SimulatedLoRaWANRadio()
            radio.setDurations(join: .zero, uplink: .zero)
            let device: any SimulatedSerialDevice =
                switch modem.kind {
                case .wioE5: SimulatedWioE5(radio: radio)
                case .rak3172: SimulatedRAK3172(radio: radio)
                }
            serialPorts[modem.path] = SimulatedSerialPort(name: "sim:" + modem.path, device: device)
            self.loRaWANRadio = radio
        } else {
            self.loRaWANRadio = nil
        }
        if let path = meshtasticPort {
            let neighbourhood = SimulatedMeshNeighbourhood(near: position)
            serialPorts[path] = SimulatedSerialPort(name: "sim:" + path, device: neighbourhood.radio)
            self.meshtasticNeighbourhood = neighbourhood
        } else {
            self.meshtasticNeighbourhood = nil
        }
        self.i2cBuses = i2cBuses
        self.gpioChips = gpioChips
        self.serialPorts = serialPorts
        self.worldUpdates = updates
        self.mainsSwitches = mainsSwitches
        self.specs = specs
        self.timeScale = timeScale
    }

    /// A kit with the configured chip at each configured place: any configuration runs without a fixture.
    convenience init(
        following sensors: [SensorConfiguration], position: GeoPosition?, loRaWAN: LoRaWANSettings? = nil,
        meshtastic: MeshtasticSettings? = nil, scenario: SimulatedWeather.Scenario = .ordinary
    ) {
        self.init(
            specs: sensors.map { SimulatedChipSpec(chip: $0.chip, place: $0.connection) },
            position: position ?? Self.defaultPosition,
            loRaWANModem: Self.modemPlace(loRaWAN), meshtasticPort: meshtastic?.serialPath, scenario: scenario
        )
    }

    /// A fixture's chips, and the configured LoRaWAN modem and Meshtastic radio.
    convenience init(fixture: SimulationFixture, position: GeoPosition?, loRaWAN: LoRaWANSettings?, meshtastic: MeshtasticSettings? = nil) {
        self.init(
            specs: fixture.chips, position: position ?? Self.defaultPosition, timeScale: fixture.timeScale,
            loRaWANModem: Self.modemPlace(loRaWAN), meshtasticPort: meshtastic?.serialPath, scenario: fixture.scenario)
    }

    /// Where the simulated modem sits and which dialect it speaks; `modem = "auto"` finds a RAK3172.
    private static func modemPlace(_ settings: LoRaWANSettings?) -> (path: String, kind: LoRaWANModemKind)? {
        settings.map { ($0.port, $0.modem ?? .rak3172) }
    }

    /// Wrangelkiez, Berlin: where a simulated box without a configured position stands.
    static let defaultPosition = GeoPosition(latitude: 52.4996, longitude: 13.4318, altitude: 38)

    // MARK: BusProvider

    func i2cBus(_ name: String) throws -> any I2CBus {
        guard let bus = self.i2cBuses[name] else { return SimulatedI2CBus(name: "sim:" + name) }
        return bus
    }

    func gpioChip(_ name: String) throws -> any GPIOChip {
        guard let chip = self.gpioChips[name] else { throw GPIOError(.noSuchChip, chip: "sim:" + name) }
        return chip
    }

    func serialPort(_ path: String, baudRate: SerialBaudRate) throws -> (port: any SerialPort, pause: Pause) {
        guard let port = self.serialPorts[path] else { throw SerialError(.noSuchPort, port: "sim:" + path) }
        // A simulated serial device keeps its own time, moved by the driver's reads and pauses.
        return (port, port.pause)
    }

    var pause: Pause {
        let scale = self.timeScale
        return { duration in try await Task.sleep(for: duration / scale) }
    }

    /// Moves every simulated chip to the world of `date`.
    func updateWorld(at date: Date) {
        self.updateWorld(SimulatedWeather.conditions(at: date, scenario: self.scenario), at: date)
    }

    /// Sets the chips' world to `conditions` (a simulation that drives the battery itself, e.g. the blackout).
    func updateWorld(_ conditions: SimulatedWeather.Conditions, at date: Date) {
        for update in self.worldUpdates { update(conditions, date) }
    }

    // MARK: Chips

    private typealias WorldUpdate = @Sendable (SimulatedWeather.Conditions, Date) -> Void

    private static func makeI2CChip(_ spec: SimulatedChipSpec) -> (any SimulatedI2CChip, WorldUpdate)? {
        let fixed = spec.fixed
        let climate: @Sendable (SimulatedWeather.Conditions) -> (celsius: Double, percentRH: Double, hectopascal: Double) = {
            (fixed.celsius ?? $0.celsius, fixed.percentRH ?? $0.percentRH, fixed.hectopascal ?? $0.hectopascal)
        }
        let nack = spec.faults.contains(.nack)
        switch spec.chip {
        case .bme280:
            let chip = SimulatedBME280(chipID: spec.chipID ?? 0x60)
            if nack { chip.nackNextTransfers(Int.max) }
            return (chip, { conditions, _ in
                let (celsius, percentRH, hectopascal) = climate(conditions)
                chip.setEnvironment(celsius: celsius, hectopascal: hectopascal, percentRH: percentRH)
            })
        case .sht3x:
            let chip = SimulatedSHT3x()
            Self.applySensirionFaults(spec, chip.wire)
            return (chip, { conditions, _ in
                let (celsius, percentRH, _) = climate(conditions)
                chip.setEnvironment(celsius: celsius, percentRH: percentRH)
            })
        case .sht4x:
            let chip = SimulatedSHT4x()
            Self.applySensirionFaults(spec, chip.wire)
            return (chip, { conditions, _ in
                let (celsius, percentRH, _) = climate(conditions)
                chip.setEnvironment(celsius: celsius, percentRH: percentRH)
            })
        case .scd30:
            let chip = SimulatedSCD30()
            Self.applySensirionFaults(spec, chip.wire)
            return (chip, { conditions, _ in
                let (celsius, percentRH, _) = climate(conditions)
                chip.setEnvironment(celsius: celsius, percentRH: percentRH)
                chip.setCO2(ppm: fixed.co2PPM ?? conditions.co2PPM)
            })
        case .scd4x:
            let chip = SimulatedSCD4x()
            Self.applySensirionFaults(spec, chip.wire)
            return (chip, { conditions, _ in
                let (celsius, percentRH, _) = climate(conditions)
                chip.setEnvironment(celsius: celsius, percentRH: percentRH)
                chip.setCO2(ppm: fixed.co2PPM ?? conditions.co2PPM)
            })
        case .sps30:
            let chip = SimulatedSPS30()
            Self.applySensirionFaults(spec, chip.wire)
            return (chip, { conditions, _ in
                let pm = Self.particulates(conditions, fixed)
                chip.setParticulates(pm1: pm.pm1, pm2_5: pm.pm2_5, pm4: pm.pm4, pm10: pm.pm10)
            })
        case .ina219, .ina226:
            let shuntOhms = spec.chip == .ina219 ? 0.1 : 0.01
            let update: @Sendable (Double, Double) -> Void
            let chip: any SimulatedI2CChip
            if spec.chip == .ina219 {
                let ina = SimulatedINA219()
                if nack { ina.nackNextTransfers(Int.max) }
                update = { volts, amps in ina.setLoad(busVolts: volts, amps: amps, shuntOhms: shuntOhms) }
                chip = ina
            } else {
                let ina = SimulatedINA226()
                if nack { ina.nackNextTransfers(Int.max) }
                update = { volts, amps in ina.setLoad(busVolts: volts, amps: amps, shuntOhms: shuntOhms) }
                chip = ina
            }
            return (chip, { conditions, _ in
                update(fixed.batteryVolts ?? conditions.batteryVolts, fixed.batteryAmps ?? conditions.batteryAmps)
            })
        default:
            return nil
        }
    }

    private static func applySensirionFaults(_ spec: SimulatedChipSpec, _ wire: SimulatedSensirionWire) {
        if spec.faults.contains(.nack) { wire.nackNextTransfers(Int.max) }
        if spec.faults.contains(.badCRC) { wire.corruptChecksums(ofNextWords: Int.max) }
        if spec.faults.contains(.garbage) { wire.sendGarbage(onNextReads: Int.max) }
    }

    /// The weather's particulates, scaled so PM2.5 is the fixture's value when it pins one.
    private static func particulates(
        _ conditions: SimulatedWeather.Conditions, _ fixed: SimulatedChipSpec.FixedValues
    ) -> (pm1: Double, pm2_5: Double, pm4: Double, pm10: Double) {
        let pm = conditions.particulates
        let scale = fixed.pm2_5.map { $0 / pm.pm2_5 } ?? 1
        return (pm.pm1 * scale, pm.pm2_5 * scale, pm.pm4 * scale, pm.pm10 * scale)
    }

    /// A serial sensor's byte stream.
    private static func makeSerialDevice(
        _ spec: SimulatedChipSpec, position: GeoPosition
    ) -> (any SimulatedSerialDevice, WorldUpdate)? {
        let fixed = spec.fixed
        let silent = spec.faults.contains(.nack)
        // Bytes that look like the start of frames, to make the resynchronising decoders work for their living.
        let noise: [UInt8] = spec.faults.contains(.garbage) ? [0xAA, 0x42, 0x4D, 0x7E, 0x24, 0x00, 0xFF, 0xC0, 0x13] : []
        let particulates = { @Sendable (conditions: SimulatedWeather.Conditions) in Self.particulates(conditions, fixed) }
        switch spec.chip {
        case .sds011:
            let device = SimulatedSDS011()
            device.setSilent(silent)
            device.setNoiseBeforeFrames(noise)
            return (device, { conditions, _ in
                let pm = particulates(conditions)
                device.setConcentrations(pm2_5: pm.pm2_5, pm10: pm.pm10)
            })
        case .pms5003:
            let device = SimulatedPMS5003()
            device.setSilent(silent)
            device.setNoiseBeforeFrames(noise)
            return (device, { conditions, _ in
                let pm = particulates(conditions)
                device.setConcentrations(pm1: pm.pm1, pm2_5: pm.pm2_5, pm10: pm.pm10)
            })
        case .sps30UART:
            let device = SimulatedSPS30UART()
            device.setSilent(silent)
            device.setNoiseBeforeFrames(noise)
            return (device, { conditions, _ in
                let pm = particulates(conditions)
                device.setConcentrations(pm1: Float(pm.pm1), pm2_5: Float(pm.pm2_5), pm4: Float(pm.pm4), pm10: Float(pm.pm10))
            })
        case .gps:
            let device = SimulatedNMEAGPS()
            device.setSilent(silent)
            device.setNoiseBetweenSentences(noise)
            device.setPosition(latitude: position.latitude, longitude: position.longitude, altitude: position.altitude ?? 38)
            return (device, { _, _ in })
        default:
            return nil
        }
    }

    /// A rain gauge's reed switch or a mains-present signal on a simulated GPIO line.
    private static func makeGPIODevice(_ spec: SimulatedChipSpec, chip: SimulatedGPIOChip, line: UInt32) -> WorldUpdate {
        switch spec.chip {
        case .rainGauge:
            // The switch to ground is open (line high through the pull-up) between tips.
            chip.setInput(line: line, high: true)
            let bucket = Mutex((millimetres: 0.0, lastUpdate: Date?.none, lastEdge: Duration.zero))
            return { conditions, date in
                let rate = spec.fixed.rainMillimetresPerHour ?? conditions.rainMillimetresPerHour
                let tips = bucket.withLock { state -> Int in
                    defer { state.lastUpdate = date }
                    guard let last = state.lastUpdate else { return 0 }
                    state.millimetres += rate * date.timeIntervalSince(last) / 3600
                    let tips = Int(state.millimetres / RainGauge.defaultMillimetresPerTip)
                    state.millimetres -= Double(tips) * RainGauge.defaultMillimetresPerTip
                    return tips
                }
                guard tips > 0 else { return }
                // Each tip closes the switch for 100 ms; tips 200 ms apart, well clear of the debounce window.
                let start = bucket.withLock { state in max(chip.timestampNow, state.lastEdge + .milliseconds(100)) }
                for tip in 0..<tips {
                    let closes = start + .milliseconds(200) * tip
                    chip.setInput(line: line, high: false, at: closes)
                    chip.setInput(line: line, high: true, at: closes + .milliseconds(100))
                    bucket.withLock { $0.lastEdge = closes + .milliseconds(100) }
                }
            }
        case .mainsFail:
            let present = spec.fixed.mainsPresent ?? true
            chip.setInput(line: line, high: present)
            return { _, _ in }
        default:
            return { _, _ in }
        }
    }
}

/// A simulated mains-fail line that follows a file: "1" mains present, "0" lost (anything else, or no file: left as
/// it is). The line is driven as the fixture's `mains` value drives it.
struct SimulatedMainsSwitch: Sendable {
    let path: String
    let chip: SimulatedGPIOChip
    let line: UInt32

    /// What the file says now, if anything.
    func readPresent() -> Bool? {
        guard let text = try? String(contentsOfFile: self.path, encoding: .utf8) else { return nil }
        switch text.trimmingCharacters(in: .whitespacesAndNewlines) {
        case "1": return true
        case "0": return false
        default: return nil
        }
    }
}

/// Drives the simulated mains-fail lines from their files, looking every ``period`` (real time: a person or a
/// benchmark writes the file).
struct SimulatedMainsSwitchService<C: KiezboxClock>: Service {
    let switches: [SimulatedMainsSwitch]
    let clock: C
    var period: Duration = .milliseconds(5)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var driven: [Bool?] = Array(repeating: nil, count: self.switches.count)
            while !Task.isCancelled {
                for (index, mains) in self.switches.enumerated() {
                    guard let present = mains.readPresent(), present != driven[index] else { continue }
                    mains.chip.setInput(line: mains.line, high: present)
                    driven[index] = present
                }
                do { try await self.clock.sleep(for: self.period) } catch { break }
            }
        }
    }
}
