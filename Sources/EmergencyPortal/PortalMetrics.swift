import Foundation
import KiezboxCore
import Prometheus
import ReadingStore

/// The portal's `/metrics`, in Prometheus text format: HTTP requests as they happen, and the box's state
/// (readings, backlog per uplink, bulletin, mode, phones) read from the store when scraped.
public final class PortalMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()

    public init() {}

    /// Counts one answered request; `route` is the route pattern, never the raw path (bounded label values).
    public func countRequest(route: String, status: Int) {
        self.registry.makeCounter(
            descriptor: Self.descriptor("kiezbox_http_requests_total", help: "HTTP requests answered by the portal"),
            labels: [("route", route), ("status", String(status))]
        ).increment()
    }

    /// Counts a refused bulletin post by reason.
    public func countRefusedPost(_ refusal: BulletinRefusal) {
        self.registry.makeCounter(
            descriptor: Self.descriptor("kiezbox_bulletin_refused_total", help: "Bulletin posts refused"), labels: [("reason", refusal.rawValue)]
        ).increment()
    }

    /// Sets a gauge (creating it on first use).
    public func set(_ name: String, _ value: Double, labels: [(String, String)] = [], help: String) {
        self.registry.makeGauge(descriptor: Self.descriptor(name, help: help), labels: labels).set(value)
    }

    /// Sets the crisis downlink counters (``CrisisDownlinkReceiver/counts()``): accepted per action, fragments, and
    /// refused per reason, every reason present.
    public func setCrisisDownlinkCounts(_ counts: CrisisDownlinkCounts) {
        let help = "Signed crisis commands by LoRaWAN downlink since the daemon started"
        self.set("kiezbox_crisis_downlinks_accepted_total", Double(counts.declared), labels: [("action", "declare")], help: help)
        self.set("kiezbox_crisis_downlinks_accepted_total", Double(counts.ended), labels: [("action", "end")], help: help)
        self.set("kiezbox_crisis_downlink_fragments_total", Double(counts.fragments), help: "Crisis command fragments received")
        for (reason, count) in counts.refused {
            self.set(
                "kiezbox_crisis_downlinks_refused_total", Double(count), labels: [("reason", reason.rawValue)],
                help: "Crisis downlinks refused since the daemon started")
        }
    }

    /// A metric's full name (units are part of our names) and its help text.
    static func descriptor(_ name: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    /// Reads the box's state from the store into the gauges, then renders everything.
    func render(
        store: ReadingStore, snapshot: PortalSnapshot, desk: AnnouncementDesk?, loRaWAN fairUse: LoRaWANFairUse? = nil,
        meshtasticAirtimeShare: Double? = nil
    ) -> [UInt8] {
        if let desk {
            for (reason, count) in desk.rejectionCounts() {
                self.set(
                    "kiezbox_announcements_rejected_total", Double(count), labels: [("reason", reason.rawValue)],
                    help: "Announcements refused since the daemon started"
                )
            }
            self.set("kiezbox_announcements_accepted_total", Double(desk.acceptedCount()), help: "Announcements accepted since the daemon started")
        }
        // Counters the store keeps as it writes: a scrape never counts the readings table.
        if let statistics = try? store.counters() {
            self.set("kiezbox_readings_stored", Double(statistics.readingsStored), help: "Readings in the store")
            self.set("kiezbox_readings_dropped", Double(statistics.droppedReadings), help: "Undelivered readings dropped by retention")
            self.set("kiezbox_store_bytes", Double(statistics.fileBytes), help: "Size of the store on disk")
            for uplink in statistics.uplinks {
                self.set(
                    "kiezbox_uplink_backlog", Double(uplink.undelivered), labels: [("uplink", uplink.name)],
                    help: "Readings an uplink has still to deliver"
                )
                self.set(
                    "kiezbox_uplink_delivered", Double(uplink.deliveredTotal), labels: [("uplink", uplink.name)],
                    help: "Readings an uplink has delivered"
                )
            }
        }
        for mode in Mode.allCases {
            self.set("kiezbox_mode", snapshot.mode == mode ? 1 : 0, labels: [("mode", mode.rawValue)], help: "The box's mode (1 = current)")
        }
        var counts: [String: Int] = [:]
        for count in snapshot.bulletinCounts {
            counts["\(count.kind.rawValue)|\(count.category?.rawValue ?? "")", default: 0] += count.count
        }
        for kind in BulletinKind.allCases {
            let categories: [BulletinCategory?] = kind == .safe ? [nil] : BulletinCategory.allCases
            for category in categories {
                self.set(
                    "kiezbox_bulletin_open", Double(counts["\(kind.rawValue)|\(category?.rawValue ?? "")"] ?? 0),
                    labels: [("kind", kind.rawValue), ("category", category?.rawValue ?? "none")], help: "Open bulletin posts"
                )
            }
        }
        self.set("kiezbox_announcements_current", Double(snapshot.announcements.count), help: "Valid official announcements shown")
        self.set("kiezbox_portal_clients", Double(snapshot.clientCount), help: "Phones seen on the portal in the last hour")
        self.set("kiezbox_neighbours_online", Double(snapshot.neighbours.count { $0.online }), help: "Neighbouring boxes online")
        if let volts = snapshot.power.batteryVolts { self.set("kiezbox_battery_volts", volts, help: "Battery voltage") }
        if let percent = snapshot.power.batteryPercent {
            self.set(
                "kiezbox_battery_state_of_charge", percent / 100,
                help: "Battery state of charge, 0 to 1: the power model's when it runs, else from the voltage"
            )
        }
        if let hoursLeft = snapshot.power.hoursLeft {
            self.set("kiezbox_battery_hours_left", hoursLeft.likely, help: "Hours the battery lasts at the average draw (power model)")
            self.set("kiezbox_battery_hours_left_low", hoursLeft.low, help: "Lower end of the hours-left range (power model)")
            if let high = hoursLeft.high {
                self.set("kiezbox_battery_hours_left_high", high, help: "Upper end of the hours-left range (power model)")
            }
        }
        if let step = snapshot.power.shedStep {
            self.set("kiezbox_load_shed_step", Double(step), help: "Load-shedding step, 0 = nothing shed (docs/power.md)")
        }
        if let fairUse, let account = try? store.loRaWANAccount(fairUse: fairUse, now: snapshot.now) {
            self.renderLoRaWAN(account)
        }
        if let share = meshtasticAirtimeShare, let account = try? store.meshtasticAccount(airtimeShare: share, now: snapshot.now) {
            self.renderMeshtastic(account)
        }
        return self.registry.emitToBuffer()
    }

    private func renderLoRaWAN(_ account: LoRaWANAccount) {
        self.set("kiezbox_lorawan_airtime_used_seconds", account.airtimeUsedSeconds, help: "LoRaWAN uplink airtime in the last 24 hours")
        self.set("kiezbox_lorawan_airtime_left_seconds", account.airtimeLeftSeconds, help: "LoRaWAN uplink airtime left of the 24-hour allowance")
        self.set("kiezbox_lorawan_airtime_limit_seconds", account.airtimeLimitSeconds, help: "LoRaWAN uplink airtime allowed per 24 hours (TTN fair use)")
        self.set("kiezbox_lorawan_uplinks", Double(account.uplinksSent), help: "LoRaWAN uplinks sent in the last 24 hours")
        self.set("kiezbox_lorawan_downlinks", Double(account.downlinksReceived), help: "LoRaWAN downlinks received in the last 24 hours")
        if let next = account.nextSend {
            self.set(
                "kiezbox_lorawan_next_send_timestamp_seconds", next.at.timeIntervalSince1970, labels: [("frame", next.frame)],
                help: "When the LoRaWAN uplink may send next (Unix time)")
        }
    }

    private func renderMeshtastic(_ account: MeshtasticAccount) {
        self.set("kiezbox_meshtastic_airtime_used_seconds", account.airtimeUsedSeconds, help: "Meshtastic airtime sent in the last hour")
        self.set(
            "kiezbox_meshtastic_airtime_limit_seconds", account.airtimeLimitSeconds,
            help: "Meshtastic airtime the box allows itself per hour (its share of the band's duty cycle)")
        self.set("kiezbox_meshtastic_airtime_left_seconds", account.airtimeLeftSeconds, help: "Meshtastic airtime left in the last hour's share")
        for (traffic, seconds) in account.airtimeByTraffic.sorted(by: { $0.key < $1.key }) {
            self.set(
                "kiezbox_meshtastic_traffic_airtime_seconds", seconds, labels: [("traffic", traffic)],
                help: "Meshtastic airtime in the last hour by traffic class")
        }
        self.set("kiezbox_meshtastic_packets_sent", Double(account.packetsSent), help: "Meshtastic packets sent in the last hour")
        self.set(
            "kiezbox_meshtastic_link_up", account.link?.state == "ready" ? 1 : 0,
            help: "1 while the Meshtastic radio link is ready (handshake done)")
        if let link = account.link {
            self.set("kiezbox_meshtastic_nodes_known", Double(link.nodesKnown), help: "Nodes in the Meshtastic radio's node database")
        }
    }
}
