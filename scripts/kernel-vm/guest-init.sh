#!/bin/busybox sh
# shellcheck shell=sh
# /init of the test VM (busybox sh, PID 1). run.sh puts it into the initramfs together with
# /kernel-vm/settings, the kernel modules in /lib/kernel-vm/ and the test executable at its host path.
#
# It mounts the kernel's file systems, loads the simulated hardware, runs the test and powers off:
#   I²C:  i2c-dev + i2c-stub with a chip at each address in $I2C_STUB_ADDRESSES  -> /dev/i2c-0
#   GPIO: gpio-sim, one bank of $GPIO_SIM_LINES lines                            -> /dev/gpiochip0
#         drive an input:  echo pull-up > /sys/bus/gpio/devices/gpiochip0/sim_gpio<N>/pull
#         see an output:   cat /sys/bus/gpio/devices/gpiochip0/sim_gpio<N>/value
# With run.sh's --disk and --forward also:
#   disks:   virtio-blk and ext4 (not mounted)                                  -> /dev/vda, /dev/vdb, ...
#   network: virtio-net, lo up, eth0 10.0.2.15/24 (qemu's forwards in 10.0.2.0/24)
#
# The host reads the outcome from lines that start with this run's token:
#   "<token> booted", then "<token> status=<exit status>" or "<token> setup-failed".

/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /tmp /run /root
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root KIEZBOX_KERNEL_VM=1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# No tmpfs on /tmp: the root file system is already in memory, and the test may have been copied under /tmp.

# TOKEN, EXECUTABLE, I2C_STUB_ADDRESSES, GPIO_SIM_LINES, DISKS, NETWORK, written by run.sh
# shellcheck source=/dev/null
. /kernel-vm/settings

report() { echo "$TOKEN $*"; }

give_up() {
	echo "kernel-vm guest: $*"
	dmesg | tail -n 15
	report setup-failed
	poweroff -f
}

load_module() {
	insmod "/lib/kernel-vm/$1.ko" ${2:+"$2"} || give_up "insmod $1 $2 failed"
}

report booted

load_module configfs
mount -t configfs configfs /sys/kernel/config || give_up "cannot mount configfs"
load_module i2c-dev
load_module i2c-stub "chip_addr=$I2C_STUB_ADDRESSES"
load_module gpio-sim

device=/sys/kernel/config/gpio-sim/kiezbox
mkdir "$device" "$device/bank0" || give_up "cannot create the gpio-sim device"
echo "$GPIO_SIM_LINES" >"$device/bank0/num_lines" || give_up "cannot set the gpio-sim line count"
echo 1 >"$device/live" || give_up "gpio-sim did not go live"

if [ "${DISKS:-0}" -gt 0 ] || [ "${NETWORK:-0}" = 1 ]; then
	while read -r module; do
		insmod "/lib/kernel-vm/disk-net/$module.ko" || give_up "insmod $module failed"
	done </lib/kernel-vm/disk-net/load-order
fi
# The disks' device nodes appear once the driver has probed them; wait a little (a hang guard, not a schedule).
index=0
for letter in a b c d e f g h; do
	[ "$index" -lt "${DISKS:-0}" ] || break
	tries=0
	while [ ! -b "/dev/vd$letter" ]; do
		tries=$((tries + 1))
		[ "$tries" -le 100 ] || give_up "no /dev/vd$letter after 10 s"
		sleep 0.1
	done
	index=$((index + 1))
done
if [ "${NETWORK:-0}" = 1 ]; then
	if ! { ip link set lo up && ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0; }; then
		give_up "cannot configure eth0"
	fi
fi

# The test's arguments, one file each, in order (run.sh names them 0001, 0002, ...).
set --
for argument in /kernel-vm/arguments/*; do
	[ -f "$argument" ] && set -- "$@" "$(cat "$argument")"
done

cd /tmp || give_up "no /tmp"
"$EXECUTABLE" "$@"
report "status=$?"
poweroff -f
