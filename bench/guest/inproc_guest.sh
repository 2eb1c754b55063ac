#!/bin/sh
# /test.sh of bench/inproc.sh's initramfs: block load on /dev/vda with
# /blkload, then a 256 MiB TCP stream to the host behind the tap. Parameters come
# from the kernel command line: bench.secs=N bench.host=A.B.C.D.
secs=$(sed -n 's/.*bench\.secs=\([0-9]*\).*/\1/p' /proc/cmdline)
host=$(sed -n 's/.*bench\.host=\([0-9.]*\).*/\1/p' /proc/cmdline)
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
/blkload /dev/vda randread 4096 32 "$secs" 256
/blkload /dev/vda randwrite 4096 32 "$secs" 256
/blkload /dev/vda seqread 1048576 4 "$secs" 256
/blkload /dev/vda seqwrite 1048576 4 "$secs" 256
ip link set eth0 up
ip addr add "${host%.*}.2/24" dev eth0
ping -c 1 -W 5 "$host" >/dev/null 2>&1
# The guest times the stream (its own clock, the same way under either VMM),
# from the first write to nc's exit once the host has everything.
t0=$(cut -d' ' -f1 /proc/uptime)
dd if=/dev/zero bs=64k count=4096 2>/dev/null | nc "$host" 5679
t1=$(cut -d' ' -f1 /proc/uptime)
awk -v a="$t0" -v b="$t1" 'BEGIN { if (b > a) printf "BENCH: net mibps=%.1f\n", 256 / (b - a) }'
