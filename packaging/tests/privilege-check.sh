#!/bin/sh
# Run as root on an installed box (scripts/appliance-vm/boot-test.sh runs it in the VM): proves that the daemon's user can change its mode
# file and nothing else. As user kiezbox, `systemctl start|stop` of any unit is refused; writing "crisis" to
# /run/kiezbox/mode (as the daemon does: a new file renamed over it) brings kiezbox-emergency-wifi.target up
# through kiezbox-mode.path, and "normal" takes it down. The file's previous content is put back at the end.
#
#   sudo sh packaging/tests/privilege-check.sh        exit status 0: every check passed
set -u

user=kiezbox
mode_file=/run/kiezbox/mode
target=kiezbox-emergency-wifi.target
failures=0

pass() { echo "ok    $*"; }
fail() { echo "FAIL  $*"; failures=$((failures + 1)); }

as_user() { runuser -u "$user" -- "$@"; }

# Replaces the mode file as the daemon does, as the daemon's user.
write_mode() {
    # shellcheck disable=SC2016 # expanded by the inner shell
    as_user sh -c 'printf "%s\n" "$1" > "$2.tmp" && mv -f "$2.tmp" "$2"' sh "$1" "$mode_file"
}

# Waits up to 30 s for the target to reach the state `systemctl is-active` reports.
wait_for() {
    i=0
    while [ "$i" -lt 60 ]; do
        [ "$(systemctl is-active "$target")" = "$1" ] && return 0
        sleep 0.5
        i=$((i + 1))
    done
    return 1
}

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
id "$user" >/dev/null 2>&1 || { echo "no user $user: is the package installed?" >&2; exit 2; }
systemctl is-active --quiet kiezbox-mode.path || fail "kiezbox-mode.path is not active (systemctl enable --now kiezbox-mode.path)"

# Whether "$@" (a systemctl call) fails for lack of permission, not for another reason such as a missing unit.
refused() {
    output=$("$@" 2>&1) && return 1
    case $output in
        *"Access denied"* | *"authentication required"* | *"not permitted"* | *"Permission denied"*) return 0 ;;
        *) echo "      (failed, but not for permission: $output)"; return 1 ;;
    esac
}

# 1. The daemon's user manages no unit, neither an arbitrary one nor the Wi-Fi itself.
for unit in ssh.service "$target"; do
    for verb in start stop; do
        if refused as_user systemctl --no-ask-password "$verb" "$unit"; then
            pass "user $user may not systemctl $verb $unit"
        else
            fail "user $user was not refused systemctl $verb $unit"
        fi
    done
done
# The same under NoNewPrivileges=yes, as the daemon runs (systemd-run waits and passes the output through).
if refused systemd-run --quiet --wait --pipe --uid="$user" -p NoNewPrivileges=yes \
    /usr/bin/systemctl --no-ask-password start ssh.service; then
    pass "user $user under NoNewPrivileges=yes may not start ssh.service"
else
    fail "user $user under NoNewPrivileges=yes was not refused starting ssh.service"
fi

# 2. The mode file drives the target.
saved=
[ -f "$mode_file" ] && saved=$(cat "$mode_file")
if [ ! -d "$(dirname "$mode_file")" ]; then
    # The daemon is not running (systemd removes its RuntimeDirectory): make the directory it would have.
    install -d -o "$user" -g "$user" -m 0755 "$(dirname "$mode_file")"
fi
write_mode crisis
if wait_for active; then pass "crisis in $mode_file started $target"; else fail "crisis in $mode_file did not start $target"; fi
write_mode normal
if wait_for inactive; then pass "normal in $mode_file stopped $target"; else fail "normal in $mode_file did not stop $target"; fi
write_mode "crisis; reboot"
sleep 2
if [ "$(systemctl is-active "$target")" = inactive ]; then pass "garbage in $mode_file keeps $target stopped"; else fail "garbage in $mode_file started $target"; fi

if [ -n "$saved" ]; then
    write_mode "$saved"
    echo "restored $mode_file: $saved"
fi
echo "journal of kiezbox-mode.service:"
journalctl -u kiezbox-mode.service -n 8 --no-pager -o cat
[ "$failures" = 0 ] && echo "all checks passed" || echo "$failures check(s) failed"
[ "$failures" = 0 ]
