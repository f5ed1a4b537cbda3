#!/usr/bin/env bash
# boot-test.sh — the appliance boot test: boot a Debian 13 system with systemd in QEMU, install kiezbox's .deb
# there as a resident would, and check from outside the VM what the package promises, then walk through a
# blackout.
#
# Usage: scripts/appliance-vm/boot-test.sh [options] KIEZBOX_DEB
#
#   --swift-runtime DIR  the Swift libraries a test build of kiezbox links dynamically (the toolchain's
#                        usr/lib/swift/linux); they are put at the same path in the VM. Not needed for the
#                        release build, which has the Swift runtime linked in.
#   --timeout SECONDS    hang guard for the whole run (default 1200)
#   --keep               keep the work directory (console log, disk overlay) and print where it is
#
# Checks, in order (each prints "ok", or "FAIL" with what was seen, and figures where there are some):
#   the package installs offline with apt-get, creating the kiezbox user and the i2c/gpio groups;
#   kiezbox.service is active only after READY=1, with a StatusText; systemd-analyze security ≤ 2.0;
#   the portal answers on port 80 through the VM's network; reinstalling keeps the resident's configuration;
#   the service user can start no unit itself; a daemon frozen with SIGSTOP is restarted by the watchdog;
#   a blackout (the gpio-sim mains line drops) puts the box in crisis mode and the emergency Wi-Fi comes up
#   through kiezbox-mode.path: a second simulated radio in a network namespace plays a neighbour's phone,
#   associates, gets a lease with option 114, is redirected to the portal and cannot reach sshd;
#   mains back: the Wi-Fi goes down again; purge leaves no user, group, unit, configuration or data behind.
#
# Exit status: 0 when every check passed, 1 when one failed, 124 on the hang guard, 126 when the VM could not
# be prepared or started (the checks never ran), 2 on a usage error.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../kernel-vm/lib.sh
. "$here/../kernel-vm/lib.sh"

swift_runtime=
timeout_seconds=1200
keep=0
deb=
while (($#)); do
	case $1 in
	--swift-runtime) swift_runtime=${2:?--swift-runtime needs a directory}; shift ;;
	--timeout) timeout_seconds=${2:?--timeout needs seconds}; shift ;;
	--keep) keep=1 ;;
	-h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
	-*) echo "boot-test: unknown option $1 (see --help)" >&2; exit 2 ;;
	*) deb=$1 ;;
	esac
	shift
done
[[ -f $deb ]] || { echo "boot-test: no .deb given or not found: '$deb' (see --help)" >&2; exit 2; }

say() { printf 'appliance: %s\n' "$*"; }
failures=0
checks=0
fail() { say "FAIL $*"; failures=$((failures + 1)); checks=$((checks + 1)); }
ok() { say "ok   $*"; checks=$((checks + 1)); }
cannot_start() { say "cannot start the VM: $*" >&2; exit 126; }

entry=$("$here/prepare.sh") || exit $?
started=$(kvm_now)
work=$(mktemp -d "${TMPDIR:-/tmp}/kiezbox-appliance.XXXXXX")
qemu_pid=
cleanup() {
	# SIGKILL: the overlay is thrown away, and a SIGTERM may be blocked in a mask inherited from the caller.
	if [[ -n $qemu_pid ]] && kill -KILL "$qemu_pid" 2>/dev/null; then wait "$qemu_pid" 2>/dev/null || true; fi
	if ((keep)); then say "work directory kept: $work"; else rm -rf "$work"; fi
}
# The hang guard: the whole run ends with 124 once it is over time, whatever step it is in. It ends the
# script's children first (a hung ssh, QEMU), so that the TERM trap runs at once. Its own output goes nowhere:
# a sleep holding the caller's pipe would keep the caller reading after the script has ended.
(
	exec </dev/null >/dev/null 2>&1
	sleep "$timeout_seconds"
	touch "$work/hang-guard"
	pkill -KILL -P $$
	kill -TERM $$
) &
guard=$!
# The exit trap keeps the script's status: nothing in it may fail the script (the guard may be gone already).
trap 'status=$?; set +e; pkill -KILL -P "$guard" 2>/dev/null; kill -KILL "$guard" 2>/dev/null; cleanup; exit "$status"' EXIT
trap 'say "hang guard: still running after $timeout_seconds s" >&2; exit 124' TERM

# --- The VM's disks: a throw-away overlay of the cached root filesystem, and a read-only disk with the test's
# files (the package, and a test build's Swift libraries).
qemu-img create -q -f qcow2 -F raw -b "$entry/rootfs.img" "$work/root.qcow2" || cannot_start "qemu-img failed"
mkdir -p "$work/files/kiezbox-test"
cp "$deb" "$work/files/kiezbox-test/"
cp "$here/../../packaging/tests/privilege-check.sh" "$work/files/kiezbox-test/"
if [[ -n $swift_runtime ]]; then
	mkdir -p "$work/files/swift-runtime"
	cp -L "$swift_runtime"/*.so* "$work/files/swift-runtime/"
	printf '%s\n' "$swift_runtime" >"$work/files/kiezbox-test/swift-runtime-path"
fi
mkfs.ext4 -q -F -L kiezbox-test -d "$work/files" "$work/files.img" 1G || cannot_start "mkfs.ext4 of the test disk failed"

# --- Boot. KVM only where it can run Debian's kernel: not on PVM hosts (kvm_pvm), where the guest hangs.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ssh_port=$(free_port)
http_port=$(free_port)
accel=(-accel tcg,thread=multi -cpu max)
if [[ -r /dev/kvm && -w /dev/kvm ]] && { [[ -d /sys/module/kvm_intel ]] || [[ -d /sys/module/kvm_amd ]]; }; then
	accel=(-accel kvm -cpu host)
fi
say "booting Debian 13 ($(sed -n 's/.*kernel=//p' "$entry/ready")) with ${accel[1]%%,*}"
qemu-system-x86_64 "${accel[@]}" -machine q35 -smp 2 -m 1536 -nodefaults -no-reboot \
	-display none -serial "file:$work/console.log" \
	-kernel "$entry/vmlinuz" -initrd "$entry/initrd.img" \
	-append "root=/dev/vda rw console=ttyS0 net.ifnames=0 panic=-1 systemd.show_status=false" \
	-drive "file=$work/root.qcow2,if=virtio,format=qcow2,cache=unsafe" \
	-drive "file=$work/files.img,if=virtio,format=raw,readonly=on" \
	-netdev "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:$ssh_port-:22,hostfwd=tcp:127.0.0.1:$http_port-:80" \
	-device virtio-net-pci,netdev=net0 -serial null >"$work/qemu.log" 2>&1 &
qemu_pid=$!

ssh_options=(-i "$entry/id_ed25519" -p "$ssh_port" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
	-o LogLevel=ERROR -o ConnectTimeout=10 -o BatchMode=yes -o ServerAliveInterval=15 -o ServerAliveCountMax=8)
guest() { ssh "${ssh_options[@]}" root@127.0.0.1 "$@"; }
until guest true 2>/dev/null; do
	kill -0 "$qemu_pid" 2>/dev/null || { tail -n 20 "$work/console.log" >&2; cannot_start "QEMU exited during boot"; }
	sleep 2
done
boot_seconds=$(kvm_since "$started")
say "VM up, sshd answering after $boot_seconds s"

# Runs a step's shell script in the guest, stdout to the caller.
guest_script() { guest "bash -s" <<<"set -euo pipefail; $1"; }
# Waits in the guest until a command succeeds: a hang guard of LIMIT seconds, never a schedule.
# Prints the seconds it took.
guest_wait() {
	local limit=$1 command=$2
	guest_script "start=\$(date +%s.%N); for _ in \$(seq $((limit * 5))); do if $command; then
		awk -v s=\$start -v n=\$(date +%s.%N) 'BEGIN { printf \"%.1f\", n - s }'; exit 0; fi; sleep 0.2; done; exit 1"
}

# --- 1. Install, as a resident would: apt-get with the .deb, offline (the VM has no route out, so every
# dependency must come from what the system has).
guest_script '
	mkdir -p /mnt/kiezbox-test && mount -o ro LABEL=kiezbox-test /mnt/kiezbox-test
	if [ -f /mnt/kiezbox-test/kiezbox-test/swift-runtime-path ]; then
		target=$(cat /mnt/kiezbox-test/kiezbox-test/swift-runtime-path)
		mkdir -p "$target" && mount --bind /mnt/kiezbox-test/swift-runtime "$target"
	fi'
groups_before=$(guest "getent group i2c gpio | cut -d: -f1 | tr '\n' ' '")
install_started=$(kvm_now)
if guest "DEBIAN_FRONTEND=noninteractive apt-get install -y -q /mnt/kiezbox-test/kiezbox-test/*.deb" >"$work/install.log" 2>&1; then
	ok "apt-get install ./$(basename "$deb") offline ($(kvm_since "$install_started") s)"
else
	fail "apt-get install: $(tail -n 5 "$work/install.log" | tr '\n' ' ')"
fi
if guest 'getent passwd kiezbox && getent group i2c && getent group gpio && id -nG kiezbox | grep -qw gpio' >/dev/null; then
	ok "user kiezbox in groups $(guest 'id -nG kiezbox'); groups before install: '${groups_before}'"
else
	fail "kiezbox user or i2c/gpio groups missing"
fi

# --- 2. The resident configures the box: the mains-fail input on the simulated GPIO bank, a battery monitor
# (INA219) on the simulated I²C bus, a particulate sensor on the second serial port (nothing answers there), the
# portal on port 80, the emergency Wi-Fi on the first simulated radio; short blackout times so the walk-through
# is quick.
guest_script '
	bus=
	for adapter in /sys/class/i2c-dev/i2c-*; do
		[ "$(cat "$adapter/name")" = "SMBus stub driver" ] && bus=/dev/$(basename "$adapter")
	done
	cat >/etc/kiezbox/kiezbox.toml <<EOF
[box]
id = "appliance-01"
district = "test-kiez"
name = "Kiezbox appliance test"
latitude = 52.4996
longitude = 13.4318

[store]
data_dir = "/var/lib/kiezbox"

[[sensor]]
id = "mains"
chip = "mains-fail"
gpio_chip = "kiezbox-sim"
line = 0
debounce = "200ms"
interval = "2s"

[[sensor]]
id = "battery"
chip = "ina219"
bus = "$bus"
address = 0x40
shunt_ohms = 0.1
max_current = 3.2
interval = "2s"

[[sensor]]
id = "particulates"
chip = "sds011"
port = "/dev/ttyS1"
interval = "1m"

[portal]
port = 80
listen = "0.0.0.0"
hostname = "kiez.box"

[mode]
state_file = "/run/kiezbox/mode"
crisis_after = "0s"
normal_after = "3s"

[wifi]
interface = "wlan0"
ssid = "Kiezbox Notfall-WLAN"
country = "DE"
EOF
	kiezbox config check /etc/kiezbox/kiezbox.toml
	kiezbox wifi config --out /etc/kiezbox/wifi >/dev/null
	systemctl restart kiezbox' || fail "configuring the box"
if seconds=$(guest_wait 120 '[ "$(systemctl is-active kiezbox)" = active ]'); then
	ok "kiezbox.service active (READY=1) $seconds s after restart"
else
	fail "kiezbox.service not active: $(guest 'systemctl status --no-pager kiezbox 2>&1 | tail -n 15')"
fi
status_text=$(guest 'systemctl show -p StatusText --value kiezbox')
if [[ -n $status_text ]]; then ok "StatusText: $status_text"; else fail "no StatusText"; fi

# The sandbox (DevicePolicy=closed, DeviceAllow= by class) still lets the daemon at its devices: the INA219 on
# I²C and the GPIO line read, the serial port opens (the SDS011 there fails for want of an answer, not of
# permission).
if status_text=$(guest_wait 120 'systemctl show -p StatusText --value kiezbox | grep -q "sensors 2/3 ok (particulates failing)"'); then
	ok "devices reached from the sandbox: $(guest 'systemctl show -p StatusText --value kiezbox')"
else
	fail "sensors not read in the sandbox: $(guest 'systemctl show -p StatusText --value kiezbox')"
fi
denied=$(guest 'journalctl -u kiezbox --no-pager | grep -i -E "no permission|not permitted|permission denied" | tail -n 3' || true)
if [[ -z $denied ]]; then ok "no device access refused (I²C, GPIO, serial)"; else fail "device access refused: $denied"; fi

exposure=$(guest 'systemd-analyze security kiezbox.service 2>/dev/null | sed -n "s/.*Overall exposure level for kiezbox.service: \([0-9.]*\).*/\1/p"')
if [[ -n $exposure ]] && awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }'; then
	ok "systemd-analyze security kiezbox.service: exposure $exposure (at most 2.0)"
else
	fail "systemd-analyze security exposure '$exposure' (wanted at most 2.0)"
fi

# --- 3. The portal through the VM's network (port 80, forwarded from the host's loopback).
code=$(curl -s -o "$work/page.html" -w '%{http_code}' --max-time 30 -H 'Host: kiez.box' "http://127.0.0.1:$http_port/" || true)
if [[ $code == 200 ]] && grep -q 'Kiezbox appliance test' "$work/page.html"; then
	ok "portal on port 80 answers the host: HTTP $code, $(wc -c <"$work/page.html") bytes"
else
	fail "portal on port 80: HTTP '$code'"
fi

# --- 4. A second install keeps the resident's configuration (a conffile).
before=$(guest 'md5sum </etc/kiezbox/kiezbox.toml')
guest "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall /mnt/kiezbox-test/kiezbox-test/*.deb" >>"$work/install.log" 2>&1 ||
	fail "reinstall: $(tail -n 5 "$work/install.log" | tr '\n' ' ')"
after=$(guest 'md5sum </etc/kiezbox/kiezbox.toml')
if [[ $before == "$after" ]]; then ok "reinstall kept the edited /etc/kiezbox/kiezbox.toml"; else fail "reinstall changed the configuration"; fi
guest_wait 120 '[ "$(systemctl is-active kiezbox)" = active ]' >/dev/null || fail "kiezbox not active after the reinstall"

# --- 5. Least privilege (packaging/tests/privilege-check.sh): the service user can start or stop no unit, not
# even the emergency Wi-Fi, also under NoNewPrivileges=yes, and refused for want of permission; only through its
# mode file does the Wi-Fi come up (crisis) and go down (normal, or garbage in the file).
if guest 'sh /mnt/kiezbox-test/kiezbox-test/privilege-check.sh' >"$work/privilege.log" 2>&1; then
	ok "least privilege: $(grep -c '^ok' "$work/privilege.log") checks of packaging/tests/privilege-check.sh (the service user may not systemctl start/stop ssh.service or the Wi-Fi target; its mode file drives the Wi-Fi)"
else
	fail "least privilege: $(grep -E '^FAIL|failed' "$work/privilege.log" | tr '\n' ' ')"
fi

# --- 6. The watchdog: a frozen daemon (SIGSTOP) stops its pings and systemd restarts it.
watchdog=$(guest 'systemctl show -p WatchdogUSec --value kiezbox')
old_pid=$(guest 'systemctl show -p MainPID --value kiezbox')
guest "kill -STOP $old_pid"
if seconds=$(guest_wait 180 "pid=\$(systemctl show -p MainPID --value kiezbox); [ \"\$pid\" != 0 ] && [ \"\$pid\" != $old_pid ] && [ \"\$(systemctl is-active kiezbox)\" = active ]"); then
	ok "frozen daemon (pid $old_pid) restarted by the watchdog ($watchdog) and ready again after $seconds s"
else
	fail "no watchdog restart: $(guest 'journalctl -u kiezbox --no-pager | tail -n 10')"
fi
guest 'journalctl -u kiezbox --no-pager | grep -q -i "watchdog timeout"' || fail "the journal does not name the watchdog"

# --- 7. The blackout: the mains-fail line drops. Crisis mode, the portal in crisis, the emergency Wi-Fi up.
edge_to_crisis=$(guest_script '
	pull=$(echo /sys/devices/platform/$(cat /sys/kernel/config/gpio-sim/kiezbox/dev_name)/gpiochip*/sim_gpio0/pull)
	start=$(date +%s.%N)
	echo pull-down >"$pull"
	for _ in $(seq 600); do
		if curl -s --max-time 5 -H "Host: kiez.box" http://127.0.0.1/ | grep -q "id=\"crisis\""; then
			awk -v s=$start -v n=$(date +%s.%N) "BEGIN { printf \"%.1f\", n - s }"; exit 0
		fi
		sleep 0.2
	done; exit 1') || true
if [[ -n $edge_to_crisis ]]; then
	ok "mains-fail edge to the portal answering in crisis mode: $edge_to_crisis s"
else
	fail "no crisis mode after the mains line dropped: $(guest 'journalctl -u kiezbox --no-pager | tail -n 10')"
fi
if seconds=$(guest_wait 120 '[ "$(systemctl is-active kiezbox-emergency-wifi.target)" = active ] && [ "$(systemctl is-active kiezbox-hostapd)" = active ] && [ "$(systemctl is-active kiezbox-dnsmasq)" = active ]'); then
	ok "emergency Wi-Fi up $seconds s later (mode file by $(guest 'stat -c %U /run/kiezbox/mode'), started by kiezbox-mode.path)"
else
	fail "emergency Wi-Fi not up: $(guest 'systemctl status --no-pager kiezbox-mode.service kiezbox-emergency-wifi.target kiezbox-hostapd kiezbox-dnsmasq 2>&1 | tail -n 25')"
fi

# --- 8. A neighbour's phone: the second radio, in a network namespace of its own.
phone=$(guest_script '
	ip netns add phone
	phy=$(cat /sys/class/net/wlan1/phy80211/name)
	iw phy "$phy" set netns name phone
	in_phone() { ip netns exec phone "$@"; }
	in_phone ip link set lo up
	in_phone ip link set wlan1 up
	mkdir -p /tmp/phone /etc/netns/phone
	# ip netns exec bind-mounts /etc/netns/phone/resolv.conf over /etc/resolv.conf, which must exist for that.
	[ -e /etc/resolv.conf ] || : >/etc/resolv.conf
	printf "ctrl_interface=/tmp/phone/ctrl\nnetwork={\n ssid=\"Kiezbox Notfall-WLAN\"\n key_mgmt=NONE\n}\n" >/tmp/phone/wpa.conf
	in_phone wpa_supplicant -B -i wlan1 -c /tmp/phone/wpa.conf -P /tmp/phone/wpa.pid >/dev/null
	for _ in $(seq 300); do in_phone iw dev wlan1 link | grep -q "^Connected" && break; sleep 0.2; done
	in_phone iw dev wlan1 link | grep -q "^Connected" || { echo "no-association"; exit 0; }
	cat >/tmp/phone/lease.sh <<EOF
#!/bin/sh
case "\$1" in bound|renew)
	ip addr add "\$ip/\$mask" dev "\$interface"
	printf "nameserver %s\n" "\$dns" >/etc/netns/phone/resolv.conf
	printf "ip=%s router=%s opt114=%s\n" "\$ip" "\$router" "\$opt114" >/tmp/phone/lease.txt ;;
esac
EOF
	chmod +x /tmp/phone/lease.sh
	in_phone busybox udhcpc -i wlan1 -q -n -t 10 -O 114 -s /tmp/phone/lease.sh >/dev/null 2>&1 || { echo "no-lease"; exit 0; }
	cat /tmp/phone/lease.txt
	probe=$(in_phone curl -s -o /dev/null --max-time 10 -w "%{http_code} %{redirect_url}" http://connectivitycheck.gstatic.com/generate_204 || true)
	echo "probe=$probe"
	router=$(sed -n "s/.*router=\([^ ]*\).*/\1/p" /tmp/phone/lease.txt)
	if in_phone nc -z -w 5 "$router" 22; then echo "ssh=reachable"; else echo "ssh=refused"; fi') || true
say "phone: $(tr '\n' ' ' <<<"$phone")"
portal_hex=$(printf 'http://kiez.box/api/captive' | od -An -tx1 | tr -d ' \n')
if grep -q "opt114=$portal_hex" <<<"$phone"; then ok "phone associated and got a lease with option 114 (http://kiez.box/api/captive)"; else fail "phone: no lease with option 114"; fi
if grep -q 'probe=302 http://kiez.box/' <<<"$phone"; then ok "phone's connectivity probe redirected to the portal"; else fail "phone's probe not redirected to the portal"; fi
if grep -q 'ssh=refused' <<<"$phone"; then ok "phone cannot reach sshd on the box"; else fail "phone reached sshd on the box"; fi

# --- 9. Mains back: normal mode, the emergency Wi-Fi goes down.
guest 'echo pull-up >$(echo /sys/devices/platform/$(cat /sys/kernel/config/gpio-sim/kiezbox/dev_name)/gpiochip*/sim_gpio0/pull)'
if seconds=$(guest_wait 120 '[ "$(cat /run/kiezbox/mode)" = normal ] && ! systemctl -q is-active kiezbox-emergency-wifi.target && ! systemctl -q is-active kiezbox-hostapd'); then
	ok "mains back: normal mode, emergency Wi-Fi down after $seconds s"
else
	fail "the emergency Wi-Fi stayed up after mains came back"
fi

# --- 10. Purge removes what the package created.
guest "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q kiezbox" >>"$work/install.log" 2>&1 || fail "purge: $(tail -n 5 "$work/install.log" | tr '\n' ' ')"
leftovers=$(guest_script '
	getent passwd kiezbox >/dev/null && echo "user kiezbox"
	getent group kiezbox >/dev/null && echo "group kiezbox"
	getent group i2c >/dev/null && echo "group i2c"
	getent group gpio >/dev/null && echo "group gpio"
	ls /usr/lib/systemd/system/kiezbox* /etc/systemd/system/*/kiezbox* 2>/dev/null | grep -v kiezbox-test-hardware
	[ -e /var/lib/kiezbox ] && echo /var/lib/kiezbox
	[ -e /etc/kiezbox ] && echo /etc/kiezbox
	[ -e /run/kiezbox ] && echo /run/kiezbox
	systemctl list-units --all --plain --no-legend "kiezbox*" | grep -v "not-found" | grep -v kiezbox-test || true') || true
if [[ -z $leftovers ]]; then ok "purge left no user, group, unit, configuration or data"; else fail "purge left: $(tr '\n' ' ' <<<"$leftovers")"; fi

if ((failures == 0)); then
	say "all $checks checks passed in $(kvm_since "$started") s (boot $boot_seconds s)"
else
	say "$failures of $checks checks failed ($(kvm_since "$started") s)"
fi
((failures == 0))
