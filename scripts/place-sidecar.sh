#!/usr/bin/env bash
# Places the engine just built beside the app as its sidecar (`<target>/debug/airlock-engine`, where
# the app looks for it). Tauri's build step copies `src-tauri/binaries/airlock-engine-<target>`
# there at build time; a dev build keeps that file a placeholder so that the engine changing
# never rebuilds the app, and puts the real engine in place after every build instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CARGO_TARGET_DIR:-target}/debug"
[ -x "$bin/airlock" ] || { echo "place-sidecar: $bin/airlock is not built" >&2; exit 1; }
cp "$bin/airlock" "$bin/airlock-engine.tmp"
mv -f "$bin/airlock-engine.tmp" "$bin/airlock-engine"
