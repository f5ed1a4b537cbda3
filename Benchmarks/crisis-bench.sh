#!/usr/bin/env bash
# Crisis benchmark (part of `make bench`): how soon after the mains-fail edge the portal answers in crisis mode.
#
#   Benchmarks/crisis-bench.sh
#
# The real daemon (`kiezbox run --simulate`, release build) runs on a simulated kit whose mains-fail line follows
# a file (the fixture's `mains_file`, docs/simulation.md), with `[mode] crisis_after = "0s"` and the input's
# default debounce (1 s: a change counts once the line has stayed put that long). Each round writes "0" to the
# file (the edge; the simulated line follows within 5 ms) and polls `GET /` on loopback until the page carries
# the crisis banner (`id="crisis"`), then writes "1" and waits for the calm page again (`normal_after = "0s"`).
#
# Printed, over ROUNDS rounds: the median and the maximum from the edge to the crisis page, and the same less the
# configured delay (debounce + crisis_after), against issue 12's target of at most 1 s once that delay has
# passed. The mode controller's own interval (10 s by default) is not in the path: a mains change wakes it, and
# a pending crisis_after is decided when it runs out. The benchmark reports figures; a slow result never fails it.
#
# Environment: KIEZBOX (the binary; default: the release build's), ROUNDS (default 10), PORT (default: a free one).
# Needs: a release build of kiezbox, curl.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${ROUNDS:-10}"
KIEZBOX="${KIEZBOX:-$(swift build -c release --show-bin-path)/kiezbox}"
DEBOUNCE_MS=1000
command -v curl >/dev/null || { echo "error: curl is missing (scripts/install-deps.sh bench)" >&2; exit 1; }
[ -x "$KIEZBOX" ] || { echo "error: no kiezbox binary at $KIEZBOX (swift build -c release --product kiezbox)" >&2; exit 1; }

WORK="$(mktemp -d)"
DAEMON=""
cleanup() {
    if [ -n "$DAEMON" ] && kill -0 "$DAEMON" 2>/dev/null; then
        kill -TERM "$DAEMON" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$DAEMON" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$DAEMON" 2>/dev/null || true
        wait "$DAEMON" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# fail, free_port
source Benchmarks/daemon-bench-common.sh
PORT="${PORT:-$(free_port)}"
URL="http://127.0.0.1:$PORT/"

echo 1 > "$WORK/mains"
cat > "$WORK/fixture.toml" <<TOML
time_scale = 1                   # the drivers' waits in real time: the debounce is a real second

[[chip]]
chip = "mains-fail"
line = 27
mains_file = "$WORK/mains"
TOML
cat > "$WORK/kiezbox.toml" <<TOML
[box]
id = "bench-box"
district = "bench-kiez"

[portal]
listen = "127.0.0.1"
port = $PORT

[mode]
crisis_after = "0s"
normal_after = "0s"

[[sensor]]
id = "mains"
chip = "mains-fail"
line = 27
interval = "10s"
TOML
"$KIEZBOX" config check "$WORK/kiezbox.toml" > /dev/null || fail "the benchmark's configuration does not check"
"$KIEZBOX" run --config "$WORK/kiezbox.toml" --data-dir "$WORK/data" --simulate "$WORK/fixture.toml" > "$WORK/daemon.log" 2>&1 &
DAEMON=$!

# page_has PATTERN: whether GET / answers 200 with PATTERN in the page; page_calm: 200 without the crisis banner.
page_has() { curl -sf --max-time 2 -H "Host: kiez.box" "$URL" 2>/dev/null | grep -q "$1"; }
page_calm() {
    local page
    page="$(curl -sf --max-time 2 -H "Host: kiez.box" "$URL" 2>/dev/null)" || return 1
    ! grep -q 'id="crisis"' <<< "$page"
}
wait_for() {
    local pattern="$1" what="$2"
    for _ in $(seq 1 600); do
        kill -0 "$DAEMON" 2>/dev/null || fail "the daemon exited"
        page_has "$pattern" && return 0
        sleep 0.05
    done
    fail "the portal never showed $what"
}
wait_for '<html' "its page"
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

results=()
for round in $(seq 1 "$ROUNDS"); do
    # Calm first: mains present and the page without the banner.
    echo 1 > "$WORK/mains"
    for _ in $(seq 1 600); do page_calm && break; sleep 0.05; done
    page_calm || fail "the portal stayed in crisis mode with mains present"
    sleep 0.5
    start=$(now_ms)
    echo 0 > "$WORK/mains"
    until page_has 'id="crisis"'; do
        kill -0 "$DAEMON" 2>/dev/null || fail "the daemon exited"
        [ $(( $(now_ms) - start )) -lt 30000 ] || fail "no crisis page 30 s after the edge"
    done
    results+=($(( $(now_ms) - start )))
done

sorted=($(printf '%s\n' "${results[@]}" | sort -n))
count=${#sorted[@]}
median=${sorted[$((count / 2))]}
maximum=${sorted[$((count - 1))]}
echo "Crisis benchmark: mains-fail edge -> portal page in crisis mode, real daemon, simulated kit, $count rounds"
printf '  edge to crisis page       median %5d ms   max %5d ms   (all: %s)\n' "$median" "$maximum" "${results[*]}"
printf '  beyond the delay (%d ms)  median %5d ms   max %5d ms   target <= 1000 ms\n' "$DEBOUNCE_MS" \
    $((median - DEBOUNCE_MS)) $((maximum - DEBOUNCE_MS))
