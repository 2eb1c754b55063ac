#!/usr/bin/env bash
# Runs every tests/integration/*.sh with BUILD (absolute build dir) in the
# environment. A test exits 0 (passed), 77 (skipped: it prints why) or
# anything else (failed). Closing line: "integration: N passed, N failed, N skipped".
set -u
BUILD=${1:?usage: run-integration.sh BUILD_DIR}
export BUILD
cd "$(dirname "$0")/.." || exit 1
pass=0; fail=0; skip=0; failed=()
for t in tests/integration/*.sh; do
    [ -e "$t" ] || continue
    name=$(basename "$t" .sh)
    log="$BUILD/integration/$name.log"
    mkdir -p "$BUILD/integration"
    start=$(date +%s)
    bash "$t" >"$log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    case $rc in
        0) pass=$((pass + 1)); echo "PASS $name (${secs}s)";;
        77) skip=$((skip + 1)); echo "SKIP $name: $(grep -m1 '^SKIP:' "$log" | sed 's/^SKIP: //')";;
        *) fail=$((fail + 1)); failed+=("$name"); echo "FAIL $name (rc=$rc, ${secs}s); last lines of $log:"
           tail -n 30 "$log" | sed 's/^/    /';;
    esac
done
echo "integration: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
