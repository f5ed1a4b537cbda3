# shellcheck shell=bash disable=SC2034 # the constants are used by the scripts that source this file
# Helpers shared by run.sh and prepare-kernel.sh (sourced, not run).

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
	fi
	flock -u "$lock"
}
