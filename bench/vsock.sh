#!/usr/bin/env bash
# Vsock throughput, in two parts.
# 1. The back-end alone: `cvmm --vsock-backend` with a QEMU TCG guest
#    (vhost-user-vsock-pci, Debian's cloud kernel) moving BYTES host -> guest
#    and guest -> host over one connection each (tests/integration/guest/
#    vsock-tool.c on both sides, hybrid vsock on the host). No other C
#    vhost-user-vsock back-end is at hand to compare with; the guest is
#    TCG-emulated, which bounds the figures.
# 2. In-process `cvmm --vsock` beside the back-end, on the same KVM (this
#    host's where it runs Linux, else nested in a QEMU/TCG machine, see
#    tests/lib/linux-guest.sh): ROUNDS rounds, each booting the same guest
#    under cvmm --vsock and under QEMU -enable-kvm with vhost-user-vsock-pci
#    on cvmm --vsock-backend; MiB/s each way (BYTES2) and connections/s
#    (CONNS, each an echoed message), medians and the ratio
#    (bench/host/vsock_run.sh). Nested, only the ratios mean something.
#
#   bench/vsock.sh [BUILD_DIR]   env: BYTES=67108864 RUNS=3 (part 1),
#                                ROUNDS=3 BYTES2=16777216 CONNS=200 (part 2)
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

# 2. in-process beside the back-end
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/lib/linux-guest.sh"
linux_guest_mode
case $? in
    0) echo "vsock: part 2 $LINUX_GUEST_MODE: $LINUX_GUEST_WHY";;
    *) echo "vsock: part 2 not measured on this host: $LINUX_GUEST_WHY"; exit 0;;
esac
linux_guest_prepare || it_fail "cannot build the guest images"
[ "$LINUX_GUEST_MODE" = nested ] &&
    echo "vsock: NESTED (QEMU/TCG outer machine): absolute figures mean nothing here, compare the ratios only"
files=("$VV_TMP/initrd.gz" "$VV_TMP/vsock-tool-static:vsock-tool")
if [ "$LINUX_GUEST_MODE" = nested ]; then
    # QEMU for the outer machine (tests/lib/nested.sh).
    qf=$(nested_qemu_files) || it_fail "cannot ship QEMU into the nested machine"
    mapfile -t qfiles <<<"$qf"
    files+=("${qfiles[@]}")
fi
# The settings travel as a file: the nested machine gets no environment.
ROUNDS=${ROUNDS:-3}
printf 'ROUNDS=%s\nBYTES=%s\nCONNS=%s\n' "$ROUNDS" "${BYTES2:-$((16 << 20))}" "${CONNS:-200}" >"$VV_TMP/bench.env"
files+=("$VV_TMP/bench.env")
NESTED_MEM_MIB=3072 NESTED_TIMEOUT=$((ROUNDS * 2 * 600 + 300)) \
    linux_guest_run vsock_bench "$root/bench/host/vsock_run.sh" "${files[@]}"
