#!/usr/bin/env bash
# MQTT uplink benchmark: a private mosquitto on 127.0.0.1, then MQTTUplink (Swift) and the libmosquitto C
# reference publish the same number of readings with QoS 1 and wait for every PUBACK.
#
#   Benchmarks/run-mqtt-bench.sh [READINGS]        (default 100000)
#
# Environment: PORT (broker port, default 18883); NODELAY=true to give the broker `set_tcp_nodelay true`
# (mosquitto's default is false: its PUBACKs then wait for the client's delayed TCP ACK, ~40 ms, whenever the
# client has nothing more to send, i.e. at the end of every deliver call); SINGLE=1 to also run MQTTUplink
# with one reading per message (slow without NODELAY=true: one such wait per 20 messages).
#
# Needs: mosquitto, libmosquitto-dev, a C compiler, swift.
set -euo pipefail
cd "$(dirname "$0")/.."
READINGS="${1:-100000}"
PORT="${PORT:-18883}"
WORK="$(mktemp -d)"
BROKER=""
cleanup() {
    if [ -n "$BROKER" ]; then kill "$BROKER" 2>/dev/null || true; wait "$BROKER" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

cat > "$WORK/mosquitto.conf" <<CONF
listener $PORT 127.0.0.1
allow_anonymous true
persistence false
log_dest none
set_tcp_nodelay ${NODELAY:-false}
CONF
# Started as root, mosquitto switches to the mosquitto user; it needs nothing from $WORK after startup.
/usr/sbin/mosquitto -c "$WORK/mosquitto.conf" &
BROKER=$!
for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
    sleep 0.05
done

cc -O2 -Wall -o "$WORK/mosquitto-reference" Benchmarks/MosquittoReference/main.c -lmosquitto -lpthread
swift build -c release --product MQTTUplinkBenchmark >/dev/null
BIN="$(swift build -c release --show-bin-path)"

"$BIN/MQTTUplinkBenchmark" --port "$PORT" --readings "$READINGS"
if [ "${SINGLE:-0}" = 1 ]; then
    "$BIN/MQTTUplinkBenchmark" --port "$PORT" --readings "$READINGS" --per-message 1
fi
"$WORK/mosquitto-reference" 127.0.0.1 "$PORT" "$READINGS"
