#!/usr/bin/env bash
# Usage: BUILD=build tests/nested-blk-writes.sh [RUNS]
#
# A measuring tool, not a test: inside the nested machine (tests/lib/
# nested.sh), boots Debian's kernel RUNS times (default 3) under each of
# cvmm on virtio-pci with its default queue per vCPU, cvmm on virtio-pci
# with num_queues=1, and QEMU (-M pc, virtio-blk-pci with its own default
# queue per vCPU, aio=io_uring), in turn, on the same image; 2 vCPUs, 1 GiB.
# The guest runs bench/guest/blkload's 1 MiB sequential O_DIRECT writes at
# queue depth 4 three times for 3 s each. Prints each boot's figures (one
# line: the guest's BENCH lines and its /proc/interrupts lines for the
# disk). docs/performance.md ("1 MiB writes on two queues") has what it
# showed.
set -u
BUILD=$(cd "${BUILD:?BUILD must be set}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
. "$root/tests/lib/linux-guest.sh"
linux_guest_blkload_tool blkwrites <<'GUEST' || exit 1
for i in 1 2 3; do
    /blkload /dev/vda seqwrite 1048576 4 3 256
done
grep virtio /proc/interrupts | sed 's/^ */BENCH: irq /'
GUEST
linux_guest_loop_head "$runs" disk >"$tmp/loop.sh"
cat >>"$tmp/loop.sh" <<'INNER'
n=0
while [ $n -lt $runs ]; do
    n=$((n + 1))
    for disk in cvmm: cvmm:,num_queues=1 qemu:; do
        vmm=${disk%%:*} opts=${disk#*:}
        if [ $vmm = qemu ]; then
            timeout 300 $QEMU -M pc -enable-kvm -cpu host -smp 2 -m 1G -nographic -nodefaults \
                -serial file:out -no-reboot -kernel "$GUEST_KERNEL" -initrd initrd.gz -append "$append" \
                -drive file=disk.img,format=raw,if=none,id=d0,aio=io_uring \
                -device virtio-blk-pci,drive=d0 </dev/null >/dev/null 2>err
        else
            timeout 300 "$CVMM" --kernel "$GUEST_KERNEL" --initramfs initrd.gz --cpus boot=2 \
                --memory size=1G --transport pci --serial file=out --disk "path=disk.img$opts" \
                --cmdline "$append" </dev/null >/dev/null 2>err
        fi
        echo "BLKWRITES $vmm$opts run $n: exit $?, $(tr -d '\r' <out | sed -n 's/^BENCH: //p' | tr -s ' ' | tr '\n' ' ')"
    done
done
INNER
linux_guest_blkload_run blkwrites BLKWRITES $((runs * 3 * 300 + 300)) qemu
