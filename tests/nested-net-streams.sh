#!/usr/bin/env bash
# Usage: BUILD=build [CVMM_B=OTHER/cvmm] tests/nested-net-streams.sh [RUNS]
#
# A measuring tool, not a test: inside the nested machine (tests/lib/
# nested.sh), boots Debian's kernel RUNS times (default 2) under each of
# cvmm on virtio-pci, cvmm on virtio-mmio and QEMU (-M pc, virtio-net-pci,
# vhost=off), in turn, each with a tap to the outer machine; 2 vCPUs, 1 GiB.
# With CVMM_B, another build of cvmm (same libraries) runs on virtio-pci
# beside the first in each round ("cvmm-b"), for A/B comparisons. The guest
# puts the net device's receive interrupts on vCPU 0 and its transmit
# interrupts on vCPU 1 (bench/guest/net_irqs.sh), then runs
# bench/guest/netload pinned to a vCPU: 16 MiB streams out (tx0, tx1, tx0,
# ..., the digit is the vCPU) and in (rx0, rx1), each followed by 200
# request/response exchanges on the same vCPU (rr0, rr1, microseconds).
# Prints each boot's figures on one line. docs/performance.md ("Where the
# guest's process runs") has what it showed.
set -u
BUILD=$(cd "${BUILD:?BUILD must be set}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-2}
. "$root/tests/lib/linux-guest.sh"
LINUX_GUEST_MODE=nested
linux_guest_test netstreams
cat >"$tmp/guest.sh" <<'GUEST'
#!/bin/sh
host=10.80.0.1
i=0
while ! ip link show eth0 >/dev/null 2>&1 && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
ip link set eth0 up
ip addr add 10.80.0.2/24 dev eth0
ping -c 1 -W 5 "$host" >/dev/null 2>&1
. /net_irqs.sh
for job in "0 send" "1 send" "0 send" "0 recv" "1 recv" "0 send"; do
    set -- $job
    taskset -c "$1" /netload "$host" 5679 "$2" 16 | sed "s/^BENCH: net-\([a-z]*\) mibps=/BENCH: \1$1=/"
    taskset -c "$1" /netload "$host" 5679 rr 200 | sed "s/^BENCH: net-rr usecs=/BENCH: rr$1=/"
done
GUEST
linux_guest_loop_head "$runs" >"$tmp/loop.sh"
if [ -n "${CVMM_B:-}" ]; then
    echo "vmms='cvmm-pci cvmm-b cvmm-mmio qemu'" >>"$tmp/loop.sh"
else
    echo "vmms='cvmm-pci cvmm-mmio qemu'" >>"$tmp/loop.sh"
fi
cat >>"$tmp/loop.sh" <<'INNER'
./netload serve 5679 &
server=$!
# QEMU creates its tap itself; it is addressed once it exists.
tap_for_qemu() {
    i=0
    while ! ip link show bench1 >/dev/null 2>&1 && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
    ip addr add 10.80.0.1/24 dev bench1 && ip link set bench1 up
}
n=0
while [ $n -lt $runs ]; do
    n=$((n + 1))
    for vmm in $vmms; do
        if [ $vmm = qemu ]; then
            tap_for_qemu &
            tap=$!
            timeout 300 $QEMU -M pc -enable-kvm -cpu host -smp 2 -m 1G -nographic -nodefaults \
                -serial file:out -no-reboot -kernel "$GUEST_KERNEL" -initrd initrd.gz -append "$append" \
                -netdev tap,id=n0,ifname=bench1,script=no,downscript=no,vhost=off \
                -device virtio-net-pci,netdev=n0,romfile= </dev/null >/dev/null 2>err
            rc=$?
            wait $tap
        else
            cvmm=$CVMM transport=${vmm#cvmm-}
            # The other build, on the CPU $CVMM runs on (images/nested/init.sh).
            [ $vmm = cvmm-b ] && cvmm="taskset -c 1 ./cvmm-b" transport=pci
            timeout 300 $cvmm --kernel "$GUEST_KERNEL" --initramfs initrd.gz --cpus boot=2 --memory size=1G \
                --transport $transport --serial file=out --net "tap=bench0,ip=10.80.0.1,mask=255.255.255.0" \
                --cmdline "$append" </dev/null >/dev/null 2>err
            rc=$?
        fi
        echo "NETSTREAMS $vmm run $n: exit $rc, $(tr -d '\r' <out | sed -n 's/^BENCH: //p' | tr '\n' ' ')"
    done
done
kill $server
INNER
gcc -static -O2 -o "$tmp/netload" "$root/bench/guest/netload.c" || exit 1
LINUX_DIR=$BUILD/linux "$root/images/linux/mkinitrd.sh" "$tmp/initrd.gz" "$tmp/guest.sh" "$tmp/netload:/netload" \
    "$root/bench/guest/net_irqs.sh:/net_irqs.sh" >/dev/null || exit 1
qf=$(nested_qemu_files) || { echo "cannot ship QEMU into the nested machine"; exit 1; }
mapfile -t qfiles <<<"$qf"
[ -n "${CVMM_B:-}" ] && qfiles+=("$CVMM_B:cvmm-b")
NESTED_MEM_MIB=4096 NESTED_TIMEOUT=$((runs * 4 * 300 + 300)) \
    nested_run netstreams "$tmp/loop.sh" "$tmp/initrd.gz" "$tmp/netload" "${qfiles[@]}" | grep -a "^NETSTREAMS"
