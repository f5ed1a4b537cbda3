import EmergencyPortal
import Foundation
import KiezboxCore
import KiezboxTestSupport
import ReadingStore
import Synchronization
import Testing

@testable import KiezboxAgent

/// Issue 9, "How it is shown": the real daemon with the embedded default kit (simulated chips), in crisis mode,
/// under the file limit its systemd unit gives it, attacked from the emergency Wi-Fi by hundreds of loopback
/// addresses at once while a resident keeps opening the info page and the sampler keeps sampling.
///
/// The portal listens on every address: 127.0.0.2 stands in for the box's Wi-Fi address (where phones and
/// attackers arrive) and 127.0.0.1 for the mesh (where the authorities read the situation feed). Timeouts and
/// connection caps are the daemon's own defaults; nothing is shortened for the test.
@Suite("Hostile neighbours on the emergency Wi-Fi", .serialized, .timeLimit(.minutes(4)))
struct HostileNeighbourLoadTests {
    static let wifiAddress = "127.0.0.2"
    static let meshAddress = "127.0.0.1"
    static let attackDuration: Duration = .seconds(30)
    /// How far memory may stay above its idle level once the attackers are gone.
    static let memorySlackBytes = 30 << 20

    /// The embedded default with the portal on every loopback address, the Wi-Fi address on 127.0.0.2 and one
    /// authority token.
    static func configuration(port: Int, tokenSHA256: String) -> String {
        KiezboxConfiguration.embeddedDefault
            .replacingOccurrences(of: "listen = \"127.0.0.1\"", with: "listen = \"0.0.0.0\"")
            // Plain HTTP only: the authority reads its feeds from the box itself (loopback), where a token may go
            // unencrypted; the HTTPS side would need a free port of its own.
            .replacingOccurrences(of: "port = 8080", with: "port = \(port)\nhttps = false\ntokens_over_http = \"loopback\"")
            + """

            [wifi]
            address = "\(Self.wifiAddress)/8"
            dhcp_range = ["127.0.10.1", "127.0.200.254"]

            [[authority]]
            name = "Lagedienst Friedrichshain-Kreuzberg"
            token_sha256 = "\(tokenSHA256)"

            """
    }

    /// The `LimitNOFILE=` of systemd/kiezbox.service as `soft:hard`; systemd's default (1024:524288) when it sets none.
    static func unitFileLimit() throws -> (soft: Int, hard: Int) {
        let unit = try String(contentsOfFile: repositoryRoot + "/systemd/kiezbox.service", encoding: .utf8)
        guard let line = unit.split(separator: "\n").last(where: { $0.hasPrefix("LimitNOFILE=") }) else { return (1024, 524_288) }
        let parts = line.dropFirst("LimitNOFILE=".count).split(separator: ":").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let soft = try #require(parts.first, "LimitNOFILE in the unit is not a number: \(line)")
        return (soft, parts.count > 1 ? parts[1] : soft)
    }

    /// The attackers: a bulletin flood from 200 addresses, loops on `/?all=1` and `/metrics`, oversized and
    /// malformed requests, and slow-loris connections — half of them from one address — as many at once as fit
    /// under the daemon's file limit next to the rest (they are reopened, so more than a thousand are made).
    static func attackPlan(port: Int, fileLimit: Int) -> AttackPlan {
        var slots: [AttackSlot] = []
        let floodSources = (1...200).map { "127.0.1.\($0)" }
        slots += floodSources.map { AttackSlot(role: .flood, source: $0) }
        slots += (1...16).map { AttackSlot(role: .allPostsLoop, source: "127.0.5.\($0)") }
        slots += (1...4).map { AttackSlot(role: .metricsLoop, source: "127.0.6.\($0)") }
        slots += (1...8).map { AttackSlot(role: .oversized(fast: $0 % 2 == 0), source: "127.0.7.\($0)") }
        slots += (1...8).map { AttackSlot(role: .malformed, source: "127.0.8.\($0)") }
        // The others hold up to ~240 connections; keep ~150 descriptors for the daemon's own files and the resident.
        let slowLoris = max(300, min(2_000, fileLimit - slots.count - 150))
        let styles = SlowLorisStyle.allCases
        for index in 0..<slowLoris {
            let source = index % 2 == 0 ? "127.0.2.1" : floodSources[(index / 2) % floodSources.count]
            slots.append(AttackSlot(role: .slowLoris(styles[index % styles.count]), source: source))
        }
        return AttackPlan(port: port, destination: Self.wifiAddress, duration: Self.attackDuration, slots: slots)
    }

    struct GenuinePost {
        var source: String
        var fields: [(String, String)]
        var text: String { self.fields.first { $0.0 == "text" }?.1 ?? "" }
        var isRequest: Bool { self.fields.contains { $0 == ("kind", "request") } }
    }

    static let genuinePosts: [GenuinePost] = [
        GenuinePost(source: "127.0.4.1", fields: [
            ("kind", "request"), ("category", "medical"), ("text", "Insulin needed for my neighbour, Falckensteinstr. 5, 3rd floor"),
            ("place", "Hinterhof"),
        ]),
        GenuinePost(source: "127.0.4.2", fields: [
            ("kind", "request"), ("category", "water"), ("text", "No drinking water for a family of four, Wrangelstr. 12"), ("place", ""),
        ]),
        GenuinePost(source: "127.0.4.3", fields: [("kind", "safe"), ("text", "Ich bin in Sicherheit, Oma Erna aus der Skalitzer 80"), ("place", "")]),
        GenuinePost(source: "127.0.4.4", fields: [
            ("kind", "offer"), ("category", "power"), ("text", "Phones charged at Cuvrystr. 20, solar panel on the balcony"), ("place", "Cuvrystr. 20"),
        ]),
    ]

    @Test("200+ hostile addresses: nothing lost, genuine posts kept and counted, the page answered, no 5xx, memory back")
    func hostileNeighbours() async throws {
        try requireProgram("/usr/bin/prlimit", package: "util-linux")
        raiseOwnFileLimit()
        let directory = try temporaryDirectory("kiezbox-hostile")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try MosquittoBroker.freePort()
        let token = AuthorityTokens.generateToken()
        let configurationText = Self.configuration(port: port, tokenSHA256: AuthorityTokens.hash(token: token))
        let configurationPath = directory + "/kiezbox.toml"
        try configurationText.write(toFile: configurationPath, atomically: true, encoding: .utf8)
        let configuration = try KiezboxConfiguration.parse(configurationText, file: configurationPath)
        let flushInterval = configuration.store.flushInterval
        let data = directory + "/data"

        // Crisis mode by hand, before the daemon starts: its first mode round applies it.
        let mode = try await runProgram([kiezboxBinary, "mode", "crisis", "--config", configurationPath, "--data-dir", data], in: directory)
        try #require(mode.status == 0, "\(mode.all)")

        let unitLimit = try Self.unitFileLimit()
        // The hard limit cannot go above this process's own (no CAP_SYS_RESOURCE in a container); the soft one is
        // what the daemon runs with.
        var ownLimit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &ownLimit)
        let fileLimit = (soft: min(unitLimit.soft, Int(ownLimit.rlim_max)), hard: min(unitLimit.hard, Int(ownLimit.rlim_max)))
        let daemon = try SpawnedDaemon(
            ["/usr/bin/prlimit", "--nofile=\(fileLimit.soft):\(fileLimit.hard)", "--", kiezboxBinary, "run", "--config", configurationPath, "--data-dir", data],
            in: directory
        )
        var reaped: Int32?
        defer {
            if reaped == nil {
                daemon.signal(SIGKILL)
                _ = reapedStatus(daemon.pid, blocking: true)
            }
        }
        do {
            try await waitUntil("the portal to listen", timeout: .seconds(60)) {
                guard isRunning(daemon.pid) else {
                    reaped = reapedStatus(daemon.pid) ?? -1
                    throw SpawnError(description: "the daemon ended")
                }
                return daemon.stderr.contains("emergency portal listening")
            }
        } catch {
            throw SpawnError(description: "\(error) before its portal listened:\n\(daemon.stderr)")
        }
        try await waitUntil("crisis mode", timeout: .seconds(30)) { (try? ReadingStore(directory: data, readOnly: true).mode()) == .crisis }
        let limits = (try? String(contentsOfFile: "/proc/\(daemon.pid)/limits", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("Max open files") }.map(String.init) ?? "?"

        // Genuine residents post before the flood, each from a phone of their own.
        for post in Self.genuinePosts {
            let status = try await offThePool { try Self.postToBulletin(post, port: port) }
            try #require(status == 303, "genuine post from \(post.source) answered \(status)")
        }

        let watch = DaemonWatch(pid: daemon.pid, dataDirectory: data)
        let watching = Task {
            var tick = 0
            while !Task.isCancelled {
                watch.sampleMemory()
                if tick % 2 == 0 { watch.pollReadings() }
                tick += 1
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
        defer { watching.cancel() }

        // Every sensor with a round before the attack gives the schedule its rounds are checked against; the
        // mains input reads first after one interval, so wait for it.
        try await waitUntil("a first round of the 10 s sensors", timeout: .seconds(60)) {
            Set(try committedReadings(in: data).map(\.reading.sensorID)).isSuperset(of: ["climate", "battery", "mains"])
        }
        let resident = GenuineResident(port: port, source: "127.0.3.1", destination: Self.wifiAddress)
        async let residentMeasurements = resident.measure()
        // Runs before the implicit await of `residentMeasurements` if the test stops early.
        defer { resident.stop() }
        try await Task.sleep(for: .seconds(2))
        let idleRSS = try #require(watch.currentRSS(), "no VmRSS for the daemon")
        watch.resetPeak()

        let plan = Self.attackPlan(port: port, fileLimit: fileLimit.soft)
        let attackStart = Date()
        let attack = await HostileNeighbours.attack(plan)
        let attackEnd = Date()
        resident.stop()
        let measured = await residentMeasurements

        // Memory back near idle once the attackers are gone (polled: a hang guard, not a schedule).
        var afterRSS = watch.currentRSS() ?? Int.max
        let settleDeadline = ContinuousClock.now + .seconds(20)
        while afterRSS > idleRSS + Self.memorySlackBytes, ContinuousClock.now < settleDeadline {
            try await Task.sleep(for: .milliseconds(500))
            afterRSS = watch.currentRSS() ?? Int.max
        }
        let peakRSS = max(watch.peakRSS, afterRSS)
        let daemonAlive = isRunning(daemon.pid)

        // The authorities' view, from the mesh side.
        let geoJSON = try await offThePool {
            try loopbackExchange(
                source: Self.meshAddress, destination: Self.meshAddress, port: port,
                request: HostileNeighbours.request("GET", "/api/v1/situation.geojson", headers: ["Authorization: Bearer \(token)"])
            )
        }
        let cap = try await offThePool {
            try loopbackExchange(
                source: Self.meshAddress, destination: Self.meshAddress, port: port,
                request: HostileNeighbours.request("GET", "/api/v1/alerts.cap", headers: ["Authorization: Bearer \(token)"])
            )
        }
        let pageAfter = try await offThePool {
            try loopbackExchange(source: "127.0.3.1", destination: Self.wifiAddress, port: port, request: HostileNeighbours.request("GET", "/"))
        }
        let feed = try? JSONSerialization.jsonObject(with: Data(geoJSON.body)) as? [String: Any]
        let features = (feed?["features"] as? [[String: Any]] ?? []).compactMap { $0["properties"] as? [String: Any] }
        let feedPosts = features.filter { $0["feature"] as? String == "bulletin_post" }
        let feedPostTexts = Set(feedPosts.compactMap { $0["text"] as? String })
        let feedCounted = features.first { $0["this_box"] as? Bool == true }
            .flatMap { $0["bulletin_counts"] as? [[String: Any]] }?.compactMap { $0["count"] as? Int }.reduce(0, +)
        let capText = String(decoding: cap.body, as: UTF8.self)

        // The store's own account.
        let store = try ReadingStore(directory: data, readOnly: true)
        let now = Date()
        let storedCount = try store.bulletinCounts(at: now).map(\.count).reduce(0, +)
        let storedPosts = try store.openBulletinPosts(at: now, limit: 1_000_000)
        let postBytes = storedPosts.map { $0.text.utf8.count + $0.place.utf8.count }.reduce(0, +)
        let longestText = storedPosts.map(\.text.utf8.count).max() ?? 0
        let longestPlace = storedPosts.map(\.place.utf8.count).max() ?? 0
        let mostMarks = storedPosts.map { Self.mostNonStartersPerCharacter($0.text) }.max() ?? 0
        let droppedReadings = try store.statistics().droppedReadings
        try store.close()

        // Every round measured during the attack must have been measured and committed: wait one flush interval
        // (and a little) past the attack before stopping, so the last rounds are in.
        let stopAt = attackEnd.addingTimeInterval(flushInterval.timeInterval + 4)
        if Date() < stopAt { try await Task.sleep(for: .seconds(stopAt.timeIntervalSinceNow)) }
        watching.cancel()
        let firstSeen = watch.firstSeen

        daemon.signal(SIGTERM)
        let shutdownDeadline = ContinuousClock.now + .seconds(40)
        while reaped == nil, ContinuousClock.now < shutdownDeadline {
            reaped = reapedStatus(daemon.pid)
            if reaped == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let log = daemon.stderr
        let readings = try committedReadings(in: data)
        let schedule = Self.scheduleCheck(
            readings: readings, sensors: configuration.sensors, attack: attackStart...attackEnd, flushInterval: flushInterval.timeInterval,
            firstSeen: firstSeen
        )

        // The figures, in one block.
        let during = measured.latencies.filter { $0.start >= attackStart && $0.start <= attackEnd }.map(\.milliseconds)
        let before = measured.latencies.filter { $0.start < attackStart }.map(\.milliseconds)
        let megabytes = { (bytes: Int) in String(format: "%.1f MB", Double(bytes) / 1_048_576) }
        let milliseconds = { (value: Double) in String(format: "%.1f ms", value) }
        print(
            """
            ==== hostile-neighbour load test (embedded default kit, crisis mode, \(limits.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " "))) ====
            attack            \(Int(Self.attackDuration.timeInterval)) s from \(attack.distinctSources) source addresses; peak \(attack.peakOpen) connections open at once
            connections made  \(attack.opened.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            slow-loris        \(attack.slowLorisOpened) made in total, \(attack.peakSlowLorisOpen) held at once (half from 127.0.2.1); closed by the server: \(attack.closedByServer.filter { $0.key.hasPrefix("slow-loris") }.values.reduce(0, +))
            answers           \(attack.statuses.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: " "))
            by role           \(attack.statusesByRole.sorted { $0.key < $1.key }.map { "\($0.key): " + $0.value.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: " ") }.joined(separator: "; "))
            unanswered        \(attack.unanswered.isEmpty ? "none" : attack.unanswered.map { "\($0.key) \($0.value)" }.joined(separator: ", ")) (no answer within \(Int(plan.requestTimeout.timeInterval)) s)
            cut by server     \(attack.closedByServer.isEmpty ? "none" : attack.closedByServer.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            connect failures  \(attack.connectFailures.isEmpty ? "none" : attack.connectFailures.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            5xx               \(attack.serverErrorCount) \(attack.serverErrors.joined(separator: " | "))
            flood posts       \(attack.postsAccepted) accepted (most from one address: \(attack.postsAcceptedBySource.values.max() ?? 0))
            resident GET /    before: p50 \(milliseconds(percentile(before, 0.5))) p99 \(milliseconds(percentile(before, 0.99))) (n=\(before.count)); \
            during: p50 \(milliseconds(percentile(during, 0.5))) p99 \(milliseconds(percentile(during, 0.99))) max \(milliseconds(during.max() ?? .nan)) (n=\(during.count), target p99 ≤ 50 ms); \
            failures \(measured.failures.count)\(measured.failures.isEmpty ? "" : " e.g. " + Set(measured.failures).prefix(3).joined(separator: ", "))
            memory (VmRSS)    idle \(megabytes(idleRSS)), peak \(megabytes(peakRSS)), after \(megabytes(afterRSS))
            bulletin          \(storedCount) open posts in the store, \(megabytes(postBytes)) of text; feed counts \(feedCounted.map(String.init) ?? "?"), \
            feed posts \(feedPosts.count); longest text \(longestText) B, place \(longestPlace) B; most marks on one character \(mostMarks)
            readings          \(readings.count) stored, \(droppedReadings) dropped; \(schedule.summary)
            shutdown          \(reaped.map { "exit \($0)" } ?? "did not exit within 40 s"); error lines in the log: \(errorLines(log).count)
            =====================================================================
            """
        )

        // No crash, no 5xx, a clean stop.
        #expect(daemonAlive, "the daemon died during the attack:\n\(log.suffix(4000))")
        #expect(attack.serverErrorCount == 0, "\(attack.serverErrors)")
        #expect(!measured.statuses.keys.contains { $0 >= 500 }, "\(measured.statuses)")
        #expect(reaped == 0, "exit status \(reaped.map(String.init) ?? "none"):\n\(log.suffix(4000))")
        #expect(log.contains("store flushed on shutdown"), "\(log.suffix(4000))")
        #expect(errorLines(log).isEmpty, "\(errorLines(log).prefix(10).joined(separator: "\n"))")
        // The attack really was one: 200+ addresses, 1,000+ slow-loris connections, the flood posted.
        #expect(attack.distinctSources >= 200)
        #expect(attack.slowLorisOpened >= 1_000, "only \(attack.slowLorisOpened) slow-loris connections made")
        #expect(attack.opened["flood", default: 0] > 0)

        // The resident always got the page: during the attack and after it.
        #expect(measured.failures.isEmpty, "\(measured.failures.count) of the resident's requests failed: \(Set(measured.failures).prefix(5))")
        #expect(!during.isEmpty)
        let pageAfterStatus = pageAfter.status
        #expect(pageAfterStatus == 200)

        // Every genuine post is still in the authorities' feeds, and the counts are the store's.
        let geoJSONStatus = geoJSON.status
        #expect(geoJSONStatus == 200)
        // (Booleans first: the feeds are megabytes that an expectation would print in full.)
        for post in Self.genuinePosts {
            let inGeoJSON = feedPostTexts.contains(post.text)
            #expect(inGeoJSON, "the authorities' GeoJSON lost \(post.source)'s post: \(post.text)")
            if post.isRequest {
                let inCAP = capText.contains(post.text)
                #expect(inCAP, "the authorities' CAP feed lost \(post.source)'s request: \(post.text)")
            }
        }
        #expect(feedCounted == storedCount, "the feed counts \(feedCounted.map(String.init) ?? "nothing"), the store holds \(storedCount) open posts")

        // Posts within their budget: a phone gets its burst and no more; a post is at most 280 four-byte characters
        // (80 for the place), however many invisible marks it tried to carry; the bulletin never evicts readings.
        #expect((attack.postsAcceptedBySource.values.max() ?? 0) <= configuration.portal.settings.postBurst)
        // ...and all phones together the Wi-Fi's burst plus what its hourly allowance refilled during the attack.
        let settings = configuration.portal.settings
        let wifiAllowance = settings.wifiPostBurst + Int((Double(settings.wifiPostsPerHour) * Self.attackDuration.timeInterval / 3600).rounded(.up)) + 1
        let acceptedDuringAttack = attack.postsAcceptedBySource.values.reduce(0, +)
        #expect(acceptedDuringAttack <= wifiAllowance, "\(acceptedDuringAttack) posts accepted during the attack, the Wi-Fi's allowance is \(wifiAllowance)")
        #expect(longestText <= 4 * BulletinFormContext.maxTextLength, "a stored post has \(longestText) bytes of text")
        #expect(longestPlace <= 4 * BulletinFormContext.maxPlaceLength, "a stored post has \(longestPlace) bytes of place")
        #expect(droppedReadings == 0)

        // No reading lost or delayed beyond one flush interval; memory back near idle.
        #expect(schedule.problems.isEmpty, "\(schedule.problems.prefix(10).joined(separator: "\n"))")
        #expect(afterRSS <= idleRSS + Self.memorySlackBytes, "memory stayed at \(megabytes(afterRSS)) after the attack (idle \(megabytes(idleRSS)))")
    }

    // MARK: - Checks

    struct ScheduleCheck {
        var problems: [String] = []
        var summary = ""
    }

    /// Each sensor that had a round before the attack: every round it was due during the attack is in the store,
    /// measured less than one flush interval after it was due, and committed before the shutdown (how long after it
    /// was measured the poll saw it committed is printed). Every round has all the quantities its chip measured before
    /// the attack.
    static func scheduleCheck(
        readings: [StoredReading], sensors: [SensorConfiguration], attack: ClosedRange<Date>, flushInterval: TimeInterval,
        firstSeen: [Int64: Date]
    ) -> ScheduleCheck {
        var check = ScheduleCheck()
        var lateness: [Double] = []
        var commitLags: [Double] = []
        var checkedRounds = 0
        for sensor in sensors {
            let interval = sensor.interval.timeInterval
            let rounds = Dictionary(grouping: readings.filter { $0.reading.sensorID == sensor.id }, by: \.reading.measuredAt)
            let times = rounds.keys.sorted()
            guard let reference = times.last(where: { $0 < attack.lowerBound }), let quantities = rounds[reference].map({ Set($0.map(\.reading.quantity)) })
            else { continue }
            var used = Set<Date>()
            var due = reference.addingTimeInterval(interval)
            while due <= attack.upperBound {
                defer { due = due.addingTimeInterval(interval) }
                guard due >= attack.lowerBound else { continue }
                checkedRounds += 1
                guard let round = times.first(where: { !used.contains($0) && $0 > reference && $0 >= due.addingTimeInterval(-interval / 2) }),
                    round.timeIntervalSince(due) < flushInterval
                else {
                    check.problems.append("\(sensor.id): the round due at \(due) is missing or more than one flush interval late")
                    continue
                }
                used.insert(round)
                lateness.append(round.timeIntervalSince(due))
                let roundReadings = rounds[round] ?? []
                if Set(roundReadings.map(\.reading.quantity)) != quantities {
                    check.problems.append("\(sensor.id): the round at \(round) has \(roundReadings.map(\.reading.quantity)), expected \(quantities)")
                }
                for reading in roundReadings {
                    guard let seen = firstSeen[reading.id] else {
                        check.problems.append("\(sensor.id): reading \(reading.id) measured at \(round) was not committed before the shutdown")
                        continue
                    }
                    // Printed, not asserted: when the poll saw the commit depends on how busy the shared cores are.
                    commitLags.append(seen.timeIntervalSince(reading.reading.measuredAt))
                }
            }
        }
        check.summary = String(
            format: "%d rounds due during the attack checked; latest round %.2f s after its slot, longest commit wait %.1f s (flush interval %.0f s)",
            checkedRounds, lateness.max() ?? .nan, commitLags.max() ?? .nan, flushInterval
        )
        if checkedRounds == 0 { check.problems.append("no sensor had rounds due during the attack") }
        return check
    }

    /// The most combining marks and other non-starters (variation selectors included) on one character.
    static func mostNonStartersPerCharacter(_ text: String) -> Int {
        text.map { character in
            character.unicodeScalars.dropFirst().count
        }.max() ?? 0
    }

    /// A genuine post: the page for the form token, then the form. Returns the post's status.
    static func postToBulletin(_ post: GenuinePost, port: Int) throws -> Int {
        let page = try loopbackExchange(source: post.source, destination: Self.wifiAddress, port: port, request: HostileNeighbours.request("GET", "/"))
        let token = try #require(HostileNeighbours.formToken(in: page.body), "no form token in the page (status \(page.status))")
        let unreserved = CharacterSet.alphanumerics
        let body = Array((post.fields + [("lang", "en"), ("token", token)]).map { name, value in
            "\(name)=\(value.addingPercentEncoding(withAllowedCharacters: unreserved) ?? "")"
        }.joined(separator: "&").utf8)
        let answer = try loopbackExchange(
            source: post.source, destination: Self.wifiAddress, port: port,
            request: HostileNeighbours.request("POST", "/bulletin", headers: HostileNeighbours.formHeaders(length: body.count), body: body)
        )
        return answer.status
    }
}

/// The daemon's memory and what its store has committed, sampled from outside while it runs.
final class DaemonWatch: Sendable {
    let pid: pid_t
    let dataDirectory: String
    private struct State {
        var peakRSS = 0
        var firstSeen: [Int64: Date] = [:]
    }
    private let state = Mutex(State())

    init(pid: pid_t, dataDirectory: String) {
        self.pid = pid
        self.dataDirectory = dataDirectory
    }

    var peakRSS: Int { self.state.withLock { $0.peakRSS } }
    /// When the poll first saw each reading committed.
    var firstSeen: [Int64: Date] { self.state.withLock { $0.firstSeen } }

    /// The daemon's resident set (VmRSS) in bytes.
    func currentRSS() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(self.pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap({ Int($0) })
        else { return nil }
        return kilobytes * 1024
    }

    func sampleMemory() {
        guard let rss = self.currentRSS() else { return }
        self.state.withLock { $0.peakRSS = max($0.peakRSS, rss) }
    }

    func resetPeak() {
        self.state.withLock { $0.peakRSS = 0 }
    }

    func pollReadings() {
        guard let readings = try? committedReadings(in: self.dataDirectory) else { return }
        let now = Date()
        self.state.withLock { state in
            for reading in readings where state.firstSeen[reading.id] == nil {
                state.firstSeen[reading.id] = now
            }
        }
    }
}

/// One request on a new connection from `source` to `destination`, read to the server's close; blocking, so only
/// for threads of the test's own (see ``offThePool(_:)``). 10 s is a hang guard.
func loopbackExchange(source: String, destination: String, port: Int, request: [UInt8]) throws -> (status: Int, body: [UInt8]) {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw GenuineResident.Failure(description: "socket: \(String(cString: strerror(errno)))") }
    defer { close(descriptor) }
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var local = sockaddr_in()
    local.sin_family = sa_family_t(AF_INET)
    inet_pton(AF_INET, source, &local.sin_addr)
    var remote = sockaddr_in()
    remote.sin_family = sa_family_t(AF_INET)
    remote.sin_port = in_port_t(UInt16(port).bigEndian)
    inet_pton(AF_INET, destination, &remote.sin_addr)
    let bound = withUnsafePointer(to: &local) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw GenuineResident.Failure(description: "bind \(source): \(String(cString: strerror(errno)))") }
    let connected = withUnsafePointer(to: &remote) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw GenuineResident.Failure(description: "connect: \(String(cString: strerror(errno)))") }
    var offset = 0
    while offset < request.count {
        let sent = request[offset...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent > 0 else { throw GenuineResident.Failure(description: "send: \(String(cString: strerror(errno)))") }
        offset += sent
    }
    var answer: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        if count > 0 {
            answer += buffer[..<count]
        } else if count == 0 {
            break
        } else if errno != EINTR {
            throw GenuineResident.Failure(description: errno == EAGAIN ? "no complete answer within 10 s" : "recv: \(String(cString: strerror(errno)))")
        }
    }
    guard let status = HostileNeighbours.status(answer), status > 0 else {
        throw GenuineResident.Failure(description: "no HTTP answer (\(answer.count) bytes)")
    }
    let bodyStart = answer.indices.first { answer[$0...].starts(with: [13, 10, 13, 10]) }.map { $0 + 4 } ?? answer.count
    return (status, Array(answer[bodyStart...]))
}

/// Runs blocking socket work on a thread of its own: the Swift concurrency pool stays free.
func offThePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}

/// Lifts the test process's own soft file limit to its hard limit: the attackers need well over a thousand sockets.
func raiseOwnFileLimit() {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
    limit.rlim_cur = limit.rlim_max
    setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
}
