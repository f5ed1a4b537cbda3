import ArgumentParser
import Foundation
import EmergencyPortal
import KiezboxCore
import MeshRelay
import ReadingStore

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the box: identity, mode, latest readings, store and uplinks (works while the daemon runs)."
    )

    @OptionGroup var data: DataOptions

    @Flag(name: .long, help: "Print JSON for scripts.")
    var json = false

    func run() throws {
        let (configuration, _) = try self.data.resolve()
        let store = try ReadingStore(directory: configuration.dataDirectory, configuration: configuration.store, readOnly: true)
        let statistics = try store.statistics()
        let now = Date()
        // Read from the certificate alone (not the key), so it works for anyone who can read the data directory.
        let portalHTTPS = try configuration.portal.enabled ? configuration.portal.settings.httpsPort.flatMap { port in
            try PortalCertificate.storedPin(dataDirectory: configuration.dataDirectory).map { StatusMessage.PortalHTTPS(port: port, pin: $0) }
        } : nil
        let loRaWAN = try configuration.uplinks.loRaWAN.map { try store.loRaWANAccount(fairUse: $0.fairUse, now: now) }
        let meshtastic = try configuration.uplinks.meshtastic.map { try MeshtasticStatus(store: store, airtimeShare: $0.airtimeShare, now: now) }
        let battery = try configuration.power.flatMap { _ in try store.batteryRecord() }
        let loadShed = try configuration.power.flatMap { _ in try store.loadShedRecord() }
        let crisisHistory = try store.crisisHistory()
        let warnings = StatusWarnings(try store.warningBook(), identity: statistics.identity ?? configuration.identity)
        if self.json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            encoder.dateEncodingStrategy = .iso8601
            var report = StatusReport(statistics, path: store.path, now: now)
            report.portalHTTPS = portalHTTPS
            report.lorawan = loRaWAN
            report.meshtastic = meshtastic
            report.battery = battery
            report.loadShed = loadShed
            report.crisisHistory = crisisHistory
            report.warnings = warnings.warnings
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(
                renderStatus(
                    statistics, path: store.path, now: now, portalHTTPS: portalHTTPS, loRaWAN: loRaWAN, meshtastic: meshtastic, battery: battery,
                    loadShed: loadShed, crisisHistory: crisisHistory, warnings: warnings
                ),
                terminator: ""
            )
        }
    }
}

/// The JSON shape of `kiezbox status --json`.
struct StatusReport: Encodable {
    struct Sensor: Encodable {
        var sensor: String
        var quantity: String
        var value: Double
        var unit: String
        var measuredAt: Date
        var ageSeconds: Double
        var quality: String
    }

    struct Uplink: Encodable {
        var name: String
        var deliveredThrough: Int64
        var deliveredTotal: Int64
        var undelivered: Int64
        /// Set when the uplink is no longer configured: its cursor is kept a while but holds back nothing.
        var retiredAt: Date?
    }

    var identity: BoxIdentity?
    var mode: String?
    var daemonStartedAt: Date?
    var lastCommitAt: Date?
    var sensors: [Sensor]
    var store: Store
    var uplinks: [Uplink]
    var neighbours: [NeighbourBox]
    /// The portal's HTTPS port and the pin of its key, as in the MQTT status; absent until the daemon made the key.
    var portalHTTPS: StatusMessage.PortalHTTPS?
    /// The LoRaWAN uplink's rolling 24-hour account and next planned send, when `[lorawan]` is configured.
    var lorawan: LoRaWANAccount?
    /// The Meshtastic bridge's radio link and airtime of the last hour, when `[meshtastic]` is configured.
    var meshtastic: MeshtasticStatus?
    /// The power model's state and last estimate, when `[power]` is configured and the daemon has run it.
    var battery: BatteryRecord?
    /// The load shedder's step (docs/power.md, "Load shedding"), when `[power]` is configured.
    var loadShed: LoadShedRecord?
    /// The recorded mode changes with their reasons, newest first (at most 20).
    var crisisHistory: [CrisisTrigger] = []
    /// The box's own heat and heavy-rain warnings, active and recently ended (docs/warnings.md).
    var warnings: [StatusWarnings.Warning] = []

    struct Store: Encodable {
        var path: String
        var instanceID: String
        var fileBytes: Int64
        var usedBytes: Int64
        var readingsStored: Int64
        var oldestMeasuredAt: Date?
        var newestMeasuredAt: Date?
        var droppedReadings: Int64
    }

    init(_ statistics: StoreStatistics, path: String, now: Date) {
        self.identity = statistics.identity
        self.mode = statistics.mode?.rawValue
        self.daemonStartedAt = statistics.daemonStartedAt
        self.lastCommitAt = statistics.lastFlushAt
        self.sensors = statistics.latest.map { stored in
            let reading = stored.reading
            return Sensor(
                sensor: reading.sensorID, quantity: reading.quantity.rawValue, value: reading.value,
                unit: reading.unit.symbol, measuredAt: reading.measuredAt,
                ageSeconds: (now.timeIntervalSince(reading.measuredAt) * 10).rounded() / 10,
                quality: reading.quality.description
            )
        }
        self.store = Store(
            path: path, instanceID: statistics.instanceID, fileBytes: statistics.fileBytes,
            usedBytes: statistics.usedBytes, readingsStored: statistics.readingsStored,
            oldestMeasuredAt: statistics.oldestMeasuredAt, newestMeasuredAt: statistics.newestMeasuredAt,
            droppedReadings: statistics.droppedReadings
        )
        self.neighbours = statistics.neighbours
        self.uplinks = statistics.uplinks.map {
            Uplink(
                name: $0.name, deliveredThrough: $0.deliveredThrough, deliveredTotal: $0.deliveredTotal, undelivered: $0.undelivered,
                retiredAt: $0.retiredAt
            )
        }
    }
}

/// The human-readable status, as a resident reads it over SSH.
func renderStatus(
    _ statistics: StoreStatistics, path: String, now: Date, portalHTTPS: StatusMessage.PortalHTTPS? = nil, loRaWAN: LoRaWANAccount? = nil,
    meshtastic: MeshtasticStatus? = nil, battery: BatteryRecord? = nil, loadShed: LoadShedRecord? = nil,
    crisisHistory: [CrisisTrigger] = [], warnings: StatusWarnings = StatusWarnings()
) -> String {
    var lines: [String] = []
    if let identity = statistics.identity {
        lines.append("\(identity.name) — \(identity.district)/\(identity.boxID)")
        if let position = identity.position {
            lines.append("  position    \(position.latitude), \(position.longitude)")
        }
    } else {
        lines.append("Kiezbox (identity not recorded yet)")
    }
    lines.append("  mode        \(statistics.mode?.rawValue ?? "unknown")")
    if let started = statistics.daemonStartedAt {
        var daemon = "  daemon      started \(timestamp(started)) (\(age(from: started, to: now)) ago)"
        if let commit = statistics.lastFlushAt { daemon += ", last commit \(age(from: commit, to: now)) ago" }
        lines.append(daemon)
    }
    if let battery {
        lines.append(renderBattery(battery, now: now))
    }
    if let loadShed {
        lines.append(renderLoadShed(loadShed, now: now))
    }
    if let portalHTTPS {
        lines.append("  https       port \(portalHTTPS.port), key pin sha256//\(portalHTTPS.pin)")
    }
    if !crisisHistory.isEmpty {
        lines.append("")
        lines.append("Crisis history (newest first)")
        for trigger in crisisHistory {
            lines.append("  \(timestamp(trigger.at))  \(pad(trigger.mode.rawValue, 11))  \(trigger.reason)")
        }
    }
    lines.append("")
    lines.append("Warnings")
    lines += warnings.lines(now: now)
    lines.append("")
    lines.append("Latest readings")
    if statistics.latest.isEmpty { lines.append("  none yet") }
    let sensorWidth = statistics.latest.map(\.reading.sensorID.count).max() ?? 0
    let quantityWidth = statistics.latest.map(\.reading.quantity.rawValue.count).max() ?? 0
    for stored in statistics.latest {
        let reading = stored.reading
        let value = "\(formatValue(reading.value, quantity: reading.quantity)) \(reading.unit.symbol)"
        var line = "  " + pad(reading.sensorID, sensorWidth) + "  " + pad(reading.quantity.rawValue, quantityWidth)
        line += "  " + pad(value, 14) + "  " + pad(age(from: reading.measuredAt, to: now) + " ago", 10)
        if reading.quality != .good { line += "  \(reading.quality)" }
        lines.append(line)
    }
    lines.append("")
    lines.append("Store  \(path)")
    var size = "  size        \(bytes(statistics.fileBytes)) on disk, \(bytes(statistics.usedBytes)) in use"
    if let maximum = statistics.maximumBytes { size += " (limit \(bytes(maximum)))" }
    lines.append(size)
    var stored = "  readings    \(statistics.readingsStored)"
    if let oldest = statistics.oldestMeasuredAt, let newest = statistics.newestMeasuredAt {
        stored += ", \(timestamp(oldest)) to \(timestamp(newest))"
    }
    lines.append(stored)
    lines.append("  dropped     \(statistics.droppedReadings)" + (statistics.droppedReadings > 0 ? " (store was full with undelivered readings)" : ""))
    lines.append("")
    lines.append("Uplinks")
    if statistics.uplinks.isEmpty { lines.append("  none configured") }
    for uplink in statistics.uplinks {
        var line = "  \(pad(uplink.name, 14))  \(uplink.undelivered) undelivered, \(uplink.deliveredTotal) delivered"
        if let retiredAt = uplink.retiredAt { line += " (no longer configured, for \(age(from: retiredAt, to: now)))" }
        lines.append(line)
    }
    if let loRaWAN {
        lines.append("")
        lines.append("LoRaWAN (last 24 hours)")
        lines.append(String(
            format: "  airtime     %.2f s used, %.2f s left of %.0f s", loRaWAN.airtimeUsedSeconds, loRaWAN.airtimeLeftSeconds,
            loRaWAN.airtimeLimitSeconds))
        lines.append("  frames      \(loRaWAN.uplinksSent) sent, \(loRaWAN.joins) joins, \(loRaWAN.downlinksReceived) of \(loRaWAN.downlinksLimit) downlinks")
        if let next = loRaWAN.nextSend {
            let when = next.at <= now ? "now" : "in \(age(from: now, to: next.at))"
            lines.append("  next send   \(next.frame) \(when) (\(next.reason)), \(timestamp(next.at))")
        } else {
            lines.append("  next send   none planned (is the daemon running?)")
        }
    }
    if let meshtastic { lines += renderMeshtastic(meshtastic, now: now) }
    lines.append("")
    lines.append("Neighbourhood")
    if statistics.neighbours.isEmpty { lines.append("  no other box heard of yet") }
    for neighbour in statistics.neighbours {
        var line = "  \(pad(neighbour.identity.district + "/" + neighbour.identity.boxID, 24))  "
        line += pad(neighbour.online ? "online" : "offline", 7) + "  " + pad(neighbour.mode?.rawValue ?? "?", 11)
        if let volts = neighbour.batteryVolts { line += "  battery \(formatValue(volts, quantity: .voltage)) V" }
        line += "  seen \(age(from: neighbour.lastSeen, to: now)) ago via \(neighbour.path)"
        lines.append(line)
    }
    return lines.joined(separator: "\n") + "\n"
}

private func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}

/// A value rounded for reading: five decimals for coordinates (about a metre), two for everything else.
func formatValue(_ value: Double, quantity: Quantity) -> String {
    let scale: Double = quantity == .latitude || quantity == .longitude ? 100_000 : 100
    let rounded = (value * scale).rounded() / scale
    return rounded == rounded.rounded() ? String(Int64(rounded)) : String(rounded)
}

func timestamp(_ date: Date) -> String {
    date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: false).timeSeparator(.colon))
}

func age(from earlier: Date, to now: Date) -> String {
    let seconds = max(0, Int(now.timeIntervalSince(earlier).rounded()))
    return format(.seconds(seconds))
}

func bytes(_ count: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB"]
    var value = Double(count)
    var unit = 0
    while value >= 1024, unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(count) B" : String(format: "%.1f %@", value, units[unit])
}

/// What `kiezbox status` shows of the Meshtastic bridge.
struct MeshtasticStatus: Encodable {
    var account: MeshtasticAccount
    /// The newest control messages from the pilot's admin tools.
    var controls: [Control]

    struct Control: Encodable {
        var at: Date
        var sender: String
        var description: String
        var obeyed: Bool
    }

    init(store: ReadingStore, airtimeShare: Double, now: Date) throws {
        self.account = try store.meshtasticAccount(airtimeShare: airtimeShare, now: now)
        self.controls = try store.pilotControls(limit: 5).map {
            Control(at: $0.at, sender: $0.sender, description: $0.description, obeyed: $0.obeyed)
        }
    }
}

private func renderMeshtastic(_ status: MeshtasticStatus, now: Date) -> [String] {
    let account = status.account
    var lines = ["", "Meshtastic (last hour)"]
    if let link = account.link {
        var line = "  radio       \(link.endpoint): \(link.state)"
        if let reason = link.reason { line += " (\(reason))" }
        line += " for \(age(from: link.changedAt, to: now))"
        lines.append(line)
        if let node = link.nodeNumber {
            let firmware = link.firmwareVersion.map { ", firmware \($0)" } ?? ""
            lines.append("  node        \(MeshtasticNode(number: node).userID)\(firmware), \(link.nodesKnown) nodes known")
            lines.append("  channels    \(link.channels.joined(separator: ", "))")
        }
    } else {
        lines.append("  radio       not seen yet (is the daemon running?)")
    }
    lines.append(String(
        format: "  airtime     %.1f s used, %.1f s left of %.0f s (the box's share of the band's %.0f s)", account.airtimeUsedSeconds,
        account.airtimeLeftSeconds, account.airtimeLimitSeconds, account.bandAllowanceSeconds))
    let byTraffic = account.airtimeByTraffic.sorted { $0.key < $1.key }.map { String(format: "%@ %.1f s", $0.key, $0.value) }
    lines.append("  packets     \(account.packetsSent) sent, \(account.bytesSent) bytes on air\(byTraffic.isEmpty ? "" : " (" + byTraffic.joined(separator: ", ") + ")")")
    for control in status.controls {
        lines.append("  control     \(timestamp(control.at)) from \(control.sender): \(control.description) (\(control.obeyed ? "obeyed" : "not obeyed"))")
    }
    return lines
}

/// "  shedding    step 2 of 4 for 3h (state of charge 34.6 % below 35 %)", or "  shedding    none (mains present)".
func renderLoadShed(_ record: LoadShedRecord, now: Date) -> String {
    guard record.step > 0 else { return "  shedding    none (\(record.reason))" }
    return "  shedding    step \(record.step) of \(record.steps) for \(age(from: record.since, to: now)) (\(record.reason))"
}

/// "  battery     62 % (58–66 %), power left about 31 h (25–38 h); anchored 5 h ago (rested-voltage)".
func renderBattery(_ record: BatteryRecord, now: Date) -> String {
    let estimate = record.estimate
    var line = String(
        format: "  battery     %.0f %% (%.0f–%.0f %%)", estimate.stateOfCharge * 100, estimate.stateOfChargeLow * 100,
        estimate.stateOfChargeHigh * 100
    )
    line += estimate.hoursLeft.map { ", power left \($0)" } ?? ", charging"
    if let solar = estimate.solarWatts { line += String(format: ", solar %.1f W", solar) }
    if let anchoredAt = estimate.lastAnchorAt, let anchor = estimate.lastAnchor {
        line += "; anchored \(age(from: anchoredAt, to: now)) ago (\(anchor.rawValue))"
    } else {
        line += "; not anchored yet"
    }
    if now.timeIntervalSince(record.at) > 600 { line += "; estimate \(age(from: record.at, to: now)) old" }
    return line
}

/// What `kiezbox status` shows of the box's own warnings (docs/warnings.md).
struct StatusWarnings {
    struct Warning: Encodable {
        var hazard: String
        /// The German weather service's name of the level ("Extreme Wärmebelastung").
        var event: String
        var level: Int
        var severity: String
        var active: Bool
        var startedAt: Date
        var endedAt: Date?
        var perceivedCelsius: Double?
        var rainOneHourMillimetres: Double?
        var rainSixHoursMillimetres: Double?
        /// The latest CAP message: its type and identifier (served at /api/v1/warnings/<identifier>).
        var msgType: String
        var identifier: String
    }

    var warnings: [Warning] = []

    init() {}

    init(_ book: WarningBook, identity: BoxIdentity) {
        self.warnings = book.warnings.compactMap { warning in
            guard let message = warning.messages.last else { return nil }
            return Warning(
                hazard: warning.hazard.rawValue, event: WarningFeed.germanLevel(warning.hazard, level: warning.level), level: warning.level,
                severity: WarningFeed.severity(warning.hazard, level: warning.level), active: warning.isActive, startedAt: warning.startedAt,
                endedAt: warning.endedAt, perceivedCelsius: warning.perceivedCelsius, rainOneHourMillimetres: warning.rainOneHour,
                rainSixHoursMillimetres: warning.rainSixHours, msgType: message.kind.rawValue,
                identifier: WarningFeed.identifier(warning, message, identity: identity))
        }
    }

    /// "  heat        level 2 Extreme Wärmebelastung (Severe) since 2026-07-15T06:00:00 (3h ago), perceived 39.2 °C",
    /// one line per active warning, or "  none active".
    func lines(now: Date) -> [String] {
        let active = self.warnings.filter(\.active)
        guard !active.isEmpty else { return ["  none active"] }
        return active.map { warning in
            var line = "  \(pad(warning.hazard, 10))  level \(warning.level) \(warning.event) (\(warning.severity))"
            line += " since \(timestamp(warning.startedAt)) (\(age(from: warning.startedAt, to: now)) ago)"
            if let perceived = warning.perceivedCelsius, warning.hazard == WarningHazard.heat.rawValue {
                line += String(format: ", perceived %.1f °C", perceived)
            }
            if warning.hazard == WarningHazard.heavyRain.rawValue {
                let oneHour = warning.rainOneHourMillimetres.map { formatValue($0, quantity: .rainfall) } ?? "?"
                let sixHours = warning.rainSixHoursMillimetres.map { formatValue($0, quantity: .rainfall) } ?? "?"
                line += ", \(oneHour) mm in 1 h, \(sixHours) mm in 6 h"
            }
            return line
        }
    }
}
