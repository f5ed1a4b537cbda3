import EmergencyPortal
import Foundation
import KiezboxCore
import Logging
import ReadingStore
import ServiceLifecycle
import Synchronization

/// A wall clock the test moves.
final class TestWallClock: Sendable {
    private let current: Mutex<Date>
    init(_ start: Date = Date(timeIntervalSince1970: 1_796_000_000)) { self.current = Mutex(start) }
    var now: Date { self.current.withLock { $0 } }
    func advance(by seconds: TimeInterval) { self.current.withLock { $0 += seconds } }
}

/// A portal server really listening on loopback, with its own store in a temporary directory.
struct RunningPortal {
    let server: PortalServer
    let store: ReadingStore
    let clock: TestWallClock
    let port: Int
    let directory: URL

    /// A client ("phone") at a loopback address of its own.
    func phone(_ number: Int = 1) -> RawHTTPClient {
        RawHTTPClient(port: self.port, source: "127.0.0.\(1 + number)")
    }

    static let identity = BoxIdentity(
        district: "friedrichshain-kreuzberg", boxID: "wrangelkiez-01", name: "Kiezbox Wrangelstraße",
        position: GeoPosition(latitude: 52.4996, longitude: 13.4318)
    )

    static func settings(_ change: (inout PortalSettings) -> Void = { _ in }) -> PortalSettings {
        var settings = PortalSettings(hostname: "kiez.box", bindAddress: "127.0.0.1", port: 0, publicURL: "http://kiez.box/")
        // The tests' clients are on loopback and speak plain HTTP; the refusal elsewhere has tests of its own.
        settings.tokensOverPlainHTTP = .loopback
        change(&settings)
        return settings
    }
}

/// Starts a portal, runs `body` against it, stops it.
func withRunningPortal<T>(
    settings: PortalSettings = RunningPortal.settings(),
    authorities: AuthorityTokens = AuthorityTokens([]),
    keys: [AnnouncementKey] = [],
    logger: Logger? = nil,
    _ body: (RunningPortal) async throws -> T
) async throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kiezbox-portal-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: directory) }
    let store = try ReadingStore(directory: directory.path)
    let clock = TestWallClock()
    let logger = logger ?? {
        var logger = Logger(label: "portal-test")
        logger.logLevel = .warning
        return logger
    }()
    let server = PortalServer(
        settings: settings, identity: RunningPortal.identity, store: store, authorities: authorities,
        desk: keys.isEmpty ? nil : AnnouncementDesk(keys: keys, district: RunningPortal.identity.district, store: store, logger: logger),
        now: { clock.now }, logger: logger
    )
    let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
    let application = server.application(onListening: { port in continuation.yield(port) })
    // A service group, as in the daemon, so the test ends with a graceful shutdown like SIGTERM does.
    let group = ServiceGroup(configuration: .init(services: [.init(service: application)], logger: logger))
    let task = Task { try await group.run() }
    var iterator = ports.makeAsyncIterator()
    guard let port = await iterator.next() else { throw RawHTTPClient.Failure(description: "the portal did not start") }
    let portal = RunningPortal(server: server, store: store, clock: clock, port: port, directory: directory)
    let result: Result<T, any Error>
    do { result = .success(try await body(portal)) } catch { result = .failure(error) }
    await group.triggerGracefulShutdown()
    _ = await task.result
    try? store.close()
    return try result.get()
}
