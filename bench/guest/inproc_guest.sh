#!/bin/sh
# /test.sh of bench/inproc.sh's initramfs: block load on /dev/vda with
# /blkload (4 KiB random and sequential, read and write, at queue depth 1
# and 32; 1 MiB sequential at depth 4), then TCP with the host behind the
# tap with /netload (a stream each way, 1-byte request/response), run on
# vCPU 0 and again on the last vCPU. Parameters
# come from the kernel command line: bench.secs=N (per block workload)
# bench.netmib=N (per stream) bench.rr=N (exchanges) bench.host=A.B.C.D.
secs=$(sed -n 's/.*bench\.secs=\([0-9]*\).*/\1/p' /proc/cmdline)
netmib=$(sed -n 's/.*bench\.netmib=\([0-9]*\).*/\1/p' /proc/cmdline)
rr=$(sed -n 's/.*bench\.rr=\([0-9]*\).*/\1/p' /proc/cmdline)
host=$(sed -n 's/.*bench\.host=\([0-9.]*\).*/\1/p' /proc/cmdline)
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
for qd in 1 32; do
    for mode in randread randwrite seqread seqwrite; do
        /blkload /dev/vda $mode 4096 $qd "$secs" 256
    done
done
/blkload /dev/vda seqread 1048576 4 "$secs" 256
/blkload /dev/vda seqwrite 1048576 4 "$secs" 256
ip link set eth0 up
ip addr add "${host%.*}.2/24" dev eth0
ping -c 1 -W 5 "$host" >/dev/null 2>&1
# The same placement under every VMM. Left alone, the guest puts the net
# device's receive and transmit interrupts on vCPUs by its own vector
# bookkeeping, which comes out differently under each VMM, and a stream whose
# process shares a vCPU with the receive interrupt runs at half the speed of
# one that does not (docs/performance.md). So receive interrupts go to vCPU
# 0, transmit interrupts to the last vCPU, and each figure is measured with
# netload pinned to each of the two, named net-tx-vcpu0, net-tx-vcpu1 and so
# on. (On virtio-mmio the device has one interrupt: it goes to vCPU 0.)
last=$(($(grep -c ^processor /proc/cpuinfo) - 1))
for irq in $(awk -F: '/virtio[0-9]*-input|virtio[0-9]*$/ { print $1 }' /proc/interrupts); do
    echo 1 >/proc/irq/$((irq))/smp_affinity
done
for irq in $(awk -F: '/virtio[0-9]*-output/ { print $1 }' /proc/interrupts); do
    printf '%x\n' $((1 << last)) >/proc/irq/$((irq))/smp_affinity
done
for cpu in $(echo 0 $last | tr ' ' '\n' | sort -u); do
    for load in "send $netmib" "recv $netmib" "rr $rr"; do
        # shellcheck disable=SC2086
        taskset -c $cpu /netload "$host" 5679 $load | sed "s/^BENCH: net-\([a-z]*\) /BENCH: net-\1-vcpu$cpu /"
    done
done
