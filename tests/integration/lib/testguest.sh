# shellcheck shell=bash
# What the tests that run cvmm's test guest with its devices on vhost-user
# back-ends share (sourced, not run; it sets cvmm and guest, checks they are
# built and /dev/kvm is there, else FAIL or SKIP):
#
#   . "$(dirname "$0")/lib/testguest.sh"
#   tg_setup NAME      # tmp=$(mktemp -d /tmp/cvmm-NAME.XXXXXX); the pids in
#                      # pids() killed on exit, the netns $ns deleted when set
#   tg_netns NAME      # ns=NAME, a new network namespace (FAIL and exit if not)
#   fail MESSAGE       # "FAIL MESSAGE" and failed=1; the test goes on
#   tg_check_error NAME EXPECTED-TEXT ARGS...
#                      # cvmm with ARGS exits 2 with one line of stderr that
#                      # says EXPECTED-TEXT (a bad option: no VM)
#   tg_wait_sock PATH PID [SECS]   # until PATH is a socket (0), for up to SECS
#                      # (default 10) while PID lives (else 1)
#   tg_guest_lines FILE  # the test guest's virtio, PASS and FAIL lines in FILE
#                      # (its serial output)

cvmm=$BUILD/cvmm
guest=$BUILD/testguest/testguest.elf
[ -x "$cvmm" ] && [ -f "$guest" ] || { echo "FAIL: build cvmm and the test guest first (make all)"; exit 1; }
[ -c /dev/kvm ] || { echo "SKIP: no /dev/kvm"; exit 77; }

tg_cleanup() {
    local p
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    [ -n "${ns:-}" ] && ip netns del "$ns" 2>/dev/null
    rm -rf "$tmp"
}

tg_setup() {
    tmp=$(mktemp -d "/tmp/cvmm-$1.XXXXXX")
    pids=()
    ns=
    failed=0
    trap tg_cleanup EXIT
}

tg_netns() {
    ip netns add "$1" || { echo "FAIL: cannot create a network namespace (run as root)"; exit 1; }
    ns=$1
}

fail() { echo "FAIL $*"; failed=1; }

tg_check_error() {
    local name=$1 want=$2 rc
    shift 2
    timeout 20 "$cvmm" --kernel "$guest" --serial null "$@" >/dev/null 2>"$tmp/$name.err" </dev/null
    rc=$?
    if [ $rc -ne 2 ] || ! grep -q -- "$want" "$tmp/$name.err" || [ "$(wc -l <"$tmp/$name.err")" -gt 1 ]; then
        fail "$name: exit $rc, stderr: $(cat "$tmp/$name.err")"
    else
        echo "ok $name: $(head -n1 "$tmp/$name.err")"
    fi
}

tg_wait_sock() {
    local _
    for _ in $(seq $((${3:-10} * 10))); do
        [ -S "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

tg_guest_lines() { tr -d '\r' <"$1" 2>/dev/null | grep -E '^TG: (virtio|FAIL|PASS)'; }
