#!/bin/sh
# /test.sh of bench/inproc.sh's initramfs: block load on /dev/vda with
# /blkload, then a TCP stream to the host behind the tap. Parameters come
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
# The host times the stream: it prints the rate it received.
dd if=/dev/zero bs=64k count=4096 2>/dev/null | nc -w 10 "$host" 5679
echo "BENCH: net sent"
