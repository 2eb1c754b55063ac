# shellcheck shell=bash
# What every integration test needs (sourced, not run): the built cvmm, a
# temp dir, background processes that are all stopped on exit, and a fail
# that shows the last lines of the test's logs.
#
#   . "$(dirname "$0")/lib/common.sh"
#   it_setup NAME [BASE]      # IT_TMP=$(mktemp -d BASE/cvmm-NAME.XXXXXX), cleanup on EXIT
#   it_track PID              # stopped (TERM, then KILL) on exit
#   it_on_exit CMD...         # run on exit, after the processes stop (e.g. netns del)
#   it_fail MESSAGE           # "FAIL: MESSAGE", the logs' last lines, exit 1
# IT_KEEP=DIR copies the temp dir there on exit (for debugging).

IT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
: "${BUILD:?BUILD (absolute build directory) must be set}"
CVMM=${CVMM:-$BUILD/cvmm}
IT_PIDS=()
IT_EXIT_CMDS=()
IT_TMP=

it_cleanup() {
    local p i c
    # TERM first: a `timeout` wrapper passes it on to its command (KILL
    # would orphan the command).
    for p in "${IT_PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in "${IT_PIDS[@]}"; do
        for i in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    for c in "${IT_EXIT_CMDS[@]}"; do
        eval "$c"
    done
    if [ -n "$IT_TMP" ]; then
        [ -n "${IT_KEEP:-}" ] && cp -r "$IT_TMP" "$IT_KEEP"
        rm -rf "$IT_TMP"
    fi
}

# it_setup NAME [BASE]: checks cvmm is built, makes the temp dir.
it_setup() {
    [ -x "$CVMM" ] || { echo "FAIL: $CVMM not built"; exit 1; }
    IT_TMP=$(mktemp -d "${2:-/tmp}/cvmm-$1.XXXXXX")
    trap it_cleanup EXIT
}

it_track() {
    IT_PIDS+=("$1")
}

it_on_exit() {
    IT_EXIT_CMDS+=("$*")
}

it_fail() {
    local f
    echo "FAIL: $*"
    for f in "$IT_TMP"/*.log "$IT_TMP"/*.out; do
        [ -f "$f" ] || continue
        echo "--- $(basename "$f") (last lines)"
        tail -n 15 "$f" | tr -d '\r' | grep -av '^\s*$'
    done
    exit 1
}

# it_wait_line LOG PATTERN SECS: waits for PATTERN to appear in LOG (which
# may not exist yet).
it_wait_line() {
    local i
    for i in $(seq $(( $3 * 10 ))); do
        grep -aq "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
