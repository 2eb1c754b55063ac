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
#                                      DIRS="tx rx" LENS="64 1500" PAIRS=1
#
# PAIRS=2: two queue pairs everywhere (front-end, cvmm num_queues=4 with a
# thread per pair, DPDK queues=2), guest -> tap only (the injector sends one
# flow, which the tap steers to one queue).
#
# Each round runs, one after the other: (guest -> tap only) the machine's
# ceiling, bench/tap_flood: one thread writing the same frames into a tap
# as fast as the kernel takes them (io_uring, 256 writes per system call),
# pinned where the back-ends' busy thread runs; then cvmm; then DPDK. For
# each back-end the CPU time it used in the window (utime + stime of the
# whole process, from /proc/PID/stat) is reported per million packets.
# Printed: every round's figures, then medians over the rounds, the median
# of the rounds' cvmm/DPDK ratios, and both as fractions of the ceiling.
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
LENS=${LENS:-64 1500}
PAIRS=${PAIRS:-1}
[ "$PAIRS" = 1 ] || DIRS=tx
INJECT=$BUILD/bench/net_inject
FLOOD=$BUILD/bench/tap_flood
TCK=$(getconf CLK_TCK)
. "$(dirname "$0")/../tests/integration/lib/vhost_net.sh"
command -v dpdk-testpmd >/dev/null || { echo "net.sh: dpdk-testpmd not installed (dpdk-dev)" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "net.sh: needs two cores" >&2; exit 1; }
vn_setup benchnet

frontend() {   # frontend LEN LOG [MODE]
    timeout -s INT -k 5 $(( WARMUP + SECS + 3 )) dpdk-testpmd -l 0-1 --main-lcore 0 --no-pci --no-huge -m 512 \
        --file-prefix="cvmm-bnfe-$$" --single-file-segments \
        --vdev "net_virtio_user0,path=$VN_SOCK,queues=$PAIRS,mac=$VN_GUEST_MAC" -- --rxq="$PAIRS" --txq="$PAIRS" \
        --no-mlockall --forward-mode="${3:-txonly}" --auto-start --stats-period 1 \
        --total-num-mbufs=8192 --txpkts="$1" </dev/null >"$2" 2>&1 &
    FE_PID=$!
    it_track "$FE_PID"
}

# measure_rx LEN LOG PID: injects for the window; "PPS CPU": what the
# rxonly front-end received per second, PID's CPU ms per million of them.
measure_rx() {
    local rx c0 c1
    sleep "$WARMUP"
    c0=$(cpu_ticks "$3")
    ip netns exec "$VN_NS" taskset -c 0 "$INJECT" "$VN_TAP" "$VN_GUEST_MAC" "$1" "$SECS" >>"$VN_TMP/inject.log" 2>&1 ||
        it_fail "net_inject failed"
    c1=$(cpu_ticks "$3")
    wait "$FE_PID"
    rx=$(vn_testpmd_stat "$2" RX-packets)
    echo "$(( ${rx:-0} / SECS )) $(per_mpkt $((c1 - c0)) "${rx:-0}")"
}

# cpu_ticks PID: utime + stime of the process (all its threads).
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# per_mpkt TICKS PACKETS: CPU milliseconds per million packets.
per_mpkt() {
    awk -v t="$1" -v n="$2" -v hz="$TCK" 'BEGIN { printf "%.0f", n ? t / hz * 1000 / (n / 1e6) : 0 }'
}

# measure PID: tap frames per second over the window, after the warm-up,
# and PID's CPU ms per million frames: "PPS CPU".
measure() {
    local a b c0 c1
    sleep "$WARMUP"
    a=$(vn_tap_stat rx_packets)
    c0=$(cpu_ticks "$1")
    sleep "$SECS"
    b=$(vn_tap_stat rx_packets)
    c1=$(cpu_ticks "$1")
    echo "$(( (b - a) / SECS )) $(per_mpkt $((c1 - c0)) $((b - a)))"
}

# tap_gone: waits until the previous run's tap is gone (a loaded machine
# can take a while to tear a back-end down).
tap_gone() {
    local i
    for i in $(seq 300); do vn_ns test -e "/sys/class/net/$VN_TAP" || return 0; sleep 0.1; done
    it_fail "tap $VN_TAP still there 30 s after its back-end stopped"
}

run_ceiling() {   # run_ceiling LEN
    tap_gone
    ip netns exec "$VN_NS" taskset -c 0 "$FLOOD" "$VN_TAP" "$1" $(( WARMUP + SECS + 1 )) \
        >>"$VN_TMP/flood.log" 2>&1 &
    local f=$!
    it_track "$f"
    for i in $(seq 100); do vn_ns test -e "/sys/class/net/$VN_TAP" && break; sleep 0.1; done
    measure "$f"
    wait "$f" || it_fail "tap_flood failed"
}

wait_sock() {
    local i
    for i in $(seq 100); do [ -S "$VN_SOCK" ] && return 0; sleep 0.1; done
    it_fail "no back-end socket $VN_SOCK"
}

run_cvmm() {   # run_cvmm DIR LEN
    tap_gone
    rm -f "$VN_SOCK"
    ip netns exec "$VN_NS" taskset -c 0 "$CVMM" --net-backend "tap=$VN_TAP,socket=$VN_SOCK,num_queues=$((2 * PAIRS))" \
        >>"$VN_TMP/cvmm.log" 2>&1 &
    local be=$!
    it_track "$be"
    wait_sock
    if [ "$1" = tx ]; then
        frontend "$2" "$VN_TMP/fe-cvmm-$2.log"
        measure "$be"
        wait "$FE_PID"
    else
        frontend 64 "$VN_TMP/fe-cvmm-rx-$2.log" rxonly
        measure_rx "$2" "$VN_TMP/fe-cvmm-rx-$2.log" "$be"
    fi
    kill -TERM "$be"; wait "$be"
    for i in $(seq 50); do vn_ns test -e "/sys/class/net/$VN_TAP" || break; sleep 0.1; done
}

run_dpdk() {   # run_dpdk DIR LEN
    tap_gone
    rm -f "$VN_SOCK"
    ip netns exec "$VN_NS" timeout -s INT -k 5 $(( WARMUP + SECS + 30 )) dpdk-testpmd -l 0-1 --main-lcore 1 \
        --no-pci --no-huge -m 512 --file-prefix="cvmm-bnbe-$$" \
        --vdev "net_vhost0,iface=$VN_SOCK,queues=$PAIRS" --vdev "net_tap0,iface=$VN_TAP" -- --rxq="$PAIRS" --txq="$PAIRS" \
        --no-mlockall --forward-mode=io --auto-start --stats-period 1 \
        --total-num-mbufs=8192 </dev/null >"$VN_TMP/be-dpdk-$1-$2.log" 2>&1 &
    local be=$! tp
    it_track "$be"
    wait_sock
    sleep 1
    # $be is `timeout`; testpmd is its child.
    tp=$(pgrep -P "$be" | head -n 1)
    if [ "$1" = tx ]; then
        frontend "$2" "$VN_TMP/fe-dpdk-$2.log"
        measure "${tp:-$be}"
        wait "$FE_PID"
    else
        frontend 64 "$VN_TMP/fe-dpdk-rx-$2.log" rxonly
        measure_rx "$2" "$VN_TMP/fe-dpdk-rx-$2.log" "${tp:-$be}"
    fi
    kill -INT "$be" 2>/dev/null; wait "$be"
    for i in $(seq 50); do vn_ns test -e "/sys/class/net/$VN_TAP" || break; sleep 0.1; done
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b ? a / b : 0 }'; }

[ -x "$INJECT" ] || DIRS=${DIRS//rx/}
[ -x "$FLOOD" ] || { echo "net.sh: $FLOOD not built (make BUILD=... bench)" >&2; exit 1; }
echo "vhost-user-net <-> tap, $PAIRS queue pair(s), $ROUNDS rounds, ${SECS} s windows after ${WARMUP} s warm-up; $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
SUMMARY=()
for dir in $DIRS; do
    name="guest->tap"
    [ "$dir" = rx ] && name="tap->guest"
    for len in $LENS; do
        C=() D=() CC=() DC=() R=() CR=() F=() CF=() DF=()
        for r in $(seq "$ROUNDS"); do
            f=0
            fc=0
            if [ "$dir" = tx ]; then
                set -- $(run_ceiling "$len"); f=$1 fc=$2
            fi
            set -- $(run_cvmm "$dir" "$len"); c=$1 cc=$2
            set -- $(run_dpdk "$dir" "$len"); d=$1 dc=$2
            [ "$d" -gt 0 ] || it_fail "DPDK back-end forwarded nothing ($dir, $len B)"
            C+=("$c") D+=("$d") CC+=("$cc") DC+=("$dc") F+=("$f")
            R+=("$(ratio "$c" "$d")") CR+=("$(ratio "$cc" "$dc")")
            if [ "$dir" = tx ]; then
                CF+=("$(ratio "$c" "$f")") DF+=("$(ratio "$d" "$f")")
                printf 'round %s %-11s %5sB: ceiling %9s pps %6s CPU ms/Mpkt | cvmm %9s pps %6s | dpdk %9s pps %6s\n' \
                    "$r" "$name" "$len" "$f" "$fc" "$c" "$cc" "$d" "$dc"
            else
                printf 'round %s %-11s %5sB: cvmm %9s pps %6s CPU ms/Mpkt | dpdk %9s pps %6s CPU ms/Mpkt\n' \
                    "$r" "$name" "$len" "$c" "$cc" "$d" "$dc"
            fi
        done
        line=$(printf '%-11s %5sB %10s %10s %7sx %8s %8s %7sx' "$name" "$len" \
            "$(printf '%s\n' "${C[@]}" | median)" "$(printf '%s\n' "${D[@]}" | median)" \
            "$(printf '%s\n' "${R[@]}" | median)" \
            "$(printf '%s\n' "${CC[@]}" | median)" "$(printf '%s\n' "${DC[@]}" | median)" \
            "$(printf '%s\n' "${CR[@]}" | median)")
        if [ "$dir" = tx ]; then
            line="$line $(printf '%10s %6s %6s' "$(printf '%s\n' "${F[@]}" | median)" \
                "$(printf '%s\n' "${CF[@]}" | median)" "$(printf '%s\n' "${DF[@]}" | median)")"
        fi
        SUMMARY+=("$line   rounds cvmm/dpdk: ${R[*]}")
    done
done
echo
echo "medians over $ROUNDS rounds (ratios: median of the rounds' ratios; CPU: ms of back-end CPU per million packets)"
printf '%-18s %10s %10s %8s %8s %8s %8s %10s %6s %6s\n' direction "cvmm pps" "dpdk pps" ratio "cvmm CPU" "dpdk CPU" "CPU rat." \
    "ceiling" "cvmm/c" "dpdk/c"
printf '%s\n' "${SUMMARY[@]}"
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at end"
