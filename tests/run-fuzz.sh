#!/usr/bin/env bash
# Runs the fuzz targets in DIR (built by `make fuzz`) as `make check` does:
# each replays its committed crash inputs (tests/fuzz/crashes/<target>/,
# regression tests for defects the fuzzers found), then fuzzes for
# FUZZ_SECONDS (default 3) from its seed corpus (tests/fuzz/corpus/<target>/),
# writing new inputs only to a temporary directory. Prints one line per target
# and a closing "fuzz: N passed, N failed"; on a failure, the fuzzer's output
# (with the crashing input, saved in the temporary directory, named there).
# Long runs: docs/fuzzing.md.
set -u
dir=${1:?usage: run-fuzz.sh BUILD/fuzz/bin}
secs=${FUZZ_SECONDS:-3}
src=$(cd "$(dirname "$0")" && pwd)/fuzz
tmp=$(mktemp -d /tmp/cvmm-fuzz.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# Targets make their temporary files here: gone even when a fuzzer exits
# without running its cleanup.
export TMPDIR=$tmp
pass=0; fail=0
for bin in "$dir"/*; do
    t=$(basename "$bin")
    mkdir -p "$tmp/$t/corpus" "$tmp/$t/artifacts"
    crashes=()
    [ -d "$src/crashes/$t" ] && crashes=("$src/crashes/$t"/*)
    ok=1
    if [ ${#crashes[@]} -gt 0 ] &&
       ! "$bin" "${crashes[@]}" >"$tmp/$t/replay.log" 2>&1; then
        echo "FAILED: $t: a committed crash input fails again:"
        tail -n 40 "$tmp/$t/replay.log"
        ok=0
    fi
    if [ $ok -eq 1 ] &&
       ! "$bin" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
           -artifact_prefix="$tmp/$t/artifacts/" "$tmp/$t/corpus" "$src/corpus/$t" \
           >"$tmp/$t/fuzz.log" 2>&1; then
        echo "FAILED: $t: the fuzzer found a failing input:"
        tail -n 60 "$tmp/$t/fuzz.log"
        # Keep the input: the temporary directory goes away.
        keep=$(mktemp -d /tmp/cvmm-fuzz-failure.XXXXXX)
        cp -r "$tmp/$t/artifacts/." "$keep/"
        echo "FAILED: $t: input(s) kept in $keep"
        ok=0
    fi
    if [ $ok -eq 1 ]; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/$t/fuzz.log")
        echo "fuzz: $t: ${#crashes[@]} crash inputs replayed, ${runs:-?} runs in ${secs}s, no failure"
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
    fi
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
