# Shared by the vhost-user-net integration tests and bench/net.sh (sourced,
# not run): a network namespace holding the tap of `cvmm --net-backend`.
# The caller gets $VN_TMP, $VN_NS, vn_setup, vn_backend, vn_ns, vn_fail,
# vn_testpmd_stat; everything started here is killed, the namespace
# deleted and the temp dir removed on exit.

VN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
: "${BUILD:?BUILD (absolute build directory) must be set}"
CVMM=${CVMM:-$BUILD/cvmm}
VN_PIDS=()
VN_NS=
VN_TAP=vnet0
VN_HOST_IP=10.77.0.1
VN_GUEST_IP=10.77.0.2
VN_HOST_MAC=02:77:00:00:00:01
VN_GUEST_MAC=02:77:00:00:00:02

vn_cleanup() {
    local p i
    # TERM first: a `timeout` wrapper passes it on to its command (KILL
    # would orphan the command).
    for p in "${VN_PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in "${VN_PIDS[@]}"; do
        for i in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    [ -n "$VN_NS" ] && ip netns del "$VN_NS" 2>/dev/null
    [ -n "${VN_TMP:-}" ] && { [ -n "${VN_KEEP:-}" ] && cp -r "$VN_TMP" "$VN_KEEP"; rm -rf "$VN_TMP"; }
}

vn_fail() {
    echo "FAIL: $*"
    for f in "$VN_TMP"/*.log; do
        [ -f "$f" ] || continue
        echo "--- $(basename "$f") (last lines)"
        tail -n 15 "$f" | tr -d '\r' | grep -av '^\s*$'
    done
    exit 1
}

# vn_setup NAME: checks privileges, makes the temp dir and the namespace.
vn_setup() {
    [ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespace, tap)"; exit 77; }
    [ -x "$CVMM" ] || { echo "FAIL: $CVMM not built"; exit 1; }
    [ -c /dev/net/tun ] || { echo "SKIP: no /dev/net/tun"; exit 77; }
    command -v ip >/dev/null || { echo "SKIP: iproute2 is not installed"; exit 77; }
    VN_TMP=$(mktemp -d "/tmp/cvmm-$1.XXXXXX")
    trap vn_cleanup EXIT
    VN_NS=cvmm-$1-$$
    ip netns add "$VN_NS" || { VN_NS=; echo "SKIP: cannot create a network namespace"; exit 77; }
    ip -n "$VN_NS" link set lo up
    VN_SOCK=$VN_TMP/net.sock
}

# vn_ns CMD...: runs CMD in the namespace. For a background process whose
# pid goes into VN_PIDS, call `ip netns exec "$VN_NS" CMD &` directly, so
# that $! is the command itself (ip execs it).
vn_ns() {
    ip netns exec "$VN_NS" "$@"
}

# vn_backend [EXTRA_OPTS]: starts the back-end in the namespace and waits
# until its socket exists. Sets VN_BACKEND_PID.
vn_backend() {
    local i
    ip netns exec "$VN_NS" "$CVMM" -v --net-backend \
        "tap=$VN_TAP,socket=$VN_SOCK,ip=$VN_HOST_IP,mask=255.255.255.0,host_mac=$VN_HOST_MAC,mac=$VN_GUEST_MAC${1:+,$1}" \
        >>"$VN_TMP/backend.log" 2>&1 &
    VN_BACKEND_PID=$!
    VN_PIDS+=("$VN_BACKEND_PID")
    for i in $(seq 100); do
        [ -S "$VN_SOCK" ] && return 0
        kill -0 "$VN_BACKEND_PID" 2>/dev/null || vn_fail "back-end exited at start"
        sleep 0.1
    done
    vn_fail "back-end did not create $VN_SOCK"
}

# vn_tap_stat NAME: a counter of the tap (rx_packets: frames the back-end wrote).
vn_tap_stat() {
    vn_ns cat "/sys/class/net/$VN_TAP/statistics/$1"
}

# vn_testpmd_stat LOG KEY: KEY (RX-packets, TX-packets) from the
# accumulated statistics testpmd prints when it stops.
vn_testpmd_stat() {
    awk -v k="$2:" '/Accumulated forward statistics/ { on = 1 }
        on { for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }' "$1"
}
