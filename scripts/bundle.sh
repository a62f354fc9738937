#!/usr/bin/env bash
# `make bundle`: the installable app, built with Tauri's bundler from the prebuilt Tauri CLI
# (npm, pinned; kept under the user's cache dir). On Linux a .deb only (the deb bundler works
# offline; AppImage tooling would be downloaded). The package holds the app, the engine as its
# sidecar, and the agent builds as resources (`/usr/lib/Airlock/airlock-agent`), so an installed
# app needs nothing from the build tree. `--debug`: package the dev build (the tests do).
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "bundle: $*" >&2; exit 1; }

TAURI_CLI_VERSION=2.12.5
tools="${XDG_CACHE_HOME:-$HOME/.cache}/airlock/tools"
cli="$tools/tauri-cli-$TAURI_CLI_VERSION/node_modules/.bin/tauri"
if [ ! -x "$cli" ]; then
  command -v npm >/dev/null 2>&1 || fail "npm is missing (Node.js 18 or newer): apt-get install nodejs npm"
  echo "bundle: installing the Tauri CLI $TAURI_CLI_VERSION" >&2
  mkdir -p "$tools/tauri-cli-$TAURI_CLI_VERSION"
  npm install --prefix "$tools/tauri-cli-$TAURI_CLI_VERSION" --no-audit --no-fund --silent \
    "@tauri-apps/cli@$TAURI_CLI_VERSION" >/dev/null || fail "could not install @tauri-apps/cli"
fi

target_dir="${CARGO_TARGET_DIR:-target}"
case "$(uname -s)" in
  Linux) bundles=deb ;;
  Darwin) bundles=app,dmg ;;
  *) fail "no bundle for $(uname -s)" ;;
esac
if [ "${1:-}" = --debug ]; then
  profile=debug flag=--debug
  read -r -a selection <<<"${AIRLOCK_CARGO_SELECTION:---workspace --all-targets --all-features}"
  cargo build "${selection[@]}" --quiet || fail "the build failed"
else
  profile=release flag=
  cargo build --release --workspace --all-features --bins --quiet || fail "the build failed"
fi
triple=$(rustc -vV | sed -n 's/^host: //p')
# The engine goes in as the app's sidecar, staged outside the source tree (the placeholder in
# src-tauri/binaries stays, so the next build does not rerun the app's build script).
stage="$target_dir/bundle-stage"
mkdir -p "$stage"
stage=$(cd "$stage" && pwd)
cp "$target_dir/$profile/airlock" "$stage/airlock-engine-$triple"
# The agent builds go in as resources; every one `make agent` produced.
agents="$target_dir/airlock-agent"
ls "$agents"/airlock-agent-linux-* >/dev/null 2>&1 || fail "no agent build in $agents: run \`make agent\`"
agents=$(cd "$agents" && pwd)
config=$(printf '{"bundle":{"externalBin":["%s/airlock-engine"],"resources":{"%s/":"airlock-agent/"}}}' "$stage" "$agents")
(cd src-tauri && "$cli" bundle --bundles "$bundles" $flag --config "$config") \
  >"$target_dir/bundle.log" 2>&1 || { cat "$target_dir/bundle.log" >&2; fail "the bundler failed"; }
out=$(cd "$target_dir/$profile/bundle" && pwd)
find "$out" -maxdepth 2 \( -name '*.deb' -o -name '*.dmg' -o -name '*.app' \) -newer "$stage/airlock-engine-$triple" -print
