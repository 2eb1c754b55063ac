#!/usr/bin/env bash
# Usage: BUILD=build tests/nested-blk-load-loop.sh [RUNS] [VMMS] [CPUS]
#
# A debugging tool, not a test: inside the nested machine (tests/lib/
# nested.sh), boots Debian's kernel RUNS times (default 3) under each VMM
# of VMMS (default cvmm,qemu: cvmm, and QEMU with KVM and virtio-blk-pci
# with two queues), CPUS vCPUs (default 2) and 1 GiB each, and has the guest load its disk
# with bench/guest/blkload (4 KiB random and sequential reads and writes at
# queue depth 32, 3 s each, three times over: what bench/inproc.sh's qd32
# loads are). Prints per boot how many loads finished and how the VMM ended;
# a guest that resets without a word on its console has triple-faulted
# (cvmm says so in its log; QEMU with -no-reboot just exits 0).
# docs/performance.md ("The nested machine under load") has what it found.
set -u
BUILD=$(cd "${BUILD:?BUILD must be set}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3} vmms=${2:-cvmm,qemu} cpus=${3:-2}
. "$root/tests/lib/linux-guest.sh"
linux_guest_blkload_tool blkloadloop <<'GUEST' || exit 1
for n in 1 2 3; do
    for mode in randread randwrite seqread seqwrite; do
        /blkload /dev/vda $mode 4096 32 3 256
    done
done
echo "LOADLOOP: loads done"
GUEST
cat >"$tmp/loop.sh" <<INNER
#!/bin/sh
runs=$runs cpus=$cpus vmms="$(echo "$vmms" | tr ',' ' ')"
INNER
cat >>"$tmp/loop.sh" <<'INNER'
if [ -x qemu/qemu-system-x86_64 ]; then
    QEMU="${VMM_CPU:-} qemu/ld.so --library-path qemu/lib qemu/qemu-system-x86_64 -L qemu/share"
else
    QEMU=qemu-system-x86_64
fi
dd if=/dev/urandom of=disk.img bs=1M count=256 2>/dev/null
append="console=ttyS0 panic=-1 reboot=k"
for vmm in $vmms; do
    n=0
    while [ $n -lt $runs ]; do
        n=$((n + 1))
        t0=$(date +%s)
        case $vmm in
        cvmm) timeout 300 "$CVMM" --kernel "$GUEST_KERNEL" --initramfs initrd.gz --cpus boot=$cpus --memory size=1G \
                  --serial file=out --disk path=disk.img --cmdline "$append" </dev/null >/dev/null 2>err;;
        qemu) timeout 300 $QEMU -enable-kvm -cpu host -smp $cpus -m 1G -nographic -no-reboot -nodefaults \
                  -serial file:out -kernel "$GUEST_KERNEL" -initrd initrd.gz -append "$append" \
                  -drive file=disk.img,if=none,id=d0,format=raw,aio=io_uring \
                  -device virtio-blk-pci,drive=d0,num-queues=2 </dev/null >/dev/null 2>err;;
        *) echo "LOADLOOP: unknown VMM $vmm"; exit 1;;
        esac
        rc=$?
        alldone=$(grep -c '^LOADLOOP: loads done' out)
        echo "LOADLOOP $vmm run $n: exit $rc, loads finished $(grep -c '^BENCH:' out) of 12," \
             "all done: $alldone, cvmm saw a triple fault: $(grep -c 'triple fault' err)," \
             "guest panic: $(grep -c 'Kernel panic' out), $(($(date +%s) - t0)) s"
        [ "$alldone" = 1 ] || tail -n 5 out | sed 's/^/LOADLOOP   guest: /'
    done
done
INNER
linux_guest_blkload_run blkloadloop LOADLOOP $((runs * 2 * 300 + 300)) qemu
