#!/usr/bin/env bash
# `make bench`: release builds, then Airlock's warm paths against baselines measured in the
# same run (see crates/airlock/benches/airlock_bench.rs), then the audit log at a million rows.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p airlock --quiet
cargo bench -p airlock --bench airlock_bench --quiet
echo
echo "-- the audit log (crates/airlock-audit/examples/audit_bench.rs)"
cargo run --release -p airlock-audit --example audit_bench --quiet -- --rows "${AUDIT_BENCH_ROWS:-1000000}"
