#!/usr/bin/env bash
# `make test` after set-up: lint, then every engine suite (real Docker), then the official
# Python SDK suite. Prints the tests each suite ran and each phase's time; fails if a suite ran
# none, if any test failed, or if any test is ignored.
set -uo pipefail
cd "$(dirname "$0")/.."

LOG_DIR=target/test-logs
mkdir -p "$LOG_DIR"
SUMMARY=()
FAILED=0
START_ALL=$(date +%s)
# Containers from before this run (an earlier run cut short) are not this run's leaks.
BEFORE=$(docker ps -aq --filter label=dev.airlock.managed=true 2>/dev/null | sort)

phase() { # name, command...
  local name=$1; shift
  local t0=$(date +%s)
  echo "==> $name"
  "$@"
  local rc=$?
  local dt=$(( $(date +%s) - t0 ))
  echo "<== $name: ${dt}s (exit $rc)"
  return $rc
}

# Sums cargo's "test result:" lines of a log: passed failed ignored.
cargo_counts() {
  awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) g += $i } }
       END { printf "%d %d %d\n", p, f, g }' "$1"
}

record() { # suite, passed, failed, ignored, seconds, exit code
  local suite=$1 passed=$2 failed=$3 ignored=$4 secs=$5 rc=$6 verdict=ok
  if [ "$rc" != 0 ] || [ "$failed" != 0 ]; then verdict=FAILED; fi
  if [ "$passed" = 0 ]; then verdict="FAILED (ran no test)"; fi
  if [ "$ignored" != 0 ]; then verdict="FAILED ($ignored ignored)"; fi
  [ "$verdict" = ok ] || FAILED=1
  SUMMARY+=("$(printf '%-22s %5s passed %3s failed %3s ignored %5ss  %s' "$suite" "$passed" "$failed" "$ignored" "$secs" "$verdict")")
}

cargo_suite() { # package, extra cargo args...
  local pkg=$1; shift
  local log="$LOG_DIR/$pkg.log" t0=$(date +%s)
  echo "==> tests: $pkg"
  cargo test -p "$pkg" --all-targets "$@" 2>&1 | tee "$log" | grep -E '^(test result:|     Running|failures:|---- )' 
  local rc=${PIPESTATUS[0]}
  if cargo metadata --no-deps --format-version 1 2>/dev/null | python3 -c "import json,sys; m=json.load(sys.stdin); sys.exit(0 if any(t['kind']==['lib'] and t['doctest'] for p in m['packages'] if p['name']=='$pkg' for t in p['targets']) else 1)"; then
    cargo test -p "$pkg" --doc 2>&1 | tee -a "$log" | grep -E '^test result:'
    rc=$(( rc | ${PIPESTATUS[0]} ))
  fi
  read -r passed failed ignored < <(cargo_counts "$log")
  if [ "$rc" != 0 ]; then
    echo "---- $pkg failed; the end of its log ($log):"
    tail -n 60 "$log"
  fi
  record "$pkg" "$passed" "$failed" "$ignored" $(( $(date +%s) - t0 )) "$rc"
}

phase "lint (fmt + clippy, warnings denied)" make --no-print-directory lint || { echo "lint failed"; exit 1; }

T0=$(date +%s)
for pkg in airlock-control airlock-policy airlock-audit airlock-secrets airlock-agent airlock; do
  cargo_suite "$pkg"
done
echo "<== engine suites: $(( $(date +%s) - T0 ))s"

T0=$(date +%s)
echo "==> tests: python-sdk (the official mcp package)"
scripts/python-test.sh -q 2>&1 | tee "$LOG_DIR/python-sdk.log" | tail -n 30
rc=${PIPESTATUS[0]}
py_passed=$(grep -Eo '[0-9]+ passed' "$LOG_DIR/python-sdk.log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
py_failed=$(grep -Eo '[0-9]+ failed' "$LOG_DIR/python-sdk.log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
py_skipped=$(grep -Eo '[0-9]+ skipped' "$LOG_DIR/python-sdk.log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
record python-sdk "${py_passed:-0}" "${py_failed:-0}" "${py_skipped:-0}" $(( $(date +%s) - T0 )) "$rc"

T0=$(date +%s)
echo "==> tests: gui (the tray app under a virtual display)"
scripts/gui-test.sh 2>&1 | tee "$LOG_DIR/gui.log" | grep -E '^(test |test result:|---- |gui-test:)'
rc=${PIPESTATUS[0]}
read -r passed failed ignored < <(cargo_counts "$LOG_DIR/gui.log")
[ "$rc" = 0 ] || tail -n 80 "$LOG_DIR/gui.log"
record gui "$passed" "$failed" "$ignored" $(( $(date +%s) - T0 )) "$rc"

echo
echo "Summary ($(( $(date +%s) - START_ALL ))s):"
for line in "${SUMMARY[@]}"; do
  echo "  $line"
done
# Leftover sandboxes from any suite are a bug: containers never leak.
sleep 2  # engines stopped by the last tests finish removing their sandboxes
leaked=$(comm -13 <(echo "$BEFORE") <(docker ps -aq --filter label=dev.airlock.managed=true | sort) | grep -c . || true)
if [ "$leaked" != 0 ]; then
  echo "  FAILED: $leaked airlock container(s) left behind by this run:"; docker ps -a --filter label=dev.airlock.managed=true
  FAILED=1
fi
read -r total_passed total_failed < <(printf '%s\n' "${SUMMARY[@]}" | awk '{ p += $2; f += $4 } END { print p+0, f+0 }')
echo "all: $total_passed passed, $total_failed failed"
exit $FAILED
