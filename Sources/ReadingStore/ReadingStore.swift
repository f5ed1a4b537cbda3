public import Foundation
import GRDB
public import KiezboxCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// How the store batches, and how big it may grow.
public struct ReadingStoreConfiguration: Sendable, Hashable {
    /// How often buffered readings are committed. SD cards wear per commit, not per byte (see docs).
    public var flushInterval: Duration
    /// Commit early once this many readings wait, so a burst does not pile up in memory.
    public var maximumBatch: Int
    /// The most the database may hold. Beyond it the oldest delivered readings go first.
    public var maximumBytes: Int64
    /// fsync every commit (`synchronous=FULL`) instead of leaving the write-ahead log to the kernel's write-back
    /// (`NORMAL`, the default): a power cut then costs only what was not yet committed, for one more write to the
    /// card per commit. Readings are on the disk before any uplink sees them either way.
    public var syncEveryCommit: Bool
    /// The bulletin's share of ``maximumBytes`` and its most posts: a full bulletin refuses new posts, and readings
    /// are kept within `maximumBytes - bulletin.maximumBytes`, so posts never push readings out.
    public var bulletin: BulletinBudget

    /// - Parameter bulletin: `nil`: ``BulletinBudget/default(forStoreBytes:)``.
    public init(
        flushInterval: Duration = .seconds(10), maximumBatch: Int = 1000, maximumBytes: Int64 = 256 << 20,
        bulletin: BulletinBudget? = nil, syncEveryCommit: Bool = false
    ) {
        self.flushInterval = flushInterval
        self.maximumBatch = maximumBatch
        self.maximumBytes = maximumBytes
        self.syncEveryCommit = syncEveryCommit
        self.bulletin = bulletin ?? .default(forStoreBytes: maximumBytes)
    }

    /// What readings may use: the store's limit less the bulletin's share.
    public var readingBytes: Int64 { max(0, self.maximumBytes - self.bulletin.maximumBytes) }
}

/// How much the bulletin may hold: its own budget inside the store, apart from the readings'.
public struct BulletinBudget: Sendable, Hashable {
    /// The most posts stored (open or not yet deleted).
    public var maximumPosts: Int
    /// The most bytes of posts: text and place in UTF-8 plus a fixed allowance per post for the rest of its row.
    public var maximumBytes: Int64

    public init(maximumPosts: Int, maximumBytes: Int64) {
        self.maximumPosts = maximumPosts
        self.maximumBytes = maximumBytes
    }

    /// 5,000 posts and an eighth of the store, at most 8 MiB (256 MiB store: 8 MiB, about 5,000 posts of the
    /// largest size).
    public static func `default`(forStoreBytes storeBytes: Int64) -> BulletinBudget {
        BulletinBudget(maximumPosts: 5000, maximumBytes: min(8 << 20, storeBytes / 8))
    }
}

/// One uplink's position in the outbox.
public struct UplinkProgress: Sendable, Hashable, Codable {
    public var name: String
    /// When the uplink stopped being configured; its cursor then no longer holds back retention.
    public var retiredAt: Date?
    /// Every reading with an id up to here has been acknowledged by the uplink.
    public var deliveredThrough: Int64
    /// Readings acknowledged since the uplink was registered.
    public var deliveredTotal: Int64
    /// Readings in the store this uplink has not had acknowledged.
    public var undelivered: Int64
}

/// The newest value of one quantity of one sensor.
public struct LatestReading: Sendable, Hashable, Codable {
    public var stored: StoredReading
}

/// What `kiezbox status` shows of the store.
public struct StoreStatistics: Sendable, Codable {
    public var instanceID: String
    public var identity: BoxIdentity?
    public var mode: Mode?
    /// Bytes of the database and its write-ahead log on disk.
    public var fileBytes: Int64
    /// Bytes in use inside the database (pages not on the free list).
    public var usedBytes: Int64
    public var maximumBytes: Int64?
    public var readingsStored: Int64
    public var oldestMeasuredAt: Date?
    public var newestMeasuredAt: Date?
    /// Readings dropped undelivered because the size limit was reached.
    public var droppedReadings: Int64
    public var uplinks: [UplinkProgress]
    public var latest: [StoredReading]
    public var lastFlushAt: Date?
    public var daemonStartedAt: Date?
    /// The other boxes of the district, as last heard of.
    public var neighbours: [NeighbourBox]
}

/// The cursor of an uplink that is no longer configured.
public struct RetiredUplink: Sendable, Hashable {
    public var name: String
    /// Readings in the store it had not had acknowledged.
    public var undelivered: Int64
    /// When it was first found unconfigured.
    public var retiredAt: Date
    /// Whether its cursor was deleted now (retired longer than ``ReadingStore/retiredCursorLifetime``).
    public var forgotten: Bool
}

/// The store's figures that `/metrics` serves: kept up to date by the store as it writes, so reading them costs
/// the same with ten readings as with ten million.
public struct StoreCounters: Sendable, Hashable {
    public var readingsStored: Int64
    /// Readings dropped undelivered because the size limit was reached.
    public var droppedReadings: Int64
    /// Bytes of the database and its write-ahead log on disk.
    public var fileBytes: Int64
    public var uplinks: [UplinkProgress]
}

/// The result of one retention pass.
public struct RetentionOutcome: Sendable, Hashable {
    /// Readings removed that every uplink had already delivered.
    public var deletedDelivered: Int
    /// Readings removed undelivered, because nothing delivered was left to remove (counted as dropped).
    public var droppedUndelivered: Int
}

/// The outbox: every reading is committed here before it goes anywhere, and each uplink keeps its own cursor.
///
/// Readings are buffered in memory and committed in batches (``flush()``), every
/// ``ReadingStoreConfiguration/flushInterval`` or when ``ReadingStoreConfiguration/maximumBatch`` wait, because
/// an SD card wears by the number of commits. SQLite runs in WAL mode with `synchronous=NORMAL`: a committed
/// reading survives the process being killed; a power cut may lose the last commits but never corrupts the file.
///
/// Several processes may open the same store: one writer (the daemon) and any number of read-only readers
/// (`kiezbox status`, `kiezbox readings`).
public final class ReadingStore: Sendable {
    /// The database file's name inside the data directory.
    public static let fileName = "readings.sqlite"

    /// The store's permanent random id; with a reading id it names a reading uniquely across all boxes.
    public let instanceID: String
    /// This opening's run number: one more than the last writer's, on disk before any reading of the run is
    /// committed (0 for a read-only store). A reading's global id carries it, so ids SQLite hands out again after
    /// a power cut rolled back the last commits never name two readings.
    public let run: Int64
    /// How long the cursor of an uplink that is no longer configured is kept (in case it comes back) before it is
    /// forgotten.
    public static let retiredCursorLifetime: TimeInterval = 30 * 24 * 3600
    public let configuration: ReadingStoreConfiguration
    public let path: String
    let pool: DatabasePool
    private let pending = Mutex<[Reading]>([])
    /// The highest reading id committed, and the highest known to be on the disk (see ``undelivered(for:limit:)``).
    private let committedThrough = Mutex<Int64>(0)
    private let durableThrough = Mutex<Int64>(0)

    /// Opens (and, unless `readOnly`, creates and migrates) the store at `path`.
    public init(path: String, configuration: ReadingStoreConfiguration = .init(), readOnly: Bool = false) throws {
        self.path = path
        self.configuration = configuration
        if readOnly, !FileManager.default.fileExists(atPath: path) {
            throw ReadingStoreError(.noDatabase, "no reading store at \(path): has `kiezbox run` been started with this data directory?")
        }
        var grdbConfiguration = Configuration()
        grdbConfiguration.readonly = readOnly
        grdbConfiguration.label = "kiezbox.store"
        grdbConfiguration.busyMode = .timeout(5)
        grdbConfiguration.prepareDatabase { db in
            if !db.configuration.readonly {
                // Keep the WAL file from staying large after a backfill burst.
                try db.execute(sql: "PRAGMA journal_size_limit = 4194304")
            }
        }
        do {
            self.pool = try DatabasePool(path: path, configuration: grdbConfiguration)
            let migrator = Schema.migrator
            if readOnly {
                // The daemon creates the file a moment before it commits the schema: a reader arriving in between
                // finds no tables yet, which is "no store yet", not damage.
                let migrated = try self.pool.read { db in try db.tableExists("meta") && migrator.hasCompletedMigrations(db) }
                if !migrated {
                    let superseded = try self.pool.read { try migrator.hasBeenSuperseded($0) }
                    if superseded { throw Self.newerSchemaError(path) }
                    throw ReadingStoreError(.noDatabase, "the reading store \(path) is still being set up by kiezbox run; try again in a moment")
                }
                self.instanceID = try self.pool.read { db in
                    try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [MetaKey.instanceID])
                } ?? "unknown"
                self.run = 0
            } else {
                let superseded = try self.pool.read { try migrator.hasBeenSuperseded($0) }
                if superseded { throw Self.newerSchemaError(path) }
                try migrator.migrate(self.pool)
                self.instanceID = try self.pool.write { db in
                    if let id = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [MetaKey.instanceID]) {
                        return id
                    }
                    let id = UUID().uuidString.lowercased()
                    try db.execute(sql: "INSERT INTO meta(key, value) VALUES (?, ?)", arguments: [MetaKey.instanceID, id])
                    return id
                }
                // GRDB opens the writer with synchronous=NORMAL (WAL mode): no fsync per commit; the log reaches the
                // disk by the kernel's write-back, a checkpoint, or the fsync before readings are sent
                // (`undelivered`). FULL, when asked for: an fsync per commit. The writer connection is kept open.
                if configuration.syncEveryCommit {
                    try self.pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
                }
                self.run = try Self.beginRun(self.pool)
                let highest = try self.pool.read { db in try Int64.fetchOne(db, sql: "SELECT max(id) FROM reading") } ?? 0
                // What an earlier run left is on the disk: the synced commit of the new run came after it.
                self.committedThrough.withLock { $0 = highest }
                self.durableThrough.withLock { $0 = highest }
            }
        } catch let error as ReadingStoreError {
            throw error
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CORRUPT || error.resultCode == .SQLITE_NOTADB {
            throw ReadingStoreError(.corrupt, "the reading store \(path) is damaged (\(error.resultCode)): move it aside and restart")
        } catch {
            throw ReadingStoreError(.database, "cannot open the reading store \(path): \(error)")
        }
    }

    /// Opens the store in `directory`, creating the directory if needed (unless `readOnly`).
    public convenience init(directory: String, configuration: ReadingStoreConfiguration = .init(), readOnly: Bool = false) throws {
        if !readOnly {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        try self.init(path: (directory as NSString).appendingPathComponent(Self.fileName), configuration: configuration, readOnly: readOnly)
    }

    /// Counts a new run and waits until the count is on the disk: `synchronous=FULL` for this one commit makes
    /// SQLite fsync the write-ahead log (and the directory, when the log is new). Every later commit of the run
    /// comes after it in the log, so no reading of this run can survive a power cut that this count did not.
    private static func beginRun(_ pool: DatabasePool) throws -> Int64 {
        try pool.writeWithoutTransaction { db in
            try Self.durableTransaction(db) {
                let run = (Int64(try Self.meta(MetaKey.run, in: db) ?? "0") ?? 0) + 1
                try Self.setMeta(MetaKey.run, String(run), in: db)
                return run
            }
        }
    }

    /// Runs `body` in one transaction whose commit is on the disk when this returns: `synchronous=FULL` for
    /// this commit only (the writer's usual setting is restored after).
    static func durableTransaction<T>(_ db: Database, _ body: () throws -> T) throws -> T {
        let usual = try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? 1
        try db.execute(sql: "PRAGMA synchronous = FULL")
        defer { try? db.execute(sql: "PRAGMA synchronous = \(usual)") }
        var result: T?
        try db.inTransaction {
            result = try body()
            return .commit
        }
        return result!
    }

    private static func newerSchemaError(_ path: String) -> ReadingStoreError {
        ReadingStoreError(.newerSchema, "the reading store \(path) was written by a newer kiezbox; update kiezbox or move the file aside")
    }

    // MARK: - Writing

    /// How many readings wait in memory for the next commit.
    public var pendingCount: Int { self.pending.withLock { $0.count } }

    /// Buffers readings for the next commit; commits at once when a full batch waits.
    public func record(_ readings: [Reading]) async throws {
        let batchFull = self.pending.withLock { pending in
            pending.append(contentsOf: readings)
            return pending.count >= self.configuration.maximumBatch
        }
        if batchFull { try await self.flush() }
    }

    /// Commits every buffered reading in one transaction and returns how many were committed.
    ///
    /// If the commit fails the readings go back to the buffer, ahead of newer ones: nothing is lost.
    @discardableResult
    public func flush() async throws -> Int {
        let batch = self.pending.withLock { pending in
            defer { pending.removeAll(keepingCapacity: true) }
            return pending
        }
        guard !batch.isEmpty else { return 0 }
        let run = self.run
        do {
            let highest = try await self.pool.write { db in try Self.insert(batch, run: run, into: db) }
            self.committedThrough.withLock { $0 = max($0, highest) }
        } catch {
            self.pending.withLock { $0.insert(contentsOf: batch, at: 0) }
            throw ReadingStoreError(.database, "could not commit \(batch.count) readings: \(error)")
        }
        return batch.count
    }

    /// Inserts the batch and returns the highest id it got.
    private static func insert(_ batch: [Reading], run: Int64, into db: Database) throws -> Int64 {
        let statement = try db.cachedStatement(
            sql: "INSERT INTO reading(sensor, quantity, value, measured_at, quality, run) VALUES (?, ?, ?, ?, ?, ?)"
        )
        var newest: [SeriesKey: StoredReading] = [:]
        for reading in batch {
            let measuredAt = millisecondsSinceEpoch(reading.measuredAt)
            statement.setUncheckedArguments([
                reading.sensorID, reading.quantity.rawValue, reading.value, measuredAt, reading.quality.rawValue, run,
            ])
            try statement.execute()
            let key = SeriesKey(sensor: reading.sensorID, quantity: reading.quantity)
            if let known = newest[key], known.reading.measuredAt > reading.measuredAt { continue }
            newest[key] = StoredReading(id: db.lastInsertedRowID, run: run, reading: reading)
        }
        let upsert = try db.cachedStatement(
            sql: """
                INSERT INTO latest(sensor, quantity, reading_id, value, measured_at, quality) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(sensor, quantity) DO UPDATE SET reading_id = excluded.reading_id, value = excluded.value,
                  measured_at = excluded.measured_at, quality = excluded.quality
                WHERE excluded.measured_at >= latest.measured_at
                """
        )
        for stored in newest.values {
            let reading = stored.reading
            try upsert.execute(arguments: [
                reading.sensorID, reading.quantity.rawValue, stored.id, reading.value,
                millisecondsSinceEpoch(reading.measuredAt), reading.quality.rawValue,
            ])
        }
        try setMeta(MetaKey.lastFlushAt, String(millisecondsSinceEpoch(Date())), in: db)
        return db.lastInsertedRowID
    }

    private struct SeriesKey: Hashable {
        var sensor: String
        var quantity: Quantity
    }

    // MARK: - Box facts

    /// Records who the box is, for `status` and the portal.
    public func setIdentity(_ identity: BoxIdentity) async throws {
        let json = String(decoding: try JSONEncoder().encode(identity), as: UTF8.self)
        try await self.pool.write { db in try Self.setMeta(MetaKey.identity, json, in: db) }
    }

    /// Records the mode the box is in.
    public func setMode(_ mode: Mode) async throws {
        try await self.pool.write { db in try Self.setMeta(MetaKey.mode, mode.rawValue, in: db) }
    }

    /// The mode the daemon last recorded (normal when none is recorded yet).
    public func mode() throws -> Mode {
        try self.pool.read { db in try Self.meta(MetaKey.mode, in: db).flatMap(Mode.init(rawValue:)) } ?? .normal
    }

    /// A mode a resident or operator set by hand (`kiezbox mode set`), overriding the automatic one; `nil` clears it.
    public func setModeOverride(_ mode: Mode?) async throws {
        try await self.pool.write { db in
            if let mode {
                try Self.setMeta(MetaKey.modeOverride, mode.rawValue, in: db)
            } else {
                try db.execute(sql: "DELETE FROM meta WHERE key = ?", arguments: [MetaKey.modeOverride])
            }
        }
    }

    /// The mode set by hand, if any.
    public func modeOverride() throws -> Mode? {
        try self.pool.read { db in try Self.meta(MetaKey.modeOverride, in: db).flatMap(Mode.init(rawValue:)) }
    }

    /// Records that the daemon has (re)started now.
    public func markDaemonStarted(at date: Date) async throws {
        try await self.pool.write { db in
            try Self.setMeta(MetaKey.daemonStartedAt, String(millisecondsSinceEpoch(date)), in: db)
        }
    }

    static func setMeta(_ key: String, _ value: String, in db: Database) throws {
        try db.execute(
            sql: "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            arguments: [key, value]
        )
    }

    static func meta(_ key: String, in db: Database) throws -> String? {
        try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key])
    }

    // MARK: - Neighbours

    /// Records the latest status of another box (replacing the one before).
    public func recordNeighbour(_ neighbour: NeighbourBox) async throws {
        let json = String(decoding: try JSONEncoder().encode(neighbour), as: UTF8.self)
        try await self.pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO neighbour(district, box, status, last_seen) VALUES (?, ?, ?, ?)
                    ON CONFLICT(district, box) DO UPDATE SET status = excluded.status, last_seen = excluded.last_seen
                    """,
                arguments: [
                    neighbour.identity.district, neighbour.identity.boxID, json, millisecondsSinceEpoch(neighbour.lastSeen),
                ]
            )
        }
    }

    /// The other boxes this box has heard of, most recently seen first.
    public func neighbours() throws -> [NeighbourBox] {
        try self.pool.read { db in
            try String.fetchAll(db, sql: "SELECT status FROM neighbour ORDER BY last_seen DESC").compactMap { json in
                try? JSONDecoder().decode(NeighbourBox.self, from: Data(json.utf8))
            }
        }
    }

    // MARK: - Uplink cursors

    /// Where a newly registered uplink starts.
    public enum UplinkStart: Sendable {
        /// With the oldest reading still in the store: the uplink backfills everything retained.
        case oldest
        /// After the newest reading: the uplink only sends what is measured from now on.
        case now
    }

    /// Makes sure `uplink` has a cursor. An uplink that already has one keeps it.
    public func registerUplink(_ uplink: String, startingAt start: UplinkStart = .oldest) async throws {
        try await self.pool.write { db in
            let through: Int64 =
                switch start {
                case .oldest: 0
                case .now: try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'reading'") ?? 0
                }
            try db.execute(
                sql: "INSERT INTO uplink(name, delivered_through) VALUES (?, ?) ON CONFLICT(name) DO NOTHING",
                arguments: [uplink, through]
            )
        }
    }

    /// The next `limit` committed readings `uplink` has not had acknowledged, oldest first, each on the disk.
    ///
    /// Commits run with `synchronous=NORMAL`: the write-ahead log reaches the disk when the kernel writes it back,
    /// so a power cut may take the last commits. A reading leaves the box only once it is on the disk: before
    /// readings above the durable mark are handed out, the log is fsync'd. Otherwise a reading the broker had
    /// acknowledged could vanish from the store, and its id be given to another reading. With an uplink
    /// delivering, that is one fsync per relay round, which the SD card pays anyway when the kernel writes back.
    public func undelivered(for uplink: String, limit: Int) async throws -> [StoredReading] {
        let batch = try await self.pool.read { db in
            let cursor = try Self.cursor(of: uplink, in: db)
            return try StoredReadingRow.fetchAll(
                db,
                sql: """
                    SELECT id, sensor, quantity, value, measured_at, quality, run FROM reading
                    WHERE id > ? AND id NOT IN (SELECT reading_id FROM uplink_ack WHERE uplink = ?)
                    ORDER BY id LIMIT ?
                    """,
                arguments: [cursor, uplink, limit]
            ).map(\.stored)
        }
        if let highest = batch.last?.id, highest > self.durableThrough.withLock({ $0 }) {
            try await self.makeCommittedReadingsDurable()
        }
        return batch
    }

    /// Waits until every reading committed so far is on the disk: fsync of the write-ahead log and of the
    /// database file (a checkpoint may have moved readings there), outside the writer lock so sampling goes on.
    func makeCommittedReadingsDurable() async throws {
        let committed = self.committedThrough.withLock { $0 }
        let files = [self.path + "-wal", self.path]
        try await Task.detached {
            for file in files { try syncToDisk(file) }
        }.value
        self.durableThrough.withLock { $0 = max($0, committed) }
    }

    /// Records that `uplink` has delivered these readings (the other side acknowledged them).
    ///
    /// Acknowledgements may arrive in any order; the cursor advances over every run of acknowledged readings.
    public func acknowledge(_ ids: some Collection<Int64> & Sendable, for uplink: String) async throws {
        guard !ids.isEmpty else { return }
        try await self.pool.write { db in
            let cursor = try Self.cursor(of: uplink, in: db)
            let insert = try db.cachedStatement(sql: "INSERT OR IGNORE INTO uplink_ack(uplink, reading_id) VALUES (?, ?)")
            var newlyAcknowledged: Int64 = 0
            for id in ids where id > cursor {
                try insert.execute(arguments: [uplink, id])
                newlyAcknowledged += Int64(db.changesCount)
            }
            // The first reading above the cursor still waiting for this uplink bounds how far the cursor may go.
            let firstWaiting = try Int64.fetchOne(
                db,
                sql: """
                    SELECT min(id) FROM reading
                    WHERE id > ? AND id NOT IN (SELECT reading_id FROM uplink_ack WHERE uplink = ?)
                    """,
                arguments: [cursor, uplink]
            )
            let newCursor: Int64
            if let firstWaiting {
                newCursor = max(cursor, firstWaiting - 1)
            } else {
                let highestAck = try Int64.fetchOne(
                    db, sql: "SELECT max(reading_id) FROM uplink_ack WHERE uplink = ?", arguments: [uplink]
                )
                newCursor = max(cursor, highestAck ?? cursor)
            }
            try db.execute(
                sql: "UPDATE uplink SET delivered_through = ?, delivered_total = delivered_total + ? WHERE name = ?",
                arguments: [newCursor, newlyAcknowledged, uplink]
            )
            try db.execute(
                sql: "DELETE FROM uplink_ack WHERE uplink = ? AND reading_id <= ?", arguments: [uplink, newCursor]
            )
        }
    }

    /// Tells the store which uplinks are configured now; the cursors of all others are retired: they no longer
    /// hold back retention (a removed uplink would otherwise keep every reading "undelivered" for ever, and
    /// retention would count delivered readings as dropped). A retired cursor is kept for
    /// ``retiredCursorLifetime`` in case the uplink is configured again, then deleted. Returns every retired
    /// cursor, so the caller can say so in the log.
    public func retireUplinks(except configured: Set<String>, at now: Date) async throws -> [RetiredUplink] {
        let lifetime = Self.retiredCursorLifetime
        return try await self.pool.write { db in
            var retired: [RetiredUplink] = []
            let stored = try Self.readingsStored(db)
            let rows = try Row.fetchAll(db, sql: "SELECT name, stored_through, retired_at FROM uplink ORDER BY name")
            for row in rows {
                let name: String = row["name"]
                let retiredAt: Int64? = row["retired_at"]
                if configured.contains(name) {
                    if retiredAt != nil {
                        try db.execute(sql: "UPDATE uplink SET retired_at = NULL WHERE name = ?", arguments: [name])
                    }
                    continue
                }
                let since = retiredAt.map(dateFromMilliseconds) ?? now
                if retiredAt == nil {
                    try db.execute(
                        sql: "UPDATE uplink SET retired_at = ? WHERE name = ?", arguments: [millisecondsSinceEpoch(now), name]
                    )
                }
                let undelivered = try Self.undeliveredCount(uplink: name, storedThrough: row["stored_through"], stored: stored, in: db)
                let forget = now.timeIntervalSince(since) >= lifetime
                if forget {
                    try db.execute(sql: "DELETE FROM uplink WHERE name = ?", arguments: [name])
                    try db.execute(sql: "DELETE FROM uplink_ack WHERE uplink = ?", arguments: [name])
                }
                retired.append(RetiredUplink(name: name, undelivered: undelivered, retiredAt: since, forgotten: forget))
            }
            return retired
        }
    }

    private static func cursor(of uplink: String, in db: Database) throws -> Int64 {
        guard
            let cursor = try Int64.fetchOne(
                db, sql: "SELECT delivered_through FROM uplink WHERE name = ?", arguments: [uplink]
            )
        else {
            throw ReadingStoreError(.unknownUplink, "no uplink named '\(uplink)' is registered in the store")
        }
        return cursor
    }

    // MARK: - Retention

    /// Keeps the readings within ``ReadingStoreConfiguration/readingBytes``: the store's limit less the bulletin's
    /// share, measured without the bulletin's pages, so however many posts there are (the bulletin keeps to its
    /// own budget) they never count against readings.
    ///
    /// Deletes the oldest readings every uplink has delivered until the readings are at 90 % of their limit, so it
    /// does not run at the edge. Only when every remaining reading is undelivered does it drop the oldest
    /// undelivered ones, and counts them (`status` shows the count).
    @discardableResult
    public func enforceRetention() async throws -> RetentionOutcome {
        let maximumBytes = self.configuration.readingBytes
        return try await self.pool.write { db in
            var outcome = RetentionOutcome(deletedDelivered: 0, droppedUndelivered: 0)
            guard try Self.usedBytes(db) - Self.bulletinPageBytes(db) > maximumBytes else { return outcome }
            let target = maximumBytes / 10 * 9
            // Deleting readings never frees a bulletin page: measured once.
            let bulletinBytes = try Self.bulletinPageBytes(db)
            // Delivered means acknowledged by every configured uplink (a retired cursor waits for nothing); with
            // no uplink configured nothing waits for a reading.
            let deliveredThrough =
                try Int64.fetchOne(db, sql: "SELECT min(delivered_through) FROM uplink WHERE retired_at IS NULL")
                ?? (try Int64.fetchOne(db, sql: "SELECT max(id) FROM reading") ?? 0)
            // Pages are freed only when they empty, and other tables share the file: estimate, delete, measure
            // again, until the store is under its target.
            while case let used = try Self.usedBytes(db) - bulletinBytes, used > target {
                // Kept by triggers in this same transaction: no scan of millions of rows per pass.
                let rows = try Self.readingsStored(db)
                guard rows > 0 else { break }
                let bytesPerRow = max(1, used / rows)
                let excessRows = max(64, Int((used - target + bytesPerRow - 1) / bytesPerRow))
                try db.execute(
                    sql: "DELETE FROM reading WHERE id IN (SELECT id FROM reading WHERE id <= ? ORDER BY id LIMIT ?)",
                    arguments: [deliveredThrough, excessRows]
                )
                let deleted = db.changesCount
                outcome.deletedDelivered += deleted
                if deleted < excessRows {
                    try db.execute(
                        sql: "DELETE FROM reading WHERE id IN (SELECT id FROM reading ORDER BY id LIMIT ?)",
                        arguments: [excessRows - deleted]
                    )
                    outcome.droppedUndelivered += db.changesCount
                }
            }
            if outcome.droppedUndelivered > 0 {
                let total = (Int64(try Self.meta(MetaKey.droppedReadings, in: db) ?? "0") ?? 0)
                try Self.setMeta(MetaKey.droppedReadings, String(total + Int64(outcome.droppedUndelivered)), in: db)
            }
            return outcome
        }
    }

    /// The pages the bulletin's table and index occupy, from SQLite's `dbstat` table (only those b-trees are
    /// visited); where SQLite was built without it, the bulletin's own byte count.
    static func bulletinPageBytes(_ db: Database) throws -> Int64 {
        do {
            var bytes: Int64 = 0
            for name in ["bulletin_post", "bulletin_post_open"] {
                bytes += try Int64.fetchOne(db, sql: "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = ?", arguments: [name]) ?? 0
            }
            return bytes
        } catch {
            return try Int64.fetchOne(db, sql: "SELECT bytes FROM bulletin_usage WHERE id = 1") ?? 0
        }
    }

    private static func usedBytes(_ db: Database) throws -> Int64 {
        let pageSize = try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
        let pages = try Int64.fetchOne(db, sql: "PRAGMA page_count") ?? 0
        let free = try Int64.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
        return (pages - free) * pageSize
    }

    // MARK: - Reading back

    /// Committed readings in id order, optionally since a time and for one sensor; `body` sees each in turn
    /// without the whole result being held in memory.
    public func forEachReading(
        since: Date? = nil,
        sensor: String? = nil,
        _ body: (StoredReading) throws -> Void
    ) throws {
        var conditions: [String] = []
        var arguments: StatementArguments = []
        if let since {
            conditions.append("measured_at >= ?")
            arguments += [millisecondsSinceEpoch(since)]
        }
        if let sensor {
            conditions.append("sensor = ?")
            arguments += [sensor]
        }
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        try self.pool.read { db in
            let rows = try StoredReadingRow.fetchCursor(
                db,
                sql: "SELECT id, sensor, quantity, value, measured_at, quality, run FROM reading \(filter) ORDER BY id",
                arguments: arguments
            )
            while let row = try rows.next() { try body(row.stored) }
        }
    }

    /// All committed readings matching the filter (for tests and small queries).
    public func readings(since: Date? = nil, sensor: String? = nil) throws -> [StoredReading] {
        var result: [StoredReading] = []
        try self.forEachReading(since: since, sensor: sensor) { result.append($0) }
        return result
    }

    /// The newest reading of each sensor and quantity.
    public func latest() throws -> [StoredReading] {
        try self.pool.read { db in
            try StoredReadingRow.fetchAll(
                db,
                sql: """
                    SELECT reading_id AS id, sensor, quantity, value, measured_at, quality FROM latest
                    ORDER BY sensor, quantity
                    """
            ).map(\.stored)
        }
    }

    /// Everything `kiezbox status` shows about the store.
    public func statistics() throws -> StoreStatistics {
        let fileBytes = self.fileBytes()
        let latest = try self.latest()
        let neighbours = try self.neighbours()
        return try self.pool.read { db in
            let identity = try Self.meta(MetaKey.identity, in: db).flatMap {
                try? JSONDecoder().decode(BoxIdentity.self, from: Data($0.utf8))
            }
            let bounds = try Row.fetchOne(db, sql: "SELECT count(*), min(measured_at), max(measured_at) FROM reading")
            let uplinks = try Self.uplinkProgress(db)
            return StoreStatistics(
                instanceID: self.instanceID,
                identity: identity,
                mode: try Self.meta(MetaKey.mode, in: db).flatMap(Mode.init(rawValue:)),
                fileBytes: fileBytes,
                usedBytes: try Self.usedBytes(db),
                maximumBytes: self.configuration.maximumBytes,
                readingsStored: bounds?[0] ?? 0,
                oldestMeasuredAt: (bounds?[1] as Int64?).map(dateFromMilliseconds),
                newestMeasuredAt: (bounds?[2] as Int64?).map(dateFromMilliseconds),
                droppedReadings: Int64(try Self.meta(MetaKey.droppedReadings, in: db) ?? "0") ?? 0,
                uplinks: uplinks,
                latest: latest,
                lastFlushAt: try Self.meta(MetaKey.lastFlushAt, in: db).flatMap(Int64.init).map(dateFromMilliseconds),
                daemonStartedAt: try Self.meta(MetaKey.daemonStartedAt, in: db).flatMap(Int64.init).map(dateFromMilliseconds),
                neighbours: neighbours
            )
        }
    }

    /// The figures `/metrics` serves, from counters the store keeps as it writes: no table is counted.
    public func counters() throws -> StoreCounters {
        try self.pool.read { db in
            StoreCounters(
                readingsStored: try Self.readingsStored(db),
                droppedReadings: Int64(try Self.meta(MetaKey.droppedReadings, in: db) ?? "0") ?? 0,
                fileBytes: self.fileBytes(),
                uplinks: try Self.uplinkProgress(db)
            )
        }
    }

    private func fileBytes() -> Int64 {
        [self.path, self.path + "-wal"].reduce(Int64(0)) { sum, file in
            let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? NSNumber)?.int64Value
            return sum + (size ?? 0)
        }
    }

    private static func readingsStored(_ db: Database) throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?", arguments: [MetaKey.readingsStored]) ?? 0
    }

    /// Each registered uplink's progress: its cursor and how many committed readings it has still to deliver.
    public func uplinkProgress() throws -> [UplinkProgress] {
        try self.pool.read { db in try Self.uplinkProgress(db) }
    }

    private static func uplinkProgress(_ db: Database) throws -> [UplinkProgress] {
        let stored = try Self.readingsStored(db)
        return try Row.fetchAll(
            db, sql: "SELECT name, delivered_through, delivered_total, stored_through, retired_at FROM uplink ORDER BY name"
        ).map { row in
            let name: String = row["name"]
            let through: Int64 = row["delivered_through"]
            return UplinkProgress(
                name: name, retiredAt: (row["retired_at"] as Int64?).map(dateFromMilliseconds), deliveredThrough: through,
                deliveredTotal: row["delivered_total"],
                undelivered: try Self.undeliveredCount(uplink: name, storedThrough: row["stored_through"], stored: stored, in: db)
            )
        }
    }

    /// Stored readings `uplink` has not had acknowledged: all of them but those at or below its cursor (both
    /// counted by triggers, no scan) and those acknowledged out of order above it.
    private static func undeliveredCount(uplink: String, storedThrough: Int64, stored: Int64, in db: Database) throws -> Int64 {
        let acknowledgedAbove =
            try Int64.fetchOne(
                db,
                sql: "SELECT count(*) FROM uplink_ack WHERE uplink = ? AND reading_id IN (SELECT id FROM reading)",
                arguments: [uplink]
            ) ?? 0
        return stored - storedThrough - acknowledgedAbove
    }

    /// Waits for the writer connection and runs a no-op on it, writing nothing: returns as soon as no write is in
    /// progress, and not while one is stuck (a dead SD card). A health check's round trip.
    public func probeWriter() async throws {
        try await self.pool.writeWithoutTransaction { db in try db.execute(sql: "SELECT 1") }
    }

    /// Closes the database (the last connection to close checkpoints the write-ahead log into the file).
    /// Buffered readings that were not flushed are not committed.
    public func close() throws {
        try self.pool.close()
    }

    /// SQLite's own consistency check: `["ok"]` for a healthy database.
    public func integrityCheck() throws -> [String] {
        try self.pool.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
    }
}

/// A `reading` row decoded by column position (cheaper than by name in long scans).
private struct StoredReadingRow: FetchableRecord {
    var stored: StoredReading

    init(row: Row) throws {
        let quantityName: String = row[2]
        guard let quantity = Quantity(rawValue: quantityName) else {
            throw ReadingStoreError(.database, "unknown quantity '\(quantityName)' in reading \(row[0] as Int64)")
        }
        self.stored = StoredReading(
            id: row[0],
            reading: Reading(
                sensorID: row[1],
                quantity: quantity,
                value: row[3],
                measuredAt: dateFromMilliseconds(row[4]),
                quality: ReadingQuality(rawValue: row[5]) ?? .implausible
            )
        )
        // `latest` rows have no run: the id alone there only links back to the reading.
        if row.count > 6 { self.stored.run = row[6] }
    }
}

/// fsync(2) of the file at `path`; a file that does not exist has nothing to sync.
private func syncToDisk(_ path: String) throws {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    if descriptor < 0 {
        if errno == ENOENT { return }
        throw ReadingStoreError(.database, "cannot open \(path) to sync it: \(String(cString: strerror(errno)))")
    }
    defer { close(descriptor) }
    guard fsync(descriptor) == 0 else {
        throw ReadingStoreError(.database, "cannot sync \(path) to the disk: \(String(cString: strerror(errno)))")
    }
}

func millisecondsSinceEpoch(_ date: Date) -> Int64 {
    Int64((date.timeIntervalSince1970 * 1000).rounded())
}

func dateFromMilliseconds(_ milliseconds: Int64) -> Date {
    Date(timeIntervalSince1970: Double(milliseconds) / 1000)
}
