#!/usr/bin/env bash
# Installs what the tray app needs to build and what its GUI tests need to run under a virtual
# display: WebKitGTK + AppIndicator headers, Xvfb, a window manager, a notification daemon, a tray
# host, xdotool, ImageMagick, WebKitWebDriver, and tauri-driver (2.1.x). Idempotent; root for apt.
# `--app`: only what building the app needs (`make run` installs no test tools).
set -euo pipefail

PKGS=(
  # build the app
  libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev
  build-essential pkg-config
)
if [ "${1:-}" != --app ]; then
  PKGS+=(
    # run it under a virtual display and drive it
    xvfb openbox dunst trayer xdotool imagemagick dbus-x11 webkit2gtk-driver libnotify-bin
    fonts-dejavu-core
  )
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "gui-deps: missing packages: ${missing[*]}; install them (sudo apt-get install ${missing[*]}) and retry" >&2
    exit 1
  fi
  echo "gui-deps: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ "${1:-}" = --app ] && exit 0

# npm runs the prebuilt Tauri CLI that packages the app (scripts/bundle.sh; the install test).
if ! command -v npm >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "gui-deps: npm is missing: sudo apt-get install nodejs npm" >&2; exit 1; }
  echo "gui-deps: installing nodejs and npm" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

TAURI_DRIVER_VERSION="2.1"
# tauri-driver has no --version flag: ask cargo what it installed.
if ! command -v tauri-driver >/dev/null 2>&1 \
  || ! cargo install --list 2>/dev/null | grep -q "^tauri-driver v${TAURI_DRIVER_VERSION}\."; then
  echo "gui-deps: installing tauri-driver ${TAURI_DRIVER_VERSION}.x" >&2
  cargo install tauri-driver --locked --version "~${TAURI_DRIVER_VERSION}" --quiet
fi
