#!/bin/sh
# /test.sh of bench/vhost_blk_linux.sh's initramfs: ROUNDS rounds, each
# loading in turn vda (cvmm's in-process virtio-blk), vdb (vhost-user, served
# by `cvmm --block-backend`) and vdc (vhost-user, qemu-storage-daemon) with
# /blkload: 4 KiB random reads and writes at queue depth 32, O_DIRECT, over
# the first SPAN MiB. One line per figure: "BENCH: ROUND DEV <blkload's line>".
# From the command line: bench.rounds=N bench.secs=N bench.span=MIB.
arg() { sed -n "s/.*$1=\([0-9]*\).*/\1/p" /proc/cmdline; }
rounds=$(arg bench.rounds) secs=$(arg bench.secs) span=$(arg bench.span)
for d in vda vdb vdc; do
    i=0
    while [ ! -b /dev/$d ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
done
r=1
while [ $r -le "$rounds" ]; do
    for d in vda vdb vdc; do
        for mode in randread randwrite; do
            echo "BENCH: $r $d $(/blkload /dev/$d $mode 4096 32 "$secs" "$span")"
        done
    done
    r=$((r + 1))
done
