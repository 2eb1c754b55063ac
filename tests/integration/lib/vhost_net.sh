# Shared by the vhost-user-net integration tests and bench/net.sh (sourced,
# not run): a network namespace holding the tap of `cvmm --net-backend`.
# The caller gets $VN_TMP (common.sh's IT_TMP), $VN_NS, vn_setup,
# vn_backend, vn_ns, vn_testpmd_stat; everything started here is stopped,
# the namespace deleted and the temp dir removed on exit (common.sh).

. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
VN_NS=
VN_TAP=vnet0
VN_HOST_IP=10.77.0.1
VN_GUEST_IP=10.77.0.2
VN_HOST_MAC=02:77:00:00:00:01
VN_GUEST_MAC=02:77:00:00:00:02

# vn_setup NAME: checks privileges, makes the temp dir and the namespace.
vn_setup() {
    [ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespace, tap)"; exit 77; }
    [ -c /dev/net/tun ] || { echo "SKIP: no /dev/net/tun"; exit 77; }
    command -v ip >/dev/null || { echo "SKIP: iproute2 is not installed"; exit 77; }
    it_setup "$1"
    VN_TMP=$IT_TMP
    VN_NS=cvmm-$1-$$
    ip netns add "$VN_NS" || { VN_NS=; echo "SKIP: cannot create a network namespace"; exit 77; }
    it_on_exit "ip netns del $VN_NS 2>/dev/null"
    ip -n "$VN_NS" link set lo up
    VN_SOCK=$VN_TMP/net.sock
}

# vn_ns CMD...: runs CMD in the namespace. For a background process whose
# pid is tracked (it_track), call `ip netns exec "$VN_NS" CMD &` directly, so
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
    it_track "$VN_BACKEND_PID"
    for i in $(seq 100); do
        [ -S "$VN_SOCK" ] && return 0
        kill -0 "$VN_BACKEND_PID" 2>/dev/null || it_fail "back-end exited at start"
        sleep 0.1
    done
    it_fail "back-end did not create $VN_SOCK"
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
