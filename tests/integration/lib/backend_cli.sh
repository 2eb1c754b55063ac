# shellcheck shell=bash
# Sourced by the back-end command-line tests. Needs CVMM, BACKEND_FLAG
# (--block-backend, ...) and a counter `fails` in the caller.

# expect_error OPTS PATTERN [WRAPPER...]: `cvmm BACKEND_FLAG OPTS` (run under
# WRAPPER, e.g. `ip netns exec NS`) exits 1 with exactly one stderr line,
# which matches PATTERN.
expect_error() {
    local opts=$1 pat=$2 out rc lines
    shift 2
    out=$(timeout 10 "$@" "$CVMM" "$BACKEND_FLAG" "$opts" 2>&1 >/dev/null); rc=$?
    lines=$(printf '%s\n' "$out" | grep -c .)
    if [ $rc -ne 1 ] || [ "$lines" != 1 ] || ! printf '%s' "$out" | grep -q -- "$pat"; then
        echo "FAIL: '$opts': rc=$rc, stderr ($lines lines): $out"
        fails=$((fails + 1))
    else
        echo "ok: '$opts' -> rc=$rc: $out"
    fi
}
