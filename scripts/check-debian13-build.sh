#!/usr/bin/env bash
# check-debian13-build.sh — shows that the README's quick start works on a fresh Debian 13 (trixie): in a chroot
# made with mmdebstrap that has only the Swift toolchain's prerequisites, it runs `make build` (the first half of
# `make run`: scripts/install-deps.sh, then the release build), starts the daemon on simulated sensors, waits for
# the emergency portal on http://127.0.0.1:8080/, runs `kiezbox status`, stops the daemon with SIGINT (exit 0, no
# error in its log), and installs what `make test` installs (`scripts/install-deps.sh tests`), so that every package
# name is shown to exist on trixie. The test suite itself is not run (it needs QEMU and about 15 minutes).
#
#   sudo scripts/check-debian13-build.sh [--build-tests] [--keep]
#     --build-tests   also `swift build --build-tests` (the test build, about 10 more minutes)
#     --keep          leave the chroot in place afterwards (its path is printed)
#
# Needs root (mmdebstrap, chroot, mount, unshare), mmdebstrap on the host, and the Swift toolchain for Debian 12 in
# $SWIFT_DIR (default /opt/swift), which is bind-mounted read-only into the chroot. The committed state of this
# repository is cloned into the chroot. When git on the host reads Swift packages from a local mirror
# (`url.<dir>.insteadOf` in the system or global git configuration), the chroot gets the same configuration and
# the mirror directories, read-only. The Debian base system is cached as a tarball in
# ~/.cache/kiezbox-debian13-build, so a rerun skips mmdebstrap. The daemon runs in a network namespace of its own
# (loopback only), so that port 8080 on the host does not matter. Exit status 0 when everything worked; otherwise
# non-zero with the reason (and the tail of the step's log).
set -euo pipefail

readonly SUITE=trixie
readonly MIRROR=${KIEZBOX_DEBIAN13_MIRROR:-http://deb.debian.org/debian}
readonly SWIFT_DIR=${SWIFT_DIR:-/opt/swift}
readonly CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/kiezbox-debian13-build
readonly PORTAL_URL=http://127.0.0.1:8080/
readonly PORTAL_TIMEOUT=120
readonly BUILD_TIMEOUT=${KIEZBOX_BUILD_TIMEOUT:-5400}

# What a fresh Debian system with the Swift toolchain installed has: the base system plus the packages swift.org's
# installation instructions for Debian list for the toolchain (compiler driver, linker, C runtime, the libraries its
# tools load), and git, make, sudo and CA certificates. Deliberately not here: pkg-config and libsqlite3-dev (which
# swift.org also lists) and anything else scripts/install-deps.sh installs, so that the check shows the project's
# script installs them.
readonly TOOLCHAIN_PREREQUISITES=(
	ca-certificates git make sudo
	binutils binutils-gold gcc libc6-dev libgcc-14-dev libstdc++-14-dev
	libcurl4-openssl-dev libedit-dev libicu-dev libncurses-dev libpython3-dev libxml2-dev uuid-dev zlib1g-dev
	tzdata gnupg2 unzip
)

build_tests=false
keep=false
for argument in "$@"; do
	case $argument in
	--build-tests) build_tests=true ;;
	--keep) keep=true ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "error: unknown argument '$argument' (see --help)" >&2
		exit 2
		;;
	esac
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repository=$(git -C "$here" rev-parse --show-toplevel)

fail() {
	echo "FAILED: $*" >&2
	exit 1
}
# The tail of a step's log, then the reason.
fail_with_log() {
	local log=$1
	shift
	echo "---- last lines of $log ----" >&2
	tail -n 40 "$log" >&2 || true
	echo "----" >&2
	fail "$@"
}
note() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

((EUID == 0)) || fail "needs root (mmdebstrap, chroot, mount, unshare)"
for tool in mmdebstrap chroot unshare nsenter mount umount findmnt curl git ip; do
	command -v "$tool" >/dev/null || fail "'$tool' is not installed on this machine"
done
[[ -x $SWIFT_DIR/usr/bin/swift ]] || fail "no Swift toolchain at $SWIFT_DIR (set SWIFT_DIR)"
swift_version=$("$SWIFT_DIR/usr/bin/swift" --version 2>/dev/null | head -n 1)

mkdir -p "$CACHE"
work=$(mktemp -d "$CACHE/run.XXXXXX")
root=$work/root
logs=$work/logs
mkdir -p "$root" "$logs"

mounts=()
daemon_pid=
# Unmounts everything in reverse order, stops the daemon if it still runs, and removes the chroot unless --keep, or
# unless something is still mounted below it (then it says so and leaves it).
cleanup() {
	local status=$? i target
	trap - EXIT INT TERM
	if [[ -n $daemon_pid ]] && kill -0 "$daemon_pid" 2>/dev/null; then
		kill -TERM "$daemon_pid" 2>/dev/null || true
		sleep 2
		kill -KILL "$daemon_pid" 2>/dev/null || true
	fi
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
		target=${mounts[i]}
		umount "$target" 2>/dev/null || umount -l "$target" 2>/dev/null || echo "warning: could not unmount $target" >&2
	done
	if findmnt -rn -o TARGET | grep -q "^$root/"; then
		echo "warning: still mounted below $root; not removing it:" >&2
		findmnt -rn -o TARGET | grep "^$root/" >&2
	elif [[ $keep == true ]]; then
		echo "chroot kept: $root (logs: $logs)"
	else
		rm -rf "$root"
		echo "logs: $logs"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bind_mount() { # source target [ro]
	local source=$1 target=$2
	mkdir -p "$target"
	mount --bind "$source" "$target"
	mounts+=("$target")
	if [[ ${3:-} == ro ]]; then
		mount -o remount,bind,ro "$target"
	fi
}

# The environment a login shell of root with the toolchain on PATH has, and nothing from this machine's.
in_chroot() {
	chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
		PATH="$SWIFT_DIR/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
		/bin/bash -c "cd /src && $1"
}

# Prefixes every line with the seconds since the step started; the caller reads timings from the log.
timestamped() {
	local start=$SECONDS line
	while IFS= read -r line; do
		printf '%5d %s\n' "$((SECONDS - start))" "$line"
	done
}

# 1. The Debian 13 base system, cached.
packages=$(IFS=,; echo "${TOOLCHAIN_PREREQUISITES[*]}")
tarball=$CACHE/$SUITE-minbase-$(printf '%s %s' "$MIRROR" "$packages" | md5sum | cut -c1-12).tar
if [[ -f $tarball ]]; then
	mmdebstrap_seconds=$(cat "$tarball.seconds" 2>/dev/null || echo "?")
	note "Debian 13 base system from the cache: $tarball (mmdebstrap took ${mmdebstrap_seconds} s when it was made)"
	mmdebstrap_figure="${mmdebstrap_seconds} s (cached from an earlier run)"
else
	note "mmdebstrap --variant=minbase $SUITE with the toolchain's prerequisites (a few minutes, once)"
	start=$SECONDS
	mmdebstrap --variant=minbase --include="$packages" "$SUITE" "${tarball%.tar}.partial.tar" "$MIRROR" \
		>"$logs/mmdebstrap.log" 2>&1 || fail_with_log "$logs/mmdebstrap.log" "mmdebstrap $SUITE failed"
	mmdebstrap_seconds=$((SECONDS - start))
	mv "${tarball%.tar}.partial.tar" "$tarball"
	echo "$mmdebstrap_seconds" >"$tarball.seconds"
	mmdebstrap_figure="${mmdebstrap_seconds} s"
fi
tar --numeric-owner -xpf "$tarball" -C "$root"
grep -q '^VERSION_ID="13"' "$root/etc/os-release" || fail "the base system is not Debian 13: $(grep PRETTY "$root/etc/os-release")"
debian_version=$(cat "$root/etc/debian_version")

# 2. Mounts, DNS for apt, the toolchain, the git mirror and the repository.
bind_mount /proc "$root/proc"
bind_mount /sys "$root/sys" ro
bind_mount /dev "$root/dev"
bind_mount /dev/pts "$root/dev/pts"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm"
mounts+=("$root/dev/shm")
bind_mount "$SWIFT_DIR" "$root$SWIFT_DIR" ro
rm -f "$root/etc/resolv.conf"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"

# git's url.<base>.insteadOf rules of this machine (system and global), and the local directories they point at.
mirrors=()
while read -r key value; do
	[[ -n $key ]] || continue
	base=${key#url.}
	base=${base%.insteadof}
	git config --file "$root/etc/gitconfig" --add "url.$base.insteadOf" "$value"
	if [[ $base == /* && -d $base ]] && [[ " ${mirrors[*]} " != *" $base "* ]]; then
		mirrors+=("$base")
		bind_mount "$base" "$root$base" ro
	fi
done < <({ git config --system --get-regexp '^url\..*\.insteadof$' || true; git config --global --get-regexp '^url\..*\.insteadof$' || true; })
if ((${#mirrors[@]} > 0)); then
	note "Swift packages from the local git mirror(s): ${mirrors[*]}"
else
	note "no url.*.insteadOf in this machine's git configuration: Swift packages come from the network"
fi

git clone --quiet "$repository" "$root/src"
commit=$(git -C "$root/src" rev-parse --short HEAD)
note "repository $repository at $commit cloned to /src in the chroot"
in_chroot 'swift --version' >"$logs/swift-version.log" 2>&1 ||
	fail_with_log "$logs/swift-version.log" "the Swift toolchain does not run on Debian 13 with its prerequisites"

# 3a. make build: scripts/install-deps.sh (apt), then the release build.
note "make build (scripts/install-deps.sh, then swift build -c release --product kiezbox; 6 to 20 minutes)"
start=$SECONDS
set +e
in_chroot "timeout $BUILD_TIMEOUT make build" 2>&1 | timestamped >"$logs/make-build.log"
build_status=${PIPESTATUS[0]}
set -e
build_total=$((SECONDS - start))
((build_status == 0)) || fail_with_log "$logs/make-build.log" "make build failed on Debian 13 (exit status $build_status)"
apt_list=$(sed -n 's/^ *[0-9]* Installing system packages: //p' "$logs/make-build.log")
[[ -n $apt_list ]] || fail_with_log "$logs/make-build.log" "scripts/install-deps.sh installed nothing: the base system is not fresh"
# The line where make starts swift: everything before it was install-deps.sh.
apt_seconds=$(awk '$2 ~ /swift$/ && $3 == "build" { print $1; exit }' "$logs/make-build.log")
[[ -n $apt_seconds ]] || apt_seconds=0
build_seconds=$((build_total - apt_seconds))
[[ -x $root/src/.build/release/kiezbox ]] || fail "make build succeeded but there is no .build/release/kiezbox"
note "make build: ${build_total} s (apt ${apt_seconds} s, swift build ${build_seconds} s)"

# 3b. The daemon, as `make run` starts it, in a network namespace with loopback only.
note "kiezbox run (portal expected on $PORTAL_URL within $PORTAL_TIMEOUT s)"
set -m # a background job of a script otherwise ignores SIGINT
unshare --net -- /bin/sh -c 'ip link set lo up && exec "$@"' sh \
	chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	/bin/bash -c 'cd /src && exec .build/release/kiezbox run' >"$logs/kiezbox-run.log" 2>&1 &
daemon_pid=$!
set +m
start=$SECONDS
portal_seconds=
host_netns=$(readlink /proc/self/ns/net)
while ((SECONDS - start < PORTAL_TIMEOUT)); do
	kill -0 "$daemon_pid" 2>/dev/null || fail_with_log "$logs/kiezbox-run.log" "kiezbox run exited before the portal answered"
	# Until unshare has made the daemon's network namespace, 127.0.0.1 would be this machine's.
	if [[ $(readlink "/proc/$daemon_pid/ns/net" 2>/dev/null) == "$host_netns" ]]; then
		sleep 0.2
		continue
	fi
	code=$(nsenter --net="/proc/$daemon_pid/ns/net" curl -s -o "$logs/portal.html" -w '%{http_code}' --max-time 5 "$PORTAL_URL" 2>/dev/null) || code=
	if [[ $code == 200 ]]; then
		portal_seconds=$((SECONDS - start))
		break
	fi
	sleep 1
done
[[ -n $portal_seconds ]] || fail_with_log "$logs/kiezbox-run.log" "the portal did not answer 200 on $PORTAL_URL within $PORTAL_TIMEOUT s (last status: ${code:-none})"
grep -qi '<html' "$logs/portal.html" || fail "the portal answered 200 but not with an HTML page: $(head -c 200 "$logs/portal.html")"
portal_title=$(sed -n 's:.*<title>\([^<]*\)</title>.*:\1:p' "$logs/portal.html" | head -n 1)
note "portal answered 200 after ${portal_seconds} s: $(wc -c <"$logs/portal.html") bytes, title '${portal_title}'"

# Let the store commit a first batch (flush_interval 10s) so that status has readings to show.
sleep 12
nsenter --net="/proc/$daemon_pid/ns/net" chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
	PATH=/usr/sbin:/usr/bin:/sbin:/bin /bin/bash -c 'cd /src && .build/release/kiezbox status' >"$logs/kiezbox-status.log" 2>&1 ||
	fail_with_log "$logs/kiezbox-status.log" "kiezbox status failed"
note "kiezbox status:"
sed 's/^/    /' "$logs/kiezbox-status.log"

kill -INT "$daemon_pid"
set +e
stop_start=$SECONDS
while kill -0 "$daemon_pid" 2>/dev/null && ((SECONDS - stop_start < 30)); do sleep 1; done
kill -0 "$daemon_pid" 2>/dev/null && fail_with_log "$logs/kiezbox-run.log" "kiezbox run did not exit within 30 s of SIGINT"
wait "$daemon_pid"
run_status=$?
set -e
daemon_pid=
((run_status == 0)) || fail_with_log "$logs/kiezbox-run.log" "kiezbox run exited with status $run_status after SIGINT (expected 0)"
if grep -Eiw 'error|critical' "$logs/kiezbox-run.log" >"$logs/kiezbox-run-errors.log"; then
	fail_with_log "$logs/kiezbox-run-errors.log" "kiezbox run logged errors"
fi
note "kiezbox run: SIGINT -> exit status 0 after $((SECONDS - stop_start)) s; $(wc -l <"$logs/kiezbox-run.log") log lines, none with error"

# 3c. What `make test` installs.
note "scripts/install-deps.sh tests"
start=$SECONDS
in_chroot 'scripts/install-deps.sh tests' >"$logs/install-deps-tests.log" 2>&1 ||
	fail_with_log "$logs/install-deps-tests.log" "scripts/install-deps.sh tests failed on Debian 13"
tests_apt_seconds=$((SECONDS - start))
tests_apt_list=$(sed -n 's/^Installing system packages: //p' "$logs/install-deps-tests.log")
note "scripts/install-deps.sh tests: ${tests_apt_seconds} s"

test_build_figure="not run (--build-tests)"
if [[ $build_tests == true ]]; then
	note "swift build --build-tests (the test build; about 10 minutes)"
	start=$SECONDS
	in_chroot "timeout $BUILD_TIMEOUT swift build --build-tests" >"$logs/build-tests.log" 2>&1 ||
		fail_with_log "$logs/build-tests.log" "swift build --build-tests failed on Debian 13"
	test_build_figure="$((SECONDS - start)) s, succeeded"
fi

# 4. The figures.
cat <<EOF

Debian 13 check passed ($(date -u +%Y-%m-%d), $(nproc) cores, commit $commit)
  base system          Debian $debian_version, mmdebstrap --variant=minbase: $mmdebstrap_figure
  toolchain            $swift_version (the Debian 12 build, from $SWIFT_DIR)
  toolchain packages   ${TOOLCHAIN_PREREQUISITES[*]}
  make build: apt      ${apt_seconds} s: $apt_list
  make build: swift    ${build_seconds} s (swift build -c release --product kiezbox, from a clean clone)
  portal answering     ${portal_seconds} s after start: 200 on $PORTAL_URL ('$portal_title')
  kiezbox status       ok; SIGINT -> exit 0, no error in the log
  install-deps tests   ${tests_apt_seconds} s: ${tests_apt_list:-nothing missing}
  test build           $test_build_figure
EOF
