#!/usr/bin/env bash
# Usage: BUILD=build tests/nested-blk-queues.sh [RUNS]
#
# A measuring tool, not a test: inside the nested machine (tests/lib/
# nested.sh), boots Debian's kernel under cvmm RUNS times (default 2) for
# each of three disks on the same image: virtio-pci with its default queue
# per vCPU, virtio-pci with num_queues=1, and virtio-mmio (one queue); 2
# vCPUs, 1 GiB. The guest runs bench/guest/blkload for 3 s each: 4 KiB
# random read, sequential read and random write at queue depth 32, then
# random read at depth 1. Prints each boot's figures (one line, the guest's
# BENCH lines). docs/performance.md has what it showed.
set -u
BUILD=$(cd "${BUILD:?BUILD must be set}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-2}
. "$root/tests/lib/linux-guest.sh"
linux_guest_blkload_tool blkqueues <<'GUEST' || exit 1
for mode in randread seqread randwrite; do
    /blkload /dev/vda $mode 4096 32 3 256
done
/blkload /dev/vda randread 4096 1 3 256
GUEST
cat >"$tmp/loop.sh" <<INNER
#!/bin/sh
runs=$runs
INNER
cat >>"$tmp/loop.sh" <<'INNER'
dd if=/dev/urandom of=disk.img bs=1M count=256 2>/dev/null
for disk in pci: pci:,num_queues=1 mmio:; do
    transport=${disk%%:*} opts=${disk#*:}
    n=0
    while [ $n -lt $runs ]; do
        n=$((n + 1))
        timeout 300 "$CVMM" --kernel "$GUEST_KERNEL" --initramfs initrd.gz --cpus boot=2 --memory size=1G \
            --transport "$transport" --serial file=out --disk "path=disk.img$opts" \
            --cmdline "console=ttyS0 panic=-1 reboot=k quiet" </dev/null >/dev/null 2>err
        echo "BLKQUEUES $transport$opts run $n: exit $?, $(tr -d '\r' <out | sed -n 's/^BENCH: //p' | tr '\n' ' ')"
    done
done
INNER
linux_guest_blkload_run blkqueues BLKQUEUES $((runs * 3 * 300 + 300))
