#!/usr/bin/env bash
# Block back-end benchmark: the same front-end load (bench/vu_blk_load, a
# vhost-user-blk front-end in C) against `cvmm --block-backend` and against
# qemu-storage-daemon's vhost-user-blk export on the same image, one queue.
# qemu-storage-daemon runs at its best: aio=io_uring on the page-cached image
# (DIRECT=1: both use O_DIRECT, qsd with aio=native,cache.direct=on).
#
#   bench/blk.sh [BUILD_DIR]      env: SECS=5 (per run) IMG_MB=512 DIRECT=0
#                                      ROUNDS=2 PIN=0
#
# Prints IOPS and MiB/s per workload and the cvmm/qsd ratio. Each back-end
# runs ROUNDS times, alternating, and the best run counts (other load on the
# machine only ever lowers a figure). With PIN=1 the load generator and the
# back-end are pinned to different CPUs when there are two.
set -u
BUILD=$(cd "${1:-build}" && pwd) || exit 1
CVMM=$BUILD/cvmm
LOAD=$BUILD/bench/vu_blk_load
SECS=${SECS:-5}
IMG_MB=${IMG_MB:-512}
DIRECT=${DIRECT:-0}
ROUNDS=${ROUNDS:-2}
PIN=${PIN:-0}
for f in "$CVMM" "$LOAD"; do [ -x "$f" ] || { echo "blk.sh: $f not built (make BUILD=... bench)" >&2; exit 1; }; done
command -v qemu-storage-daemon >/dev/null || { echo "blk.sh: qemu-storage-daemon not installed" >&2; exit 1; }

# /var/tmp: on disk, where DIRECT=1 (O_DIRECT) works.
tmp=$(mktemp -d /var/tmp/cvmm-bench-blk.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
    rm -rf "$tmp"
}
trap cleanup EXIT
img=$tmp/bench.img
sock=$tmp/blk.sock
dd if=/dev/urandom of="$img" bs=1M count="$IMG_MB" status=none

pin_be=() pin_fe=()
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    pin_be=(taskset -c 1) pin_fe=(taskset -c 0)
fi

WORKLOADS=("randread 4096 32" "randwrite 4096 32" "seqread 1048576 8" "seqwrite 1048576 8")

start_backend() {
    rm -f "$sock"
    case $1 in
    cvmm)
        local o="path=$img,socket=$sock"
        [ "$DIRECT" = 1 ] && o="$o,direct=on"
        "${pin_be[@]}" "$CVMM" --block-backend "$o" 2>"$tmp/cvmm.log" &
        ;;
    qsd)
        local b="driver=file,node-name=f0,filename=$img,aio=io_uring"
        [ "$DIRECT" = 1 ] && b="driver=file,node-name=f0,filename=$img,aio=native,cache.direct=on"
        "${pin_be[@]}" qemu-storage-daemon --blockdev "$b" \
            --export "type=vhost-user-blk,id=e0,node-name=f0,addr.type=unix,addr.path=$sock,writable=on,num-queues=1" \
            2>"$tmp/qsd.log" &
        ;;
    esac
    pid=$!
    for _ in $(seq 100); do [ -S "$sock" ] && return 0; sleep 0.1; done
    echo "blk.sh: $1 did not create its socket" >&2
    cat "$tmp/$1.log" >&2
    exit 1
}

stop_backend() {
    kill "$pid"; wait "$pid" 2>/dev/null; pid=
}

declare -A IOPS MIBPS
for round in $(seq "$ROUNDS"); do
for be in cvmm qsd; do
    start_backend $be
    # Bring the image into the page cache before measuring.
    cat "$img" >/dev/null
    for w in "${WORKLOADS[@]}"; do
        set -- $w
        # Each run starts without dirty pages left by the previous one.
        sync
        out=$(timeout $((SECS + 60)) "${pin_fe[@]}" "$LOAD" --socket "$sock" --mode "$1" --bs "$2" --qd "$3" --seconds "$SECS") ||
            { echo "blk.sh: load against $be failed: $out" >&2; exit 1; }
        iops=$(echo "$out" | sed -n 's/.* iops=\([0-9]*\).*/\1/p')
        if [ "$iops" -gt "${IOPS[$be,$1]:-0}" ]; then
            IOPS[$be,$1]=$iops
            MIBPS[$be,$1]=$(echo "$out" | sed -n 's/.* mibps=\([0-9.]*\).*/\1/p')
        fi
    done
    stop_backend
done
done

mode="page cache (cvmm default options; qsd aio=io_uring)"
[ "$DIRECT" = 1 ] && mode="O_DIRECT (cvmm direct=on; qsd aio=native,cache.direct=on)"
echo "vhost-user-blk, 1 queue, image ${IMG_MB} MiB, best of $ROUNDS runs of ${SECS} s, $mode"
printf '%-28s %12s %10s %12s %10s %7s\n' workload "cvmm IOPS" "MiB/s" "qsd IOPS" "MiB/s" ratio
for w in "${WORKLOADS[@]}"; do
    set -- $w
    label="$1 bs=$2 qd=$3"
    ratio=$(awk -v a="${IOPS[cvmm,$1]}" -v b="${IOPS[qsd,$1]}" 'BEGIN { printf "%.2f", b ? a / b : 0 }')
    printf '%-28s %12s %10s %12s %10s %6sx\n' "$label" "${IOPS[cvmm,$1]}" "${MIBPS[cvmm,$1]}" \
        "${IOPS[qsd,$1]}" "${MIBPS[qsd,$1]}" "$ratio"
done
