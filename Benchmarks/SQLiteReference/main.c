// The plain-SQLite reference for `make bench`: the same rows the Kiezbox store writes, inserted through the
// sqlite3 C API with one prepared statement, one transaction per 600 rows, WAL and synchronous=NORMAL (the
// recipe measured in the performance notes). Prints one JSON line with its own figures.
//
// usage: SQLiteReference DB_PATH ROWS
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "include/rows.h"

static void check(int rc, sqlite3 *db, const char *what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        fprintf(stderr, "%s: %s\n", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        exit(1);
    }
}

// Bytes this process passed to write() and dirtied for the block layer, from /proc/self/io.
static void io_counters(long long *wchar, long long *write_bytes) {
    FILE *file = fopen("/proc/self/io", "r");
    char name[64];
    long long value;
    *wchar = *write_bytes = 0;
    if (!file) return;
    while (fscanf(file, "%63[^:]: %lld\n", name, &value) == 2) {
        if (strcmp(name, "wchar") == 0) *wchar = value;
        if (strcmp(name, "write_bytes") == 0) *write_bytes = value;
    }
    fclose(file);
}

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s DB_PATH ROWS\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    long rows = atol(argv[2]);
    const long batch = 600;

    long long wchar_before, write_before;
    io_counters(&wchar_before, &write_before);

    sqlite3 *db = NULL;
    check(sqlite3_open(path, &db), db, "open");
    check(sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, NULL), db, "pragmas");
    check(sqlite3_exec(db,
                       "CREATE TABLE reading(id INTEGER PRIMARY KEY, sensor TEXT NOT NULL, quantity TEXT NOT NULL,"
                       " value REAL NOT NULL, measured_at INTEGER NOT NULL, quality INTEGER NOT NULL)",
                       NULL, NULL, NULL),
          db, "create");
    sqlite3_stmt *insert = NULL;
    check(sqlite3_prepare_v2(db,
                             "INSERT INTO reading(sensor, quantity, value, measured_at, quality) VALUES (?, ?, ?, ?, ?)",
                             -1, &insert, NULL),
          db, "prepare");

    double start = seconds_now();
    for (long index = 0; index < rows; index++) {
        if (index % batch == 0) check(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), db, "begin");
        struct bench_row row = bench_row_at(index);
        sqlite3_bind_text(insert, 1, row.sensor, -1, SQLITE_STATIC);
        sqlite3_bind_text(insert, 2, row.quantity, -1, SQLITE_STATIC);
        sqlite3_bind_double(insert, 3, row.value);
        sqlite3_bind_int64(insert, 4, row.measured_at);
        sqlite3_bind_int(insert, 5, 0);
        check(sqlite3_step(insert), db, "insert");
        sqlite3_reset(insert);
        if (index % batch == batch - 1 || index == rows - 1) check(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), db, "commit");
    }
    double elapsed = seconds_now() - start;
    sqlite3_finalize(insert);
    check(sqlite3_close(db), NULL, "close");  // the last connection checkpoints the WAL into the database

    long long wchar_after, write_after;
    io_counters(&wchar_after, &write_after);
    printf("{\"rows\": %ld, \"seconds\": %.6f, \"wchar\": %lld, \"write_bytes\": %lld}\n", rows, elapsed,
           wchar_after - wchar_before, write_after - write_before);
    return 0;
}
