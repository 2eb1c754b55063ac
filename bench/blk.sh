#!/usr/bin/env bash
# Block back-end benchmark: the same front-end load (bench/vu_blk_load, a
# vhost-user-blk front-end in C) against `cvmm --block-backend` and against
# qemu-storage-daemon's vhost-user-blk export on the same image, in turn.
# qemu-storage-daemon runs at its best: aio=io_uring on the page-cached image
# (DIRECT=1: both use O_DIRECT, qsd with aio=native,cache.direct=on).
#
#   bench/blk.sh [BUILD_DIR]      env: SECS=5 (per run) IMG_MB=256 DIRECT=0
#                                      ROUNDS=3 PIN=0 QUEUES=1
#
# Workloads (4 KiB at queue depth 32, 1 MiB at depth 8, per queue):
#   randread, randwrite        the driver negotiates FLUSH (writeback cache)
#   randwrite-wt               the driver does not (vu_blk_load --no-flush):
#                              every write durable before it completes;
#                              qsd gets writethrough=on
#   seqread, seqwrite          1 MiB, writeback; also as a fraction of the
#                              machine's memory-copy bandwidth (bench/memcopy,
#                              measured in every round)
# Each round runs cvmm, then qsd. Printed: every round's figures, then per
# workload the medians over the rounds and the median of the rounds'
# cvmm/qsd ratios. With PIN=1 the load generator and the back-end are
# pinned to different CPUs when there are two. QUEUES=2 runs every
# workload over two queues (one load thread per queue).
set -u
BUILD=$(cd "${1:-build}" && pwd) || exit 1
CVMM=$BUILD/cvmm
LOAD=$BUILD/bench/vu_blk_load
MEMCOPY=$BUILD/bench/memcopy
SECS=${SECS:-5}
IMG_MB=${IMG_MB:-256}
DIRECT=${DIRECT:-0}
ROUNDS=${ROUNDS:-3}
PIN=${PIN:-0}
QUEUES=${QUEUES:-1}
for f in "$CVMM" "$LOAD" "$MEMCOPY"; do [ -x "$f" ] || { echo "blk.sh: $f not built (make BUILD=... bench)" >&2; exit 1; }; done
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
template=$tmp/template.img
sock=$tmp/blk.sock
dd if=/dev/urandom of="$template" bs=1M count="$IMG_MB" status=none

# Every back-end run starts from the same page cache: a new image written
# with 4 KiB writes, so cached in 4 KiB folios. (How the image is cached
# matters more than either back-end: on ext4 here a random 4 KiB write into
# a large folio, as `cat` or 1 MiB writes leave behind, costs the kernel
# ~5x the CPU time of one into a 4 KiB folio, since it walks every buffer
# of the folio.)
fresh_image() {
    rm -f "$img"
    dd if="$template" of="$img" bs=4k status=none
}

pin_be=() pin_fe=()
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    pin_be=(taskset -c 1) pin_fe=(taskset -c 0)
fi

# name mode bs qd load-options
WORKLOADS=("randread randread 4096 32"
           "randwrite randwrite 4096 32"
           "randwrite-wt randwrite 4096 32 --no-flush"
           "seqread seqread 1048576 8"
           "seqwrite seqwrite 1048576 8")

start_backend() {   # start_backend cvmm|qsd wb|wt
    fresh_image
    rm -f "$sock"
    case $1 in
    cvmm)
        # The driver chooses write-through itself (no FLUSH).
        local o="path=$img,socket=$sock,num_queues=$QUEUES"
        [ "$DIRECT" = 1 ] && o="$o,direct=on"
        "${pin_be[@]}" "$CVMM" --block-backend "$o" 2>"$tmp/cvmm.log" &
        ;;
    qsd)
        local b="driver=file,node-name=f0,filename=$img,aio=io_uring" wt=
        [ "$DIRECT" = 1 ] && b="driver=file,node-name=f0,filename=$img,aio=native,cache.direct=on"
        [ "$2" = wt ] && wt=",writethrough=on"
        "${pin_be[@]}" qemu-storage-daemon --blockdev "$b" \
            --export "type=vhost-user-blk,id=e0,node-name=f0,addr.type=unix,addr.path=$sock,writable=on,num-queues=$QUEUES$wt" \
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

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A IOPS MIBPS
MEMBW=()
mode="page cache (cvmm default options; qsd aio=io_uring)"
[ "$DIRECT" = 1 ] && mode="O_DIRECT (cvmm direct=on; qsd aio=native,cache.direct=on)"
echo "vhost-user-blk, $QUEUES queue(s), image ${IMG_MB} MiB, $ROUNDS rounds of ${SECS} s per workload, $mode"
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
for round in $(seq "$ROUNDS"); do
    bw=$("$MEMCOPY" 256 2 | sed -n 's/.* mibps=\([0-9]*\).*/\1/p')
    MEMBW+=("$bw")
    echo "round $round: memory copy $bw MiB/s"
    for be in cvmm qsd; do
        for cache in wb wt; do
            start_backend $be $cache
            for w in "${WORKLOADS[@]}"; do
                set -- $w
                name=$1; shift
                case "$*" in *--no-flush*) [ $cache = wt ] || continue ;; *) [ $cache = wb ] || continue ;; esac
                # Each run starts without dirty pages left by the previous one.
                sync
                out=$(timeout $((SECS + 60)) "${pin_fe[@]}" "$LOAD" --socket "$sock" --mode "$1" --bs "$2" \
                      --qd "$3" --queues "$QUEUES" --seconds "$SECS" "${@:4}") ||
                    { echo "blk.sh: load against $be failed: $out" >&2; exit 1; }
                IOPS[$be,$name,$round]=$(echo "$out" | sed -n 's/.* iops=\([0-9]*\).*/\1/p')
                MIBPS[$be,$name,$round]=$(echo "$out" | sed -n 's/.* mibps=\([0-9.]*\).*/\1/p')
                printf 'round %s: %-5s %-13s %9s IOPS %9s MiB/s\n' "$round" "$be" "$name" \
                    "${IOPS[$be,$name,$round]}" "${MIBPS[$be,$name,$round]}"
            done
            stop_backend
        done
    done
done

bw_med=$(printf '%s\n' "${MEMBW[@]}" | median)
echo
echo "medians over $ROUNDS rounds (ratio: median of the rounds' cvmm/qsd ratios; memory copy $bw_med MiB/s)"
printf '%-28s %10s %9s %10s %9s %7s  %s\n' workload "cvmm IOPS" "MiB/s" "qsd IOPS" "MiB/s" ratio "per-round ratios"
for w in "${WORKLOADS[@]}"; do
    set -- $w
    name=$1
    ratios=() ci=() qi=() cm=() qm=()
    for round in $(seq "$ROUNDS"); do
        ci+=("${IOPS[cvmm,$name,$round]}") qi+=("${IOPS[qsd,$name,$round]}")
        cm+=("${MIBPS[cvmm,$name,$round]}") qm+=("${MIBPS[qsd,$name,$round]}")
        ratios+=("$(awk -v a="${IOPS[cvmm,$name,$round]}" -v b="${IOPS[qsd,$name,$round]}" 'BEGIN { printf "%.2f", b ? a / b : 0 }')")
    done
    label="$name bs=$3 qd=$4"
    printf '%-28s %10s %9s %10s %9s %6sx  %s\n' "$label" \
        "$(printf '%s\n' "${ci[@]}" | median)" "$(printf '%s\n' "${cm[@]}" | median)" \
        "$(printf '%s\n' "${qi[@]}" | median)" "$(printf '%s\n' "${qm[@]}" | median)" \
        "$(printf '%s\n' "${ratios[@]}" | median)" "${ratios[*]}"
done
for name in seqread seqwrite; do
    c=() q=()
    for round in $(seq "$ROUNDS"); do
        c+=("$(awk -v a="${MIBPS[cvmm,$name,$round]}" -v m="${MEMBW[$((round - 1))]}" 'BEGIN { printf "%.3f", a / m }')")
        q+=("$(awk -v a="${MIBPS[qsd,$name,$round]}" -v m="${MEMBW[$((round - 1))]}" 'BEGIN { printf "%.3f", a / m }')")
    done
    printf '%-28s cvmm %s of memory copy, qsd %s (medians of the rounds)\n' "$name" \
        "$(printf '%s\n' "${c[@]}" | median)" "$(printf '%s\n' "${q[@]}" | median)"
done
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at end"
