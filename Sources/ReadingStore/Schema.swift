import GRDB

/// The store's schema, as migrations. A migration, once released, is never edited: add a new one.
enum Schema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-readings-outbox") { db in
            // Facts about this store: its instance id, the box identity and mode the daemon last wrote.
            try db.execute(sql: "CREATE TABLE meta(key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID")

            // AUTOINCREMENT: an id is never reused, even after retention has emptied the table, so
            // (instance id, reading id) identifies a reading for ever and receivers can drop duplicates.
            // No secondary index: on an SD card every index costs a page write per commit.
            try db.execute(
                sql: """
                    CREATE TABLE reading(
                      id INTEGER PRIMARY KEY AUTOINCREMENT,
                      sensor TEXT NOT NULL,
                      quantity TEXT NOT NULL,
                      value REAL NOT NULL,
                      measured_at INTEGER NOT NULL,
                      quality INTEGER NOT NULL)
                    """
            )

            // One cursor per uplink: every reading with id <= delivered_through is acknowledged.
            try db.execute(
                sql: """
                    CREATE TABLE uplink(
                      name TEXT PRIMARY KEY NOT NULL,
                      delivered_through INTEGER NOT NULL,
                      delivered_total INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID
                    """
            )
            // Acknowledgements that arrived out of order, above the cursor; folded into it once contiguous.
            try db.execute(
                sql: """
                    CREATE TABLE uplink_ack(
                      uplink TEXT NOT NULL,
                      reading_id INTEGER NOT NULL,
                      PRIMARY KEY(uplink, reading_id)) WITHOUT ROWID
                    """
            )

            // The newest value per sensor and quantity, kept up to date in the same transaction as the
            // readings, so `status` and the portal never scan the readings table.
            try db.execute(
                sql: """
                    CREATE TABLE latest(
                      sensor TEXT NOT NULL,
                      quantity TEXT NOT NULL,
                      reading_id INTEGER NOT NULL,
                      value REAL NOT NULL,
                      measured_at INTEGER NOT NULL,
                      quality INTEGER NOT NULL,
                      PRIMARY KEY(sensor, quantity)) WITHOUT ROWID
                    """
            )
        }
        migrator.registerMigration("v2-neighbours") { db in
            // The other boxes of the district, last status each; small, rewritten as statuses arrive.
            try db.execute(
                sql: """
                    CREATE TABLE neighbour(
                      district TEXT NOT NULL,
                      box TEXT NOT NULL,
                      status TEXT NOT NULL,
                      last_seen INTEGER NOT NULL,
                      PRIMARY KEY(district, box)) WITHOUT ROWID
                    """
            )
        }
        migrator.registerMigration("v3-bulletin") { db in
            // Neighbours' help requests, offers and check-ins from the portal. Posts are few (people type them),
            // so each commits at once: the person who posted sees it on the next page.
            try db.execute(
                sql: """
                    CREATE TABLE bulletin_post(
                      id INTEGER PRIMARY KEY AUTOINCREMENT,
                      kind TEXT NOT NULL,
                      category TEXT,
                      text TEXT NOT NULL,
                      place TEXT NOT NULL DEFAULT '',
                      created_at INTEGER NOT NULL,
                      expires_at INTEGER NOT NULL)
                    """
            )
            try db.execute(sql: "CREATE INDEX bulletin_post_expiry ON bulletin_post(expires_at)")
        }
        migrator.registerMigration("v4-announcements") { db in
            // Signed announcements, one row per (issuer, id): the newest version accepted, its envelope kept
            // byte for byte so it can be relayed unchanged. Rows stay past expiry until remember_until, so a
            // superseded version replayed later is still recognised.
            try db.execute(
                sql: """
                    CREATE TABLE announcement(
                      issuer TEXT NOT NULL,
                      id TEXT NOT NULL,
                      key_id TEXT NOT NULL,
                      issued_at INTEGER NOT NULL,
                      expires_at INTEGER NOT NULL,
                      remember_until INTEGER NOT NULL,
                      payload BLOB NOT NULL,
                      envelope BLOB NOT NULL,
                      received_at INTEGER NOT NULL,
                      received_via TEXT NOT NULL,
                      PRIMARY KEY(issuer, id))
                    """
            )
        }
        migrator.registerMigration("v5-reading-runs") { db in
            // The run that committed each reading: a power cut may roll back the last commits and SQLite then
            // reuses their ids, so (run, id) and not the id alone names a reading. Readings from before get 0.
            // ADD COLUMN with a constant default rewrites nothing.
            try db.execute(sql: "ALTER TABLE reading ADD COLUMN run INTEGER NOT NULL DEFAULT 0")
            // When an uplink stopped being configured: its cursor no longer holds back retention, and it is
            // forgotten after a while.
            try db.execute(sql: "ALTER TABLE uplink ADD COLUMN retired_at INTEGER")
        }
        migrator.registerMigration("v6-bulletin-budget") { db in
            // The bulletin's own budget (posts and bytes), counted in the same transaction as every insert and
            // delete by triggers, so a post can be refused before the bulletin outgrows it and retention can leave
            // the bulletin's share out of the readings' without scanning posts.
            try db.execute(
                sql: """
                    CREATE TABLE bulletin_usage(
                      id INTEGER PRIMARY KEY CHECK(id = 1),
                      posts INTEGER NOT NULL,
                      bytes INTEGER NOT NULL)
                    """
            )
            try db.execute(
                sql: """
                    INSERT INTO bulletin_usage(id, posts, bytes)
                    SELECT 1, count(*), coalesce(sum(\(Schema.bulletinPostBytes())), 0) FROM bulletin_post
                    """
            )
            try db.execute(
                sql: """
                    CREATE TRIGGER bulletin_usage_insert AFTER INSERT ON bulletin_post BEGIN
                      UPDATE bulletin_usage SET posts = posts + 1, bytes = bytes + \(Schema.bulletinPostBytes("new")) WHERE id = 1;
                    END
                    """
            )
            try db.execute(
                sql: """
                    CREATE TRIGGER bulletin_usage_delete AFTER DELETE ON bulletin_post BEGIN
                      UPDATE bulletin_usage SET posts = posts - 1, bytes = bytes - \(Schema.bulletinPostBytes("old")) WHERE id = 1;
                    END
                    """
            )
            // Open posts are counted by kind and category from this index alone (it covers the query); it also
            // serves expiry, so the older expiry-only index goes.
            try db.execute(sql: "CREATE INDEX bulletin_post_open ON bulletin_post(expires_at, kind, category)")
            try db.execute(sql: "DROP INDEX bulletin_post_expiry")
        }
        migrator.registerMigration("v7-reading-counts") { db in
            // How many readings are stored (meta `readings_stored`: a row, not a table, so an empty store stays as
            // small as it was), and per uplink how many of them are at or below its cursor, kept by triggers in the
            // same transaction as every insert, delete and cursor move: /metrics and the backlog read them instead
            // of counting a table of millions of rows. Counted once here, never again.
            try db.execute(
                sql: """
                    INSERT INTO meta(key, value) VALUES ('readings_stored', (SELECT count(*) FROM reading));
                    ALTER TABLE uplink ADD COLUMN stored_through INTEGER NOT NULL DEFAULT 0;
                    UPDATE uplink SET stored_through = (SELECT count(*) FROM reading WHERE id <= uplink.delivered_through);
                    CREATE TRIGGER reading_counted AFTER INSERT ON reading BEGIN
                      UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'readings_stored';
                      UPDATE uplink SET stored_through = stored_through + 1 WHERE NEW.id <= delivered_through;
                    END;
                    CREATE TRIGGER reading_uncounted AFTER DELETE ON reading BEGIN
                      UPDATE meta SET value = CAST(value AS INTEGER) - 1 WHERE key = 'readings_stored';
                      UPDATE uplink SET stored_through = stored_through - 1 WHERE OLD.id <= delivered_through;
                    END;
                    CREATE TRIGGER uplink_cursor_counted AFTER UPDATE OF delivered_through ON uplink
                    WHEN NEW.delivered_through <> OLD.delivered_through BEGIN
                      UPDATE uplink SET stored_through = stored_through
                        + (SELECT count(*) FROM reading WHERE id > OLD.delivered_through AND id <= NEW.delivered_through)
                        - (SELECT count(*) FROM reading WHERE id > NEW.delivered_through AND id <= OLD.delivered_through)
                      WHERE name = NEW.name;
                    END;
                    CREATE TRIGGER uplink_counted AFTER INSERT ON uplink BEGIN
                      UPDATE uplink SET stored_through = (SELECT count(*) FROM reading WHERE id <= NEW.delivered_through)
                      WHERE name = NEW.name;
                    END;
                    """
            )
        }
        migrator.registerMigration("v8-lorawan-airtime") { db in
            // The LoRaWAN uplink's rolling ledger: every frame's time on air and every downlink, so TTN's daily
            // fair-use allowance and the duty cycle hold across restarts and power cuts.
            try db.execute(
                sql: """
                    CREATE TABLE lorawan_airtime (
                      id INTEGER PRIMARY KEY,
                      kind TEXT NOT NULL,
                      at INTEGER NOT NULL,
                      airtime_us INTEGER NOT NULL,
                      data_rate INTEGER NOT NULL,
                      payload_length INTEGER NOT NULL
                    );
                    CREATE INDEX lorawan_airtime_at ON lorawan_airtime(at);
                    """
            )
        }
        migrator.registerMigration("v9-crisis-commands") { db in
            // The last crisis command accepted by LoRaWAN downlink from each authority key (by the key's
            // fingerprint, so renaming its key id in the configuration does not forget it): a command not newer
            // than it is a replay, and a declaration in it holds crisis mode until valid_until. One row per key,
            // kept for ever: a handful of rows.
            try db.execute(
                sql: """
                    CREATE TABLE crisis_command(
                      key_fingerprint TEXT PRIMARY KEY NOT NULL,
                      key_id TEXT NOT NULL,
                      issuer TEXT NOT NULL,
                      declares_crisis INTEGER NOT NULL,
                      district_tag INTEGER NOT NULL,
                      issued_at INTEGER NOT NULL,
                      sequence INTEGER NOT NULL,
                      valid_until INTEGER NOT NULL,
                      received_at INTEGER NOT NULL) WITHOUT ROWID
                    """
            )
        }
        migrator.registerMigration("v10-meshtastic") { db in
            // Posts that arrived from elsewhere (a pilot box's emergency button, another box over LoRa) name their
            // origin; (origin, reference) pairs are remembered past the post's expiry so a rebroadcast heard late
            // is not posted again. The Meshtastic bridge's airtime ledger (one rolling hour, for the duty-cycle
            // share and `kiezbox status`) and the control messages the pilot's admin tools sent (shown, not obeyed).
            try db.execute(
                sql: """
                    ALTER TABLE bulletin_post ADD COLUMN origin TEXT;
                    CREATE TABLE bulletin_origin_seen(
                      origin TEXT NOT NULL,
                      reference TEXT NOT NULL,
                      remember_until INTEGER NOT NULL,
                      PRIMARY KEY(origin, reference)) WITHOUT ROWID;
                    CREATE TABLE meshtastic_airtime(
                      id INTEGER PRIMARY KEY,
                      at INTEGER NOT NULL,
                      airtime_us INTEGER NOT NULL,
                      traffic TEXT NOT NULL,
                      port INTEGER NOT NULL,
                      bytes INTEGER NOT NULL);
                    CREATE INDEX meshtastic_airtime_at ON meshtastic_airtime(at);
                    CREATE TABLE pilot_control(
                      id INTEGER PRIMARY KEY,
                      at INTEGER NOT NULL,
                      sender TEXT NOT NULL,
                      description TEXT NOT NULL,
                      obeyed INTEGER NOT NULL);
                    """
            )
        }
        migrator.registerMigration("v11-bulletin-origin-reference") { db in
            // A post from another box keeps its id there, so the origin's signed removal can find it.
            try db.execute(sql: "ALTER TABLE bulletin_post ADD COLUMN origin_reference TEXT")
        }
        return migrator
    }

    /// What one post costs the bulletin's byte budget, as SQL over a row (`new`, `old` or the table itself): its
    /// text and place in UTF-8 plus a fixed allowance for the row's other columns and its index entry.
    static func bulletinPostBytes(_ row: String = "bulletin_post") -> String {
        "(length(CAST(\(row).text AS BLOB)) + length(CAST(\(row).place AS BLOB)) + \(bulletinRowOverhead))"
    }

    /// Bytes a post costs beyond its text and place.
    static let bulletinRowOverhead = 96
}

/// Keys of the `meta` table.
enum MetaKey {
    static let instanceID = "instance_id"
    static let identity = "identity"
    static let mode = "mode"
    static let modeOverride = "mode_override"
    static let droppedReadings = "dropped_readings"
    static let lastFlushAt = "last_flush_at"
    static let daemonStartedAt = "daemon_started_at"
    /// The number of the last run that opened the store for writing (see ``ReadingStore/run``).
    static let run = "run"
    /// Kept by triggers (migration v7-reading-counts); never written by Swift code.
    static let readingsStored = "readings_stored"
    /// The LoRaWAN uplink's next planned send (JSON of ``LoRaWANNextSend``).
    static let loRaWANNextSend = "lorawan_next_send"
    /// The Meshtastic bridge's radio link as last seen (JSON of ``MeshtasticLinkRecord``).
    static let meshtasticLink = "meshtastic_link"
    /// The retained topics the Home Assistant integration published (JSON list), so that switching it off can
    /// delete them.
    static let homeAssistantTopics = "home_assistant_topics"
    /// This box's bulletin posts published to the district and not withdrawn (JSON list of ``BulletinPost``).
    static let publishedBulletinPosts = "bulletin_published"
}
