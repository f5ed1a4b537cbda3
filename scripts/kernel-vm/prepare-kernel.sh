#!/usr/bin/env bash
# prepare-kernel.sh — make sure the host can boot the test VM, and print the directory of the prepared kernel.
#
# Installs the host tools (qemu-system-x86, busybox-static, cpio, xz-utils) with apt-get, then fills the cache
# for the kernel ABI Debian's linux-image-amd64 currently points to (or $KIEZBOX_VM_KERNEL_ABI):
#
#   <cache>/<abi>/vmlinux         the kernel as an ELF, booted by qemu through its PVH entry (fast under TCG);
#                                 vmlinuz when the ELF cannot be unpacked
#   <cache>/<abi>/modules/*.ko    configfs, i2c-dev, i2c-stub from the image package; gpio-sim built here
#   <cache>/<abi>/ready           written last: the recipe version and the Debian package version
#   <cache>/<abi>/disk-net/       only with --disk-net (run.sh's --disk and --forward): virtio disks, ext4 and
#                                 virtio networking, which Debian builds as modules, with everything they
#                                 depend on, and load-order (one module name a line, dependencies first);
#                                 a separate entry with its own ready file, so adding it never rebuilds the rest
#
# Debian builds neither gpio-sim nor the irq_sim helper it needs, so both are compiled as one out-of-tree
# module from the matching linux-source package against linux-headers-<abi>.
#
# Everything fetched comes from the Debian archive through apt-get. On any failure the script exits 126
# with the reason; it never leaves a half-built cache entry behind.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
# shellcheck source-path=SCRIPTDIR source=gpio-sim.sh
. "$here/gpio-sim.sh"

# Bump when the way the cache entry is built changes, so old entries are rebuilt.
readonly RECIPE=1
readonly HOST_PACKAGES=(qemu-system-x86 busybox-static cpio xz-utils)
readonly DISK_NET_RECIPE=1
# crc32c_generic is no dependency of ext4 by symbol: ext4 asks the crypto API for "crc32c" when it mounts a file
# system with metadata checksums (mkfs.ext4's default), and the guest has no modprobe to load it on demand.
readonly DISK_NET_MODULES=(virtio_pci virtio_blk virtio_net crc32c_generic ext4)

started=$(kvm_now)
cache=$(kvm_cache_dir)
mkdir -p "$cache"
apt_log=$cache/apt.log
lists_refreshed=0

# Downloads one .deb into a directory, refreshing the lists once if the archive answers 404.
download_package() {
	local directory=$1 package=$2 attempt
	for attempt in first retry; do
		if (cd "$directory" && apt-get download -q "$package") >>"$apt_log" 2>&1; then return 0; fi
		[[ $attempt == first ]] && refresh_package_lists
	done
	kvm_cannot_start "apt-get download $package failed: $(tail -n 3 "$apt_log" | tr '\n' ' ')"
}

kernel_abi() {
	if [[ -n ${KIEZBOX_VM_KERNEL_ABI:-} ]]; then
		printf '%s\n' "$KIEZBOX_VM_KERNEL_ABI"
		return
	fi
	apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: linux-image-\([0-9].*-amd64\)$/\1/p' | head -n 1
}

# Unpacks the ELF kernel from a bzImage whose payload is xz-compressed (Debian's choice). Booting the ELF
# through its PVH note skips the in-guest decompression, which costs several seconds under TCG.
unpack_elf_kernel() {
	local bzimage=$1 elf=$2 offset
	offset=$(LC_ALL=C grep -m 1 -obUaP '\xfd7zXZ\x00' "$bzimage" | cut -d: -f1) || return 1
	offset=${offset%%$'\n'*} # the first match
	[[ -n $offset ]] || return 1
	# xz stops after the payload's stream, so tail may meet a closed pipe: only xz's status counts.
	{ tail -c +"$((offset + 1))" "$bzimage" 2>/dev/null || true; } | xz -dc --single-stream >"$elf" 2>/dev/null || return 1
	[[ $(head -c 4 "$elf" | od -An -c | tr -d ' ') == '177ELF' ]]
}

build_gpio_sim() {
	local abi=$1 version=$2 work=$3 source_package
	source_package=linux-source-$(cut -d. -f1,2 <<<"$abi")
	install_packages "linux-headers-$abi" make gcc
	[[ -d /lib/modules/$abi/build ]] || kvm_cannot_start "linux-headers-$abi installed no /lib/modules/$abi/build"

	download_package "$work" "$source_package=$version"
	local tree=$work/gpio-sim
	gpio_sim_extract_sources "$(echo "$work/${source_package}_"*.deb)" "$source_package" "$tree" ||
		kvm_cannot_start "$source_package $version lacks gpio-sim.c, gpiolib.h or irq_sim.c"
	rm -f "$work/${source_package}_"*.deb
	kvm_log "kernel $abi: headers installed, gpio-sim sources extracted ($(kvm_since "$started") s)"

	local module=$work/gpio-sim-module
	gpio_sim_assemble_module "$tree" "$module" ||
		kvm_cannot_start "irq_sim.c of $version no longer matches the irq_to_desc fix (scripts/kernel-vm/README.md)"
	make -s -C "/lib/modules/$abi/build" M="$module" modules >"$work/gpio-sim-build.log" 2>&1 ||
		kvm_cannot_start "building gpio-sim.ko failed: $(grep -m 3 -E 'error|ERROR' "$work/gpio-sim-build.log" | tr '\n' ' ')"
	strip --strip-debug "$module/gpio-sim.ko"
	cp "$module/gpio-sim.ko" "$work/entry/modules/"
}

prepare_entry() {
	local abi=$1 entry=$2 work=$3 image_deb version module found
	mkdir -p "$work/entry/modules" "$work/image"
	download_package "$work" "linux-image-$abi"
	image_deb=$(echo "$work/linux-image-${abi}_"*.deb)
	version=$(dpkg-deb -f "$image_deb" Version)
	kvm_log "kernel $abi ($version): image downloaded ($(kvm_since "$started") s)"

	dpkg-deb --fsys-tarfile "$image_deb" |
		tar -x -C "$work/image" --wildcards "./boot/vmlinuz-$abi" \
			'*/fs/configfs/configfs.ko*' '*/drivers/i2c/i2c-dev.ko*' '*/drivers/i2c/i2c-stub.ko*'
	rm -f "$image_deb"
	if unpack_elf_kernel "$work/image/boot/vmlinuz-$abi" "$work/entry/vmlinux"; then
		rm -f "$work/image/boot/vmlinuz-$abi"
	else
		kvm_log "could not unpack the ELF kernel; booting the bzImage instead (slower)"
		rm -f "$work/entry/vmlinux"
		mv "$work/image/boot/vmlinuz-$abi" "$work/entry/vmlinuz"
	fi
	for module in configfs i2c-dev i2c-stub; do
		found=$(find "$work/image/lib/modules" -name "$module.ko*" -print -quit)
		case $found in
		*.ko) cp "$found" "$work/entry/modules/$module.ko" ;;
		*.ko.xz) xz -dc "$found" >"$work/entry/modules/$module.ko" ;;
		*) kvm_cannot_start "linux-image-$abi has no $module module" ;;
		esac
	done
	rm -rf "$work/image"

	build_gpio_sim "$abi" "$version" "$work"
	kvm_log "kernel $abi: gpio-sim.ko built ($(kvm_since "$started") s)"
	printf 'recipe=%s version=%s\n' "$RECIPE" "$version" >"$work/entry/ready"
	rm -rf "$entry"
	mv "$work/entry" "$entry"
}

# kvm_prepare_once's PREPARE: the kernel's entry for $kernel_abi_to_prepare.
prepare_kernel_entry() {
	local entry=$1 work=$2
	kvm_log "preparing kernel $kernel_abi_to_prepare in $entry (once per kernel ABI)"
	prepare_entry "$kernel_abi_to_prepare" "$entry" "$work"
	kvm_log "kernel $kernel_abi_to_prepare ready after $(kvm_since "$started") s"
}

entry_is_ready() { [[ -f $1/ready ]] && grep -q "^recipe=$RECIPE " "$1/ready"; }

# Copies module NAME (and, first, what it depends on: the "depends=" of its .modinfo section) from the unpacked
# image TREE into DIRECTORY, and appends it to DIRECTORY/load-order. Debian's package ships no modules.dep
# (depmod writes it at installation), so the dependencies are read from the modules themselves.
copy_module_with_dependencies() {
	local tree=$1 directory=$2 name=${3//-/_} found depends dependency
	grep -qx "$name" "$directory/load-order" 2>/dev/null && return 0
	found=$(find "$tree" \( -name "$name.ko*" -o -name "${name//_/-}.ko*" \) -print -quit)
	case $found in
	*.ko) cp "$found" "$directory/$name.ko.part" ;;
	*.ko.xz) xz -dc "$found" >"$directory/$name.ko.part" ;;
	*) kvm_cannot_start "the kernel image has no module $name" ;;
	esac
	depends=$(tr '\0' '\n' <"$directory/$name.ko.part" | sed -n 's/^depends=//p' | head -n 1)
	for dependency in ${depends//,/ }; do
		copy_module_with_dependencies "$tree" "$directory" "$dependency"
	done
	mv "$directory/$name.ko.part" "$directory/$name.ko"
	printf '%s\n' "$name" >>"$directory/load-order"
}

# kvm_prepare_once's PREPARE for <abi>/disk-net.
prepare_disk_net_entry() {
	local entry=$1 work=$2 abi=$kernel_abi_to_prepare module
	kvm_log "preparing the disk and network modules of kernel $abi in $entry"
	mkdir -p "$work/image" "$work/entry"
	download_package "$work" "linux-image-$abi"
	dpkg-deb --fsys-tarfile "$(echo "$work/linux-image-${abi}_"*.deb)" | tar -x -C "$work/image" --wildcards './lib/modules/*'
	for module in "${DISK_NET_MODULES[@]}"; do
		copy_module_with_dependencies "$work/image/lib/modules" "$work/entry" "$module"
	done
	printf 'recipe=%s\n' "$DISK_NET_RECIPE" >"$work/entry/ready"
	rm -rf "$entry"
	mv "$work/entry" "$entry"
	kvm_log "disk and network modules ready: $(tr '\n' ' ' <"$entry/load-order")($(kvm_since "$started") s)"
}

disk_net_entry_is_ready() { [[ -f $1/ready ]] && grep -qx "recipe=$DISK_NET_RECIPE" "$1/ready"; }

main() {
	local disk_net=0
	case ${1:-} in
	--disk-net) disk_net=1 ;;
	"") ;;
	*) kvm_usage_error "prepare-kernel.sh takes only --disk-net" ;;
	esac
	install_packages "${HOST_PACKAGES[@]}"
	command -v qemu-system-x86_64 >/dev/null || kvm_cannot_start "qemu-system-x86_64 is not installed"
	[[ -x /bin/busybox ]] || kvm_cannot_start "/bin/busybox (busybox-static) is missing"

	local abi entry
	abi=$(kernel_abi)
	if [[ -z $abi ]]; then
		refresh_package_lists
		abi=$(kernel_abi)
	fi
	[[ -n $abi ]] || kvm_cannot_start "apt knows no linux-image-amd64 to take the kernel ABI from"
	entry=$cache/$abi
	kernel_abi_to_prepare=$abi
	kvm_prepare_once "$cache" "$entry" entry_is_ready prepare_kernel_entry
	if ((disk_net)); then
		kvm_prepare_once "$cache" "$entry/disk-net" disk_net_entry_is_ready prepare_disk_net_entry
	fi
	printf '%s\n' "$entry"
}

main "$@"
