#!/usr/bin/env bash
# run.sh — run a test executable inside a throw-away QEMU VM whose kernel has real I²C and GPIO interfaces.
#
# Usage: scripts/kernel-vm/run.sh [options] EXECUTABLE [-- ARGUMENTS...]
#
# The VM boots Debian's stock amd64 kernel (prepared once per kernel ABI by prepare-kernel.sh) under QEMU's
# software emulation (TCG) with a busybox initramfs, loads the simulated hardware and runs EXECUTABLE as root:
#   /dev/i2c-0      i2c-stub, "SMBus stub driver", a register-map chip at each of $KIEZBOX_VM_I2C_ADDRESSES
#                   (SMBus only: no plain I²C messages)
#   /dev/gpiochip0  gpio-sim, label "gpio-sim.0-node0", $KIEZBOX_VM_GPIO_LINES lines; drive an input with
#                   echo pull-up|pull-down > /sys/bus/gpio/devices/gpiochip0/sim_gpio<N>/pull, read an
#                   output from .../sim_gpio<N>/value
# A dynamically linked executable (a debug Swift build) brings its shared libraries: everything `ldd` lists is
# copied to the same absolute path inside the VM. The guest sets KIEZBOX_KERNEL_VM=1.
#
# EXECUTABLE may be a busybox sh script: the guest has busybox at /bin/sh. The power-cut test uses the disks,
# the forwarded port and the pid file (scripts/kernel-vm/README.md).
#
# Options:
#   --timeout SECONDS  limit for the VM from power-on to power-off (default 300)
#   --memory MB        guest memory (default 1024)
#   --prepare-only     install the host tools and fill the cache, then stop
#   --keep             keep the work directory (initramfs, console log) and print where it is
#   --with FILE        also copy FILE (an executable) and its ldd closure to its host path in the guest; repeatable
#   --disk IMAGE       attach a raw disk image as virtio-blk without a host cache (cache=none: what the guest has
#                      flushed is in the file, what it has not is lost when qemu dies); the first is /dev/vda,
#                      the next /dev/vdb, ...; the guest loads virtio and ext4 but mounts nothing; repeatable
#   --forward GUEST_ADDRESS:PORT=HOST_PORT
#                      user networking that reaches nothing (restrict=on) but this: a TCP connection from the
#                      guest to GUEST_ADDRESS:PORT (in 10.0.2.0/24, e.g. 10.0.2.100:1883) goes to
#                      127.0.0.1:HOST_PORT on the host. The guest's eth0 is 10.0.2.15/24; repeatable
#   --pidfile FILE     qemu writes its pid there: SIGKILL to it is a power cut (run.sh then exits 125)
#   --initramfs FILE   boot FILE if it was built before (FILE.token exists), else build it there and keep it:
#                      repeated boots of the same executables save the build (the token stays the same)
#   -h, --help         this text
#
# Environment:
#   KIEZBOX_VM_CACHE          cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/kiezbox-kernel-vm)
#   KIEZBOX_VM_KERNEL_ABI     pin the kernel, e.g. 6.1.0-37-amd64 (default: what linux-image-amd64 depends on)
#   KIEZBOX_VM_I2C_ADDRESSES  i2c-stub chip addresses (default 0x76,0x40: a BME280 and an INA219)
#   KIEZBOX_VM_GPIO_LINES     gpio-sim line count (default 8)
#
# Exit status: the test's own; or 124 when the VM timed out, 125 when it ended without reporting the test's
# status (kernel panic, crash), 126 when it could not be started or set up (no qemu, a download refused, a
# build failure, hardware setup failing in the guest; the test never ran), 2 on a usage error. The last line
# on stderr says which.
set -euo pipefail
shopt -s lastpipe
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

timeout_seconds=300
memory_mb=1024
prepare_only=0
keep=0
executable=
arguments=()
extra_executables=()
disks=()
forwards=()
pidfile=
initramfs=
while (($#)); do
	case $1 in
	--timeout) timeout_seconds=${2:?--timeout needs seconds}; shift ;;
	--memory) memory_mb=${2:?--memory needs megabytes}; shift ;;
	--prepare-only) prepare_only=1 ;;
	--keep) keep=1 ;;
	# -s: the path as given (made absolute), which is where the guest's scripts will look for it.
	--with) extra_executables+=("$(realpath -s "${2:?--with needs a file}")"); shift ;;
	--disk) disks+=("$(readlink -f "${2:?--disk needs an image}")"); shift ;;
	--forward) forwards+=("${2:?--forward needs GUEST_ADDRESS:PORT=HOST_PORT}"); shift ;;
	--pidfile) pidfile=${2:?--pidfile needs a file}; shift ;;
	--initramfs) initramfs=$(realpath -m "${2:?--initramfs needs a file}"); shift ;;
	-h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
	--) shift; arguments=("$@"); break ;;
	-*) kvm_usage_error "unknown option $1" ;;
	*) [[ -z $executable ]] || kvm_usage_error "one executable only (arguments go after --)"; executable=$1 ;;
	esac
	shift
done
[[ $timeout_seconds =~ ^[0-9]+$ && $memory_mb =~ ^[0-9]+$ ]] || kvm_usage_error "--timeout and --memory take numbers"
if ((!prepare_only)); then
	[[ -n $executable ]] || kvm_usage_error "no executable given"
	[[ -f $executable && -x $executable ]] || kvm_usage_error "not an executable file: $executable"
	executable=$(readlink -f "$executable")
	for file in "${extra_executables[@]}"; do
		[[ -f $file && -x $file ]] || kvm_usage_error "--with: not an executable file: $file"
	done
	for file in "${disks[@]}"; do
		[[ -f $file && -w $file ]] || kvm_usage_error "--disk: not a writable file: $file"
	done
	for forward in "${forwards[@]}"; do
		[[ $forward =~ ^10\.0\.2\.[0-9]+:[0-9]+=[0-9]+$ ]] ||
			kvm_usage_error "--forward wants GUEST_ADDRESS:PORT=HOST_PORT with a guest address in 10.0.2.0/24, not $forward"
	done
fi
disk_net=$(( ${#disks[@]} + ${#forwards[@]} > 0 ))

started=$(kvm_now)
prepare_options=()
if ((disk_net)); then prepare_options=(--disk-net); fi
kernel_dir=$("$here/prepare-kernel.sh" "${prepare_options[@]}")
if ((prepare_only)); then
	kvm_log "prepared: $kernel_dir ($(cat "$kernel_dir/ready")) in $(kvm_since "$started") s"
	exit 0
fi
kernel=$kernel_dir/vmlinux
[[ -f $kernel ]] || kernel=$kernel_dir/vmlinuz

# ---- initramfs --------------------------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/kiezbox-kernel-vm.XXXXXX")
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	if ((keep)); then kvm_log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
root=$work/root

# Copies a file to the same absolute path inside the VM.
copy_to_guest() {
	[[ -e $root$1 ]] && return 0
	mkdir -p "$root$(dirname "$1")"
	cp -L "$1" "$root$1"
}

# Copies an executable and the shared libraries it needs: "name => /path (addr)" lines, and the loader as
# "/path (addr)". A script has no ldd closure. Debug information stays behind (a debug Swift build of the daemon
# shrinks by a third, which the guest unpacks on every boot); the symbols stay, for backtraces.
copy_with_libraries() {
	if [[ ! -e $root$1 && $(head -c 4 "$1" | od -An -c | tr -d ' ') == '177ELF' ]] && command -v objcopy >/dev/null; then
		mkdir -p "$root$(dirname "$1")"
		objcopy --strip-debug "$1" "$root$1" || kvm_cannot_start "objcopy --strip-debug $1 failed"
	fi
	copy_to_guest "$1"
	if ldd "$1" >"$work/ldd.txt" 2>&1; then
		if grep -q 'not found' "$work/ldd.txt"; then
			kvm_cannot_start "$1 needs libraries this host lacks: $(grep 'not found' "$work/ldd.txt" | tr -s ' \t\n' ' ')"
		fi
		awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' "$work/ldd.txt" |
			while read -r library; do copy_to_guest "$library"; done
	fi
}

# Builds the initramfs into FILE.
build_initramfs() {
	mkdir -p "$root/bin" "$root/lib/kernel-vm" "$root/kernel-vm/arguments"
	cp /bin/busybox "$root/bin/busybox"
	cp "$kernel_dir"/modules/*.ko "$root/lib/kernel-vm/"
	if ((disk_net)); then
		mkdir -p "$root/lib/kernel-vm/disk-net"
		cp "$kernel_dir"/disk-net/*.ko "$kernel_dir/disk-net/load-order" "$root/lib/kernel-vm/disk-net/"
	fi
	cp "$here/guest-init.sh" "$root/init"
	chmod 755 "$root/init"
	local file index
	for file in "$executable" "${extra_executables[@]}"; do copy_with_libraries "$file"; done
	{
		printf 'TOKEN=%q\n' "$token"
		printf 'EXECUTABLE=%q\n' "$executable"
		printf 'I2C_STUB_ADDRESSES=%q\n' "${KIEZBOX_VM_I2C_ADDRESSES:-0x76,0x40}"
		printf 'GPIO_SIM_LINES=%q\n' "${KIEZBOX_VM_GPIO_LINES:-8}"
		printf 'DISKS=%q\n' "${#disks[@]}"
		printf 'NETWORK=%q\n' "$((${#forwards[@]} > 0))"
	} >"$root/kernel-vm/settings"
	for index in "${!arguments[@]}"; do
		printf '%s' "${arguments[index]}" >"$root/kernel-vm/arguments/$(printf '%04d' "$((index + 1))")"
	done
	# Uncompressed when it is kept for repeated boots: unpacking costs the guest more under TCG than the file
	# costs the host.
	local compress=(gzip -1)
	if [[ -n $initramfs ]]; then compress=(cat); fi
	(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet | "${compress[@]}" >"$1.part")
	mv "$1.part" "$1"
	kvm_log "initramfs $(du -m "$1" | cut -f1) MB ready after $(kvm_since "$started") s"
}

# A kept initramfs has its token beside it (FILE.token), written after the initramfs itself.
if [[ -n $initramfs && -f $initramfs.token ]]; then
	token=$(cat "$initramfs.token")
else
	token=kernel-vm-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
	build_initramfs "${initramfs:-$work/initramfs.gz}"
	if [[ -n $initramfs ]]; then printf '%s\n' "$token" >"$initramfs.token"; fi
fi

# ---- boot -------------------------------------------------------------------------------------------------
# TCG, not KVM: on these CI machines /dev/kvm is PVM-backed and cannot run a stock kernel (see README.md).
# -cpu max measured faster than the default model; one vCPU, as more did not help.
# Disks without a host cache (O_DIRECT): a write the guest has flushed is in the file when qemu dies.
devices=()
for index in "${!disks[@]}"; do
	devices+=(-drive "file=${disks[index]},format=raw,if=virtio,cache=none,index=$index")
done
if ((${#forwards[@]})); then
	netdev=user,id=net0,restrict=on,net=10.0.2.0/24
	for forward in "${forwards[@]}"; do
		# cmd: runs a relay per connection (a tcp: chardev would be one connection, opened when qemu starts).
		# When qemu dies, the relay's end closes and the host side sees the connection drop.
		netdev+=",guestfwd=tcp:${forward%%=*}-cmd:/bin/busybox nc 127.0.0.1 ${forward##*=}"
	done
	devices+=(-netdev "$netdev" -device "virtio-net-pci,netdev=net0")
else
	devices+=(-nic none)
fi
if [[ -n $pidfile ]]; then devices+=(-pidfile "$pidfile"); fi

booted=0
outcome=
vm_started=$(kvm_now)
kvm_log "booting $(basename "$kernel") under TCG (time limit ${timeout_seconds} s)"
set +e
# In braces with stderr to /dev/null: bash reports a pipeline member killed by SIGKILL ("line N: PID Killed …") on
# its own stderr, which a power cut (--pidfile) would put in every log. qemu's own stderr goes to a file.
{ timeout --kill-after=10 "$timeout_seconds" \
	qemu-system-x86_64 -accel tcg -cpu max -machine pc -smp 1 -m "$memory_mb" \
	-nodefaults -no-user-config -no-reboot -display none "${devices[@]}" \
	-serial stdio -kernel "$kernel" -initrd "${initramfs:-$work/initramfs.gz}" \
	-append "console=ttyS0 quiet loglevel=3 panic=-1 oops=panic no_timer_check" \
	</dev/null 2>"$work/qemu-stderr.txt" |
	while IFS= read -r line; do
		# Line by line, not through tr: tr would hold the console back in 4 KiB blocks while the VM runs.
		line=${line%$'\r'}
		printf '%s\n' "$line" >>"$work/console.txt"
		case $line in
		*"$token booted"*) booted=1 ;;
		*"$token "*) outcome=${line##*"$token "} ;;
		*) printf '%s\n' "$line" ;;
		esac
	done; } 2>/dev/null
qemu_status=${PIPESTATUS[0]}
set -e
vm_seconds=$(kvm_since "$vm_started")
if [[ -s $work/qemu-stderr.txt ]]; then sed 's/^/qemu: /' "$work/qemu-stderr.txt" >&2; fi

case $outcome in
status=[0-9]*)
	status=${outcome#status=}
	kvm_log "test exited with status $status (VM ${vm_seconds} s, total $(kvm_since "$started") s)"
	exit "$status"
	;;
setup-failed)
	kvm_cannot_start "the guest could not set up the simulated hardware (console above)"
	;;
esac
if ((qemu_status == 137)) && [[ $(awk -v s="$vm_seconds" -v t="$timeout_seconds" 'BEGIN { print (s < t) }') == 1 ]]; then
	kvm_log "qemu was killed after ${vm_seconds} s, before the time limit: a power cut from outside"
	exit "$KVM_EXIT_NO_STATUS"
fi
if ((qemu_status == 124 || qemu_status == 137)); then
	kvm_log "VM timed out after ${timeout_seconds} s ($( ((booted)) && echo "the test was running" || echo "it never reached /init"))"
	exit "$KVM_EXIT_TIMEOUT"
fi
if ((!booted)); then
	kvm_cannot_start "qemu exited with status $qemu_status before the guest reached /init"
fi
kvm_log "VM ended after ${vm_seconds} s without reporting the test's status (kernel panic or crash: console above)"
exit "$KVM_EXIT_NO_STATUS"
