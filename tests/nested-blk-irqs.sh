#!/usr/bin/env bash
# Usage: BUILD=build tests/nested-blk-irqs.sh [RUNS]
#
# A measuring tool, not a test: how many completion interrupts a request
# costs under cvmm and under QEMU. Inside the nested machine
# (tests/lib/nested.sh), boots Debian's kernel RUNS times (default 2) under
# cvmm (virtio-pci, its default queue per vCPU) and under QEMU
# (`virtio-blk-pci` with two queues, `aio=io_uring`) in turn; 2 vCPUs,
# 1 GiB. The guest runs bench/guest/blkload's 4 KiB random reads for 3 s at
# queue depth 32 and then 1, and counts the disk's interrupts in
# /proc/interrupts around each. docs/performance.md has what it showed.
set -u
BUILD=$(cd "${BUILD:?BUILD must be set}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-2}
. "$root/tests/lib/linux-guest.sh"
linux_guest_blkload_tool blkirqs <<'GUEST' || exit 1
# The sum over both vCPUs of the disk's request interrupts.
irqs() { grep 'virtio0-req' /proc/interrupts | awk '{ s += $2 + $3 } END { print s + 0 }'; }
for qd in 32 1; do
    a=$(irqs)
    iops=$(/blkload /dev/vda randread 4096 $qd 3 256 | sed -n 's/.*iops=\([0-9]*\).*/\1/p')
    b=$(irqs)
    echo "IRQS randread-4k-qd$qd iops=$iops interrupts=$((b - a))" \
         "per-request=$(awk -v i=$((b - a)) -v n="$iops" 'BEGIN { if (n) printf "%.2f", i / (n * 3) }')"
done
GUEST
linux_guest_loop_head "$runs" disk >"$tmp/loop.sh"
cat >>"$tmp/loop.sh" <<'INNER'
n=0
while [ $n -lt $runs ]; do
    n=$((n + 1))
    for vmm in cvmm qemu; do
        case $vmm in
        cvmm) timeout 300 "$CVMM" --kernel "$GUEST_KERNEL" --initramfs initrd.gz --cpus boot=2 --memory size=1G \
                  --serial file=out --disk path=disk.img --cmdline "$append" </dev/null >/dev/null 2>err;;
        qemu) timeout 300 $QEMU -enable-kvm -cpu host -smp 2 -m 1G -nographic -no-reboot -nodefaults \
                  -serial file:out -kernel "$GUEST_KERNEL" -initrd initrd.gz -append "$append" \
                  -drive file=disk.img,if=none,id=d0,format=raw,aio=io_uring \
                  -device virtio-blk-pci,drive=d0,num-queues=2 </dev/null >/dev/null 2>err;;
        esac
        rc=$?
        echo "BLKIRQS $vmm run $n: exit $rc, $(tr -d '\r' <out | sed -n 's/^IRQS //p' | tr '\n' ' ')"
        [ $rc -eq 0 ] || tail -n 3 err | sed "s/^/BLKIRQS   $vmm: /"
    done
done
INNER
linux_guest_blkload_run blkirqs BLKIRQS $((runs * 2 * 300 + 300)) qemu
