#!/usr/bin/env bash
# Regenerates the committed Swift code for the Meshtastic and Kiezbox 2.0 messages from proto/meshtastic/*.proto.
# The build never runs this (no build-time plugin: it would add ~10 minutes to every clean build); run it after
# editing a .proto file and commit the result.
#
# Needs protoc (Debian's protobuf-compiler, installed here if missing) and protoc-gen-swift from swift-protobuf
# 1.39.0, the version Package.swift pins, built once into a scratch folder outside the package's .build:
#   PROTOC_GEN_SWIFT_SCRATCH  where to build it (default ~/.cache/kiezbox/swift-protobuf-1.39.0)
#   PROTOC_GEN_SWIFT          an already built plugin to use instead
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
version=1.39.0
scratch=${PROTOC_GEN_SWIFT_SCRATCH:-${XDG_CACHE_HOME:-$HOME/.cache}/kiezbox/swift-protobuf-$version}
output=$root/Sources/MeshRelay/Meshtastic/Generated

if ! command -v protoc >/dev/null 2>&1; then
  sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  echo "Installing protobuf-compiler (protoc)" >&2
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends protobuf-compiler >&2
fi

plugin=${PROTOC_GEN_SWIFT:-$scratch/build/debug/protoc-gen-swift}
if [ ! -x "$plugin" ]; then
  if [ ! -d "$scratch/src" ]; then
    mkdir -p "$scratch"
    git clone --quiet --depth 1 --branch "$version" https://github.com/apple/swift-protobuf.git "$scratch/src"
  fi
  echo "Building protoc-gen-swift $version in $scratch (once; a few minutes)" >&2
  swift build --product protoc-gen-swift --package-path "$scratch/src" --scratch-path "$scratch/build" >&2
fi

# Visibility=Public: MeshRelay's API hands these messages to the daemon and the tests.
# FileNaming=DropPath: one flat Generated/ folder (mesh.pb.swift, telemetry.pb.swift, kiezbox_control.pb.swift).
rm -f "$output"/*.pb.swift
mkdir -p "$output"
cd "$root"
protoc --proto_path=proto \
  --plugin=protoc-gen-swift="$plugin" \
  --swift_opt=Visibility=Public \
  --swift_opt=FileNaming=DropPath \
  --swift_out="$output" \
  proto/meshtastic/*.proto
echo "Generated with $(protoc --version) and protoc-gen-swift $version:" >&2
ls "$output"/*.pb.swift >&2
