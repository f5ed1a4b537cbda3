import EmergencyPortal
import Foundation
import KiezboxCore
import Logging
import ReadingStore
import ServiceLifecycle
import Synchronization

/// Whether the portal listens, for the systemd status line; and when its first attempt to listen is over.
final class PortalListening: Sendable {
    enum State: Sendable, Hashable {
        case starting
        case listening
        case cannotListen
    }

    let port: Int
    private let current = Mutex(State.starting)
    /// Reached after the first attempt to listen, whether it worked or not.
    let firstAttempt = Milestone()

    init(port: Int) {
        self.port = port
    }

    var state: State { self.current.withLock { $0 } }

    func record(_ state: State) {
        self.current.withLock { $0 = state }
        self.firstAttempt.reach()
    }

    /// `portal :80`, `portal :80 not listening`.
    var summary: String {
        switch self.state {
        case .starting: "portal :\(self.port) starting"
        case .listening: "portal :\(self.port)"
        case .cannotListen: "portal :\(self.port) not listening"
        }
    }
}

/// Runs the emergency portal's HTTP server (and its HTTPS side, given a certificate) and sweeps expired bulletin
/// posts.
///
/// A portal that cannot listen (the port is taken, no permission for port 80) is logged with the fix and
/// retried: the box keeps sampling and relaying either way.
///
/// On a graceful shutdown Hummingbird shuts down by itself (its service group follows the graceful shutdown of
/// the task it runs in): it stops accepting, lets requests in flight finish and closes. Cancelling it instead made
/// it log errors on every clean stop. A client that holds a request open longer than ``shutdownGrace`` is cut off.
struct PortalService<C: KiezboxClock>: Service {
    let server: PortalServer
    let store: ReadingStore
    let clock: C
    let logger: Logger
    var listening: PortalListening? = nil
    /// The box's certificate for the HTTPS side (``PortalSettings/httpsPort``); `nil`: HTTP only.
    var certificate: PortalCertificate? = nil
    var retryDelay: Duration = .seconds(30)
    var sweepInterval: Duration = .seconds(3600)
    var shutdownGrace: Duration = .seconds(5)

    func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask {
                await self.serve(scheme: "http", port: self.server.settings.port, listening: self.listening) { onListening in
                    self.server.application(onListening: onListening)
                }
            }
            if let certificate = self.certificate, let httpsPort = self.server.settings.httpsPort {
                group.addTask {
                    await self.serve(scheme: "https", port: httpsPort, listening: nil, pin: certificate.publicKeyPin) { onListening in
                        try self.server.httpsApplication(certificate: certificate, onListening: onListening)
                    }
                }
            }
            group.addTask { await cancelWhenGracefulShutdown { await self.sweepExpiredPosts() } }
        }
    }

    /// Serves one side (HTTP or HTTPS) until shutdown; a side that cannot listen is logged and retried.
    private func serve(
        scheme: String, port: Int, listening: PortalListening?, pin: String? = nil,
        application makeApplication: (@escaping @Sendable (Int) async -> Void) throws -> any Service
    ) async {
        let settings = self.server.settings
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let application = try makeApplication { port in
                    listening?.record(.listening)
                    var metadata: Logger.Metadata = [
                        "url": "\(scheme)://\(settings.bindAddress == "0.0.0.0" ? "127.0.0.1" : settings.bindAddress):\(port)/", "portal": "\(settings.portalURL)",
                    ]
                    // The pin authorities check the box by (docs/portal.md): in the log at every start.
                    if let pin { metadata["pin"] = "sha256//\(pin)" }
                    self.logger.notice(scheme == "https" ? "emergency portal listening for authorities (HTTPS)" : "emergency portal listening", metadata: metadata)
                }
                try await self.runUntilShutDown(application)
                return
            } catch {
                if Task.isCancelled { return }
                listening?.record(.cannotListen)
                let hint = port < 1024 ? " (ports below 1024 need root or CAP_NET_BIND_SERVICE, see systemd/kiezbox.service)" : ""
                self.logger.error(
                    "the emergency portal cannot listen (\(scheme)) on \(settings.bindAddress):\(port)\(hint); retrying",
                    metadata: ["error": "\(error)", "retry_in": "\(self.retryDelay)"]
                )
                do {
                    try await cancelWhenGracefulShutdown { try await self.clock.sleep(for: self.retryDelay) }
                } catch {
                    return
                }
            }
        }
    }

    /// Runs the application until it has shut down gracefully; cancels it when that takes longer than the grace.
    private func runUntilShutDown(_ application: some Service) async throws {
        try await withThrowingTaskGroup { group in
            group.addTask { try await application.run() }
            group.addTask {
                try await gracefulShutdown()
                try await self.clock.sleep(for: self.shutdownGrace)
                self.logger.warning("the emergency portal did not finish its requests in time; closing it")
            }
            // The application ends first, by itself or after a graceful shutdown; the grace timer then has
            // nothing left to do.
            _ = try await group.next()
            group.cancelAll()
        }
    }

    private func sweepExpiredPosts() async {
        while !Task.isCancelled {
            do {
                let removed = try await self.store.deleteExpiredBulletinPosts(at: self.clock.currentDate())
                if removed > 0 { self.logger.info("expired bulletin posts removed", metadata: ["count": "\(removed)"]) }
            } catch {
                self.logger.warning("could not remove expired bulletin posts", metadata: ["error": "\(error)"])
            }
            do { try await self.clock.sleep(for: self.sweepInterval) } catch { return }
        }
    }
}
