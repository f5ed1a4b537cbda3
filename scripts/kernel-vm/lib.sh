# shellcheck shell=bash disable=SC2034,SC2154 # constants used by the sourcing scripts; apt_log is set by them
# Helpers shared by the kernel VM (run.sh, prepare-kernel.sh) and the appliance VM (scripts/appliance-vm), sourced.

# Exit statuses of the rig, besides the test's own. Kept apart from what tests usually return (0, 1).
readonly KVM_EXIT_USAGE=2
readonly KVM_EXIT_TIMEOUT=124     # the VM was still running when the time limit struck
readonly KVM_EXIT_NO_STATUS=125   # the VM ended without reporting the test's status (panic, crash)
readonly KVM_EXIT_CANNOT_START=126 # the VM could not be started or set up: the test never ran

kvm_log() { printf 'kernel-vm: %s\n' "$*" >&2; }

# Ends the run because the VM cannot start; the reason is the last line a caller sees.
kvm_cannot_start() {
	printf 'kernel-vm: cannot start the VM: %s\n' "$*" >&2
	exit "$KVM_EXIT_CANNOT_START"
}

kvm_usage_error() {
	printf 'kernel-vm: %s (see --help)\n' "$*" >&2
	exit "$KVM_EXIT_USAGE"
}

# Seconds since the epoch with fractions, and the time elapsed since such a mark, e.g. "12.3".
kvm_now() { date +%s.%N; }
kvm_since() { awk -v start="$1" -v now="$(kvm_now)" 'BEGIN { printf "%.1f", now - start }'; }

# Runs a command as root: directly when we are root, else through passwordless sudo.
kvm_as_root() {
	if ((EUID == 0)); then
		"$@"
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo "$@"
	else
		kvm_cannot_start "installing packages needs root or passwordless sudo (wanted: $*)"
	fi
}

kvm_cache_dir() {
	printf '%s\n' "${KIEZBOX_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kiezbox-kernel-vm}"
}

# Fills a cache entry once: unless IS_READY ENTRY says it is there already, runs PREPARE ENTRY WORK with a fresh
# work directory under CACHE, holding the cache's lock so that parallel runs prepare it once (whoever waited
# finds it ready). The work directory goes afterwards, also on failure; BEFORE_REMOVAL (optional) runs first,
# with the work directory, to undo what PREPARE may leave behind (mounts).
kvm_prepare_once() {
	local cache=$1 entry=$2 is_ready=$3 prepare=$4 lock
	kvm_before_removal=${5:-true}
	"$is_ready" "$entry" && return 0
	exec {lock}>"$cache/.lock"
	flock "$lock"
	if ! "$is_ready" "$entry"; then
		kvm_work=$(mktemp -d "$cache/.prepare.XXXXXX")
		trap '"$kvm_before_removal" "$kvm_work"; rm -rf "$kvm_work"' EXIT
		"$prepare" "$entry" "$kvm_work"
		# Now rather than at exit: a caller may prepare a second entry.
		"$kvm_before_removal" "$kvm_work"
		rm -rf "$kvm_work"
		trap - EXIT
	fi
	flock -u "$lock"
}

# Installing host packages, shared by the kernel VM and the appliance VM. Callers set apt_log (where apt's output
# goes) and lists_refreshed=0 first.

missing_packages() {
	local package
	for package in "$@"; do
		dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null | grep -q '^install ok installed$' ||
			printf '%s\n' "$package"
	done
}

refresh_package_lists() {
	((lists_refreshed)) && return 0
	kvm_log "apt-get update"
	kvm_as_root apt-get update -q >>"$apt_log" 2>&1 ||
		kvm_cannot_start "apt-get update failed: $(tail -n 3 "$apt_log" | tr '\n' ' ')"
	lists_refreshed=1
}

# Installs what is missing. Stale package lists are refreshed once, when the first attempt fails.
install_packages() {
	local wanted
	mapfile -t wanted < <(missing_packages "$@")
	((${#wanted[@]})) || return 0
	kvm_log "apt-get install ${wanted[*]}"
	local attempt
	for attempt in first retry; do
		if kvm_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			-o DPkg::Lock::Timeout=300 "${wanted[@]}" >>"$apt_log" 2>&1; then
			return 0
		fi
		[[ $attempt == first ]] && refresh_package_lists
	done
	kvm_cannot_start "apt-get install ${wanted[*]} failed: $(tail -n 3 "$apt_log" | tr '\n' ' ')"
}
