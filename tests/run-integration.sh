#!/usr/bin/env bash
# Runs tests/integration/*.sh (or only the TESTs named, without .sh) with
# BUILD (absolute build dir) in the environment. A test exits 0 (passed), 77
# (skipped: it prints why) or anything else (failed). Closing line:
# "integration: N passed, N failed, N skipped".
#
# --sanitizers: BUILD holds an ASan+UBSan cvmm (`make asan`). A report
# (ASan, LeakSanitizer at exit, UBSan) makes the process abort and leaves a
# file under BUILD/sanitizer/TEST/: a test with any such file, or with a
# report's line in its log ("runtime error:", "ERROR: AddressSanitizer"...),
# fails, even when the process was one whose exit status the test ignores (a
# back-end it kills at the end).
#
# A test that runs longer than TEST_TIMEOUT seconds (default 1500: the
# slowest, nested under load, have taken 8 min, and a nested rerun doubles
# that) is ended with its process group and fails, so that a hang costs the
# run one test, not CI's whole time limit. Tests read nothing from the
# terminal (their standard input is /dev/null): timeout runs them in a
# process group of their own, which a terminal would stop on a read.
set -u
test_timeout=${TEST_TIMEOUT:-1500}
sanitizers=0
if [ "${1:-}" = --sanitizers ]; then
    sanitizers=1
    shift
fi
BUILD=${1:?usage: run-integration.sh [--sanitizers] BUILD_DIR [TEST...]}
shift
export BUILD
cd "$(dirname "$0")/.." || exit 1
tests=()
if [ $# -gt 0 ]; then
    for name in "$@"; do tests+=("tests/integration/$name.sh"); done
else
    tests=(tests/integration/*.sh)
fi
san_report='runtime error:|ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)'
pass=0; fail=0; skip=0; failed=()
for t in "${tests[@]}"; do
    [ -e "$t" ] || { echo "FAIL $t: no such test"; fail=$((fail + 1)); continue; }
    name=$(basename "$t" .sh)
    log="$BUILD/integration/$name.log"
    mkdir -p "$BUILD/integration"
    if [ $sanitizers -eq 1 ]; then
        san="$BUILD/sanitizer/$name"
        rm -rf "$san"
        mkdir -p "$san"
        # One log_path for both: UBSan's runtime, starting at its first
        # report, sets the report file from its own options. It writes its
        # report to stderr even so; handle_abort makes ASan report the abort
        # that follows, in the file, with the UBSan handler on the stack.
        export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:handle_abort=1:detect_leaks=1:log_path=$san/report"
        export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:log_path=$san/report"
    fi
    start=$(date +%s)
    timeout -k 30 "$test_timeout" bash "$t" </dev/null >"$log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    if [ $secs -ge "$test_timeout" ] && { [ $rc -eq 124 ] || [ $rc -eq 137 ]; }; then
        echo "FAIL: no end after ${test_timeout}s (TEST_TIMEOUT): ended by run-integration.sh" >>"$log"
    fi
    if [ $sanitizers -eq 1 ] &&
       { [ -n "$(ls -A "$san")" ] || grep -Eq "$san_report" "$log"; }; then
        echo "FAIL: sanitizer report(s) (files in $san):" >>"$log"
        cat "$san"/* >>"$log" 2>/dev/null
        [ $rc -eq 0 ] || [ $rc -eq 77 ] && rc=1
    fi
    case $rc in
        0) pass=$((pass + 1)); echo "PASS $name (${secs}s)";;
        77) skip=$((skip + 1)); echo "SKIP $name: $(grep -m1 '^SKIP:' "$log" | sed 's/^SKIP: //')";;
        *) fail=$((fail + 1)); failed+=("$name"); echo "FAIL $name (rc=$rc, ${secs}s); last lines of $log:"
           tail -n 30 "$log" | sed 's/^/    /';;
    esac
done
echo "integration: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
