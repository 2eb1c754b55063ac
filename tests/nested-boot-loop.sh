#!/usr/bin/env bash
# Usage: BUILD=build [MEMOPTS=,shared=on,...] tests/nested-boot-loop.sh [RUNS] [CPUS] [MEM_MIB]
#
# A debugging tool, not a test: boots Debian's kernel under cvmm RUNS times
# (default 10; 4 vCPUs, 1024 MiB) inside the nested machine
# (tests/lib/nested.sh), each boot ending in a panic=-1 reset, with the outer
# kernel's kvm trace events on. Prints one line a boot and, for a boot that
# did not end cleanly, cvmm's last lines and the kvm events before it ended,
# then "RESULT bad=N of RUNS". docs/x86-machine.md ("Guest RAM and huge
# pages") has what it found.
set -u
BUILD=$(cd "${BUILD:?BUILD must be set}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-10} cpus=${2:-4} mem=${3:-1024}
. "$root/tests/lib/linux-guest.sh"
LINUX_GUEST_MODE=nested
linux_guest_test bootloop
LINUX_DIR=$BUILD/linux "$root/images/linux/mkinitrd.sh" "$tmp/initrd.gz" \
    "$root/tests/integration/guest/boot_linux_guest.sh" || exit 1
cat >"$tmp/loop.sh" <<INNER
#!/bin/sh
runs=$runs cpus=$cpus mem=$mem memopts=${MEMOPTS:-}
INNER
cat >>"$tmp/loop.sh" <<'INNER'
T=/sys/kernel/tracing
mount -t tracefs nodev $T 2>/dev/null
echo 4096 >$T/buffer_size_kb
for e in kvm_exit kvm_inj_exception kvm_page_fault kvm_inj_virq; do
    echo 1 >$T/events/kvm/$e/enable
done
n=0 bad=0
while [ $n -lt $runs ]; do
    n=$((n + 1))
    echo >$T/trace
    echo 1 >$T/tracing_on
    timeout 300 "$CVMM" --kernel "$GUEST_KERNEL" --initramfs initrd.gz --cpus boot=$cpus \
        --memory size=${mem}M$memopts --cmdline "console=ttyS0 panic=-1 reboot=k bl.end=panic" \
        </dev/null >out 2>err
    rc=$?
    echo 0 >$T/tracing_on
    echo "RUN $n: cvmm exited $rc"
    if [ $rc -ne 0 ]; then
        bad=$((bad + 1))
        tail -n 3 err
        grep -v "reason \(hlt\|msr\|io\|intr\|vintr\|interrupt\)" $T/trace | tail -n 30
    fi
done
echo "RESULT bad=$bad of $n"
INNER
# nested_run, not linux_guest_run: a debugging loop wants the one attempt,
# the outer machine's failures included, not reruns.
NESTED_MEM_MIB=$((mem + 2048)) NESTED_TIMEOUT=$((runs * 300 + 300)) \
    nested_run bootloop "$tmp/loop.sh" "$tmp/initrd.gz" | grep -a -v "^\[ *[0-9.]*\] "
