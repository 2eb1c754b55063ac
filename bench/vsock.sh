#!/usr/bin/env bash
# Vsock back-end throughput: `cvmm --vsock-backend` with a QEMU TCG guest
# (vhost-user-vsock-pci, Debian's cloud kernel) moving BYTES host -> guest
# and guest -> host over one connection each (tests/integration/guest/
# vsock-tool.c on both sides, hybrid vsock on the host). No other C
# vhost-user-vsock back-end is at hand to compare with, so the figures are
# reported on their own; the guest is TCG-emulated, which bounds them.
#
#   bench/vsock.sh [BUILD_DIR]      env: BYTES=67108864 RUNS=3
#
# Each direction is timed on the host: from the connection being set up to
# the peer's end of stream (the receiver has checksummed every byte).
set -u
BUILD=$(cd "${1:-build}" && pwd) || exit 1
export BUILD
BYTES=${BYTES:-$((64 << 20))}
RUNS=${RUNS:-3}
. "$(dirname "$0")/../tests/integration/lib/vhost_vsock.sh"
vv_setup
vv_backend

mibs() { awk -v b="$1" -v ms="$2" 'BEGIN { if (ms > 0) printf "%.1f", b / 1048576 / (ms / 1000); else print "n/a" }'; }

for run in $(seq "$RUNS"); do
    vv_host_bg "$VV_TMP/g2h.$run.out" recv "unix:${VV_UDS}_5000"
    recv_pid=$VV_HOST_PID
    vv_qemu_bg bench "$VV_TMP/guest.$run.log" "cvmm_vsock_bytes=$BYTES"
    h2g=$(timeout 600 "$VV_TOOL" send "hybrid:$VV_UDS:1234" "$BYTES" "$run") || it_fail "host -> guest: $h2g"
    wait "$VV_QEMU_PID" || it_fail "qemu exited with $?"
    wait "$recv_pid" || it_fail "host receiver failed"
    g=$(vv_guest_line "$VV_TMP/guest.$run.log" h2g)
    [ "$(vv_field "$g" sum)" = "$(vv_field "$h2g" sum)" ] || it_fail "host -> guest checksum: sent '$h2g', got '$g'"
    g=$(vv_guest_line "$VV_TMP/guest.$run.log" g2h)
    h=$(grep RECV "$VV_TMP/g2h.$run.out")
    [ "$(vv_field "$g" sum)" = "$(vv_field "$h" sum)" ] || it_fail "guest -> host checksum: sent '$g', got '$h'"
    printf 'run %d: host -> guest %s MiB/s, guest -> host %s MiB/s (%d MiB each, checksums match)\n' "$run" \
        "$(mibs "$BYTES" "$(vv_field "$h2g" ms)")" "$(mibs "$BYTES" "$(vv_field "$h" ms)")" $((BYTES >> 20))
done
# Where the time goes: the back-end's own CPU time over all runs (the rest
# is the TCG guest and the host programs).
ticks=$(awk '{ print $14 + $15 }' "/proc/$VV_BACKEND_PID/stat")
awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v mib=$(( (BYTES >> 20) * 2 * RUNS )) \
    'BEGIN { printf "back-end CPU: %.2f s for %d MiB moved (%.1f ms per MiB)\n", t / hz, mib, t / hz * 1000 / mib }'
kill -TERM "$VV_BACKEND_PID"
wait "$VV_BACKEND_PID"
