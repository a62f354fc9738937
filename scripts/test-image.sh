#!/usr/bin/env bash
# Builds the local sandbox image the tests use, without any registry: busybox-static on scratch.
# Reused while the tag exists.
set -euo pipefail
TAG="${AIRLOCK_TEST_IMAGE:-airlock-test-busybox:1}"

if docker image inspect "$TAG" >/dev/null 2>&1; then
  exit 0
fi
BUSYBOX=/bin/busybox
if ! file -L "$BUSYBOX" 2>/dev/null | grep -q "statically linked"; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static file >/dev/null
  else
    echo "test-image: needs a static busybox: apt-get install busybox-static" >&2
    exit 1
  fi
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$BUSYBOX" "$ctx/busybox"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "mkdir", "-p", "/tmp", "/root", "/etc"]
RUN ["/bin/busybox", "chmod", "1777", "/tmp"]
DOCKERFILE
docker build -q -t "$TAG" "$ctx" >/dev/null
echo "test-image: built $TAG" >&2
