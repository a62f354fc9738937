#!/usr/bin/env bash
# `make bench`: release builds, then Airlock's warm paths against baselines measured in the
# same run (see crates/airlock/benches/airlock_bench.rs), then the audit log at a million rows.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p airlock --quiet
# The TypeScript SDK client and a plain TypeScript server, pinned in bench/ts (Node.js 18+).
command -v npm >/dev/null 2>&1 || { echo "bench: npm is missing (Node.js 18 or newer): apt-get install nodejs npm" >&2; exit 1; }
npm ci --prefix bench/ts --silent --no-audit --no-fund
cargo bench -p airlock --bench airlock_bench --quiet
echo
echo "-- the audit log (crates/airlock-audit/examples/audit_bench.rs)"
cargo run --release -p airlock-audit --example audit_bench --quiet -- --rows "${AUDIT_BENCH_ROWS:-1000000}"
