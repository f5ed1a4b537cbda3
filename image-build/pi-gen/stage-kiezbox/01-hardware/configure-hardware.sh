#!/bin/sh
# Configures a Raspberry Pi OS root filesystem (with its boot partition under boot/firmware, or boot/ on older
# layouts) for a Kiezbox's sensors; what `raspi-config nonint do_i2c 0`, `do_serial_hw 0` and
# `do_serial_cons 1` do on a running Pi (docs/kit.md), as edits to files, so pi-gen runs it on the build host
# (no chroot, no emulation) and a test runs it on a directory.
#   I²C:    dtparam=i2c_arm=on in config.txt, i2c-dev loaded at boot (/dev/i2c-1 for the daemon).
#   serial: enable_uart=1 (Pi 3/4/Zero 2: GPIO 14/15 instead of nothing), dtparam=uart0=on for [pi5] (its GPIO
#           UART is off by default), and no login console on it: console=serial*/ttyAMA*/ttyS* removed from
#           cmdline.txt, serial-getty masked on ttyAMA0 and ttyS0 (the sensor owns the port).
# Idempotent: a second run changes nothing. Settings in model-specific sections ([cm4], [pi4]...) are left alone.
# Usage: configure-hardware.sh ROOTFS
set -eu

usage() { echo "usage: $0 ROOTFS (a Raspberry Pi OS root filesystem with boot/firmware/config.txt)" >&2; exit 2; }
fail() { echo "$0: error: $*" >&2; exit 1; }

[ $# -eq 1 ] || usage
rootfs=$1
[ -d "$rootfs/etc" ] || fail "$rootfs is not a root filesystem (no etc/)"

# bookworm and later: the FAT partition is boot/firmware, and boot/config.txt may be a symlink to it (pi-gen).
if [ -d "$rootfs/boot/firmware" ]; then boot=$rootfs/boot/firmware; else boot=$rootfs/boot; fi
config_txt=$boot/config.txt
cmdline_txt=$boot/cmdline.txt
[ -f "$config_txt" ] || fail "no config.txt in $boot"
[ -f "$cmdline_txt" ] || fail "no cmdline.txt in $boot"

# Replaces FILE's content with stdin if it differs, in place (keeps its mode and any symlink to it), and says
# so, with WHAT was set.
update_file() {
    file=$1 what=${2:-}
    new=$(mktemp)
    cat > "$new"
    if cmp -s "$new" "$file"; then
        echo "unchanged: $file${what:+ ($what)}"
    else
        cat "$new" > "$file"
        echo "changed:   $file${what:+ ($what)}"
    fi
    rm -f "$new"
}

# Makes KEY=VALUE (KEY like "enable_uart" or "dtparam=i2c_arm") the setting in config.txt's SECTION ("all": the
# lines before the first [filter] and in [all] sections). An active KEY=... line there is set to the value
# (the firmware takes the last one, so all of them are); else a commented "#KEY=VALUE" there is uncommented;
# else "[SECTION]" and the line are appended, followed by "[all]" again so later lines keep applying to all.
set_config_txt() {
    file=$1 section=$2 key=$3 value=$4
    awk -v section="$section" -v key="$key" -v value="$value" '
        function trimmed(text) { sub(/^[ \t]+/, "", text); sub(/[ \t\r]+$/, "", text); return text }
        BEGIN { want = key "=" value; current = "all"; count = 0 }
        {
            line[++count] = $0
            text = trimmed($0)
            if (text ~ /^\[[^]]*\]$/) {
                current = substr(text, 2, length(text) - 2)
                in_section[count] = 0
            } else {
                in_section[count] = (current == section)
            }
        }
        END {
            done = 0
            for (i = 1; i <= count; i++) {
                if (in_section[i] && index(trimmed(line[i]), key "=") == 1) { line[i] = want; done = 1 }
            }
            if (!done) {
                for (i = 1; i <= count; i++) {
                    text = trimmed(line[i])
                    if (!in_section[i] || substr(text, 1, 1) != "#") continue
                    sub(/^#[ \t]*/, "", text)
                    if (text == want) { line[i] = want; done = 1; break }
                }
            }
            for (i = 1; i <= count; i++) print line[i]
            if (!done) {
                if (current != section) print "[" section "]"
                print want
                if (section != "all") print "[all]"
            }
        }' "$file" | update_file "$file" "$key=$value in [$section]"
}

set_config_txt "$config_txt" all dtparam=i2c_arm on
set_config_txt "$config_txt" all enable_uart 1
set_config_txt "$config_txt" pi5 dtparam=uart0 on

# cmdline.txt is one line of space-separated kernel parameters; only the serial consoles go, the rest keeps its
# order. The firmware turns serial0 into ttyAMA0 or ttyS0 before the kernel sees it, so those names go too.
[ "$(wc -l < "$cmdline_txt")" -le 1 ] || fail "$cmdline_txt has more than one line; the firmware reads only the first: join them"
grep -q 'root=' "$cmdline_txt" || fail "$cmdline_txt has no root= parameter; it is not a Raspberry Pi OS cmdline.txt"
awk '{
        kept = ""
        for (i = 1; i <= NF; i++) {
            if ($i ~ /^console=(serial[0-9]+|ttyAMA[0-9]+|ttyS[0-9]+)(,.*)?$/) continue
            kept = (kept == "" ? $i : kept " " $i)
        }
        print kept
    }' "$cmdline_txt" | update_file "$cmdline_txt" "no serial console"

units=$rootfs/etc/systemd/system
mkdir -p "$units"
for tty in ttyAMA0 ttyS0; do
    unit=$units/serial-getty@$tty.service
    if [ "$(readlink "$unit" 2>/dev/null || true)" = /dev/null ]; then
        echo "unchanged: $unit (masked)"
    elif [ -e "$unit" ] || [ -L "$unit" ]; then
        fail "$unit exists and is not a mask; remove it or mask it by hand (systemctl mask serial-getty@$tty)"
    else
        ln -s /dev/null "$unit"
        echo "changed:   $unit (masked)"
    fi
done

mkdir -p "$rootfs/etc/modules-load.d"
printf '# /dev/i2c-N for the Kiezbox sensor daemon (kiezbox-image: 01-hardware)\ni2c-dev\n' \
    | update_file "$rootfs/etc/modules-load.d/kiezbox-i2c.conf" "i2c-dev loaded at boot"
