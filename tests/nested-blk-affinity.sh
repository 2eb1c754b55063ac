#!/usr/bin/env bash
# Usage: BUILD=build tests/nested-blk-affinity.sh [RUNS]
#
# A measuring tool, not a test: where a disk's completion interrupt lands
# and what that costs a single request. Inside the nested machine
# (tests/lib/nested.sh), boots Debian's kernel under cvmm once per disk
# (virtio-mmio, whose one interrupt line the guest routes to one vCPU, and
# virtio-pci with its default queue and MSI-X vector per vCPU); 2 vCPUs,
# 1 GiB. The guest runs bench/guest/blkload's 4 KiB random reads at queue
# depth 1 for 3 s pinned to vCPU 0, pinned to vCPU 1 and unpinned, RUNS
# times (default 2), then unpinned with the queue's rq_affinity at 0 and
# at 2 (blk-mq completes on the interrupt's vCPU, or always sends the
# completion to the submitting one; the default is 1), and prints its
# /proc/interrupts lines for the disk.
# docs/performance.md has what it showed.
set -u
BUILD=$(cd "${BUILD:?BUILD must be set}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-2}
. "$root/tests/lib/linux-guest.sh"
linux_guest_blkload_tool blkaffinity <<GUEST || exit 1
r=0
while [ \$r -lt $runs ]; do
    r=\$((r + 1))
    for cpu in 0 1; do
        echo "AFF run \$r pinned to vCPU \$cpu: \$(taskset -c \$cpu /blkload /dev/vda randread 4096 1 3 256)"
    done
    echo "AFF run \$r unpinned: \$(/blkload /dev/vda randread 4096 1 3 256)"
done
for a in 0 2; do
    echo \$a >/sys/block/vda/queue/rq_affinity
    echo "AFF unpinned, rq_affinity \$a: \$(/blkload /dev/vda randread 4096 1 3 256)"
done
grep virtio /proc/interrupts | sed 's/^ */AFF interrupts: /'
GUEST
cat >"$tmp/loop.sh" <<'INNER'
#!/bin/sh
dd if=/dev/urandom of=disk.img bs=1M count=256 2>/dev/null
for transport in mmio pci; do
    timeout 300 "$CVMM" --kernel "$GUEST_KERNEL" --initramfs initrd.gz --cpus boot=2 --memory size=1G \
        --transport "$transport" --serial file=out --disk path=disk.img \
        --cmdline "console=ttyS0 panic=-1 reboot=k quiet" </dev/null >/dev/null 2>err
    echo "BLKAFFINITY $transport: exit $?"
    tr -d '\r' <out | sed -n "s/^AFF /BLKAFFINITY $transport: /p"
done
INNER
linux_guest_blkload_run blkaffinity BLKAFFINITY 900
