#!/usr/bin/env bash
# prepare.sh — make (once, then cached) a Debian 13 "trixie" system with systemd that the appliance boot test
# boots in QEMU, and print the directory of the prepared entry:
#
#   <cache>/<entry>/vmlinuz, initrd.img   Debian 13's kernel and its initramfs, from the root filesystem
#   <cache>/<entry>/rootfs.img            a raw ext4 image of the root filesystem (each test boots a copy-on-write
#                                         overlay of it, so the cached image never changes)
#   <cache>/<entry>/id_ed25519            the key the test logs in with (root, from 127.0.0.1 only)
#   <cache>/<entry>/ready                 written last: the recipe version and the kernel version
#
# The root filesystem is what a Raspberry Pi OS Lite box has that matters here: systemd, udev, D-Bus, polkit,
# sshd, NetworkManager's absence aside the same Wi-Fi tools (hostapd, dnsmasq, nftables, iw, wpa_supplicant),
# and the libraries kiezbox's package depends on, so that `apt-get install ./kiezbox_….deb` needs no network.
# Test fixtures it adds (and a box would not have): gpio-sim built for its kernel, a unit that sets up a
# simulated GPIO bank and two simulated Wi-Fi radios (mac80211_hwsim), and busybox for the "phone".
#
# Everything fetched comes from the Debian archive (mmdebstrap, apt-get). On failure the script exits 126 with
# the reason, and leaves no half-built entry behind.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../kernel-vm/lib.sh
. "$here/../kernel-vm/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../kernel-vm/gpio-sim.sh
. "$here/../kernel-vm/gpio-sim.sh"

# Bump when the way an entry is built changes, so old entries are rebuilt.
readonly RECIPE=3
readonly SUITE=trixie
readonly MIRROR=${KIEZBOX_APPLIANCE_MIRROR:-http://deb.debian.org/debian}
readonly HOST_PACKAGES=(mmdebstrap qemu-system-x86 qemu-utils e2fsprogs openssh-client dpkg-dev)

# What a Raspberry Pi OS Lite box brings that the test relies on, and kiezbox's run-time libraries.
readonly GUEST_PACKAGES=(
	systemd-sysv udev dbus polkitd openssh-server adduser kmod procps iproute2 netcat-openbsd curl
	hostapd dnsmasq-base nftables iw wpasupplicant busybox
	libsqlite3-0 libmosquitto1 libi2c0 libcurl4t64 libstdc++6
	linux-image-amd64 initramfs-tools
)
# Only for building gpio-sim.ko against the guest's kernel; removed afterwards.
readonly BUILD_PACKAGES=(linux-headers-amd64 gcc make)

appliance_log() { printf 'appliance-vm: %s\n' "$*" >&2; }
cannot_prepare() {
	printf 'appliance-vm: cannot prepare the VM: %s\n' "$*" >&2
	exit "$KVM_EXIT_CANNOT_START"
}

appliance_cache_dir() {
	printf '%s\n' "${KIEZBOX_APPLIANCE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kiezbox-appliance-vm}"
}

# Runs a command inside the root filesystem with /proc, /sys and /dev mounted (unmounted again afterwards).
in_rootfs() {
	local root=$1
	shift
	mount -t proc proc "$root/proc"
	mount --rbind /sys "$root/sys"
	mount --rbind /dev "$root/dev"
	local status=0
	chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
		DEBIAN_FRONTEND=noninteractive "$@" || status=$?
	umount -R "$root/dev" "$root/sys" "$root/proc" 2>/dev/null || umount -lR "$root/dev" "$root/sys" "$root/proc"
	return "$status"
}

# The Debian system as mmdebstrap makes it, kept as a tarball of its own: the slowest step (several minutes on
# a busy machine) is not repeated when a later step changes or fails.
base_tarball() {
	local cache=$1 tarball packages
	packages="$(IFS=,; echo "${GUEST_PACKAGES[*]},${BUILD_PACKAGES[*]}")"
	tarball=$cache/$SUITE-base-$(printf '%s' "$packages" | md5sum | cut -c1-12).tar
	if [[ ! -f $tarball ]]; then
		appliance_log "mmdebstrap $SUITE (2 to 10 minutes, once)"
		# The package lists stay: gpio-sim's build fetches the kernel source package with apt-get.
		mmdebstrap --variant=minbase --components=main --include="$packages" --skip=cleanup/apt/lists \
			"$SUITE" "${tarball%.tar}.partial.tar" "$MIRROR" >>"$log" 2>&1 ||
			cannot_prepare "mmdebstrap $SUITE failed: $(tail -n 5 "$log" | tr '\n' ' ')"
		# mmdebstrap writes a tarball because the name ends in .tar.
		mv "${tarball%.tar}.partial.tar" "$tarball"
	fi
	printf '%s\n' "$tarball"
}

build_rootfs() {
	local root=$1 tarball=$2
	mkdir -p "$root"
	tar -xpf "$tarball" -C "$root" --numeric-owner || cannot_prepare "unpacking $tarball failed"
	echo kiezbox-appliance >"$root/etc/hostname"
}

# gpio-sim for the guest's kernel, built inside the root filesystem against its own headers and compiler
# (Debian 13's kernel is built with gcc 14, which the Debian 12 host does not have).
build_gpio_sim() {
	local root=$1 work=$2 abi version source_package tree module
	abi=$(basename "$(find "$root/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n 1)")
	[[ -n $abi && -d $root/lib/modules/$abi/build ]] || cannot_prepare "no kernel headers in the root filesystem"
	version=$(chroot "$root" dpkg-query -W -f='${Version}' "linux-image-$abi")
	source_package=linux-source-$(cut -d. -f1,2 <<<"$abi")
	cp /etc/resolv.conf "$root/etc/resolv.conf"
	in_rootfs "$root" sh -c "cd /tmp && apt-get download -q $source_package=$version" >>"$log" 2>&1 ||
		cannot_prepare "apt-get download $source_package=$version failed: $(tail -n 3 "$log" | tr '\n' ' ')"
	tree=$work/gpio-sim
	gpio_sim_extract_sources "$(echo "$root/tmp/${source_package}_"*.deb)" "$source_package" "$tree" ||
		cannot_prepare "$source_package $version lacks gpio-sim.c, gpiolib.h or irq_sim.c"
	rm -f "$root/tmp/${source_package}_"*.deb
	module=$root/tmp/gpio-sim-module
	gpio_sim_assemble_module "$tree" "$module" ||
		cannot_prepare "irq_sim.c of $version no longer matches the irq_to_desc fix (scripts/kernel-vm/README.md)"
	in_rootfs "$root" make -s -C "/lib/modules/$abi/build" M=/tmp/gpio-sim-module modules >>"$log" 2>&1 ||
		cannot_prepare "building gpio-sim.ko for $abi failed: $(grep -m 3 -E 'error|ERROR' "$log" | tr '\n' ' ')"
	install -D -m 0644 "$module/gpio-sim.ko" "$root/lib/modules/$abi/updates/gpio-sim.ko"
	rm -rf "$module"
	in_rootfs "$root" depmod "$abi"
	in_rootfs "$root" apt-get purge -y -q --autoremove "${BUILD_PACKAGES[@]}" >>"$log" 2>&1 ||
		cannot_prepare "removing the build tools failed: $(tail -n 3 "$log" | tr '\n' ' ')"
	in_rootfs "$root" apt-get clean
	rm -rf "$root"/var/lib/apt/lists/*_dists_* "$root/var/cache/apt/"*.bin
	printf '%s\n' "$abi"
}

configure_rootfs() {
	local root=$1 entry=$2
	printf '/dev/vda / ext4 rw,noatime 0 1\n' >"$root/etc/fstab"
	# The only network the VM has: QEMU's user-mode network on eth0 (net.ifnames=0), reached from the host
	# through forwarded loopback ports. The simulated Wi-Fi radios are left to hostapd and the test.
	mkdir -p "$root/etc/systemd/network"
	printf '[Match]\nName=eth0\n\n[Network]\nDHCP=ipv4\n' >"$root/etc/systemd/network/10-eth0.network"
	systemctl --root="$root" --quiet enable systemd-networkd.service
	ssh-keygen -q -t ed25519 -N '' -C kiezbox-appliance-test -f "$entry/id_ed25519"
	install -d -m 0700 "$root/root/.ssh"
	install -m 0600 "$entry/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
	# No password anywhere; sshd takes the test's key only. Reverse DNS lookups would wait for a resolver
	# the VM does not have.
	printf 'PasswordAuthentication no\nUseDNS no\n' >"$root/etc/ssh/sshd_config.d/kiezbox-test.conf"
	# The simulated hardware, set up before kiezbox starts (see the unit for what it provides).
	install -m 0755 "$here/guest/kiezbox-test-hardware" "$root/usr/local/sbin/kiezbox-test-hardware"
	install -m 0644 "$here/guest/kiezbox-test-hardware.service" "$root/etc/systemd/system/"
	systemctl --root="$root" --quiet enable kiezbox-test-hardware.service
	# A serial console that needs no login: the console log then shows the end of the boot.
	ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS0.service"
	rm -f "$root/etc/resolv.conf"
}

prepare_entry() {
	local entry=$1 work=$2 root abi
	root=$work/rootfs
	mkdir -p "$work/entry"
	build_rootfs "$root" "$(base_tarball "$(dirname "$entry")")"
	appliance_log "building gpio-sim for the guest's kernel"
	abi=$(build_gpio_sim "$root" "$work")
	configure_rootfs "$root" "$work/entry"
	cp "$root/boot/vmlinuz-$abi" "$work/entry/vmlinuz"
	cp "$root/boot/initrd.img-$abi" "$work/entry/initrd.img" ||
		cannot_prepare "the root filesystem has no initramfs for $abi"
	appliance_log "writing the ext4 image"
	mkfs.ext4 -q -F -L kiezbox-root -d "$root" "$work/entry/rootfs.img" 3G >>"$log" 2>&1 ||
		cannot_prepare "mkfs.ext4 -d failed: $(tail -n 3 "$log" | tr '\n' ' ')"
	printf 'recipe=%s kernel=%s\n' "$RECIPE" "$abi" >"$work/entry/ready"
	rm -rf "$entry"
	mv "$work/entry" "$entry"
}

# kvm_prepare_once's PREPARE, with what it logs.
prepare_logged() {
	appliance_log "preparing a Debian 13 system in $1 (once; log: $log)"
	prepare_entry "$1" "$2"
	appliance_log "Debian 13 system ready after $(kvm_since "$started") s"
}

# A failure may leave the chroot's mounts behind: lazily unmount them before the work tree is removed.
unmount_rootfs() {
	local mount
	for mount in dev sys proc; do umount -lR "$1/rootfs/$mount" 2>/dev/null || true; done
}

entry_is_ready() { [[ -f $1/ready ]] && grep -q "^recipe=$RECIPE " "$1/ready"; }

main() {
	((EUID == 0)) || cannot_prepare "building the root filesystem needs root (mmdebstrap, chroot, mount)"
	local cache entry
	started=$(kvm_now)
	cache=$(appliance_cache_dir)
	mkdir -p "$cache"
	log=$cache/prepare.log
	apt_log=$log
	lists_refreshed=0
	install_packages "${HOST_PACKAGES[@]}"
	entry=$cache/$SUITE
	kvm_prepare_once "$cache" "$entry" entry_is_ready prepare_logged unmount_rootfs
	printf '%s\n' "$entry"
}

log=/dev/null
main "$@"
