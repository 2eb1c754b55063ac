#!/usr/bin/env bash
# Net back-end benchmark: packets/s through
#   a) cvmm --net-backend and a tap, and
#   b) DPDK itself: testpmd with net_vhost0 + net_tap0 in --forward-mode=io,
# with the tap in a network namespace, at 64 B and 1500 B, both directions:
#  - guest -> tap: a DPDK virtio_user txonly front-end (dpdk-testpmd, no VM)
#    sends; the rate is what the tap counts (rx_packets) over the window;
#  - tap -> guest: bench/net_inject sends into the tap (AF_PACKET, 64 frames
#    per sendmmsg); the rate is what a virtio_user rxonly front-end receives.
#
#   bench/net.sh [BUILD_DIR]      env: SECS=5 (per window) WARMUP=2 ROUNDS=3
#                                      DIRS="tx rx"
#
# Each round runs both back-ends one after the other; the best window of
# each is printed (other load on the machine only ever lowers a figure).
#
# Core placement (two cores): the front-end's forwarding lcore on core 1
# (--main-lcore 0), the back-end's busy thread on core 0 (cvmm pinned with
# taskset; testpmd back-end with --main-lcore 1). For tap -> guest the
# injector shares core 0 with the back-end: DPDK's back-end polls and so
# leaves it half the core, cvmm's sleeps when idle; read that ratio with
# this in mind.
set -u
BUILD=$(cd "${1:-build}" && pwd) || exit 1
export BUILD
SECS=${SECS:-5}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-3}
DIRS=${DIRS:-tx rx}
INJECT=$BUILD/bench/net_inject
. "$(dirname "$0")/../tests/integration/lib/vhost_net.sh"
command -v dpdk-testpmd >/dev/null || { echo "net.sh: dpdk-testpmd not installed (dpdk-dev)" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "net.sh: needs two cores" >&2; exit 1; }
vn_setup benchnet

frontend() {   # frontend LEN LOG [MODE]
    timeout -s INT -k 5 $(( WARMUP + SECS + 3 )) dpdk-testpmd -l 0-1 --main-lcore 0 --no-pci --no-huge -m 512 \
        --file-prefix="cvmm-bnfe-$$" --single-file-segments \
        --vdev "net_virtio_user0,path=$VN_SOCK,queues=1,mac=$VN_GUEST_MAC" -- \
        --no-mlockall --forward-mode="${3:-txonly}" --auto-start --stats-period 1 \
        --total-num-mbufs=8192 --txpkts="$1" </dev/null >"$2" 2>&1 &
    FE_PID=$!
    it_track "$FE_PID"
}

# measure_rx LEN LOG: injects for the window, returns what the rxonly
# front-end received per second.
measure_rx() {
    local rx
    sleep "$WARMUP"
    ip netns exec "$VN_NS" taskset -c 0 "$INJECT" "$VN_TAP" "$VN_GUEST_MAC" "$1" "$SECS" >>"$VN_TMP/inject.log" 2>&1 ||
        it_fail "net_inject failed"
    wait "$FE_PID"
    rx=$(vn_testpmd_stat "$2" RX-packets)
    echo $(( ${rx:-0} / SECS ))
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
    it_fail "no back-end socket $VN_SOCK"
}

run_cvmm() {   # run_cvmm DIR LEN
    rm -f "$VN_SOCK"
    ip netns exec "$VN_NS" taskset -c 0 "$CVMM" --net-backend "tap=$VN_TAP,socket=$VN_SOCK" \
        >>"$VN_TMP/cvmm.log" 2>&1 &
    local be=$!
    it_track "$be"
    wait_sock
    if [ "$1" = tx ]; then
        frontend "$2" "$VN_TMP/fe-cvmm-$2.log"
        measure
        wait "$FE_PID"
    else
        frontend 64 "$VN_TMP/fe-cvmm-rx-$2.log" rxonly
        measure_rx "$2" "$VN_TMP/fe-cvmm-rx-$2.log"
    fi
    kill -TERM "$be"; wait "$be"
    for i in $(seq 50); do vn_ns test -e "/sys/class/net/$VN_TAP" || break; sleep 0.1; done
}

run_dpdk() {   # run_dpdk DIR LEN
    rm -f "$VN_SOCK"
    ip netns exec "$VN_NS" timeout -s INT -k 5 $(( WARMUP + SECS + 8 )) dpdk-testpmd -l 0-1 --main-lcore 1 \
        --no-pci --no-huge -m 512 --file-prefix="cvmm-bnbe-$$" \
        --vdev "net_vhost0,iface=$VN_SOCK,queues=1" --vdev "net_tap0,iface=$VN_TAP" -- \
        --no-mlockall --forward-mode=io --auto-start --stats-period 1 \
        --total-num-mbufs=8192 </dev/null >"$VN_TMP/be-dpdk-$1-$2.log" 2>&1 &
    local be=$!
    it_track "$be"
    wait_sock
    sleep 1
    if [ "$1" = tx ]; then
        frontend "$2" "$VN_TMP/fe-dpdk-$2.log"
        measure
        wait "$FE_PID"
    else
        frontend 64 "$VN_TMP/fe-dpdk-rx-$2.log" rxonly
        measure_rx "$2" "$VN_TMP/fe-dpdk-rx-$2.log"
    fi
    kill -INT "$be"; wait "$be"
    for i in $(seq 50); do vn_ns test -e "/sys/class/net/$VN_TAP" || break; sleep 0.1; done
}

[ -x "$INJECT" ] || DIRS=${DIRS//rx/}
printf '%-14s %14s %14s %8s\n' direction "cvmm pps" "dpdk pps" ratio
for dir in $DIRS; do
    for len in 64 1500; do
        c=0 d=0
        for r in $(seq "$ROUNDS"); do
            x=$(run_cvmm "$dir" "$len"); [ "$x" -gt "$c" ] && c=$x
            x=$(run_dpdk "$dir" "$len"); [ "$x" -gt "$d" ] && d=$x
        done
        [ "$d" -gt 0 ] || it_fail "DPDK back-end forwarded nothing ($dir, $len B)"
        name="guest->tap"
        [ "$dir" = rx ] && name="tap->guest"
        printf '%-14s %14s %14s %8s\n' "$name ${len}B" "$c" "$d" \
            "$(awk -v c="$c" -v d="$d" 'BEGIN { printf "%.2fx", c / d }')"
    done
done
