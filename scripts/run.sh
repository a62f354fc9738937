#!/usr/bin/env bash
# `make run`: with a display, build and launch the tray app (which starts the engine as its
# sidecar); with none, say so and run the headless server with sensible defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CARGO_TARGET_DIR:-target}/debug"

# A first build compiles a few hundred crates: tell a newcomer what is happening.
first_build() {
  [ -x "$bin/$1" ] || echo "run: building $2 (a first build takes 10 to 15 minutes on 2 cores, later ones seconds)" >&2
}

if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ] || [ "$(uname)" = Darwin ]; then
  first_build airlock-app "the engine and the tray app"
  make --no-print-directory app
  echo "run: starting Airlock in the tray (Quit from its menu)" >&2
  exec "$bin/airlock-app"
fi

echo "run: no display (DISPLAY is not set), so no tray app: running the headless server instead." >&2
echo "run: approvals come from policy (an \"ask\" is refused with the rule that would allow it);" >&2
echo "run: connect clients with \`$bin/airlock clients\`, stop with Ctrl-C." >&2
first_build airlock "the engine"
cargo build -p airlock --quiet
exec "$bin/airlock" serve --approver policy
