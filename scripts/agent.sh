#!/usr/bin/env bash
# `make agent`: the static in-container helper for each Linux architecture this toolchain can
# build, into $AIRLOCK_AGENT_DIR as airlock-agent-linux-<amd64|arm64>. On a Linux x86_64 host
# amd64 is built for the gnu target with a static C runtime (the flag stays off build scripts);
# arm64 (and, on a Mac, both) for the musl targets, linked by rust-lld, when `rustup target add`
# has installed them. Says plainly which build it could not make; fails only if it made none.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"
out="${AIRLOCK_AGENT_DIR:-$target_dir/airlock-agent}"
mkdir -p "$out"

installed() { [ -d "$(rustc --print target-libdir --target "$1" 2>/dev/null)" ]; }

build() { # arch, target, extra RUSTFLAGS
  local arch=$1 target=$2 flags=$3
  if ! installed "$target"; then
    echo "agent: no $arch build: the $target target is not installed (rustup target add $target)" >&2
    return 1
  fi
  RUSTFLAGS="$flags" cargo build --profile agent -p airlock-agent --target "$target" --quiet
  cp "$target_dir/$target/agent/airlock-agent" "$out/airlock-agent-linux-$arch"
}

built=0
if [ "$(uname -s)" = Linux ] && [ "$(uname -m)" = x86_64 ]; then
  build amd64 x86_64-unknown-linux-gnu "-C target-feature=+crt-static" && built=$((built + 1))
else
  build amd64 x86_64-unknown-linux-musl "-C linker=rust-lld" && built=$((built + 1))
fi
if [ "$(uname -s)" = Linux ] && [ "$(uname -m)" = aarch64 ]; then
  build arm64 aarch64-unknown-linux-gnu "-C target-feature=+crt-static" && built=$((built + 1))
elif build arm64 aarch64-unknown-linux-musl "-C linker=rust-lld"; then
  built=$((built + 1))
else
  echo "agent: sandboxes on an arm64 engine will run the amd64 build under emulation" >&2
fi
[ "$built" -gt 0 ] || { echo "agent: no agent could be built" >&2; exit 1; }
