#!/usr/bin/env bash
# `make run`: with a display, build and launch the tray app (which starts the engine as its
# sidecar); with none, say so and run the headless server with sensible defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CARGO_TARGET_DIR:-target}/debug"

if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ] || [ "$(uname)" = Darwin ]; then
  make --no-print-directory app
  echo "run: starting Airlock in the tray (Quit from its menu)" >&2
  exec "$bin/airlock-app"
fi

echo "run: no display (DISPLAY is not set), so no tray app: running the headless server instead." >&2
echo "run: approvals come from policy (an \"ask\" is refused with the rule that would allow it);" >&2
echo "run: connect clients with \`$bin/airlock clients\`, stop with Ctrl-C." >&2
cargo build -p airlock --quiet
exec "$bin/airlock" serve --approver policy
