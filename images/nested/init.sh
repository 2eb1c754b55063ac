#!/bin/busybox sh
# shellcheck shell=dash
# /init of the outer machine (images/nested/build.sh): loads kvm-amd and
# tun with modprobe, runs the run's script /run/test.sh with cvmm on
# PATH, prints "NESTED-EXIT: <status>" on the serial console and powers off.
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o size=90% tmpfs /tmp
exec </dev/console >/dev/console 2>&1
ip link set lo up
# A heartbeat from each CPU for tests/lib/nested.sh's nested_watch (which
# asks for it on the kernel command line, nested_heartbeat=1, so `make demo`
# has none): an outer CPU can stop for good without a word (one halted and
# was never woken).
cpu=0
while [ "${nested_heartbeat:-0}" = 1 ] && [ $cpu -lt "$(grep -c ^processor /proc/cpuinfo)" ]; do
    taskset -c $cpu sh -c "while :; do echo NESTED-ALIVE $cpu; sleep 15; done" &
    cpu=$((cpu + 1))
done
# Guest RAM shared with vhost-user back-ends (a memfd) gets transparent huge
# pages only where shmem allows them on advice (cvmm asks with MADV_HUGEPAGE).
echo advise >/sys/kernel/mm/transparent_hugepage/shmem_enabled
ok=1
for m in kvm_amd tun; do
    modprobe "$m" || { echo "NESTED: modprobe $m failed"; ok=0; }
done
[ -c /dev/kvm ] || { echo "NESTED: no /dev/kvm"; ok=0; }
# The run's script, and the tools and peers it starts, on CPU 0; every
# cvmm it starts ($CVMM, /bin/cvmm-cpu1) and every QEMU a benchmark starts
# (prefixed with $VMM_CPU) on CPU 1. An outer CPU that runs a guest's vCPU
# and also takes the interrupts of other processes' wake-ups and TLB
# shootdowns is where the emulator's SVM fails: booting Debian's kernel
# with its serial console read line by line by a shell (bench/inproc.sh's
# way), the guest triple-faulted or stalled in each of the 4 boots tried
# unpinned, and booted in each of 12 pinned (docs/x86-machine.md, "The
# nested machine's own failures").
printf '#!/bin/sh\nexec taskset -c 1 /bin/cvmm "$@"\n' >/bin/cvmm-cpu1
chmod 0755 /bin/cvmm-cpu1
taskset -p -c 0 $$ >/dev/null
if [ $ok -eq 1 ]; then
    cd /run && CVMM=/bin/cvmm-cpu1 VMM_CPU="taskset -c 1" GUEST_KERNEL=/guest/vmlinuz FILES=/run sh /run/test.sh
    rc=$?
else
    rc=125
fi
echo "NESTED-EXIT: $rc"
poweroff -f
