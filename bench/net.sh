#!/usr/bin/env bash
# Net back-end benchmark, guest -> tap: the same DPDK virtio_user txonly
# front-end (dpdk-testpmd, no VM) sends frames through
#   a) cvmm --net-backend into a tap, and
#   b) DPDK itself: testpmd with net_vhost0 + net_tap0 in --forward-mode=io,
# each tap in its own network namespace, at 64 B and 1500 B. The rate is
# what the tap counts (rx_packets) over the measuring window.
#
#   bench/net.sh [BUILD_DIR]      env: SECS=5 (per window) WARMUP=2
#
# Core placement (two cores): the front-end's forwarding lcore on core 1
# (--main-lcore 0), the back-end's busy thread on core 0 (cvmm pinned with
# taskset; testpmd back-end with --main-lcore 1).
set -u
BUILD=$(cd "${1:-build}" && pwd) || exit 1
export BUILD
SECS=${SECS:-5}
WARMUP=${WARMUP:-2}
. "$(dirname "$0")/../tests/integration/lib/vhost_net.sh"
command -v dpdk-testpmd >/dev/null || { echo "net.sh: dpdk-testpmd not installed (dpdk-dev)" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "net.sh: needs two cores" >&2; exit 1; }
vn_setup benchnet

frontend() {   # frontend LEN LOG
    timeout -s INT -k 5 $(( WARMUP + SECS + 3 )) dpdk-testpmd -l 0-1 --main-lcore 0 --no-pci --no-huge -m 512 \
        --file-prefix="cvmm-bnfe-$$" --single-file-segments \
        --vdev "net_virtio_user0,path=$VN_SOCK,queues=1" -- \
        --no-mlockall --forward-mode=txonly --auto-start --stats-period 1 \
        --total-num-mbufs=8192 --txpkts="$1" </dev/null >"$2" 2>&1 &
    FE_PID=$!
    VN_PIDS+=("$FE_PID")
}

# measure: tap frames per second over the window, after the warm-up.
measure() {
    local a b
    sleep "$WARMUP"
    a=$(vn_tap_stat rx_packets)
    sleep "$SECS"
    b=$(vn_tap_stat rx_packets)
    echo $(( (b - a) / SECS ))
}

wait_sock() {
    local i
    for i in $(seq 100); do [ -S "$VN_SOCK" ] && return 0; sleep 0.1; done
    vn_fail "no back-end socket $VN_SOCK"
}

run_cvmm() {   # run_cvmm LEN
    rm -f "$VN_SOCK"
    ip netns exec "$VN_NS" taskset -c 0 "$CVMM" --net-backend "tap=$VN_TAP,socket=$VN_SOCK" \
        >>"$VN_TMP/cvmm.log" 2>&1 &
    local be=$!
    VN_PIDS+=("$be")
    wait_sock
    frontend "$1" "$VN_TMP/fe-cvmm-$1.log"
    measure
    wait "$FE_PID"
    kill -TERM "$be"; wait "$be"
}

run_dpdk() {   # run_dpdk LEN
    rm -f "$VN_SOCK"
    ip netns exec "$VN_NS" timeout -s INT -k 5 $(( WARMUP + SECS + 8 )) dpdk-testpmd -l 0-1 --main-lcore 1 \
        --no-pci --no-huge -m 512 --file-prefix="cvmm-bnbe-$$" \
        --vdev "net_vhost0,iface=$VN_SOCK,queues=1" --vdev "net_tap0,iface=$VN_TAP" -- \
        --no-mlockall --forward-mode=io --auto-start --stats-period 1 \
        --total-num-mbufs=8192 </dev/null >"$VN_TMP/be-dpdk-$1.log" 2>&1 &
    local be=$!
    VN_PIDS+=("$be")
    wait_sock
    sleep 1
    frontend "$1" "$VN_TMP/fe-dpdk-$1.log"
    measure
    wait "$FE_PID"
    kill -INT "$be"; wait "$be"
}

printf '%-8s %14s %14s %8s\n' frame "cvmm pps" "dpdk pps" ratio
for len in 64 1500; do
    c=$(run_cvmm "$len")
    d=$(run_dpdk "$len")
    [ "${d:-0}" -gt 0 ] || vn_fail "DPDK back-end forwarded nothing at $len B"
    printf '%-8s %14s %14s %8s\n' "${len}B" "$c" "$d" "$(awk -v c="$c" -v d="$d" 'BEGIN { printf "%.2fx", c / d }')"
done
