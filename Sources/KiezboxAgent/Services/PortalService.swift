import EmergencyPortal
import Foundation
import KiezboxCore
import Logging
import ReadingStore
import ServiceLifecycle

/// Runs the emergency portal's HTTP server and sweeps expired bulletin posts.
///
/// A portal that cannot listen (the port is taken, no permission for port 80) is logged with the fix and
/// retried: the box keeps sampling and relaying either way.
struct PortalService<C: KiezboxClock>: Service {
    let server: PortalServer
    let store: ReadingStore
    let clock: C
    let logger: Logger
    var retryDelay: Duration = .seconds(30)
    var sweepInterval: Duration = .seconds(3600)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.serve() }
                group.addTask { await self.sweepExpiredPosts() }
            }
        }
    }

    private func serve() async {
        let settings = self.server.settings
        while !Task.isCancelled {
            let application = self.server.application { port in
                self.logger.notice(
                    "emergency portal listening",
                    metadata: ["url": "http://\(settings.bindAddress == "0.0.0.0" ? "127.0.0.1" : settings.bindAddress):\(port)/", "portal": "\(settings.portalURL)"]
                )
            }
            do {
                try await application.run()
                return
            } catch {
                let hint = settings.port < 1024 ? " (ports below 1024 need root or CAP_NET_BIND_SERVICE, see systemd/kiezbox.service)" : ""
                self.logger.error(
                    "the emergency portal cannot listen on \(settings.bindAddress):\(settings.port)\(hint); retrying",
                    metadata: ["error": "\(error)", "retry_in": "\(self.retryDelay)"]
                )
                do { try await self.clock.sleep(for: self.retryDelay) } catch { return }
            }
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
