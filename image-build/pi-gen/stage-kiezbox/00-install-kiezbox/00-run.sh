#!/bin/bash -e
# Installs the kiezbox package into the image with apt inside the image, so its dependencies come from the
# image's own archive. The package is built with `make deb` on an arm64 machine running the image's release
# (there is no Swift cross-compiler for it); put exactly one kiezbox_*_arm64.deb into files/.
shopt -s nullglob
packages=(files/kiezbox_*_arm64.deb)
if [ ${#packages[@]} -eq 0 ]; then
	echo "error: no files/kiezbox_*_arm64.deb in $(pwd): build it with 'make deb' on an arm64 machine and copy it here (image-build/README.md)" >&2
	exit 1
fi
if [ ${#packages[@]} -gt 1 ]; then
	echo "error: more than one kiezbox package in $(pwd)/files (${packages[*]}): keep only the one to install" >&2
	exit 1
fi
package=${packages[0]}
name=$(dpkg-deb --field "${package}" Package)
architecture=$(dpkg-deb --field "${package}" Architecture)
if [ "${name}" != kiezbox ] || [ "${architecture}" != arm64 ]; then
	echo "error: ${package} is the package '${name}' for '${architecture}'; the image needs 'kiezbox' for 'arm64'" >&2
	exit 1
fi

# Not /tmp: on_chroot mounts a tmpfs over the image's /tmp.
staging=/var/cache/kiezbox-image
install -d "${ROOTFS_DIR}${staging}"
install -m 0644 "${package}" "${ROOTFS_DIR}${staging}/"
if ! on_chroot <<CHROOT
apt-get install -y "${staging}/$(basename "${package}")"
CHROOT
then
	echo "error: apt could not install ${package} in the image (apt's reason is above): a library it depends on" >&2
	echo "       is missing from the image's release, or the package is not for arm64." >&2
	exit 1
fi
rm -rf "${ROOTFS_DIR}${staging}"

# Debian's hostapd service would take the radio with its own configuration; kiezbox-hostapd.service runs it.
on_chroot <<CHROOT
systemctl mask hostapd.service
CHROOT
