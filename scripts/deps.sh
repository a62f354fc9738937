#!/usr/bin/env bash
# Installs the system packages the engine's tests use (idempotent; apt as root):
# Docker (docker-up.sh), busybox for the test image, and a real Secret Service for the keychain test.
set -euo pipefail

PKGS=(busybox-static file gnome-keyring dbus-daemon dbus-x11 libsecret-tools procps python3-venv)
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing packages: ${missing[*]}; install them (sudo apt-get install ${missing[*]}) and retry" >&2
    exit 1
  fi
  echo "deps: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
