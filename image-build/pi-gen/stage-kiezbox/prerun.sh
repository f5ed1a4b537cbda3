#!/bin/bash -e
# Starts from the previous stage's root filesystem (stage2: Raspberry Pi OS Lite), like pi-gen's own stages.
if [ ! -d "${ROOTFS_DIR}" ]; then
	copy_previous
fi
