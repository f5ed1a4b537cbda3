#!/bin/bash -e
# Applies a kiezbox.toml the resident writes onto the boot partition, before the daemon starts (docs/install.md).
systemctl enable kiezbox-firstboot.service
