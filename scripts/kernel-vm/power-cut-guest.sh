#!/bin/sh
# shellcheck shell=sh
# power-cut-guest.sh — the guest side of the power-cut test (Tests/KiezboxAgentTests/PowerCutTests.swift), run by
# run.sh as the VM's executable (busybox sh) on every boot:
#
#   scripts/kernel-vm/run.sh --disk DATA.img --disk EXPORT.img --forward 10.0.2.100:1883=BROKER_PORT \
#       --with KIEZBOX --with SQLITE3 scripts/kernel-vm/power-cut-guest.sh -- KIEZBOX SQLITE3
#
# 1. mounts /dev/vda (ext4, the data directory's disk) as a box mounts its SD card after a power cut: the
#    kernel replays the ext4 journal;
# 2. checks the store with sqlite3 (PRAGMA integrity_check; opening it recovers the WAL as the daemon would)
#    and writes every reading (`kiezbox readings --format json`: global id, contents) to /dev/vdb for the host
#    to compare with what the broker delivered;
# 3. runs `kiezbox run` on the simulated kit, relaying to the host's broker, until the host cuts the power.
#
# The host reads lines starting with "power-cut " on the console:
#   power-cut clock <ms since the epoch> uptime <s>  the guest's clock, for the host to measure its offset
#   power-cut integrity <result|none>             "ok", sqlite3's complaints, or "none" when there is no store file
#   power-cut dump <bytes> dropped <count>        that many bytes of `kiezbox readings --format json` are on
#                                                 /dev/vdb; the store's count of readings dropped by retention
#   power-cut daemon <ms since the epoch>         kiezbox run is being started
set -u
kiezbox=$1
sqlite=$2
data=/mnt/data
store=$data/kiezbox/readings.sqlite

now_ms() { "$sqlite" :memory: "SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"; }
fail() {
	echo "power-cut guest: $*"
	exit 3
}

echo "power-cut clock $(now_ms) uptime $(cut -d" " -f1 /proc/uptime)"
# Time compressed: the kernel writes dirty pages back after 1 s instead of 30 s, and ext4 commits its journal every
# second instead of every 5, so that within a few seconds of running some commits are on the disk and some are
# not yet, as after hours on a box. What a cut can lose is the same: whatever was not fsync'd.
echo 100 >/proc/sys/vm/dirty_expire_centisecs
echo 50 >/proc/sys/vm/dirty_writeback_centisecs
mkdir -p "$data"
mount -t ext4 -o noatime,commit=1 /dev/vda "$data" || fail "cannot mount /dev/vda"
mkdir -p "$data/kiezbox"

# Fast sampling and short flushes, so that commits and relaying are under way whenever the power goes.
# max_size is far above what the test writes: nothing is pruned.
cat >/tmp/kiezbox.toml <<'EOF'
[box]
id = "power-cut-box"
district = "test-kiez"

[store]
flush_interval = "500ms"
max_size = "64 MiB"

[log]
level = "notice"

[simulation]
enabled = true

[mqtt]
host = "10.0.2.100"
port = 1883

[relay]
batch_size = 20
max_backfill_rate = 20
max_backoff = "1s"

[portal]
enabled = false

[[sensor]]
id = "roof"
chip = "bme280"
address = 0x76
interval = "1s"

[[sensor]]
id = "balcony"
chip = "bme280"
address = 0x77
interval = "1s"

[[sensor]]
id = "battery"
chip = "ina219"
address = 0x40
interval = "1s"
EOF
tables() { "$sqlite" "$store" "SELECT count(*) FROM sqlite_master WHERE name IN ('reading', 'meta')" 2>&1; }
if [ -f "$store" ]; then
	echo "power-cut integrity $("$sqlite" "$store" 'PRAGMA integrity_check' 2>&1 | tr '\n' ' ')"
fi
# A store whose creation did not reach the disk before the cut has a file, perhaps, but no tables yet.
if [ -f "$store" ] && [ "$(tables)" = 2 ]; then
	# The daemon's own account of every reading, with the global id it sends (globalID).
	"$kiezbox" readings --config /tmp/kiezbox.toml --data-dir "$data/kiezbox" --format json >/tmp/dump.json 2>/tmp/dump-errors.txt ||
		fail "kiezbox readings failed: $(cat /tmp/dump-errors.txt)"
	dropped=$("$sqlite" "$store" "SELECT coalesce((SELECT value FROM meta WHERE key = 'dropped_readings'), 0)")
else
	[ -f "$store" ] || echo "power-cut integrity none"
	echo '[]' >/tmp/dump.json
	dropped=0
fi
if ! { cat /tmp/dump.json >/dev/vdb && sync; }; then fail "cannot write the dump to /dev/vdb"; fi
echo "power-cut dump $(wc -c </tmp/dump.json) dropped $dropped"

echo "power-cut daemon $(now_ms)"
exec "$kiezbox" run --config /tmp/kiezbox.toml --data-dir "$data/kiezbox"
