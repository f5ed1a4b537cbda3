import Crypto
import EmergencyPortal
import Foundation
import KiezboxCore
import Logging
import MeshRelay
import ReadingStore
import SensorDrivers
import ServiceLifecycle
import UnixSignals

/// What a configuration cannot be run with, said so that a resident can fix it.
struct DaemonError: Error, CustomStringConvertible {
    var description: String
}

/// The daemon: opens the store, builds the sensors, and runs every service in one group until a signal.
struct Daemon<C: KiezboxClock>: Sendable where C.Instant: Sendable {
    let configuration: KiezboxConfiguration
    let fixturePath: String?
    let clock: C
    let logger: Logger
    /// Where `NOTIFY_SOCKET` and `WATCHDOG_USEC` come from (systemd sets them for a `Type=notify` unit).
    var environment = ProcessInfo.processInfo.environment

    func run() async throws {
        let lock = try DataDirectoryLock(directory: self.configuration.dataDirectory)
        defer { lock.release() }
        let store = try ReadingStore(directory: self.configuration.dataDirectory, configuration: self.configuration.store)
        try await store.setIdentity(self.configuration.identity)
        try await store.markDaemonStarted(at: self.clock.currentDate())

        var services: [any Service] = [StoreFlushService(store: store, clock: self.clock, logger: self.logger)]
        let sensors: [ScheduledSensor]
        let buses: any BusProvider
        if self.configuration.simulate {
            let position = self.configuration.identity.position
            let loRaWAN = self.configuration.uplinks.loRaWAN
            let meshtastic = self.configuration.uplinks.meshtastic
            let kit = try self.fixturePath.map { path in
                SimulatedKit(fixture: try SimulationFixture.load(path: path), position: position, loRaWAN: loRaWAN, meshtastic: meshtastic)
            } ?? SimulatedKit(following: self.configuration.sensors, position: position, loRaWAN: loRaWAN, meshtastic: meshtastic)
            buses = kit
            sensors = SensorFactory(buses: kit).scheduledSensors(self.configuration.sensors)
            services.append(SimulatedWeatherService(kit: kit, clock: self.clock))
            if !kit.mainsSwitches.isEmpty { services.append(SimulatedMainsSwitchService(switches: kit.mainsSwitches, clock: self.clock)) }
            if let neighbourhood = kit.meshtasticNeighbourhood {
                services.append(SimulatedMeshNeighbourhoodService(neighbourhood: neighbourhood, clock: self.clock))
            }
            self.logger.info("running on simulated chips", metadata: ["chips": "\(sensors.count)"])
        } else {
            buses = LinuxBuses()
            sensors = SensorFactory(buses: buses).scheduledSensors(self.configuration.sensors)
        }
        // After the flush service: the group stops services in reverse order, so the sampler stops first and
        // its last readings are in the final commit.
        let heartbeat = SamplerHeartbeat<C.Instant>()
        let shedLevel = ShedLevel()
        services.append(
            Sampler(sensors: sensors, clock: self.clock, logger: self.logger, heartbeat: heartbeat, shedLevel: shedLevel) { readings in
                try await store.record(readings)
            }
        )
        let watched = zip(self.configuration.sensors, sensors).filter { $0.0.chip.watches }.map(\.1)
        if !watched.isEmpty {
            services.append(SensorWatchService(sensors: watched, clock: self.clock, backoff: RetryBackoff(), logger: self.logger))
        }
        if let power = self.configuration.power {
            services.append(PowerModelService(store: store, configuration: power, clock: self.clock, logger: self.logger))
            services.append(LoadShedder(store: store, policy: power.shedding, level: shedLevel, clock: self.clock, logger: self.logger))
        } else {
            // No model, no shedding: an earlier run's step must not be shown as current.
            try await store.setLoadShedRecord(nil)
        }
        let certificate = try self.portalCertificate()
        let sender = SenderIdentity(box: self.configuration.identity, storeInstance: store.instanceID)
        let portalHTTPS = certificate.flatMap { certificate in
            self.configuration.portal.settings.httpsPort.map { StatusMessage.PortalHTTPS(port: $0, pin: certificate.publicKeyPin) }
        }
        // The key that signs this box's bulletin for the district: only needed where the district is reached.
        let bulletinKey = try self.configuration.uplinks.mqtt.map { _ in try BoxBulletinKey.loadOrCreate(in: self.configuration.dataDirectory) }
        var (uplinks, mqtt) = try UplinkFactory(
            configuration: self.configuration, logger: self.logger, portalHTTPS: portalHTTPS,
            bulletinKey: bulletinKey?.publicKey.rawRepresentation.base64EncodedString()
        ).makeUplinks(sender: sender)
        let keys = self.configuration.portal.announcementKeys
        let desk = keys.isEmpty ? nil : AnnouncementDesk(keys: keys, district: self.configuration.identity.district, store: store, logger: self.logger)
        let loRaWANSettings = self.configuration.uplinks.loRaWAN
        let crisisDownlinks = desk.flatMap { desk in loRaWANSettings.map { _ in CrisisDownlinkReceiver(trusting: desk, logger: self.logger) } }
        let portal: PortalServer? = self.configuration.portal.enabled ? {
            let clock = self.clock
            var settings = self.configuration.portal.settings
            settings.loRaWANFairUse = loRaWANSettings?.fairUse
            settings.meshtasticAirtimeShare = self.configuration.uplinks.meshtastic?.airtimeShare
            return PortalServer(
                settings: settings, identity: self.configuration.identity, store: store,
                authorities: self.configuration.portal.authorityTokens, desk: desk, crisisDownlinks: crisisDownlinks,
                now: { clock.currentDate() }, logger: self.logger
            )
        }() : nil
        var loRaWANService: LoRaWANUplink?
        if let loRaWANSettings {
            let uplink = self.loRaWANUplink(
                loRaWANSettings, buses: buses, store: store, content: portal?.content, crisisDownlinks: crisisDownlinks, shedLevel: shedLevel)
            uplinks.append(uplink)
            loRaWANService = uplink
        }
        var meshtasticServices: [any Service] = []
        if let meshtasticSettings = self.configuration.uplinks.meshtastic {
            let (uplink, bridge) = try self.meshtastic(meshtasticSettings, buses: buses, store: store, desk: desk, shedLevel: shedLevel)
            uplinks.append(uplink)
            meshtasticServices = [bridge, uplink]
        }
        for retired in try await store.retireUplinks(except: Set(uplinks.map(\.name)), at: self.clock.currentDate()) {
            self.logger.notice(
                retired.forgotten ? "forgot the cursor of an uplink no longer configured" : "uplink no longer configured; its cursor holds back nothing",
                metadata: ["uplink": "\(retired.name)", "undelivered": "\(retired.undelivered)", "since": "\(retired.retiredAt)"]
            )
        }
        if let mqtt, let settings = self.configuration.uplinks.mqtt {
            services.append(NeighbourhoodService(
                uplink: mqtt, store: store, clock: self.clock, district: self.configuration.identity.district,
                path: "mqtt://\(settings.host):\(settings.port)", logger: self.logger
            ))
            // Also when switched off: it then deletes what an earlier run published.
            let homeAssistant = self.configuration.homeAssistant
            let discovery = homeAssistant.enabled ? try HomeAssistantDiscovery(
                discoveryPrefix: homeAssistant.discoveryPrefix, topics: mqtt.topics, box: self.configuration.identity,
                softwareVersion: Kiezbox.version) : nil
            services.append(HomeAssistantService(uplink: mqtt, store: store, discovery: discovery, clock: self.clock, logger: self.logger))
        }
        if self.configuration.warnings.enabled {
            services.append(WarningService(
                store: store, configuration: self.configuration.warnings, identity: self.configuration.identity, uplink: mqtt,
                clock: self.clock, logger: self.logger))
        }
        if !uplinks.isEmpty {
            let relay = self.configuration.uplinks.relay
            services.append(RelayService(
                uplinks: uplinks, store: store, clock: self.clock,
                configuration: RelayConfiguration(
                    batchSize: relay.batchSize, idlePoll: self.configuration.store.flushInterval,
                    maximumBackoff: relay.maximumBackoff, maximumBackfillRate: relay.maximumBackfillRate
                ),
                logger: self.logger, shedLevel: shedLevel
            ))
        }
        if let loRaWANService { services.append(loRaWANService) }
        services += meshtasticServices
        if let mqtt, let bulletinKey {
            services.append(BulletinRelayService(
                uplink: mqtt, store: store, signingKey: bulletinKey.rawRepresentation, identity: self.configuration.identity, clock: self.clock, logger: self.logger))
        }
        if let desk, let mqtt {
            services.append(AnnouncementRelayService(uplink: mqtt, desk: desk, clock: self.clock, logger: self.logger))
        }
        services.append(ModeController(
            store: store, desk: desk, downlinks: crisisDownlinks, clock: self.clock, policy: self.configuration.mode.policy,
            hooks: self.configuration.mode.hooks, logger: self.logger, stateFile: self.configuration.mode.stateFile,
            interval: self.configuration.mode.checkInterval, uplinks: uplinks,
            mainsInput: self.mainsInput(sensors), portalContent: portal?.content
        ))
        let portalListening = portal.map { _ in PortalListening(port: self.configuration.portal.settings.port) }
        if let portalListening, let portal {
            services.append(PortalService(
                server: portal, store: store, clock: self.clock, logger: self.logger, listening: portalListening, certificate: certificate
            ))
        }
        // Last: the first service to hear of a shutdown, so STOPPING=1 goes out before the others stop.
        if let notifier = self.systemdNotifier() {
            services.append(SystemdNotifyService(
                notifier: notifier, clock: self.clock, heartbeat: heartbeat,
                startup: [heartbeat.started] + [portalListening?.firstAttempt].compactMap { $0 }, portal: portalListening,
                storeRoundTrip: { try await StoreFacts.roundTrip(to: store) }, logger: self.logger
            ))
        }
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: self.logger
            )
        )
        self.logger.info(
            "kiezbox running",
            metadata: [
                "box": "\(self.configuration.identity.district)/\(self.configuration.identity.boxID)",
                "sensors": "\(sensors.map(\.id).joined(separator: ","))", "store": "\(store.path)",
            ]
        )
        try await group.run()
        try? store.close()
        self.logger.info("kiezbox stopped")
    }

    /// The first mains-fail input's driver, once built (drivers are built on first use, by the watch service).
    private func mainsInput(_ sensors: [ScheduledSensor]) -> (@Sendable () -> MainsFailInput?)? {
        guard let index = self.configuration.sensors.firstIndex(where: { $0.chip == .mainsFail }),
            let deferred = sensors[index].driver as? DeferredDriver
        else { return nil }
        return { (try? deferred.driver()) as? MainsFailInput }
    }

    /// The Meshtastic bridge (the radio link, what arrives, crisis traffic) and the uplink that sends the box's
    /// status, sharing one transmitter and its airtime share.
    private func meshtastic(
        _ settings: MeshtasticSettings, buses: any BusProvider, store: ReadingStore, desk: AnnouncementDesk?, shedLevel: ShedLevel
    ) throws -> (MeshtasticUplink, MeshtasticBridgeService<C>) {
        let connector = MeshtasticConnector(buses: buses)
        let link = MeshtasticRadioLink(endpoint: settings.endpoint, clock: self.clock, logger: self.logger) {
            () async throws(MeshtasticTransportError) -> any MeshtasticTransport in
            try await connector.connect(settings.endpoint)
        }
        let transmitter = MeshtasticTransmitter(
            link: link, store: store, channel: settings.channelIndex, airtimeShare: settings.airtimeShare, clock: self.clock,
            logger: self.logger)
        var pilotUpdate: KiezboxPilotUpdateEncoder?
        if settings.sendPilotUpdates, let box = settings.pilotBoxID, let district = settings.pilotDistrictID {
            pilotUpdate = try KiezboxPilotUpdateEncoder(boxID: Int(box), districtID: Int(district))
        }
        let uplink = MeshtasticUplink(
            configuration: MeshtasticUplink.Configuration(
                sendTelemetry: settings.sendTelemetry, pilotUpdate: pilotUpdate, statusInterval: settings.statusInterval),
            transmitter: transmitter, mode: { (try? store.mode()) ?? .normal }, clock: self.clock, shedLevel: shedLevel, logger: self.logger)
        let bridge = MeshtasticBridgeService(
            link: link, transmitter: transmitter, settings: settings, store: store, desk: desk, identity: self.configuration.identity,
            clock: self.clock, logger: self.logger, postLifetime: self.configuration.portal.settings.postLifetime)
        return (uplink, bridge)
    }

    /// The LoRaWAN uplink: the modem on its port (simulated in a simulated kit), the box state from the portal's
    /// snapshot, and downlinks handed to the signed-command receiver.
    private func loRaWANUplink(
        _ settings: LoRaWANSettings, buses: any BusProvider, store: ReadingStore, content: PortalContent?,
        crisisDownlinks: CrisisDownlinkReceiver?, shedLevel: ShedLevel
    ) -> LoRaWANUplink {
        // Without a portal the same snapshot is read by a content of its own (no phones are counted then).
        let content = content ?? PortalContent(
            identity: self.configuration.identity, settings: self.configuration.portal.settings, store: store, clients: CaptiveClients(),
            announcements: { _ in [] }, logger: self.logger)
        let connector = LoRaWANModemConnector(settings: settings, buses: buses, logger: self.logger)
        let clock = self.clock
        let logger = self.logger
        return LoRaWANUplink(
            configuration: LoRaWANUplink.Configuration(
                keys: settings.keys, dataRate: settings.dataRate, payloadFormat: settings.payload,
                schedule: .init(reportInterval: settings.reportInterval, crisisSummaryInterval: settings.crisisSummaryInterval),
                fairUse: settings.fairUse, sources: self.loRaWANSources()
            ),
            connect: { try await connector.connect().modem }, store: store, clock: self.clock,
            boxState: { LoRaWANBoxState(content.snapshot(at: clock.currentDate()).snapshot) },
            onDownlink: { downlink in
                guard let crisisDownlinks else {
                    logger.notice("LoRaWAN downlink ignored: no authority keys configured", metadata: ["port": "\(downlink.port)"])
                    return
                }
                let outcome = await crisisDownlinks.receive(port: downlink.port, payload: downlink.payload, at: clock.currentDate())
                logger.notice("LoRaWAN downlink", metadata: ["port": "\(downlink.port)", "outcome": "\(outcome)"])
            },
            shedLevel: shedLevel, logger: self.logger
        )
    }

    /// Which sensor feeds each quantity of a LoRaWAN report: the battery's power monitor for the voltage and
    /// charge (a sensor named like "battery" first), otherwise the first configured sensor that measures it.
    private func loRaWANSources() -> [Quantity: String] {
        let monitors = self.configuration.sensors.filter { $0.chip == .ina219 || $0.chip == .ina226 }
        let battery = monitors.first { $0.id.localizedCaseInsensitiveContains("batt") } ?? monitors.first
        guard let battery else { return [:] }
        return [.voltage: battery.id]
    }

    /// The portal's certificate when it serves HTTPS: made on the first start, reused after (``PortalCertificate``).
    private func portalCertificate() throws -> PortalCertificate? {
        let portal = self.configuration.portal
        guard portal.enabled, let httpsPort = portal.settings.httpsPort else { return nil }
        let (certificate, origin) = try PortalCertificate.loadOrCreate(
            dataDirectory: self.configuration.dataDirectory, hostname: portal.settings.hostname, identity: self.configuration.identity,
            now: self.clock.currentDate()
        )
        let what = switch origin {
        case .created: "portal certificate created (a new key: authorities need this pin)"
        case .reissued: "portal certificate re-issued from the same key (the pin is unchanged)"
        case .reused: "portal certificate"
        }
        self.logger.notice(
            "\(what)", metadata: ["pin": "sha256//\(certificate.publicKeyPin)", "https_port": "\(httpsPort)", "hostname": "\(portal.settings.hostname)"]
        )
        return certificate
    }

    /// The systemd notifier when the daemon runs under a `Type=notify` unit; a `NOTIFY_SOCKET` it cannot use is
    /// logged (systemd then gives up on the start) rather than stopping the box.
    private func systemdNotifier() -> SystemdNotifier? {
        do {
            return try SystemdNotifier(environment: self.environment)
        } catch {
            self.logger.error("cannot notify systemd: \(error)")
            return nil
        }
    }
}

/// An exclusive lock on the data directory: two daemons writing one store would each think they own the cursors.
final class DataDirectoryLock: Sendable {
    private let descriptor: Int32

    init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = (directory as NSString).appendingPathComponent("kiezbox.lock")
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw DaemonError(description: "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingWhitespace() ?? "?"
            close(descriptor)
            throw DaemonError(description: "another kiezbox daemon (pid \(holder)) is already using \(directory)")
        }
        ftruncate(descriptor, 0)
        let pid = "\(getpid())\n"
        _ = pid.withCString { write(descriptor, $0, strlen($0)) }
        self.descriptor = descriptor
    }

    func release() {
        close(self.descriptor)
    }
}
