#!/usr/bin/env bash
# End-to-end tests of the MCP server with the official Python MCP SDK (tests/python/).
# Builds nothing: needs `make build` (engine + agent) and `make setup` (Docker + test image) first.
# Keeps a venv in tests/python/.venv, reinstalled only when tests/python/requirements.txt changes.
# Extra arguments go to pytest (e.g. `scripts/python-test.sh -k stdio -x`). Exits with pytest's code.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TESTS="$ROOT/tests/python"
VENV="$TESTS/.venv"
REQS="$TESTS/requirements.txt"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
export AIRLOCK_AGENT_DIR="${AIRLOCK_AGENT_DIR:-$TARGET/airlock-agent}"
export AIRLOCK_TEST_IMAGE="${AIRLOCK_TEST_IMAGE:-airlock-test-busybox:1}"
BIN="${AIRLOCK_BIN:-$TARGET/debug/airlock}"
export AIRLOCK_BIN="$BIN"

fail() {
  echo "python-test: $*" >&2
  exit 1
}

# Prerequisites: fail loudly, never skip.
[ -x "$BIN" ] || fail "the engine binary $BIN is missing: run \`make build\`"
[ -f "$AIRLOCK_AGENT_DIR/airlock-agent-linux-amd64" ] ||
  fail "the static agent $AIRLOCK_AGENT_DIR/airlock-agent-linux-amd64 is missing: run \`make build\` (or \`make agent\`)"
command -v docker >/dev/null 2>&1 || fail "the docker CLI is not installed: run \`make setup\`"
docker info >/dev/null 2>&1 || fail "no Docker engine answers: run \`make setup\`"
docker image inspect "$AIRLOCK_TEST_IMAGE" >/dev/null 2>&1 ||
  fail "the test image $AIRLOCK_TEST_IMAGE is missing: run \`make setup\`"
PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null 2>&1 || fail "python3 is not installed (3.10 or newer is needed)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
  fail "$("$PYTHON" --version 2>&1) is too old: the mcp SDK needs Python 3.10 or newer"

# The venv: created once, reinstalled when the pinned requirements change.
stamp="$VENV/.requirements.sha256"
want="$(sha256sum "$REQS" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  if [ ! -x "$VENV/bin/python" ]; then
    echo "python-test: creating $VENV" >&2
    "$PYTHON" -m venv "$VENV" || fail "cannot create a venv (Debian/Ubuntu: apt-get install python3-venv)"
  fi
  echo "python-test: installing $REQS" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS" ||
    fail "pip could not install $REQS"
  echo "$want" >"$stamp"
fi

cd "$TESTS"
set +e
"$VENV/bin/python" -m pytest "$@"
code=$?
set -e
exit "$code"
