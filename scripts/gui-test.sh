#!/usr/bin/env bash
# The tray app's end-to-end tests under a virtual display: starts Xvfb, a window manager
# (openbox), a notification daemon (dunst), a tray host (trayer) and a D-Bus session, then runs
# the GUI tests one at a time (each starts its own tauri-driver, the real app, and through it
# the real engine), and tears everything down. Fails loudly when a prerequisite is missing.
# Extra arguments go to cargo-nextest (e.g. a test name).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "gui-test: $*" >&2; exit 1; }
for cmd in Xvfb openbox dunst trayer xdotool import dbus-launch tauri-driver WebKitWebDriver docker; do
  command -v "$cmd" >/dev/null 2>&1 || fail "\`$cmd\` is missing: run scripts/gui-deps.sh (or make app)"
done
# The same package/target/feature selection as `make test`'s build, so nothing is compiled again.
read -r -a selection <<<"${AIRLOCK_CARGO_SELECTION:---workspace --all-targets --all-features}"
# Built already (a no-op then); a build step that ran again may have put its placeholder beside
# the app, so the engine is placed there again.
cargo build "${selection[@]}" --quiet || fail "the build failed"
scripts/place-sidecar.sh || fail "cannot place the engine beside the app"
# The installable package (`make bundle` of this build) that the install test puts on this
# machine with dpkg and removes again.
deb=$(scripts/bundle.sh --debug | tail -n 1) || fail "the package could not be built (scripts/bundle.sh)"
[ -f "$deb" ] || fail "the bundler made no package"
export AIRLOCK_TEST_DEB="$deb"
bin="${CARGO_TARGET_DIR:-target}/debug"
[ -x "$bin/airlock-app" ] || fail "the app is not built: run \`make app\`"
[ "$(stat -c %s "$bin/airlock-engine" 2>/dev/null || echo 0)" -gt 4096 ] \
  || fail "the engine sidecar next to the app is missing or a placeholder: run \`make app\`"
docker info >/dev/null 2>&1 || fail "no Docker engine answers: run \`make setup\` (scripts/docker-up.sh)"

logs=target/gui-logs
mkdir -p "$logs" target/gui-screenshots
rm -f target/gui-screenshots/*.png

# A free display number.
n=99
while [ -e "/tmp/.X11-unix/X$n" ] || [ -e "/tmp/.X$n-lock" ]; do n=$((n + 1)); done
export DISPLAY=":$n"

pids=()
cleanup() {
  local status=$?
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; done
  [ -n "${DBUS_SESSION_BUS_PID:-}" ] && kill "$DBUS_SESSION_BUS_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  exit "$status"
}
trap cleanup EXIT INT TERM

export NO_AT_BRIDGE=1 # no accessibility bus left behind by GTK
Xvfb "$DISPLAY" -screen 0 1280x800x24 -nolisten tcp >"$logs/xvfb.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do [ -e "/tmp/.X11-unix/X$n" ] && break; sleep 0.1; done
[ -e "/tmp/.X11-unix/X$n" ] || fail "Xvfb did not start on $DISPLAY (see $logs/xvfb.log)"

eval "$(dbus-launch --sh-syntax)"
[ -n "${DBUS_SESSION_BUS_ADDRESS:-}" ] || fail "dbus-launch gave no session bus"
export DBUS_SESSION_BUS_ADDRESS

openbox >"$logs/openbox.log" 2>&1 &
pids+=($!)
dunst >"$logs/dunst.log" 2>&1 &
pids+=($!)
trayer --edge top --align right --widthtype pixel --width 120 --height 32 \
  --transparent false --tint 0x2b2b2b --SetDockType true --expand false >"$logs/trayer.log" 2>&1 &
pids+=($!)
sleep 1
for p in "${pids[@]}"; do
  kill -0 "$p" 2>/dev/null || fail "a display helper exited early; see $logs/"
done

echo "gui-test: display $DISPLAY ready (openbox, dunst, trayer, D-Bus); running the GUI tests one at a time" >&2
cargo nextest run "${selection[@]}" -E 'package(airlock-gui-tests)' --test-threads 1 \
  --run-ignored all --no-fail-fast --status-level pass --failure-output final "$@"
echo "gui-test: screenshots in target/gui-screenshots/" >&2
