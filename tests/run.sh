#!/usr/bin/env bash
# Runs every test binary given on the command line and sums their summary lines.
#
# Each binary ends with "# NAME: P passed, F failed, S skipped"; a binary that
# crashes, times out (RF_TEST_TIMEOUT seconds each, default 600) or prints no
# summary counts as one failure. The last line is "N passed, N failed" with
# ", N skipped" when something was skipped; the exit status is 1 on any failure.
set -u
timeout_s=${RF_TEST_TIMEOUT:-600}
passed=0 failed=0 skipped=0
for bin in "$@"; do
  name=$(basename "$bin")
  out=$(timeout "$timeout_s" "$bin" 2>&1)
  rc=$?
  printf '%s\n' "$out" | grep -E '^(FAIL|skip) ' || true
  summary=$(printf '%s\n' "$out" | grep -E "^# $name: " | tail -n 1)
  if [ -z "$summary" ]; then
    printf '%s\n' "$out" | tail -n 20
    if [ $rc -eq 124 ]; then why="timed out after ${timeout_s}s"; else why="exit status $rc, no summary"; fi
    echo "FAIL $name: $why"
    failed=$((failed + 1))
    continue
  fi
  p=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$summary")
  f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$summary")
  s=$(sed -E 's/.* ([0-9]+) skipped.*/\1/' <<<"$summary")
  echo "$summary"
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "FAIL $name: exit status $rc after its tests"
    failed=$((failed + 1))
  fi
done
line="$passed passed, $failed failed"
[ $skipped -gt 0 ] && line="$line, $skipped skipped"
echo "$line"
[ $failed -eq 0 ]
