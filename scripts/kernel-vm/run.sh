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
# Options:
#   --timeout SECONDS  limit for the VM from power-on to power-off (default 300)
#   --memory MB        guest memory (default 1024)
#   --prepare-only     install the host tools and fill the cache, then stop
#   --keep             keep the work directory (initramfs, console log) and print where it is
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
while (($#)); do
	case $1 in
	--timeout) timeout_seconds=${2:?--timeout needs seconds}; shift ;;
	--memory) memory_mb=${2:?--memory needs megabytes}; shift ;;
	--prepare-only) prepare_only=1 ;;
	--keep) keep=1 ;;
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
fi

started=$(kvm_now)
kernel_dir=$("$here/prepare-kernel.sh")
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
mkdir -p "$root/bin" "$root/lib/kernel-vm" "$root/kernel-vm/arguments"
cp /bin/busybox "$root/bin/busybox"
cp "$kernel_dir"/modules/*.ko "$root/lib/kernel-vm/"
cp "$here/guest-init.sh" "$root/init"
chmod 755 "$root/init"

# Copies a file to the same absolute path inside the VM.
copy_to_guest() {
	[[ -e $root$1 ]] && return 0
	mkdir -p "$root$(dirname "$1")"
	cp -L "$1" "$root$1"
}
copy_to_guest "$executable"
# The shared libraries: "name => /path (addr)" lines, and the loader as "/path (addr)".
if ldd "$executable" >"$work/ldd.txt" 2>&1; then
	if grep -q 'not found' "$work/ldd.txt"; then
		kvm_cannot_start "$executable needs libraries this host lacks: $(grep 'not found' "$work/ldd.txt" | tr -s ' \t\n' ' ')"
	fi
	awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' "$work/ldd.txt" |
		while read -r library; do copy_to_guest "$library"; done
fi

token=kernel-vm-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
{
	printf 'TOKEN=%q\n' "$token"
	printf 'EXECUTABLE=%q\n' "$executable"
	printf 'I2C_STUB_ADDRESSES=%q\n' "${KIEZBOX_VM_I2C_ADDRESSES:-0x76,0x40}"
	printf 'GPIO_SIM_LINES=%q\n' "${KIEZBOX_VM_GPIO_LINES:-8}"
} >"$root/kernel-vm/settings"
for index in "${!arguments[@]}"; do
	printf '%s' "${arguments[index]}" >"$root/kernel-vm/arguments/$(printf '%04d' "$((index + 1))")"
done

(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1 >"$work/initramfs.gz")
kvm_log "initramfs $(du -m "$work/initramfs.gz" | cut -f1) MB ready after $(kvm_since "$started") s"

# ---- boot -------------------------------------------------------------------------------------------------
# TCG, not KVM: on these CI machines /dev/kvm is PVM-backed and cannot run a stock kernel (see README.md).
# -cpu max measured faster than the default model; one vCPU, as more did not help.
booted=0
outcome=
vm_started=$(kvm_now)
kvm_log "booting $(basename "$kernel") under TCG (time limit ${timeout_seconds} s)"
set +e
timeout --kill-after=10 "$timeout_seconds" \
	qemu-system-x86_64 -accel tcg -cpu max -machine pc -smp 1 -m "$memory_mb" \
	-nodefaults -no-user-config -no-reboot -display none -nic none \
	-serial stdio -kernel "$kernel" -initrd "$work/initramfs.gz" \
	-append "console=ttyS0 quiet loglevel=3 panic=-1 oops=panic" \
	</dev/null 2>"$work/qemu-stderr.txt" |
	tr -d '\r' | tee "$work/console.txt" |
	while IFS= read -r line; do
		case $line in
		*"$token booted"*) booted=1 ;;
		*"$token "*) outcome=${line##*"$token "} ;;
		*) printf '%s\n' "$line" ;;
		esac
	done
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
if ((qemu_status == 124 || qemu_status == 137)); then
	kvm_log "VM timed out after ${timeout_seconds} s ($( ((booted)) && echo "the test was running" || echo "it never reached /init"))"
	exit "$KVM_EXIT_TIMEOUT"
fi
if ((!booted)); then
	kvm_cannot_start "qemu exited with status $qemu_status before the guest reached /init"
fi
kvm_log "VM ended after ${vm_seconds} s without reporting the test's status (kernel panic or crash: console above)"
exit "$KVM_EXIT_NO_STATUS"
