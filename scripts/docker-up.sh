#!/usr/bin/env bash
# Makes sure a Docker engine answers: uses the one that is running, or (as root) installs
# Debian's docker.io and starts dockerd. Fails with what to do when it cannot.
set -euo pipefail

if docker info >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "docker-up: no Docker engine answers and this is not root; start Docker (Desktop, Colima, dockerd) and retry" >&2
  exit 1
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "docker-up: installing Debian's docker.io" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
if ! pgrep -x dockerd >/dev/null 2>&1; then
  # A dockerd killed without a clean shutdown leaves its pid file behind and refuses to start.
  rm -f /var/run/docker.pid
  echo "docker-up: starting dockerd (log: /tmp/airlock-dockerd.log)" >&2
  # Its own session: the daemon outlives the shell (and a Ctrl-C of the make) that started it.
  setsid nohup dockerd >/tmp/airlock-dockerd.log 2>&1 < /dev/null &
fi
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 0.5
done
echo "docker-up: dockerd did not come up; see /tmp/airlock-dockerd.log" >&2
exit 1
