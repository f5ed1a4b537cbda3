#!/usr/bin/env bash
# build-deb.sh — package a built kiezbox binary as kiezbox_<version>_<arch>.deb (for this machine's architecture).
#
# Usage: scripts/build-deb.sh --binary FILE [--out DIR] [--version VERSION]
#
#   --binary FILE    the kiezbox executable to package. `make deb` passes the release build with the Swift
#                    runtime linked statically (.build-static/release/kiezbox); the appliance boot test passes
#                    the test build (which needs the toolchain's Swift libraries beside it, see docs/install.md).
#   --out DIR        where the .deb goes (default: the repository's top folder); its path is printed
#   --version V      the package version (default: Kiezbox.version from Sources/KiezboxAgent/Version.swift)
#   --fast           compress with gzip -1 instead of xz (tests: a debug build is large and xz slow)
#
# What goes in: /usr/bin/kiezbox; /etc/kiezbox/kiezbox.toml (a conffile: a resident's edits survive upgrades);
# every unit in systemd/ under /usr/lib/systemd/system/; packaging/lib/* under /usr/lib/kiezbox/; the udev
# rule giving the gpio and i2c groups their devices; README and docs under /usr/share/doc/kiezbox/. The
# maintainer scripts are packaging/deb/{preinst,postinst,prerm,postrm}; the units they enable are those with an
# [Install] section. The run-time dependencies are computed by dpkg-shlibdeps from the binary.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

binary=
out=$root
version=
compression=(-Zxz)
while (($#)); do
	case $1 in
	--binary) binary=${2:?--binary needs a file}; shift ;;
	--out) out=${2:?--out needs a directory}; shift ;;
	--version) version=${2:?--version needs a version}; shift ;;
	--fast) compression=(-Zgzip -z1) ;;
	-h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
	*) echo "build-deb: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
[[ -n $binary ]] || { echo "build-deb: no --binary given (make deb builds and packages the release build)" >&2; exit 2; }
[[ -x $binary ]] || { echo "build-deb: $binary is not an executable; build it first" >&2; exit 2; }
for tool in dpkg-deb dpkg-shlibdeps; do
	command -v "$tool" >/dev/null || { echo "build-deb: $tool is missing (apt-get install dpkg-dev)" >&2; exit 2; }
done
if [[ -z $version ]]; then
	version=$(sed -n 's/^ *static let version = "\(.*\)"$/\1/p' "$root/Sources/KiezboxAgent/Version.swift")
	[[ -n $version ]] || { echo "build-deb: no version in Sources/KiezboxAgent/Version.swift" >&2; exit 2; }
fi
architecture=$(dpkg --print-architecture)
binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")
mkdir -p "$out"
out=$(cd "$out" && pwd)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=$work/kiezbox
doc=$stage/usr/share/doc/kiezbox

install -D -m 0755 "$binary" "$stage/usr/bin/kiezbox"
# Debug sections are most of a Swift binary; a box has no use for them.
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/bin/kiezbox"
install -D -m 0644 "$root/packaging/kiezbox.toml" "$stage/etc/kiezbox/kiezbox.toml"

enabled=()
all_units=()
for unit in "$root"/systemd/*.service "$root"/systemd/*.target "$root"/systemd/*.path "$root"/systemd/*.timer; do
	[[ -f $unit ]] || continue
	install -D -m 0644 "$unit" "$stage/usr/lib/systemd/system/$(basename "$unit")"
	all_units+=("$(basename "$unit")")
	grep -q '^\[Install\]' "$unit" && enabled+=("$(basename "$unit")")
done
if [[ -d $root/packaging/lib ]]; then
	for helper in "$root"/packaging/lib/*; do
		[[ -f $helper ]] && install -D -m 0755 "$helper" "$stage/usr/lib/kiezbox/$(basename "$helper")"
	done
fi
install -D -m 0644 "$root/packaging/deb/60-kiezbox.rules" "$stage/usr/lib/udev/rules.d/60-kiezbox.rules"

install -D -m 0644 "$root/README.md" "$doc/README.md"
for page in "$root"/docs/*.md; do install -D -m 0644 "$page" "$doc/$(basename "$page")"; done
install -m 0644 "$root/packaging/deb/copyright" "$doc/copyright"
# A native package's changelog: one entry for this build (the history is the git log).
{
	printf 'kiezbox (%s) unstable; urgency=medium\n\n' "$version"
	printf '  * Built from %s.\n\n' "$(git -C "$root" describe --always --dirty 2>/dev/null || echo 'a source tree')"
	printf ' -- Kiezbox developers <kiezbox@example.org>  %s\n' "$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}")"
} | gzip -9n >"$doc/changelog.gz"

# Run-time libraries of the binary as Debian package dependencies. A test build's Swift libraries come from
# the toolchain, not from a package: they are skipped (--ignore-missing-info) and provided by the test.
mkdir -p "$work/shlibs/debian"
printf 'Source: kiezbox\n\nPackage: kiezbox\nArchitecture: any\n' >"$work/shlibs/debian/control"
shlibs=$(cd "$work/shlibs" && dpkg-shlibdeps -O --ignore-missing-info -e"$stage/usr/bin/kiezbox" 2>"$work/shlibdeps.log" |
	sed -n 's/^shlibs:Depends=//p') || { cat "$work/shlibdeps.log" >&2; exit 1; }
# Debian 13 renamed libcurl4 to libcurl4t64 (the 64-bit time_t transition, same soname): accept either.
shlibs=$(sed -E 's/libcurl4( \([^)]*\))?/libcurl4\1 | libcurl4t64/' <<<"$shlibs")

mkdir -p "$stage/DEBIAN"
installed_size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCHITECTURE@/$architecture/" -e "s/@INSTALLED_SIZE@/$installed_size/" \
	-e "s/@SHLIBS@/$shlibs/" "$root/packaging/deb/control" >"$stage/DEBIAN/control"
printf '/etc/kiezbox/kiezbox.toml\n' >"$stage/DEBIAN/conffiles"
for script in preinst postinst prerm postrm; do
	sed -e "s/@ENABLED_UNITS@/${enabled[*]}/" -e "s/@ALL_UNITS@/${all_units[*]}/" \
		"$root/packaging/deb/$script" >"$stage/DEBIAN/$script"
	chmod 0755 "$stage/DEBIAN/$script"
done
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum >DEBIAN/md5sums)

package=$out/kiezbox_${version}_${architecture}.deb
dpkg-deb --root-owner-group "${compression[@]}" --build "$stage" "$package" >/dev/null
printf '%s\n' "$package"
