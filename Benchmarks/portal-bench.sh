#!/usr/bin/env bash
# Portal benchmark (part of `make bench`): the info page (`GET /`) of the emergency portal, served by the real
# daemon (`kiezbox run`, release build, simulated sensors), against nginx serving the same rendered page as a
# static file, both under `wrk -t2 -c64` on loopback in the same run.
#
#   Benchmarks/portal-bench.sh
#
# What is measured, per server: requests per second and the 99th-percentile latency over DURATION seconds at 64
# connections (a phone storm after a blackout: every phone's captive-portal sheet opens the page at once), and
# the page's bytes on the wire (response headers + body, as curl counts them). For the daemon also its resident
# memory: idle before the load, peak while serving (sampled from /proc/PID/status, and VmHWM afterwards), and
# its CPU time per request (steadier than req/s when the machine is busy with other work).
#
# Why nginx: a static file from nginx (sendfile, no logging, no compression) is about as cheap as an HTTP
# answer gets on this machine, so "portal req/s ÷ nginx req/s" says what the portal's per-request work (language
# negotiation, a form token per client, splicing it into the cached page, metrics) costs, independent of how
# fast the machine is. Issue 5's target: at least 0.5× nginx. The portal serves its page uncompressed, so nginx
# does too. Both run on the same cores as wrk, warmed up the same, measured alternately.
#
# Before measuring, the daemon is given a crisis to show: bulletin posts from a few neighbours (through the HTTP
# form, each from its own loopback address because of the per-client rate limit) and an official announcement
# signed with a throwaway authority key and posted through the API. The page measured is whatever the daemon's
# renderer makes of that; its size is reported.
#
# The benchmark reports figures; a slow result never fails it, only something that does not run.
#
# Environment: KIEZBOX (the binary; default: the release build's), IDLE_SECONDS (the idle CPU measurement before
# the load, default 60), DURATION (seconds per measured run, default 10), ROUNDS (measured runs per server, alternating which goes first, default 2), CONNECTIONS (default 64),
# PORT / NGINX_PORT (default: free loopback ports).
#
# Needs: a release build of kiezbox, nginx (nginx-light), wrk, curl.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-2}"
IDLE_SECONDS="${IDLE_SECONDS:-60}"
CONNECTIONS="${CONNECTIONS:-64}"
KIEZBOX="${KIEZBOX:-$(swift build -c release --show-bin-path)/kiezbox}"
HOST_HEADER="Host: kiez.box"

for tool in nginx wrk curl; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "error: $tool is missing (scripts/install-deps.sh bench)" >&2; exit 1; }
done
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
[ -x "$KIEZBOX" ] || { echo "error: no kiezbox binary at $KIEZBOX (swift build -c release --product kiezbox)" >&2; exit 1; }

WORK="$(mktemp -d)"
DAEMON=""
NGINX_PID=""
SAMPLER=""
# Stops what this script started, politely first, and never waits for ever.
stop() {
    local pid="$1"
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    stop "$SAMPLER"
    stop "$NGINX_PID"
    stop "$DAEMON"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# fail, free_port
source Benchmarks/daemon-bench-common.sh
PORT="${PORT:-$(free_port)}"
NGINX_PORT="${NGINX_PORT:-$(free_port)}"
[ "$PORT" != "$NGINX_PORT" ] || NGINX_PORT=$((PORT + 1))
PORTAL_URL="http://127.0.0.1:$PORT/"
NGINX_URL="http://127.0.0.1:$NGINX_PORT/"

# --- The daemon: the embedded default configuration, listening on loopback only, plus a throwaway authority.

"$KIEZBOX" keys generate --out "$WORK/authority.key" --key-id bench-bezirksamt \
    --name "Bezirksamt Friedrichshain-Kreuzberg" > "$WORK/keys.out"
"$KIEZBOX" token generate --name "Bezirksamt Friedrichshain-Kreuzberg" > "$WORK/token.out"
AUTHORITY_TOKEN="$(awk 'NF == 1 && prev == "" && !done { print $1; done = 1 } { prev = $0 }' "$WORK/token.out")"
[ -n "$AUTHORITY_TOKEN" ] || fail "could not read the token from 'kiezbox token generate'"
{
    # Everything of the default but [portal]'s listen and port, which are replaced.
    "$KIEZBOX" config default | awk -v port="$PORT" '
        /^\[/ {
            portal = ($0 ~ /^\[portal\]/)
            print
            if (portal) { print "listen = \"127.0.0.1\""; print "port = " port }
            next
        }
        portal && /^[ \t]*(listen|port)[ \t]*=/ { next }
        { print }'
    echo
    awk '/^\[\[authority\]\]/ { on = 1 } on' "$WORK/keys.out"
    grep '^token_sha256 = ' "$WORK/token.out"
} > "$WORK/kiezbox.toml"
"$KIEZBOX" config check "$WORK/kiezbox.toml" > /dev/null || fail "the benchmark's configuration does not check: $WORK/kiezbox.toml"

"$KIEZBOX" run --config "$WORK/kiezbox.toml" --data-dir "$WORK/data" > "$WORK/daemon.log" 2>&1 &
DAEMON=$!
for _ in $(seq 1 300); do
    kill -0 "$DAEMON" 2>/dev/null || fail "the daemon exited"
    grep -q "cannot listen" "$WORK/daemon.log" && fail "the portal cannot listen on 127.0.0.1:$PORT"
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 -H "$HOST_HEADER" "$PORTAL_URL" || true)" = 200 ] && break
    sleep 0.1
done
[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -H "$HOST_HEADER" "$PORTAL_URL" || true)" = 200 ] \
    || fail "the portal does not answer GET / on $PORTAL_URL"

# --- A crisis to show: bulletin posts through the form, an official announcement through the API.

# post ADDRESS KIND CATEGORY TEXT [PLACE]: fetches the form from ADDRESS for its token, then posts it.
post() {
    local address="$1" kind="$2" category="$3" text="$4" place="${5:-}" token status
    token="$(curl -s --max-time 5 --interface "$address" -H "$HOST_HEADER" "$PORTAL_URL" \
        | grep -oE '<input[^>]*[[:space:]]name="?token"?[[:space:]/>][^>]*>|<input[^>]*[[:space:]]name="?token"?>' | head -1 \
        | grep -oE 'value="[^"]*"|value=[^"[:space:]>]+' | head -1 | sed 's/^value=//; s/"//g')"
    [ -n "$token" ] || fail "no form token in the page served to $address"
    status="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --interface "$address" -H "$HOST_HEADER" \
        --data-urlencode "kind=$kind" ${category:+--data-urlencode "category=$category"} \
        --data-urlencode "text=$text" ${place:+--data-urlencode "place=$place"} --data-urlencode "token=$token" \
        "${PORTAL_URL}bulletin")"
    [ "$status" = 303 ] || fail "a bulletin post from $address was answered $status, not 303"
}
post 127.0.0.2 request medical "Brauche Strom für ein Sauerstoffgerät (Akku hält noch ca. 3 h). Wer hat eine Powerstation?" "Wrangelstr. 12, 3. OG"
post 127.0.0.2 request water "Ältere Nachbarin im 5. Stock braucht Trinkwasser, kann nicht runter." "Falckensteinstr. 40"
post 127.0.0.2 safe "" "Familie Yılmaz, Görlitzer Str. 7: alle wohlauf."
post 127.0.0.3 offer power "Solargenerator 1 kWh, kann Handys und Geräte laden. Klingeln bei Schmidt." "Cuvrystr. 3, Hof"
post 127.0.0.3 offer food "Warme Suppe für 30 Personen ab 18 Uhr, bitte Becher mitbringen." "Nachbarschaftshaus Cuvrystr."
post 127.0.0.3 request other "Need someone who speaks Arabic to help a family at the Leuchtturm." "Wrangelstr. 1"
post 127.0.0.4 offer water "20 Kanister Trinkwasser (10 l) abzugeben." "Spreewaldplatz"
post 127.0.0.4 safe "" "Kita Sonnenschein: alle Kinder abgeholt, Team wohlauf."
post 127.0.0.4 request fire "Rauchgeruch im Treppenhaus Manteuffelstr. 77, Feuerwehr ist informiert, bitte Abstand halten." "Manteuffelstr. 77"
post 127.0.0.5 offer medical "Krankenpflegerin, kann Blutdruck messen und Medikamente sortieren." "Oppelner Str. 9"
post 127.0.0.5 safe "" "Я в безопасности, Ткаченко, Skalitzer Str. 60."

"$KIEZBOX" announce sign --key "$WORK/authority.key" --id stromausfall-bench --severity severe \
    --headline de="Stromausfall in Kreuzberg-Ost" --headline en="Power cut in east Kreuzberg" \
    --body de="Voraussichtlich bis morgen 18 Uhr. Trinkwasser und Erste Hilfe am Katastrophenschutz-Leuchtturm Wrangelstraße 1. Notruf 112 funktioniert über den Leuchtturm." \
    --body en="Expected to last until 6 pm tomorrow. Drinking water and first aid at the lighthouse, Wrangelstraße 1. Emergency calls (112) work from the lighthouse." \
    --expires 1d --crisis > "$WORK/announcement.json" 2> "$WORK/announce-sign.log"
status="$(curl -s -o "$WORK/announce.out" -w '%{http_code}' --max-time 5 -H "$HOST_HEADER" \
    -H "Authorization: Bearer $AUTHORITY_TOKEN" --data-binary @"$WORK/announcement.json" "${PORTAL_URL}api/v1/announcements")"
[ "$status" = 201 ] || fail "the announcement was answered $status: $(cat "$WORK/announce.out")"
# The announcement declares a crisis: within the mode controller's 10 s the page carries the crisis banner.
for _ in $(seq 1 150); do
    curl -s --max-time 2 -H "$HOST_HEADER" "$PORTAL_URL" | grep -q 'id="crisis"' && break
    sleep 0.2
done
curl -s --max-time 2 -H "$HOST_HEADER" "$PORTAL_URL" | grep -q 'id="crisis"' || fail "the box did not go into crisis mode"

# --- The same page for nginx, as a static file.

mkdir -p "$WORK/nginx/www" "$WORK/nginx/tmp"
curl -s --max-time 5 -H "$HOST_HEADER" -o "$WORK/nginx/www/index.html" "$PORTAL_URL"
[ -s "$WORK/nginx/www/index.html" ] || fail "could not fetch the rendered page"
cat > "$WORK/nginx/nginx.conf" <<CONF
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    gzip off;
    server_tokens off;
    client_body_temp_path $WORK/nginx/tmp;
    types { }
    default_type "text/html; charset=utf-8";
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $WORK/nginx/www;
        index index.html;
    }
}
CONF
# Started as root, nginx's workers run as nobody: they must be able to read the page.
chmod 755 "$WORK" "$WORK/nginx" "$WORK/nginx/www"
chmod 644 "$WORK/nginx/www/index.html"
"$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' 2> "$WORK/nginx/stderr.log" &
NGINX_PID=$!
for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$NGINX_URL" || true)" = 200 ] && break
    kill -0 "$NGINX_PID" 2>/dev/null || { cat "$WORK/nginx/stderr.log" "$WORK/nginx/error.log" >&2 2>/dev/null; fail "nginx exited"; }
    sleep 0.1
done
cmp -s <(curl -s --max-time 5 "$NGINX_URL") "$WORK/nginx/www/index.html" || fail "nginx does not serve the page on $NGINX_URL"

# --- Measurements.

# wire URL [HEADER]: "header-bytes body-bytes" of one response.
wire() { curl -s -o /dev/null --max-time 5 -w '%{size_header} %{size_download}\n' ${2:+-H "$2"} "$1"; }
read -r PORTAL_HEADER_BYTES PORTAL_BODY_BYTES < <(wire "$PORTAL_URL" "$HOST_HEADER")
read -r NGINX_HEADER_BYTES NGINX_BODY_BYTES < <(wire "$NGINX_URL")

# field NAME: a value from the daemon's /proc status, in kB.
field() { awk -v name="$1:" '$1 == name { print $2 }' "/proc/$DAEMON/status"; }
IDLE_RSS="$(field VmRSS)"

# Samples the daemon's VmRSS into a file while the load runs (bash builtins only: the sampler itself must not
# cost the portal much CPU).
start_sampler() {
    (
        while kill -0 "$DAEMON" 2>/dev/null; do
            while read -r key value _; do [ "$key" = "VmRSS:" ] && echo "$value"; done < "/proc/$DAEMON/status"
            sleep 0.2
        done
    ) >> "$WORK/rss.samples" &
    SAMPLER=$!
}
stop_sampler() { stop "$SAMPLER"; SAMPLER=""; }

# The daemon's CPU time so far (user + system), in clock ticks: CPU per request is steadier than req/s on a
# machine shared with other work.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$DAEMON/stat"; }
TICKS_PER_SECOND="$(getconf CLK_TCK)"
PORTAL_TICKS=0

# Idle: the daemon sampling the full simulated kit, relaying nothing, nobody on the portal, for IDLE_SECONDS.
# On a roof this is most of its life, paid from the battery: CPU seconds per hour of wall time.
echo "Measuring the idle daemon for ${IDLE_SECONDS}s ..."
IDLE_START_TICKS="$(cpu_ticks)"
sleep "$IDLE_SECONDS"
IDLE_CPU_PER_HOUR="$(awk -v t="$(( $(cpu_ticks) - IDLE_START_TICKS ))" -v hz="$TICKS_PER_SECOND" -v s="$IDLE_SECONDS" \
    'BEGIN { printf "%.1f s of CPU per hour (%.2f %% of one core)", t / hz * 3600 / s, t / hz / s * 100 }')"

# load NAME URL SECONDS [HEADER]: one wrk run; its output goes to $WORK/NAME.wrk.
load() {
    local name="$1" url="$2" seconds="$3" header="${4:-}"
    timeout $((seconds + 30)) wrk -t2 -c"$CONNECTIONS" -d"${seconds}s" --latency ${header:+-H "$header"} "$url" > "$WORK/$name.wrk" \
        || fail "wrk against $url did not run: $(cat "$WORK/$name.wrk")"
    kill -0 "$DAEMON" 2>/dev/null || fail "the daemon died under load"
}
# Requests/sec, the 99% latency in ms, and errors (non-2xx answers + socket errors) from wrk's output.
requests_per_second() { awk '/^Requests\/sec:/ { print $2 }' "$WORK/$1.wrk"; }
p99_ms() {
    awk '$1 == "99%" {
        value = $2; unit = value; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", value)
        factor = (unit == "us") ? 0.001 : (unit == "s") ? 1000 : (unit == "m") ? 60000 : 1
        printf "%.2f\n", value * factor
    }' "$WORK/$1.wrk"
}
errors() {
    awk '/Non-2xx or 3xx responses:/ { n += $NF } /Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' "$WORK/$1.wrk"
}

echo "Portal benchmark: wrk -t2 -c$CONNECTIONS, ${DURATION} s per run, $ROUNDS run(s) each, after a 2 s warm-up each"
start_sampler
load portal-warmup "$PORTAL_URL" 2 "$HOST_HEADER"
stop_sampler
load nginx-warmup "$NGINX_URL" 2
for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) -eq 1 ]; then order="portal nginx"; else order="nginx portal"; fi
    for server in $order; do
        if [ "$server" = portal ]; then
            start_sampler
            ticks="$(cpu_ticks)"
            load "portal-$round" "$PORTAL_URL" "$DURATION" "$HOST_HEADER"
            PORTAL_TICKS=$((PORTAL_TICKS + $(cpu_ticks) - ticks))
            stop_sampler
        else
            load "nginx-$round" "$NGINX_URL" "$DURATION"
        fi
        printf '  run %d %-6s  %10.0f req/s   p99 %7s ms   errors %s\n' "$round" "$server" \
            "$(requests_per_second "$server-$round")" "$(p99_ms "$server-$round")" "$(errors "$server-$round")"
    done
done
PEAK_RSS="$(sort -n "$WORK/rss.samples" | tail -1)"
HWM="$(field VmHWM)"
AFTER_RSS="$(field VmRSS)"

mean() { awk '{ s += $1; n++ } END { printf "%.0f\n", s / n }'; }
max() { sort -n | tail -1; }
PORTAL_RPS="$(for r in $(seq 1 "$ROUNDS"); do requests_per_second "portal-$r"; done | mean)"
NGINX_RPS="$(for r in $(seq 1 "$ROUNDS"); do requests_per_second "nginx-$r"; done | mean)"
PORTAL_P99="$(for r in $(seq 1 "$ROUNDS"); do p99_ms "portal-$r"; done | max)"
NGINX_P99="$(for r in $(seq 1 "$ROUNDS"); do p99_ms "nginx-$r"; done | max)"
PORTAL_ERRORS="$(for r in $(seq 1 "$ROUNDS"); do errors "portal-$r"; done | awk '{ s += $1 } END { print s + 0 }')"
NGINX_ERRORS="$(for r in $(seq 1 "$ROUNDS"); do errors "nginx-$r"; done | awk '{ s += $1 } END { print s + 0 }')"
PORTAL_REQUESTS="$(for r in $(seq 1 "$ROUNDS"); do awk '/ requests in / { print $1 }' "$WORK/portal-$r.wrk"; done | awk '{ s += $1 } END { print s + 0 }')"
CPU_PER_REQUEST="$(awk -v t="$PORTAL_TICKS" -v hz="$TICKS_PER_SECOND" -v n="$PORTAL_REQUESTS" 'BEGIN { printf "%.0f", (n > 0) ? t / hz * 1e6 / n : 0 }')"
RATIO="$(awk -v p="$PORTAL_RPS" -v n="$NGINX_RPS" 'BEGIN { printf "%.2f", (n > 0) ? p / n : 0 }')"
MET="$(awk -v r="$RATIO" 'BEGIN { print (r >= 0.5) ? "met" : "NOT met" }')"
mib() { awk -v kb="$1" 'BEGIN { printf "%.1f MiB", kb / 1024 }'; }

echo
echo "Summary (mean req/s of the measured runs, worst p99):"
printf '  %-28s %12s %12s\n' "" "portal" "nginx"
printf '  %-28s %12s %12s\n' "requests/s" "$PORTAL_RPS" "$NGINX_RPS"
printf '  %-28s %12s %12s\n' "p99 latency (ms)" "$PORTAL_P99" "$NGINX_P99"
printf '  %-28s %12s %12s\n' "bytes on the wire" "$((PORTAL_HEADER_BYTES + PORTAL_BODY_BYTES))" "$((NGINX_HEADER_BYTES + NGINX_BODY_BYTES))"
printf '  %-28s %12s %12s\n' "  headers + body" "$PORTAL_HEADER_BYTES + $PORTAL_BODY_BYTES" "$NGINX_HEADER_BYTES + $NGINX_BODY_BYTES"
printf '  %-28s %12s %12s\n' "errors (non-2xx, socket)" "$PORTAL_ERRORS" "$NGINX_ERRORS"
echo "  ratio portal/nginx: ${RATIO}x (target at least 0.5x: $MET)"
echo "  daemon CPU per request: ${CPU_PER_REQUEST} µs (user + system, over $PORTAL_REQUESTS requests)"
echo "  daemon CPU while idle (full simulated kit, no requests, ${IDLE_SECONDS}s): $IDLE_CPU_PER_HOUR"
echo "  daemon resident memory: idle $(mib "$IDLE_RSS"), peak while serving $(mib "$PEAK_RSS") (sampled every 0.2 s)," \
    "high-water mark $(mib "$HWM"), after the load $(mib "$AFTER_RSS")"
if [ "$PORTAL_ERRORS" -gt 0 ] || [ "$NGINX_ERRORS" -gt 0 ]; then
    echo "  warning: some requests were not answered 2xx/3xx or hit socket errors; wrk counts them in req/s"
fi
