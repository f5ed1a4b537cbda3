# Shared by the benchmarks that run the real daemon (sourced, not run): `fail` and `free_port`. Expects WORK
# (the benchmark's temporary directory, where the daemon logs to daemon.log).

# Says what went wrong, with the end of the daemon's log, and exits.
fail() {
    echo "error: $*" >&2
    if [ -f "$WORK/daemon.log" ]; then echo "--- last lines of the daemon's log:" >&2; tail -20 "$WORK/daemon.log" >&2; fi
    exit 1
}

# A loopback port nothing listens on (a connection to it is refused).
free_port() {
    local port
    for _ in $(seq 1 200); do
        port=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
    done
    fail "no free loopback port found"
}
