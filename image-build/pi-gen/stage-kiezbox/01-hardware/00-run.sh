#!/bin/bash -e
# pi-gen runs this on the build host, in this directory, with the stage's root filesystem in ROOTFS_DIR. The
# edits are plain file edits (no chroot), in a script of their own so a test can run them on a directory.
./configure-hardware.sh "${ROOTFS_DIR}"
