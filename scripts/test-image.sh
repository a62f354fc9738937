#!/usr/bin/env bash
# Builds the local sandbox images the tests use, without any image registry; each is reused while
# its tag exists:
#   - AIRLOCK_TEST_IMAGE (airlock-test-busybox:1): busybox-static on scratch, for every suite;
#   - AIRLOCK_INSTALLER_TEST_IMAGE (airlock-test-debian:1): a minimal Debian bookworm with python3,
#     pip, venv, npm and cargo, for the installer tests (debootstrap, then `docker import`).
set -euo pipefail
TAG="${AIRLOCK_TEST_IMAGE:-airlock-test-busybox:1}"
INSTALLER_TAG="${AIRLOCK_INSTALLER_TEST_IMAGE:-airlock-test-debian:1}"
INSTALLER_PACKAGES=(python3 python3-pip python3-venv npm cargo)

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# Installs Debian packages when root; otherwise says what to install and fails.
need_packages() {
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "test-image: needs $*: apt-get install $*" >&2
    exit 1
  fi
}

busybox_image() {
  have_image "$TAG" && return 0
  local busybox=/bin/busybox ctx
  if ! file -L "$busybox" 2>/dev/null | grep -q "statically linked"; then
    need_packages busybox-static file
  fi
  ctx=$(mktemp -d)
  cp "$busybox" "$ctx/busybox"
  cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "mkdir", "-p", "/tmp", "/root", "/etc"]
RUN ["/bin/busybox", "chmod", "1777", "/tmp"]
DOCKERFILE
  docker build -q -t "$TAG" "$ctx" >/dev/null
  rm -rf "$ctx"
  echo "test-image: built $TAG" >&2
}

debian_image() {
  have_image "$INSTALLER_TAG" && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "test-image: building $INSTALLER_TAG needs root (debootstrap); run \`make setup\` as root" >&2
    exit 1
  fi
  command -v debootstrap >/dev/null 2>&1 || need_packages debootstrap
  local started rootfs
  started=$(date +%s)
  rootfs=$(mktemp -d /var/tmp/airlock-rootfs.XXXXXX)
  # Unmounts what the chroot used and removes the tree, whatever happened.
  # shellcheck disable=SC2064
  trap "umount -l '$rootfs/proc' 2>/dev/null || true; rm -rf --one-file-system '$rootfs'" EXIT
  echo "test-image: building $INSTALLER_TAG (debootstrap bookworm, then ${INSTALLER_PACKAGES[*]}; a few minutes)" >&2
  debootstrap --variant=minbase bookworm "$rootfs" >/dev/null
  mount -t proc proc "$rootfs/proc"
  # No service starts inside the chroot.
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod +x "$rootfs/usr/sbin/policy-rc.d"
  chroot "$rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive sh -c \
    "apt-get update -qq && apt-get install -y -qq --no-install-recommends ca-certificates ${INSTALLER_PACKAGES[*]} >/dev/null && apt-get clean"
  rm -f "$rootfs/usr/sbin/policy-rc.d"
  rm -rf "$rootfs"/var/lib/apt/lists/*
  umount -l "$rootfs/proc"
  tar -C "$rootfs" -c . | docker import - "$INSTALLER_TAG" >/dev/null
  echo "test-image: built $INSTALLER_TAG in $(($(date +%s) - started)) s" >&2
}

busybox_image
debian_image
