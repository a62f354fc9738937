#!/usr/bin/env bash
# `make test` after set-up: fmt, one build of everything (the workspace's crates linted by clippy
# as they compile, warnings denied), then every suite: the engine suites (cargo-nextest, all
# crates at once), doc tests, the official Python SDK suite, the peer clients' suite (TypeScript
# SDK, Inspector, conformance) and the GUI suite. Prints each
# phase's time, the tests each suite ran and a total; fails if a suite ran none, if any test
# failed or was skipped, or if a sandbox container was left behind.
set -uo pipefail
cd "$(dirname "$0")/.."

# The Makefile exports these; a direct call gets the same selection (a different one would
# compile dependencies again with other feature sets).
read -r -a SELECTION <<<"${AIRLOCK_CARGO_SELECTION:---workspace --all-targets --all-features}"
LOG_DIR=target/test-logs
mkdir -p "$LOG_DIR"
SUMMARY=()
FAILED=0
START_ALL=$(date +%s)
# Containers from before this run (an earlier run cut short) are not this run's leaks.
BEFORE=$(docker ps -aq --filter label=dev.airlock.managed=true 2>/dev/null | sort)

elapsed() { echo $(( $(date +%s) - $1 )); }

record() { # suite, passed, failed, skipped, seconds, exit code
  local suite=$1 passed=$2 failed=$3 skipped=$4 secs=$5 rc=$6 verdict=ok
  if [ "$rc" != 0 ] || [ "$failed" != 0 ]; then verdict=FAILED; fi
  if [ "$passed" = 0 ]; then verdict="FAILED (ran no test)"; fi
  if [ "$skipped" != 0 ]; then verdict="FAILED ($skipped skipped)"; fi
  [ "$verdict" = ok ] || FAILED=1
  SUMMARY+=("$(printf '%-22s %5s passed %3s failed %3s skipped %5ss  %s' "$suite" "$passed" "$failed" "$skipped" "$secs" "$verdict")")
}

# Sums cargo test's "test result:" lines of a log: passed failed ignored.
cargo_counts() {
  awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) g += $i } }
       END { printf "%d %d %d\n", p, f, g }' "$1"
}

# Records one line per crate from a nextest log ("PASS [ 0.1s] crate::binary test").
nextest_record() { # log, seconds, exit code, crate...
  local log=$1 secs=$2 rc=$3; shift 3
  for crate in "$@"; do
    local passed failed
    # A failure is listed again at the end of the run: count each test once.
    # LEAK: passed, with a child process still holding its output for a moment after it ended.
    passed=$(grep -E "^\s+(PASS|LEAK) \[.*\] (\([^)]*\) )?${crate}(::| )" "$log" | sed 's/.*\] //' | sort -u | grep -c .)
    failed=$(grep -E "^\s+(FAIL|TIMEOUT|SIGSEGV|SIGABRT|SIGKILL|ABORT|LEAK-FAIL)[^ ]* \[.*\] (\([^)]*\) )?${crate}(::| )" "$log" | sed 's/.*\] //' | sort -u | grep -c .)
    record "$crate" "$passed" "$failed" 0 "$secs" "$rc"
  done
}

phase() { # name, command...
  local name=$1 t0; shift
  t0=$(date +%s)
  echo "==> $name"
  "$@"
  local rc=$?
  echo "<== $name: $(elapsed "$t0")s (exit $rc)"
  return $rc
}

phase "fmt" cargo fmt --all -- --check || { echo "fmt: run \`cargo fmt --all\`"; exit 1; }
# Builds the engine, the app, every test binary and the benches once; clippy (warnings denied)
# runs on the workspace's crates as they compile, through RUSTC_WORKSPACE_WRAPPER.
if [ -z "${RUSTC_WORKSPACE_WRAPPER:-}" ]; then
  echo "test: RUSTC_WORKSPACE_WRAPPER is not set (run through \`make test\`); clippy would not run" >&2
  exit 1
fi
phase "build + clippy (warnings denied)" cargo build "${SELECTION[@]}" --quiet || { echo "build or lint failed"; exit 1; }
scripts/place-sidecar.sh || exit 1

# The engine suites: every crate but the GUI one, in one nextest run (ignored tests run too).
ENGINE_CRATES=(airlock-control airlock-policy airlock-audit airlock-secrets airlock-agent airlock)
T0=$(date +%s)
echo "==> tests: engine suites (${ENGINE_CRATES[*]})"
cargo nextest run "${SELECTION[@]}" --run-ignored all --no-fail-fast --failure-output final \
  --status-level pass --final-status-level none -E 'not package(airlock-gui-tests)' \
  >"$LOG_DIR/engine.log" 2>&1
rc=$?
grep -E '^\s+(FAIL|TIMEOUT|SIGSEGV|SIGABRT|SIGKILL|ABORT)|Summary|tests run' "$LOG_DIR/engine.log"
[ "$rc" = 0 ] || tail -n 120 "$LOG_DIR/engine.log"
nextest_record "$LOG_DIR/engine.log" "$(elapsed "$T0")" "$rc" "${ENGINE_CRATES[@]}"
echo "<== engine suites: $(elapsed "$T0")s"

# Doc tests (nextest does not run them).
T0=$(date +%s)
echo "==> tests: doc tests"
cargo test --workspace --all-features --doc 2>&1 | tee "$LOG_DIR/doc.log" | grep -E '^(test result:|---- )'
rc=${PIPESTATUS[0]}
read -r passed failed ignored < <(cargo_counts "$LOG_DIR/doc.log")
[ "$rc" = 0 ] || tail -n 60 "$LOG_DIR/doc.log"
record doc-tests "$passed" "$failed" 0 "$(elapsed "$T0")" "$rc"

T0=$(date +%s)
echo "==> tests: python-sdk (the official mcp package)"
scripts/python-test.sh -q 2>&1 | tee "$LOG_DIR/python-sdk.log" | tail -n 30
rc=${PIPESTATUS[0]}
py_passed=$(grep -Eo '[0-9]+ passed' "$LOG_DIR/python-sdk.log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
py_failed=$(grep -Eo '[0-9]+ failed' "$LOG_DIR/python-sdk.log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
py_skipped=$(grep -Eo '[0-9]+ skipped' "$LOG_DIR/python-sdk.log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
record python-sdk "${py_passed:-0}" "${py_failed:-0}" "${py_skipped:-0}" "$(elapsed "$T0")" "$rc"

T0=$(date +%s)
echo "==> tests: peers (TypeScript SDK client, Inspector CLI --strict, conformance suite; Node 22)"
scripts/peer-test.sh 2>&1 | tee "$LOG_DIR/peers.log" | grep -E '^\s*(✔|✖|ℹ)|^peer-test:' | tail -n 60
rc=${PIPESTATUS[0]}
# node --test's closing lines: "ℹ pass N", "ℹ fail N", "ℹ cancelled N" (counted as failed), "ℹ skipped N".
node_count() { grep -E "^ℹ $1 [0-9]+$" "$LOG_DIR/peers.log" | tail -1 | grep -Eo '[0-9]+' || echo 0; }
[ "$rc" = 0 ] || tail -n 80 "$LOG_DIR/peers.log"
record peers "$(node_count pass)" "$(( $(node_count fail) + $(node_count cancelled) ))" "$(node_count skipped)" "$(elapsed "$T0")" "$rc"

T0=$(date +%s)
echo "==> tests: gui (the tray app under a virtual display)"
scripts/gui-test.sh 2>&1 | tee "$LOG_DIR/gui.log" | grep -E '^\s+(PASS|LEAK|FAIL|TIMEOUT|SIGKILL)|^gui-test:'
rc=${PIPESTATUS[0]}
[ "$rc" = 0 ] || tail -n 120 "$LOG_DIR/gui.log"
nextest_record "$LOG_DIR/gui.log" "$(elapsed "$T0")" "$rc" airlock-gui-tests

echo
echo "Summary ($(elapsed "$START_ALL")s):"
for line in "${SUMMARY[@]}"; do
  echo "  $line"
done
# Leftover sandboxes from any suite are a bug: containers never leak. Engines stopped by the last
# tests may still be removing theirs: wait for that, with a deadline.
leaked=0
for _ in $(seq 1 40); do
  leaked=$(comm -13 <(echo "$BEFORE") <(docker ps -aq --filter label=dev.airlock.managed=true | sort) | grep -c . || true)
  [ "$leaked" = 0 ] && break
  sleep 0.25
done
if [ "$leaked" != 0 ]; then
  echo "  FAILED: $leaked airlock container(s) left behind by this run:"; docker ps -a --filter label=dev.airlock.managed=true
  FAILED=1
fi
read -r total_passed total_failed < <(printf '%s\n' "${SUMMARY[@]}" | awk '{ p += $2; f += $4 } END { print p+0, f+0 }')
echo "all: $total_passed passed, $total_failed failed"
exit $FAILED
