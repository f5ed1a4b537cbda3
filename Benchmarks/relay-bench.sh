#!/usr/bin/env bash
# Relay benchmark (part of `make bench`): a private mosquitto on 127.0.0.1; the relay drains READINGS buffered
# readings from a real store through the MQTT uplink, and the libmosquitto C reference publishes as many
# readings one per message, both at QoS 1 waiting for every PUBACK.
#
#   Benchmarks/relay-bench.sh [READINGS]        (default 100000)
#
# Environment: PORT (broker port, default 18883); NODELAY=true to give the broker `set_tcp_nodelay true`
# (mosquitto's default is false: its PUBACKs then wait for the client's delayed TCP ACK, ~40 ms, whenever the
# client has nothing more to send, i.e. at the end of every deliver call).
# #
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

BIN="$(swift build -c release --show-bin-path)"
"$BIN/RelayBench" --port "$PORT" --readings "$READINGS" --reference "$BIN/MosquittoReference"
