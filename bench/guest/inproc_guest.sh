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
# Interrupts placed the same under every VMM (net_irqs.sh), each figure is
# measured with netload pinned to vCPU 0 and to the last vCPU: net-tx-vcpu0,
# net-tx-vcpu1 and so on.
. /net_irqs.sh
for cpu in $(echo 0 $last | tr ' ' '\n' | sort -u); do
    for load in "send $netmib" "recv $netmib" "rr $rr"; do
        # shellcheck disable=SC2086
        taskset -c $cpu /netload "$host" 5679 $load | sed "s/^BENCH: net-\([a-z]*\) /BENCH: net-\1-vcpu$cpu /"
    done
done
